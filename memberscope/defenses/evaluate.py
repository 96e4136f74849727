"""Measure defenses on one membership game: test accuracy against the strongest attack's leakage.

Every defense is evaluated *adaptively*: the attacker knows the defense.

- A training-time defense (``l2``, ``dropout``, ``dp-sgd:eps=8``, ...) changes the recipe; the target **and the
  reference models** are trained with it, so LiRA and RMIA calibrate on defended models.
- An output-side defense (``round:2``, ``top-k:1``, ``label-only``, noise, temperature; ``+`` composes them) is
  applied at query time to the undefended target **and** to the reference models' outputs; attacks then see only
  what the policy shows (withheld entries filled by :func:`~memberscope.defenses.output.fill_withheld`,
  probabilities floored at :data:`PROBABILITY_FLOOR` and turned into log-probabilities for the signals).
- Every defense is also attacked by a label-only attack (below), which needs nothing but predicted labels.

A defense's leakage is that of its *strongest* attack (highest TPR at the budget's FPR, AUC breaking ties), never
of a weak one alone. The recommendation is the defense with the highest test accuracy whose strongest attack's
CI upper bound at the budget FPR is within the budget.

Label-only attack: the red team's :class:`memberscope.redteam.LabelOnlyAttack` (Choquette-Choo et al., ICML 2021:
each record and ``label_only_queries`` perturbed copies — images flipped and shifted, tables with Gaussian noise —
the score being the share labelled correctly, every model seen through the defense's policy), here calibrated with
the reference models: the target's share minus the mean share of the reference models that did not train on the
record (difficulty calibration; the mean over all records when a record has no such model).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from memberscope.exceptions import InvalidInputError
from memberscope.training.defenses import DEFENSES, option_defaults

__all__ = [
    "DEFAULT_ATTACKS",
    "DEFAULT_DEFENSES",
    "LABEL_ONLY_ATTACK",
    "TRAINING_DEFENSES",
    "DefendConfig",
    "DefenseSpec",
    "observe",
    "parse_budget",
    "parse_defenses",
    "recommend",
    "run_defenses",
]

LABEL_ONLY_ATTACK = "label-only"
DEFAULT_ATTACKS = ("lira-online", "lira-offline", "rmia-online", "rmia-offline", "loss", LABEL_ONLY_ATTACK)
DEFAULT_DEFENSES = "none,l2,dropout,early-stopping,label-smoothing,augment,ensemble,dp-sgd:eps=8,round:2,top-k:1"
PROBABILITY_FLOOR = 1e-12
LABEL_ONLY_CHUNK = 500
DEFAULT_BUDGET = (0.01, 0.05)


class _DefenseTable(Mapping[str, tuple[str | None, Any]]):
    """name -> (the recipe option its bare argument sets, the value it gets): ``none``, every training-time defense
    registered in :data:`memberscope.training.defenses.DEFENSES` (its ``option`` and ``preset``), and data
    minimization (``minimize``). Read from the registry on each use, so a defense registered later is known."""

    def _table(self) -> dict[str, tuple[str | None, Any]]:
        table: dict[str, tuple[str | None, Any]] = {"none": (None, None)}
        for name in DEFENSES.names():
            cls = DEFENSES.get(name)
            table[name] = (cls.option, cls.preset)
        table["minimize"] = ("fraction", 0.1)
        return table

    def __getitem__(self, name: str) -> tuple[str | None, Any]:
        return self._table()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._table())

    def __len__(self) -> int:
        return len(self._table())


TRAINING_DEFENSES = _DefenseTable()


def _aliases() -> dict[str, str]:
    """Short keys of ``key=value`` arguments (``eps`` for ``dp_epsilon``), as the defenses declare them."""
    return {alias: option for name in DEFENSES.names() for alias, option in DEFENSES.get(name).aliases.items()}


@dataclass(frozen=True)
class DefenseSpec:
    """One defense to evaluate: ``kind`` is "training", "output" or "minimize"."""

    name: str
    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    output: str | None = None  # post-processor spec for parse_postprocessors


def _parse_value(raw: str, what: str) -> Any:
    import yaml

    for cast in (int, float):  # YAML 1.1 reads "1e-3" as a string
        try:
            return cast(raw)
        except ValueError:
            pass
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        raise InvalidInputError(f"{what}: cannot read value {raw!r}") from None


def parse_defenses(spec: str | list[str]) -> list[DefenseSpec]:
    """``"none,l2:1e-3,dp-sgd:eps=1:clip=0.5,round:2,temperature:2+round:2"`` → defense specs.

    A training-time defense takes a bare value for its main option (``l2:1e-3``, ``ensemble:8``) or
    ``key=value`` pairs separated by ``:`` (``dp-sgd:eps=1:delta=1e-5:clip=1``; any recipe option may be named).
    Output-side defenses are post-processor specs; ``+`` composes several into one defense.
    """
    from memberscope.defenses.output import POSTPROCESSORS, parse_postprocessors

    aliases = _aliases()
    items = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    if not items:
        raise InvalidInputError("no defense given; expected a comma-separated list such as 'none,l2,round:2'")
    out: list[DefenseSpec] = []
    problems: list[str] = []
    for item in items:
        head = item.split(":", 1)[0].split("+", 1)[0]
        if head in TRAINING_DEFENSES:
            name, *args = item.split(":")
            option, default = TRAINING_DEFENSES[name]
            params: dict[str, Any] = {} if option is None else {option: default}
            for arg in args:
                if "=" in arg:
                    key, _, raw = arg.partition("=")
                    key = aliases.get(key.strip(), key.strip().replace("-", "_"))
                    params[key] = _parse_value(raw, f"defense {item!r}")
                elif option is None:
                    problems.append(f"defense {item!r}: 'none' takes no argument")
                else:
                    params[option] = _parse_value(arg, f"defense {item!r}")
            kind = "minimize" if name == "minimize" else "training"
            if kind == "minimize":
                from memberscope.defenses.minimization import split_params

                try:
                    split_params(params)
                except InvalidInputError as exc:
                    problems.append(f"defense {item!r}: {exc}")
            out.append(DefenseSpec(name=item, kind=kind, params=params))
        elif head in POSTPROCESSORS:
            try:
                parse_postprocessors(item.replace("+", ","))
            except InvalidInputError as exc:
                problems.append(str(exc))
                continue
            out.append(DefenseSpec(name=item, kind="output", output=item.replace("+", ",")))
        else:
            known = sorted(TRAINING_DEFENSES) + sorted(n for n in POSTPROCESSORS if n != "identity")
            problems.append(f"unknown defense {head!r} in {item!r}; expected one of: {', '.join(known)}")
    names = [d.name for d in out]
    for name in {n for n in names if names.count(n) > 1}:
        problems.append(f"defense {name!r} is listed more than once")
    if problems:
        raise InvalidInputError("invalid --defenses:\n  - " + "\n  - ".join(problems))
    return out


def _only_minimize_options(spec: DefenseSpec) -> bool:
    return spec.kind == "minimize" and set(spec.params) <= {"fraction", "by", "neighbours"}


def parse_budget(spec: str | tuple[float, float] | None) -> tuple[float, float]:
    """``"0.01:0.05"`` → ``(fpr, max_tpr)``: at FPR 1% the strongest attack's TPR may be at most 5%."""
    if spec is None:
        return DEFAULT_BUDGET
    if isinstance(spec, tuple):
        fpr, tpr = spec
    else:
        from memberscope.report.gate import parse_tpr_budget

        fpr, tpr = parse_tpr_budget(spec)
    if not (0 < fpr < 1 and 0 < tpr <= 1):
        raise InvalidInputError(f"budget {spec!r} must be FPR:TPR with FPR in (0, 1) and TPR in (0, 1]")
    return float(fpr), float(tpr)


