"""Run attacks on a game's outputs and evaluate them: scores → typed :class:`~memberscope.results.AttackResult`.

Each attack gets the same inputs (:class:`~memberscope.attacks.TargetOutputs`,
:class:`~memberscope.attacks.ReferenceOutputs`), is checked against what it needs before it runs
(:meth:`~memberscope.attacks.Attack.needs`), and is scored against the ground truth with the metrics
and confidence intervals of :mod:`memberscope.metrics`, overall and per class and group.
"""

from __future__ import annotations

import inspect
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from memberscope.exceptions import InvalidInputError
from memberscope.game import derive_seed
from memberscope.results import AttackResult, strongest_attack

__all__ = [
    "SLICE_BOOTSTRAP",
    "TOP_VULNERABLE",
    "AttackRun",
    "MetricSettings",
    "accuracy",
    "check_needs",
    "claimed_privacy",
    "epsilon_section",
    "evaluate_attack",
    "record_slices",
    "run_attacks",
    "vulnerable_records",
]

SLICE_BOOTSTRAP = 200
"""Bootstrap replicates per class or group slice (slices are many; their intervals need fewer)."""
TOP_VULNERABLE = 25
"""Members listed as the most exposed records."""
MIN_SLICE_RECORDS = 20
"""Fewest records of a class or group whose metrics are reported (``evaluate_by_group``'s ``min_records``)."""


@dataclass(frozen=True)
class MetricSettings:
    """How scores are evaluated: FPRs reported, bootstrap replicates, CI level and the run's seed."""

    fprs: tuple[float, ...]
    n_bootstrap: int
    confidence: float
    seed: int

    def kwargs(self, *, n_bootstrap: int | None = None) -> dict[str, Any]:
        return {
            "fprs": self.fprs,
            "n_bootstrap": self.n_bootstrap if n_bootstrap is None else n_bootstrap,
            "confidence": self.confidence,
            "seed": derive_seed(self.seed, "bootstrap", 0),
        }


@dataclass
class AttackRun:
    """One attack's scores on the pool records, the parameters it chose and how long it took."""

    name: str
    scores: np.ndarray
    params: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)


def _build(name: str, params: dict[str, Any], seed: int):
    from memberscope.attacks import create
    from memberscope.attacks.registry import ATTACKS

    cls = ATTACKS.get(name)
    if "seed" in inspect.signature(cls.__init__).parameters and "seed" not in params:
        params = {**params, "seed": derive_seed(seed, "attack", name)}
    return create(name, **params)


def check_needs(
    names: Sequence[str],
    attack_params: dict[str, dict[str, Any]],
    *,
    n_reference: int,
    has_population: bool,
    output_kind: str,
    can_query: bool = True,
) -> None:
    """Raise InvalidInputError listing every attack whose needs the run cannot meet (before anything runs)."""
    from memberscope.attacks import needs

    problems = []
    for name in names:
        need = needs(name, **attack_params.get(name, {}))
        if n_reference < need.reference_models:
            problems.append(
                f"attack {name!r} needs at least {need.reference_models} reference models; got {n_reference}"
            )
        if need.population and not has_population:
            problems.append(f"attack {name!r} needs population records (no model trains on them); got none")
        if need.outputs == "scores" and output_kind == "label":
            problems.append(
                f"attack {name!r} needs per-class scores, but the target answers labels only; use label-only"
            )
        if need.queries and not can_query:
            problems.append(f"attack {name!r} queries the models, which this run cannot do")
    if problems:
        raise InvalidInputError("the selected attacks cannot run:\n  - " + "\n  - ".join(problems))


def run_attacks(
    names: Sequence[str],
    target,
    references,
    *,
    attack_params: dict[str, dict[str, Any]],
    seed: int,
    on_attack: Callable[[str], None] | None = None,
) -> list[AttackRun]:
    """Fit each attack on ``references`` (:class:`~memberscope.attacks.ReferenceOutputs` or None) and score
    ``target`` (:class:`~memberscope.attacks.TargetOutputs`); a seed parameter not given is derived from ``seed``."""
    runs = []
    for name in names:
        if on_attack is not None:
            on_attack(name)
        attack = _build(name, dict(attack_params.get(name, {})), seed)
        t0 = time.perf_counter()
        attack.fit(references)
        t1 = time.perf_counter()
        scores = np.asarray(attack.score(target), dtype=np.float64)
        t2 = time.perf_counter()
        runs.append(
            AttackRun(
                name,
                scores,
                attack.params(),
                {"fit_seconds": round(t1 - t0, 4), "score_seconds": round(t2 - t1, 4)},
            )
        )
    return runs


