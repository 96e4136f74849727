"""Membership audits of text classifiers (fine-tuned ``…ForSequenceClassification`` models), through the engine.

A fine-tuned BERT is a classifier whose records are texts: the audit is the tabular one, with texts for rows.
The target answers logits (:class:`~memberscope.targets.language.TextClassifierTarget`), the standard signals
and attacks read them (loss, confidence, entropy, modified entropy; LiRA, RMIA and the shadow attack with
reference models), and :func:`memberscope.engine.run_plan` writes the usual ``results.json`` (kind ``audit``),
``scores.csv``, ROC and report. Reference models are fine-tunes of the pre-trained *base* model on random halves
of the audit pool (:class:`~memberscope.llm.finetune.TextClassifierRecipe`), when the user asks for K > 0.

Classes are the model's own (its config's ``id2label``): labels in the user's files are matched to them by
name, or read as class indices when they are whole numbers, and every output names them.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from memberscope.exceptions import InvalidInputError

__all__ = ["TextDataset", "audit_text_classifier", "default_attacks", "label_codes"]

_FINGERPRINT_VERSION = b"memberscope-text-dataset-v1"


@dataclass
class TextDataset:
    """Labelled texts shaped like a :class:`~memberscope.datasets.Dataset` for the engine.

    Attributes
    ----------
    name : str
    texts : list of str, shape (n,)
    y : ndarray of shape (n,), int64 — class codes in ``0 .. n_classes - 1``.
    class_names : list of str, shape (n_classes,) — ``class_names[k]`` names code ``k``.
    X : ndarray of shape (n, 1), object — the texts as the engine slices records (built from ``texts``).
    groups : ndarray of shape (n,) of str, or None
    features : None — a record is one text, not named feature columns (the engine reads ``features`` of tables).

    Raises InvalidInputError when texts and labels disagree in number, a text is empty, or a code lies outside
    the classes.
    """

    name: str
    texts: list[str]
    y: np.ndarray
    class_names: list[str]
    groups: np.ndarray | None = None
    description: str = "texts and their labels"
    source: str = "user"
    features: list[str] | None = None
    X: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.texts = [str(t) for t in self.texts]
        self.y = np.asarray(self.y, dtype=np.int64)
        self.class_names = [str(c) for c in self.class_names]
        if self.y.shape != (len(self.texts),):
            raise InvalidInputError(f"{len(self.texts)} texts but labels of shape {self.y.shape}")
        empty = [i for i, t in enumerate(self.texts) if not t.strip()]
        if empty:
            raise InvalidInputError(f"{len(empty)} empty texts (first at record {empty[0]}); expected non-empty texts")
        outside = (self.y < 0) | (self.y >= len(self.class_names))
        if outside.any():
            raise InvalidInputError(
                f"label codes must lie in 0..{len(self.class_names) - 1}; {int(outside.sum())} do not"
            )
        self.X = np.empty((len(self.texts), 1), dtype=object)
        self.X[:, 0] = self.texts

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def n_records(self) -> int:
        return len(self.texts)

    @property
    def feature_shape(self) -> tuple[int, ...]:
        """One text per record: ``(1,)``."""
        return (1,)

    def fingerprint(self) -> str:
        """SHA-256 (hex) of the name, texts, labels, classes and groups: the data part of cache keys."""
        h = hashlib.sha256(_FINGERPRINT_VERSION)
        payload = [self.name, self.texts, self.y.tolist(), self.class_names]
        payload.append(None if self.groups is None else np.asarray(self.groups).astype(str).tolist())
        h.update(json.dumps(payload, ensure_ascii=False).encode("utf-8"))
        return h.hexdigest()


def label_codes(labels: Sequence[Any], class_names: Sequence[str], *, what: str) -> np.ndarray:
    """Class codes (shape ``(n,)``) of ``labels``: by name when every label is one of ``class_names``, else as
    class indices when every label is a whole number in ``0 .. n_classes - 1``.

    Raises InvalidInputError naming the labels that are neither, and the model's classes.
    """
    names = [str(c) for c in class_names]
    text = [str(v).strip() for v in labels]
    index = {name: i for i, name in enumerate(names)}
    if all(v in index for v in text):
        return np.array([index[v] for v in text], dtype=np.int64)
    codes = []
    for v in text:
        try:
            codes.append(int(v))
        except ValueError:
            codes.append(-1)
    codes_arr = np.array(codes, dtype=np.int64)
    bad = sorted({v for v, c in zip(text, codes_arr, strict=True) if v not in index and not 0 <= c < len(names)})
    if not bad and len(codes_arr):
        return codes_arr
    raise InvalidInputError(
        f"{what} labels {bad[:10]} are not classes of the model; its classes (config id2label) are "
        f"{names[:20]}: give each label by name or as a class index 0..{len(names) - 1}"
    )


def default_attacks(n_reference: int, *, has_population: bool) -> list[str]:
    """Every registered attack a text audit can run: no more reference models than ``n_reference``, no perturbed
    queries (label-only perturbs numeric features), population records only when there are some."""
    from memberscope.attacks import names, needs

    out = []
    for name in names():
        need = needs(name)
        if need.queries or need.reference_models > n_reference or (need.population and not has_population):
            continue
        out.append(name)
    return out


def _texts_and_labels(part: Any, what: str) -> tuple[list[str], list[Any], list[Any] | None]:
    """``(texts, labels, ids)`` of a :class:`~memberscope.llm.texts.LabelledTexts` or a ``(texts, labels)`` pair."""
    if hasattr(part, "texts") and hasattr(part, "labels"):
        return list(part.texts), list(part.labels), list(getattr(part, "ids", None) or []) or None
    try:
        texts, labels = part
    except (TypeError, ValueError):
        raise InvalidInputError(f"{what} must be (texts, labels) or read_labelled_texts(...)") from None
    texts, labels = list(texts), list(labels)
    if len(texts) != len(labels):
        raise InvalidInputError(f"{what}: {len(texts)} texts but {len(labels)} labels")
    return texts, labels, None


def audit_text_classifier(
    model: Any,
    *,
    members: Any,
    nonmembers: Any,
    population: Any = None,
    base_model: str | os.PathLike | None = None,
    reference_models: int = 0,
    finetune: dict[str, Any] | None = None,
    max_length: int = 128,
    tokenizer: str | os.PathLike | None = None,
    attacks: Sequence[str] | str | None = None,
    dataset_name: str = "user-texts",
    progress: bool | None = None,
    **config_values: Any,
):
    """Audit a fine-tuned text classifier on texts it did (members) and did not (non-members) train on.

    Parameters
    ----------
    model : a Hugging Face ``…ForSequenceClassification`` folder, or a
        :class:`~memberscope.targets.language.TextClassifierTarget`.
    members, nonmembers : ``(texts, labels)`` (labels by class name or index) or
        :func:`~memberscope.llm.texts.read_labelled_texts` results (whose ids name the records in the outputs).
    population : further labelled texts no model trained on (RMIA compares against them). When omitted and an
        attack needs them, a quarter of the non-members (at most 2,000) is set aside.
    base_model : the pre-trained folder the classifier was fine-tuned from; reference models are fine-tunes of
        copies of it. Needed when ``reference_models`` > 0.
    reference_models : K, the number of reference fine-tunes (0: the attacks on the target alone).
    finetune : how references are fine-tuned (:class:`~memberscope.llm.finetune.TextClassifierRecipe`'s
        ``epochs``, ``learning_rate``, ``batch_size``, ``weight_decay``); match how the target was trained.
    max_length : tokens per text for the target and the references (the model's limit applies when lower).
    tokenizer : tokenizer folder, when not saved beside the model (used for the references too).
    attacks : names, or None for every attack the run can serve (:func:`default_attacks`).
    config_values : other :class:`~memberscope.config.AuditConfig` fields (``seed``, ``fprs``, ``n_bootstrap``,
        ``confidence``, ``cache_dir``, ``use_cache``, ``n_jobs``, ``backend``, ``model_name``, ...).

    Returns
    -------
    :class:`~memberscope.results.AuditResult` of kind ``audit``; ``records`` are the ids of the members, then of
    the non-members.

    Raises
    ------
    InvalidInputError
        A folder that is not a text classifier; labels that are not the model's classes; K > 0 without a base
        model; an attack the run cannot serve.
    """
    from memberscope.engine.run import run_plan
    from memberscope.llm.finetune import TextClassifierRecipe
    from memberscope.llm.loading import load_text_classifier
    from memberscope.targets.language import TextClassifierTarget

    if config_values.get("one_run_canaries") is not None:
        raise InvalidInputError(
            "one_run_canaries needs the audit to draw which texts the classifier trains on; a model you trained "
            "yourself has fixed members, so audit it without one_run_canaries"
        )
    if isinstance(model, TextClassifierTarget):
        target = model
    else:
        target = load_text_classifier(model, tokenizer=tokenizer, max_length=max_length)
    k = int(reference_models)
    recipe = TextClassifierRecipe(
        base_model, tokenizer=tokenizer, class_names=target.class_names, max_length=max_length, **(finetune or {})
    )
    if k > 0:
        recipe.require_base()  # without a base folder: the message says what to pass
    names = _attack_names(attacks, k, config_values.get("attack_params") or {})
    parts = {
        "members": _texts_and_labels(members, "members"),
        "non-members": _texts_and_labels(nonmembers, "non-members"),
    }
    if population is not None:
        parts["population"] = _texts_and_labels(population, "population")
    elif _needs_population(names, config_values.get("attack_params") or {}):
        parts = _set_aside_population(parts, seed=int(config_values.get("seed", 0)))
    plan = _plan(target, recipe, parts, k=k, attacks=names, dataset_name=dataset_name, config_values=config_values)
    fresh = recipe.inspect_base(len(target.class_names)) if k > 0 else []
    truncated_before = target.n_truncated
    result = run_plan(plan, progress=progress)
    _annotate(result.results, target, recipe, fresh=fresh, n_truncated=target.n_truncated - truncated_before)
    return result


def _attack_names(attacks: Sequence[str] | str | None, k: int, params: dict[str, Any]) -> list[str]:
    """The attacks to run: the given ones (a list or a comma-separated string), or every one the run can serve;
    an attack that perturbs numeric records is refused."""
    from memberscope.attacks import needs

    names = [a.strip() for a in attacks.split(",") if a.strip()] if isinstance(attacks, str) else attacks
    if names is None or list(names) == ["all"]:
        return default_attacks(k, has_population=True)
    perturbing = [n for n in names if _known(n) and needs(n, **params.get(n, {})).queries]
    if perturbing:
        raise InvalidInputError(
            f"attack {perturbing[0]!r} queries perturbed copies of numeric records; it cannot run on texts (the "
            f"text audit's attacks: {', '.join(default_attacks(max(k, 2), has_population=True))})"
        )
    return list(names)


def _needs_population(names: list[str], params: dict[str, Any]) -> bool:
    from memberscope.attacks import needs

    return any(needs(n, **params.get(n, {})).population for n in names if _known(n))


def _set_aside_population(parts: dict[str, tuple], *, seed: int) -> dict[str, tuple]:
    """A quarter of the non-members (at most 2,000, drawn with the seed) become population records."""
    from memberscope.game import derive_seed

    texts, labels, ids = parts["non-members"]
    order = np.random.default_rng(derive_seed(seed, "byo-population", 0)).permutation(len(texts))
    n_pop = min(2000, len(texts) // 4)
    keep, aside = np.sort(order[n_pop:]), np.sort(order[:n_pop])

    def rows(values: list | None, which: np.ndarray) -> list | None:
        return None if values is None else [values[i] for i in which]

    return {
        **parts,
        "non-members": (rows(texts, keep), rows(labels, keep), rows(ids, keep)),
        "population": (rows(texts, aside), rows(labels, aside), rows(ids, aside)),
    }


def _plan(target, recipe, parts: dict[str, tuple], *, k: int, attacks: list[str], dataset_name: str, config_values):
    """The engine's :class:`~memberscope.engine.AuditPlan`: members then non-members as the pool (the ground truth
    is fixed), population records after them, K paired reference masks over the pool."""
    from memberscope.config import AuditConfig
    from memberscope.engine.run import AuditPlan
    from memberscope.game import MembershipGame, derive_seed, paired_masks

    for what in ("members", "non-members"):
        if not parts[what][0]:
            raise InvalidInputError(f"no {what} texts; a membership audit needs members and non-members")
    dataset = TextDataset(
        name=dataset_name,
        texts=[t for texts, _, _ in parts.values() for t in texts],
        y=np.concatenate([label_codes(labels, target.class_names, what=w) for w, (_, labels, _) in parts.items()]),
        class_names=target.class_names,
        description=f"labelled texts supplied with the text classifier {target.description}",
    )
    n_mem, n_non = len(parts["members"][0]), len(parts["non-members"][0])
    n_pool = n_mem + n_non
    records: list[str] = []
    for what, stem in (("members", "member"), ("non-members", "nonmember")):
        texts, _, ids = parts[what]
        records += ids if ids is not None else [f"{stem}:{i}" for i in range(len(texts))]
    config = AuditConfig(
        dataset=dataset_name,
        model=recipe.name,
        model_params={key: v for key, v in recipe.config().items() if key not in ("base_fingerprint", "class_names")},
        reference_models=k,
        attacks=attacks,
        **config_values,
    )
    return AuditPlan(
        config=config,
        dataset=dataset,
        pool_idx=np.arange(n_pool),
        population_idx=np.arange(n_pool, dataset.n_records),
        game=MembershipGame(
            target_mask=np.r_[np.ones(n_mem, bool), np.zeros(n_non, bool)],
            reference_masks=paired_masks(n_pool, k, seed=derive_seed(config.seed, "reference-masks", 0)),
        ),
        recipe=recipe,
        target=target,
        records=np.asarray(records, dtype=object),
        target_description={
            "recipe": {
                "name": "user's text classifier",
                "architecture": type(target.model).__name__,
                "path": target.path,
                "classes": target.class_names,
                "max_length": target.max_length,
                "references": recipe.describe() if k > 0 else None,
            },
            "description": target.description,
        },
    )


def _annotate(results, target, recipe, *, fresh: list[str], n_truncated: int) -> None:
    """What results.json adds for a text classifier: cut texts, a base unlike the target, the model's facts."""
    if n_truncated:
        why = "" if target.max_length == target.requested_max_length else " (the model's limit)"
        results.warn(
            f"{n_truncated} texts sent to {target.description} were longer than max_length {target.max_length} "
            f"tokens{why} and were cut: the model was asked about their first tokens only; raise --max-length if "
            "the model allows it"
        )
    if fresh:
        shown = ", ".join(fresh[:6]) + (f" and {len(fresh) - 6} more" if len(fresh) > 6 else "")
        results.warn(
            f"loading the base model {recipe.base} as a text classifier initialised {len(fresh)} weights outside the "
            f"classification head at random ({shown}): the reference models may be unlike the target, and the "
            "attacks that use them (LiRA, RMIA, shadow) may understate leakage; pass the pre-trained folder the "
            "classifier was fine-tuned from"
        )
    results.target.extra["text_classifier"] = {
        "model": target.path,
        "architecture": type(target.model).__name__,
        "classes": list(target.class_names),
        "max_length": target.max_length,
        "max_length_requested": target.requested_max_length,
        "n_truncated": int(n_truncated),
        "base_model": recipe.base,
    }


def _known(name: str) -> bool:
    from memberscope.attacks import names

    return name in names()