@dataclass
class DefendConfig:
    """Everything that determines a defense evaluation's numbers."""

    dataset: str = "digits"
    data_dir: str | None = None
    n_records: int | None = None
    model: str = "mlp"
    model_params: dict[str, Any] = field(default_factory=dict)
    defenses: str = DEFAULT_DEFENSES
    attacks: tuple[str, ...] = DEFAULT_ATTACKS
    reference_models: int = 4
    seed: int = 0
    pool_size: int | None = None
    population_size: int | None = None
    budget: tuple[float, float] = DEFAULT_BUDGET
    fprs: tuple[float, ...] = (0.1, 0.01, 0.001)
    n_bootstrap: int = 1000
    confidence: float = 0.95
    label_only_queries: int = 16
    cache_dir: str | None = None
    use_cache: bool = True

    def __post_init__(self) -> None:
        from memberscope import attacks as registry

        self.budget = parse_budget(self.budget if not isinstance(self.budget, list) else tuple(self.budget))
        self.fprs = tuple(sorted({float(f) for f in self.fprs} | {self.budget[0]}, reverse=True))
        if isinstance(self.attacks, str):
            self.attacks = tuple(a.strip() for a in self.attacks.split(",") if a.strip())
        problems = []
        for name in self.attacks:
            if name != LABEL_ONLY_ATTACK and name not in registry.names():
                problems.append(f"unknown attack {name!r}; expected {LABEL_ONLY_ATTACK} or one of {registry.names()}")
        if self.reference_models < 2:
            problems.append(f"reference_models must be >= 2 (LiRA and calibration need IN and OUT models); got "
                            f"{self.reference_models}")  # fmt: skip
        if self.label_only_queries < 1:
            problems.append(f"label_only_queries must be >= 1; got {self.label_only_queries}")
        specs = parse_defenses(self.defenses)
        needs_torch = [d.name for d in specs if d.kind != "output" and d.params and not _only_minimize_options(d)]
        if needs_torch and self.model not in ("mlp", "cnn", "logreg"):
            problems.append(
                f"defenses {needs_torch} are options of the torch recipes; --model must be mlp, cnn or logreg, "
                f"got {self.model!r}"
            )
        if problems:
            raise InvalidInputError("invalid defense evaluation:\n  - " + "\n  - ".join(problems))
        # A defense needing an optional dependency (DP-SGD: Opacus) fails before anything is trained.
        defaults = option_defaults()
        for spec in specs:
            params = {**self.model_params, **spec.params}
            for name in DEFENSES.names():
                cls = DEFENSES.get(name)
                if spec.kind == "training" and params.get(cls.option, defaults[cls.option]) != defaults[cls.option]:
                    cls.check_available()

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["budget"], out["fprs"], out["attacks"] = list(self.budget), list(self.fprs), list(self.attacks)
        return out