def evaluate_attack(
    run: AttackRun,
    member: np.ndarray,
    settings: MetricSettings,
    *,
    labels: np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
    groups: np.ndarray | None = None,
    slices: dict[str, np.ndarray] | None = None,
    warnings_out: list[str] | None = None,
) -> AttackResult:
    """Metrics of ``run``'s scores against ``member``, overall, per class (``labels`` codes named by
    ``class_names``), per group and per slice of each slicing in ``slices`` (a name to a slice label per record,
    e.g. :func:`record_slices`); warnings the metrics raise are added to ``warnings_out`` once each."""
    from memberscope.metrics import evaluate, evaluate_by_group

    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        metrics = evaluate(member, run.scores, **settings.kwargs())
    if warnings_out is not None:
        for w in caught:
            if str(w.message) not in warnings_out:
                warnings_out.append(str(w.message))
    slice_kwargs = settings.kwargs(n_bootstrap=min(settings.n_bootstrap, SLICE_BOOTSTRAP))
    per_class = {}
    if labels is not None:
        names = list(class_names or [])
        per_class = {
            (names[int(k)] if int(k) < len(names) else k): m
            for k, m in evaluate_by_group(
                member, run.scores, labels, min_records=MIN_SLICE_RECORDS, **slice_kwargs
            ).items()
        }
    per_group = (
        evaluate_by_group(member, run.scores, groups, min_records=MIN_SLICE_RECORDS, **slice_kwargs)
        if groups is not None
        else {}
    )
    if groups is not None and warnings_out is not None:
        left_out = sorted({str(g) for g in np.unique(groups)} - set(per_group))
        if left_out:
            message = (
                f"groups {left_out} are not reported: each needs at least {MIN_SLICE_RECORDS} records with members "
                "and non-members among them"
            )
            if message not in warnings_out:
                warnings_out.append(message)
    per_slice = {
        slicing: evaluate_by_group(member, run.scores, values, min_records=MIN_SLICE_RECORDS, **slice_kwargs)
        for slicing, values in (slices or {}).items()
    }
    timings = {**run.timings, "metrics_seconds": round(time.perf_counter() - t0, 4)}
    return AttackResult(
        metrics=metrics,
        per_class=per_class,
        per_group=per_group,
        per_slice={k: v for k, v in per_slice.items() if v},
        params=run.params,
        timings=timings,
    )


LOSS_BINS = 10
"""Loss-percentile slices (deciles, as TensorFlow Privacy's ``SlicingSpec(by_percentiles=True)``)."""