# --------------------------------------------------------------------------------------------- observation


def observe(logits: np.ndarray, postprocessor, *, rng: np.random.Generator) -> np.ndarray:
    """What an attacker sees through ``postprocessor``, as log-probabilities of the same shape as ``logits``.

    ``logits`` has shape ``(..., n_classes)``. Withheld entries share the unshown mass
    (:func:`fill_withheld`); probabilities are floored at :data:`PROBABILITY_FLOOR` so rounded zeros stay finite.
    """
    from memberscope.defenses.output import fill_withheld
    from memberscope.signals import log_probabilities

    shape = logits.shape
    probs = np.exp(log_probabilities(logits.reshape(-1, shape[-1])))
    shown = fill_withheld(postprocessor(probs, rng=rng))
    shown = np.clip(np.nan_to_num(shown, nan=0.0), PROBABILITY_FLOOR, None)
    shown /= shown.sum(axis=1, keepdims=True)
    return np.log(shown).reshape(shape)


# ---------------------------------------------------------------------------------------- label-only attack


def _label_only_shares(model, X, y, postprocessor, *, n_classes: int, n_queries: int, population, seed: int):
    """``(shares (n,), attack params)``: the red-team label-only attack's share of perturbed queries of each record
    that ``model``, seen through ``postprocessor``, labels correctly. Records go in chunks (bounded memory); every
    model gets the same perturbations (same seed, same chunks)."""
    from memberscope.redteam import LabelOnlyAttack, ModelTarget

    attack = LabelOnlyAttack(n_queries=n_queries, seed=seed).fit(population)
    target = ModelTarget(model, n_classes=n_classes, postprocess=postprocessor, seed=seed)
    shares = [attack.score(target, X[i : i + LABEL_ONLY_CHUNK], y[i : i + LABEL_ONLY_CHUNK])
              for i in range(0, len(X), LABEL_ONLY_CHUNK)]  # fmt: skip
    return np.concatenate(shares), attack.params()


def _label_only_scores(target_correct, reference_correct, masks) -> np.ndarray:
    """Target share minus the mean share of OUT reference models (difficulty calibration), per pool record."""
    out = ~masks
    n_out = out.sum(axis=0)
    mean_out = np.where(n_out > 0, (reference_correct * out).sum(axis=0) / np.maximum(n_out, 1), np.nan)
    mean_out = np.where(np.isnan(mean_out), np.nanmean(reference_correct), mean_out)
    return target_correct - mean_out


# ------------------------------------------------------------------------------------------------- models


@dataclass
class _Trained:
    model: Any
    logits: np.ndarray  # (n_eval, 1, C)
    seconds: float | None
    cached: bool


class _Models:
    """Trains (or loads from the cache) the target and reference models of one recipe, and their outputs."""

    def __init__(self, *, dataset, cache, eval_idx, fingerprint):
        self.dataset, self.cache, self.eval_idx, self.fingerprint = dataset, cache, eval_idx, fingerprint

    def get(self, recipe, train_idx: np.ndarray, seed: int) -> _Trained:
        from memberscope.audit.models import cache_keys
        from memberscope.cache import make_key
        from memberscope.queries import model_outputs

        model_key, output_key = cache_keys(
            recipe=recipe,
            data_fingerprint=self.fingerprint,
            train_indices=train_idx,
            eval_indices=self.eval_idx,
            seed=seed,
            queries="none",
        )
        d = self.dataset
        timing = {"seconds": None, "trained": False}

        def train():
            start = time.perf_counter()
            trained = recipe.train(d.X[train_idx], d.y[train_idx], n_classes=d.n_classes, seed=seed)
            timing["seconds"], timing["trained"] = time.perf_counter() - start, True
            return trained

        model = self.cache.model(model_key, recipe, n_classes=d.n_classes, feature_shape=d.feature_shape, train=train)
        seconds_key = make_key(role="train-seconds", model=model_key)
        seconds = self.cache.array(seconds_key, lambda: np.array([timing["seconds"] or np.nan]))
        logits = self.cache.array(output_key, lambda: model_outputs(model, d.X[self.eval_idx]).astype(np.float32))
        value = float(seconds[0]) if timing["seconds"] is None else timing["seconds"]
        return _Trained(
            model=model, logits=logits, seconds=None if np.isnan(value) else value, cached=not timing["trained"]
        )


# ------------------------------------------------------------------------------------------------ pipeline


def _accuracy(log_probs: np.ndarray, labels: np.ndarray) -> float:
    return float((log_probs.argmax(axis=-1) == labels).mean())


def _strongest(attacks: dict[str, Any], fpr_key: str) -> str:
    return max(attacks, key=lambda a: (attacks[a]["tpr_at_fpr"][fpr_key], attacks[a]["auc"]))