def record_slices(logits: np.ndarray, labels: np.ndarray, *, with_loss: bool = True) -> dict[str, np.ndarray]:
    """Slice labels of each record by the target's behaviour on it, as reviewers ask for them.

    ``loss_percentile``: the decile of the record's cross-entropy loss among the records (``"0-10%"`` holds the
    tenth with the lowest loss), left out when ``with_loss`` is false (a target that answers labels only has no
    loss); ``prediction``: ``"correct"`` or ``"incorrect"`` (arg-max of the first query against the label).

    Parameters
    ----------
    logits : ndarray of shape (n, q, c) or (n, c) — the target's outputs on the records.
    labels : ndarray of int, shape (n,).
    """
    from memberscope.signals import loss as cross_entropy

    first = logits[:, 0, :] if logits.ndim == 3 else logits
    out: dict[str, np.ndarray] = {}
    if with_loss and len(labels):
        loss = cross_entropy(first, labels)
        rank = np.argsort(np.argsort(loss, kind="stable"), kind="stable")
        decile = np.minimum(rank * LOSS_BINS // len(labels), LOSS_BINS - 1)
        names = np.array([f"{10 * b}-{10 * (b + 1)}%" for b in range(LOSS_BINS)], dtype=object)
        out["loss_percentile"] = names[decile]
    out["prediction"] = np.where(first.argmax(axis=1) == labels, "correct", "incorrect").astype(object)
    return out


def vulnerable_records(
    attacks: dict[str, AttackResult],
    scores: dict[str, np.ndarray],
    records: np.ndarray,
    member: np.ndarray,
    labels: np.ndarray | None,
    class_names: Sequence[str],
    groups: np.ndarray | None = None,
) -> dict[str, Any]:
    """Members the strongest attack (:func:`~memberscope.results.strongest_attack`) singles out most confidently.

    ``nonmember_exceedance`` is the fraction of non-members scoring at least as high: the false-positive rate
    an attacker accepts to flag this record. ``record`` is the user's id (or row number) of the record.
    """
    best = strongest_attack(attacks)
    if best is None:
        return {}
    score = scores[best]
    non_sorted = np.sort(score[~member])
    exceed = 1.0 - np.searchsorted(non_sorted, score, side="left") / max(len(non_sorted), 1)
    idx = np.flatnonzero(member)
    idx = idx[np.lexsort((-score[idx], exceed[idx]))][:TOP_VULNERABLE]
    out = []
    for i in idx:
        row: dict[str, Any] = {"record": _plain_id(records[i])}
        if labels is not None:
            code = int(labels[i])
            row["label"] = class_names[code] if code < len(class_names) else code
        if groups is not None:
            row["group"] = str(groups[i])
        row["score"] = float(score[i])
        row["nonmember_exceedance"] = float(exceed[i])
        out.append(row)
    return {"attack": best, "records": out}


def _plain_id(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def claimed_privacy(recipe_config: dict[str, Any], *, n_train: int) -> dict[str, float] | None:
    """The (ε, δ) a DP training recipe claims, or None.

    memberscope's DP-SGD recipes say ``dp_epsilon``/``dp_delta`` (δ None: the default for ``n_train`` records,
    as the training used); a recipe of a user's may say ``epsilon``/``delta``.
    """
    eps = recipe_config.get("dp_epsilon", recipe_config.get("epsilon"))
    if not isinstance(eps, int | float) or isinstance(eps, bool):
        return None
    delta = recipe_config.get("dp_delta", recipe_config.get("delta"))
    if not isinstance(delta, int | float) or isinstance(delta, bool):
        if "dp_epsilon" not in recipe_config:
            delta = 0.0
        else:
            from memberscope.privacy.accounting import default_delta

            delta = default_delta(n_train)
    return {"epsilon": float(eps), "delta": float(delta)}


def epsilon_section(
    member: np.ndarray,
    scores: dict[str, np.ndarray],
    *,
    delta: float | None,
    claimed: dict[str, float] | None,
    seed: int,
    canaries: np.ndarray | None = None,
    records: np.ndarray | None = None,
) -> dict[str, Any]:
    """Empirical ε lower bounds of every attack: Clopper–Pearson over all records, one-run over the canaries.

    ``delta`` None uses the claimed δ, else 0.
    """
    from memberscope.privacy.empirical import epsilon_lower_bound, one_run_audit

    delta = delta if delta is not None else (claimed or {}).get("delta", 0.0)
    section: dict[str, Any] = {
        "alpha": 0.05,
        "delta": delta,
        "claimed": claimed,
        "clopper_pearson": {name: epsilon_lower_bound(member, s, delta=delta).to_dict() for name, s in scores.items()},
        "one_run": None,
    }
    if canaries is not None:
        bounds = {
            name: one_run_audit(member[canaries], s[canaries], delta=delta, seed=derive_seed(seed, "one-run", 0))
            for name, s in scores.items()
        }
        section["one_run"] = {
            "canaries": int(canaries.size),
            "canaries_included": int(member[canaries].sum()),
            "records": [_plain_id(r) for r in (records[canaries] if records is not None else canaries)],
            "beta": 0.05,
            "delta": delta,
            "attacks": {name: b.to_dict() for name, b in bounds.items()},
        }
    return section


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Share of records whose arg-max over ``logits`` ``(n, q, c)`` (first view) or ``(n, c)`` is the label."""
    if not len(labels):
        return float("nan")
    first = logits[:, 0, :] if logits.ndim == 3 else logits
    return float((first.argmax(axis=1) == labels).mean())