def run_defenses(config: DefendConfig, *, progress=None) -> dict[str, Any]:
    """Evaluate every defense of ``config``; the content of ``defenses.json``.

    ``progress(message)`` is called before each model is trained and each defense is attacked.
    """
    from memberscope import datasets
    from memberscope.attacks import ReferenceOutputs, TargetOutputs
    from memberscope.attacks import create as create_attack
    from memberscope.audit.models import model_seed
    from memberscope.audit.run import _sizes
    from memberscope.cache import ArtifactCache, default_cache_dir
    from memberscope.defenses.output import parse_postprocessors
    from memberscope.game import make_game, split_pool
    from memberscope.metrics import evaluate, fpr_key
    from memberscope.recipes import create as create_recipe

    started = time.perf_counter()
    say = progress or (lambda message: None)
    specs = parse_defenses(config.defenses)
    dataset = datasets.load(config.dataset, data_dir=config.data_dir, seed=config.seed, n_records=config.n_records)
    sizes = _sizes(dataset.n_records, config)  # type: ignore[arg-type]
    pool_idx, population_idx = split_pool(
        dataset.n_records, pool_size=sizes[0], population_size=sizes[1], seed=model_seed(config.seed, "split")
    )
    if len(population_idx) < 2:
        raise InvalidInputError("the defense evaluation needs population records (RMIA, test accuracy); got none")
    game = make_game(len(pool_idx), config.reference_models, seed=config.seed)
    cache = ArtifactCache(None if not config.use_cache else (config.cache_dir or default_cache_dir()))
    eval_idx = np.concatenate([pool_idx, population_idx])
    models = _Models(dataset=dataset, cache=cache, eval_idx=eval_idx, fingerprint=dataset.fingerprint())
    n_pool = len(pool_idx)
    labels_all = dataset.y[eval_idx]
    labels, pop_labels = labels_all[:n_pool], labels_all[n_pool:]
    member = game.target_mask
    test_rows = np.concatenate([np.flatnonzero(~member), n_pool + np.arange(len(population_idx))])
    budget_key = fpr_key(config.budget[0])

    metric_kwargs = dict(
        fprs=config.fprs,
        n_bootstrap=config.n_bootstrap,
        confidence=config.confidence,
        seed=model_seed(config.seed, "bootstrap"),
    )

    def train_all(recipe, what: str, keep: np.ndarray | None = None):
        keep = np.ones(n_pool, dtype=bool) if keep is None else keep
        say(f"{what}: target model")
        target = models.get(recipe, pool_idx[member & keep], model_seed(config.seed, "target", 0))
        refs = []
        for k in range(game.n_reference):
            say(f"{what}: reference model {k + 1}/{game.n_reference}")
            train_idx = pool_idx[game.reference_masks[k] & keep]
            refs.append(models.get(recipe, train_idx, model_seed(config.seed, "reference", k)))
        return target, refs

    def attack_all(target, refs, postprocessor, what: str, keep: np.ndarray | None = None):
        """``(metrics by attack, observed outputs (n_eval, 1, C), scores by attack)`` on the pool records ``keep``."""
        say(f"{what}: attacks")
        keep = np.ones(n_pool, dtype=bool) if keep is None else keep
        if postprocessor is None:
            t_obs = target.logits.astype(np.float64)
            r_obs = np.stack([r.logits for r in refs]).astype(np.float64)
        else:
            t_obs = observe(target.logits, postprocessor, rng=np.random.default_rng(model_seed(config.seed, "obs", 0)))
            r_obs = np.stack(
                [
                    observe(r.logits, postprocessor, rng=np.random.default_rng(model_seed(config.seed, "obs", k + 1)))
                    for k, r in enumerate(refs)
                ]
            )
        kept_labels, kept_masks = labels[keep], game.reference_masks[:, keep]
        target_out = TargetOutputs(
            logits=t_obs[:n_pool][keep],
            labels=kept_labels,
            population_logits=t_obs[n_pool:],
            population_labels=pop_labels,
        )
        ref_out = ReferenceOutputs(
            logits=r_obs[:, :n_pool][:, keep],
            masks=kept_masks,
            labels=kept_labels,
            population_logits=r_obs[:, n_pool:],
            population_labels=pop_labels,
        )
        results: dict[str, Any] = {}
        scores: dict[str, np.ndarray] = {}
        import warnings

        label_only = dict(
            n_classes=dataset.n_classes,
            n_queries=config.label_only_queries,
            population=dataset.X[population_idx],
            seed=model_seed(config.seed, "label-only"),
        )
        kept_X = dataset.X[pool_idx[keep]]
        for name in config.attacks:
            t0 = time.perf_counter()
            if name == LABEL_ONLY_ATTACK:
                t_share, params = _label_only_shares(target.model, kept_X, kept_labels, postprocessor, **label_only)
                r_share = np.stack(
                    [_label_only_shares(r.model, kept_X, kept_labels, postprocessor, **label_only)[0] for r in refs]
                )
                score = _label_only_scores(t_share, r_share, kept_masks)
                params = {**params, "calibration": "minus the mean share of OUT reference models",
                          "implementation": "memberscope.redteam.LabelOnlyAttack"}  # fmt: skip
            else:
                attack = create_attack(name).fit(ref_out)
                score = np.asarray(attack.score(target_out), dtype=np.float64)
                params = attack.params()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # unresolvable FPRs are recorded in the metrics' own warnings
                entry = evaluate(member[keep], score, **metric_kwargs).to_dict()
            entry["params"] = params
            entry["timings"] = {"seconds": round(time.perf_counter() - t0, 4)}
            results[name] = entry
            scores[name] = score
        return results, t_obs, scores

    base_recipe_params = dict(config.model_params)
    entries: dict[str, Any] = {}
    base = None
    base_attacks: dict[str, Any] = {}
    base_scores: dict[str, np.ndarray] = {}
    for spec in specs:
        if spec.kind == "training":
            recipe = create_recipe(config.model, **{**base_recipe_params, **spec.params})
            target, refs = train_all(recipe, spec.name)
            attacks, obs, scores = attack_all(target, refs, None, spec.name)
            if spec.name == "none" or not spec.params:
                base, base_attacks, base_scores = (target, refs), attacks, scores
            privacy = getattr(target.model, "privacy", None)
            entries[spec.name] = {
                "kind": "training",
                "recipe": {"name": config.model, **recipe.config()} if hasattr(recipe, "config") else config.model,
                "test_accuracy": _accuracy(obs[test_rows, 0], labels_all[test_rows]),
                "train_accuracy": _accuracy(obs[:n_pool][member][:, 0], labels[member]),
                "epsilon": None if privacy is None else float(privacy["epsilon"]),
                "delta": None if privacy is None else float(privacy["delta"]),
                "privacy": privacy,
                "train_seconds": target.seconds,
                "reference_train_seconds": _sum_seconds(refs),
                "attacks": attacks,
            }
    if base is None and any(s.kind != "training" for s in specs):
        base = train_all(create_recipe(config.model, **base_recipe_params), "none (for output defenses)")
        base_attacks, _, base_scores = attack_all(base[0], base[1], None, "none (for output defenses)")
    for spec in specs:
        if spec.kind != "minimize":
            continue
        from memberscope.defenses import minimization as mini

        opts, recipe_params = mini.split_params(spec.params)
        attack_name = _strongest(base_attacks, budget_key)
        order = mini.rank_members(
            opts["by"], member=member, scores=base_scores[attack_name], X=dataset.X[pool_idx], y=labels
        )
        removed = order[: mini.removed_count(int(member.sum()), opts["fraction"])]
        keep = np.ones(n_pool, dtype=bool)
        keep[removed] = False
        recipe = create_recipe(config.model, **{**base_recipe_params, **recipe_params})
        target, refs = train_all(recipe, spec.name, keep=keep)
        attacks, obs, scores = attack_all(target, refs, None, spec.name, keep=keep)
        near = mini.nearest_same_class(
            dataset.X[pool_idx], labels, removed, np.flatnonzero(member & keep), opts["neighbours"]
        )
        neighbours = np.zeros(n_pool, dtype=bool)
        for found in near.values():
            neighbours[found] = True
        others = member & keep & ~neighbours
        removed_mask = np.zeros(n_pool, dtype=bool)
        removed_mask[removed] = True
        before, after = base_scores[attack_name], np.full(n_pool, np.nan)
        after[keep] = scores[attack_name]
        layers = {}
        for layer_name, layer in (("removed", removed_mask), ("neighbours", neighbours), ("others", others)):
            layers[layer_name] = {
                "n_records": int(layer.sum()),
                "before": mini.layer_metrics(member, before, layer, **metric_kwargs),
                "after": None
                if layer_name == "removed"
                else mini.layer_metrics(member[keep], after[keep], layer[keep], **metric_kwargs),
            }
        entries[spec.name] = {
            "kind": "minimize",
            "recipe": {"name": config.model, **recipe.config()},
            "test_accuracy": _accuracy(obs[test_rows, 0], labels_all[test_rows]),
            "train_accuracy": _accuracy(obs[:n_pool][member & keep][:, 0], labels[member & keep]),
            "epsilon": None,
            "delta": None,
            "train_seconds": target.seconds,
            "attacks": attacks,
            "minimization": {
                "by": opts["by"],
                "fraction": opts["fraction"],
                "neighbours_per_removed": opts["neighbours"],
                "attack": attack_name,
                "removed_records": [int(r) for r in pool_idx[removed]],
                "layers": layers,
                "note": "before: the undefended target's scores; after: the retrained target's, on the same "
                "records; each layer's members against every (remaining) non-member. With by=vulnerability the "
                "ranking used the same scores, so 'before' is biased low for the layers kept (selection on noise); "
                "by=uniqueness does not use the scores",
            },
        }
    for spec in specs:
        if spec.kind != "output":
            continue
        postprocessor = parse_postprocessors(spec.output)
        attacks, obs, _ = attack_all(base[0], base[1], postprocessor, spec.name)
        entries[spec.name] = {
            "kind": "output",
            "postprocessor": postprocessor.spec,
            "granularity": postprocessor.granularity,
            "test_accuracy": _accuracy(obs[test_rows, 0], labels_all[test_rows]),
            "train_accuracy": _accuracy(obs[:n_pool][member][:, 0], labels[member]),
            "epsilon": None,
            "delta": None,
            "train_seconds": base[0].seconds,
            "attacks": attacks,
        }
    # Keep the order the user gave.
    ordered = {s.name: entries[s.name] for s in specs}
    for entry in ordered.values():
        entry["strongest_attack"] = _strongest(entry["attacks"], budget_key)
    reference = ordered.get("none", {}).get("test_accuracy")
    if reference is None and base is not None:
        reference = _accuracy(base[0].logits.astype(np.float64)[test_rows, 0], labels_all[test_rows])
    for entry in ordered.values():
        entry["accuracy_cost"] = None if reference is None else float(reference - entry["test_accuracy"])
    return {
        "kind": "defenses",
        "schema_version": "1.0",
        "config": config.to_dict(),
        "dataset": {
            "name": dataset.name,
            "n_records": dataset.n_records,
            "n_classes": dataset.n_classes,
            "feature_shape": list(dataset.feature_shape),
            "fingerprint": dataset.fingerprint(),
        },
        "game": {
            "pool_size": n_pool,
            "population_size": len(population_idx),
            "n_members": int(member.sum()),
            "n_nonmembers": int((~member).sum()),
            "n_reference_models": game.n_reference,
            "test_records": len(test_rows),
        },
        "undefended_test_accuracy": reference,
        "defenses": ordered,
        "recommendation": recommend(ordered, config.budget),
        "timings": {"total_seconds": round(time.perf_counter() - started, 3)},
        "notes": [
            "adaptive evaluation: reference models are trained with each training-time defense, and output "
            "defenses are applied to the reference models' outputs as well as the target's",
            "label-only: memberscope.redteam.LabelOnlyAttack (Choquette-Choo et al. 2021) calibrated by the OUT "
            "reference models' shares",
        ],
    }


def _sum_seconds(runs) -> float | None:
    values = [r.seconds for r in runs]
    return None if any(v is None for v in values) else float(sum(values))


def recommend(defenses: dict[str, Any], budget: tuple[float, float]) -> dict[str, Any]:
    """The defense with the highest test accuracy whose strongest attack's TPR CI upper bound at the budget FPR
    is within the budget; ``defense`` is None when none is."""
    from memberscope.metrics import fpr_key

    fpr, max_tpr = budget
    key = fpr_key(fpr)
    budget_entry = {"fpr": fpr, "max_tpr": max_tpr, "basis": "upper end of the strongest attack's TPR CI"}
    upper = {}
    for name, entry in defenses.items():
        upper[name] = max(a["tpr_at_fpr_ci"][key][1] for a in entry["attacks"].values())
    within = [n for n in defenses if upper[n] <= max_tpr]
    if not within:
        best = min(upper, key=upper.get)
        return {
            "budget": budget_entry,
            "defense": None,
            "reason": (
                f"no defense keeps every attack's TPR at FPR {fpr:g} within {max_tpr:g} (CI upper bound); the "
                f"least leaky is {best!r} at {upper[best]:.4g} ({defenses[best]['strongest_attack']})"
            ),
            "upper_tpr": upper,
        }
    choice = max(within, key=lambda n: (defenses[n]["test_accuracy"], -upper[n]))
    entry = defenses[choice]
    cost = entry.get("accuracy_cost")
    cost_text = "" if cost is None else f", costing {100 * cost:.2f} accuracy points"
    return {
        "budget": budget_entry,
        "defense": choice,
        "reason": (
            f"{choice!r} has the highest test accuracy ({entry['test_accuracy']:.4f}{cost_text}) among the "
            f"{len(within)} defense(s) whose strongest attack ({entry['strongest_attack']}) stays within TPR "
            f"{max_tpr:g} at FPR {fpr:g} up to its CI upper bound ({upper[choice]:.4g})"
        ),
        "upper_tpr": upper,
    }


# ------------------------------------------------------------------------------------------------- outputs


def write_outputs(results: dict[str, Any], out_dir: str | Path) -> dict[str, str]:
    """``defenses.json`` and ``frontier.png`` in ``out_dir``; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "defenses.json"
    json_path.write_text(json.dumps(results, indent=2, allow_nan=False))
    png_path = out / "frontier.png"
    plot_frontier(results, png_path)
    return {"defenses.json": str(json_path), "frontier.png": str(png_path)}


def plot_frontier(results: dict[str, Any], path: Path) -> None:
    """Test accuracy against the strongest attack's TPR at the budget FPR (log x, CI error bars)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from memberscope.metrics import fpr_key

    fpr = results["recommendation"]["budget"]["fpr"]
    key = fpr_key(fpr)
    n_non = results["game"]["n_nonmembers"]
    floor = 0.5 / max(results["game"]["n_members"], 1)  # a TPR of 0 is drawn at half a record
    fig, ax = plt.subplots(figsize=(7.5, 5))
    for name, entry in results["defenses"].items():
        attack = entry["attacks"][entry["strongest_attack"]]
        tpr = attack["tpr_at_fpr"][key]
        lo, hi = attack["tpr_at_fpr_ci"][key]
        x = max(tpr, floor)
        marker = {"training": "o", "output": "s", "minimize": "^"}.get(entry["kind"], "o")
        ax.errorbar(x, entry["test_accuracy"], xerr=[[x - max(lo, floor)], [max(hi, floor) - x]], fmt=marker, capsize=3)
        label = ":".join(name.split(":")[:2])  # "dp-sgd:eps=8:epochs=10:..." is labelled "dp-sgd:eps=8"
        ax.annotate(label, (x, entry["test_accuracy"]), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.axvline(fpr, color="grey", linestyle=":", label=f"chance (TPR = FPR = {fpr:g})")
    max_tpr = results["recommendation"]["budget"]["max_tpr"]
    ax.axvline(max_tpr, color="red", linestyle="--", label=f"budget TPR {max_tpr:g}")
    ax.set_xscale("log")
    ax.set_xlabel(f"strongest attack's TPR at {100 * fpr:g}% FPR (95% CI; {n_non} non-members)")
    ax.set_ylabel("test accuracy")
    ax.set_title(f"{results['dataset']['name']}: privacy–utility frontier of defenses")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
