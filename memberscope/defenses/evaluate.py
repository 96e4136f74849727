"""Measure defenses on one membership game: test accuracy against the strongest attack's leakage.

It runs on the engine (:mod:`memberscope.engine`): every defense is one more plan — a recipe with the defense
switched on, or the undefended models seen through an output policy — trained, attacked and evaluated by the same
steps as an audit, with the same data options, parallel and vectorized training and cache.

Every defense is evaluated *adaptively*: the attacker knows the defense.

- A training-time defense (``l2``, ``dropout``, ``dp-sgd:eps=8``, ...) changes the recipe; the target **and the
  reference models** are trained with it, so LiRA and RMIA calibrate on defended models.
- An output-side defense (``round:2``, ``top-k:1``, ``label-only``, noise, temperature; ``+`` composes them) is
  applied at query time to the undefended target **and** to the reference models' outputs; attacks then see only
  what the policy shows (withheld entries filled by :func:`~memberscope.targets.outputs.fill_withheld`,
  probabilities floored at :data:`memberscope.targets.outputs.PROBABILITY_FLOOR`, as every target's answers are).
  Each output defense is also attacked through every view an attacker who knows it obtains
  (:mod:`memberscope.defenses.adaptive`): invertible steps undone, fresh noise averaged over ``noise_repeats``
  queries per record, label-only policies attacked with ``label_only_budgets`` queries (``attacker_budgets``).
- ``regularize:KEY=VALUE`` sets a scikit-learn recipe's own regularization (tree depth, leaf size, C).
- Every defense is also attacked by a label-only attack (below), which needs nothing but predicted labels.

A defense's leakage is that of its *strongest* attack over every view (highest TPR at the budget's FPR, AUC
breaking ties), never of a weak one alone; tied scores are ordered at random before TPR is read (tie-aware).
With ``draws`` > 1 every defense is measured on that many training draws. The recommendation is the defense with
the highest test accuracy whose attacks' CI upper bound at the budget FPR is within the budget on every draw
(``"none"`` when the undefended model already is); the plan (:mod:`memberscope.defenses.plan`) ranks them all.

Label-only attack: the registered ``label-only`` attack (:mod:`memberscope.attacks.label_only`, Choquette-Choo
et al., ICML 2021: each record and ``label_only_queries`` perturbed copies — images flipped and shifted, tables with
Gaussian noise — the score being the share labelled correctly, every model seen through the defense's policy),
calibrated with the reference models that did not train on the record.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from memberscope.config import Constraint, Interval, RunConfig, Satisfies
from memberscope.defenses.adaptive import DEFAULT_REPEATS, averaged_name
from memberscope.exceptions import InvalidInputError
from memberscope.training.defenses import DEFENSES, option_defaults

__all__ = [
    "AVERAGING_REPEATS",
    "DEFAULT_ATTACKS",
    "DEFAULT_DEFENSES",
    "TRAINING_DEFENSES",
    "DefendConfig",
    "DefenseSpec",
    "averaged_name",
    "frontier_figure",
    "observe",
    "parse_budget",
    "parse_defenses",
    "plot_frontier",
    "recommend",
    "run_defenses",
    "write_outputs",
]

DEFAULT_ATTACKS = ("lira-online", "lira-offline", "rmia-online", "rmia-offline", "loss", "label-only")
DEFAULT_DEFENSES = "none,l2,dropout,early-stopping,label-smoothing,augment,ensemble,dp-sgd:eps=8,round:2,top-k:1"
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
    ``early-stopping:0:curve=privacy_curve.json`` stops at the suggested stopping epoch of a privacy-per-epoch curve
    (:func:`memberscope.monitor.suggested_stop_epoch`).
    Output-side defenses are post-processor specs; ``+`` composes several into one defense.
    """
    from memberscope.targets.postprocess import POSTPROCESSORS, parse_postprocessors

    aliases = _aliases()
    items = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    if not items:
        raise InvalidInputError("no defense given; expected a comma-separated list such as 'none,l2,round:2'")
    out: list[DefenseSpec] = []
    problems: list[str] = []
    for item in items:
        head = item.split(":", 1)[0].split("+", 1)[0]
        if head == REGULARIZE:
            params: dict[str, Any] = {}
            for arg in item.split(":")[1:]:
                key, eq, raw = arg.partition("=")
                if not eq or not key.strip():
                    problems.append(
                        f"defense {item!r}: {arg!r} is not KEY=VALUE; expected e.g. "
                        "'regularize:max_depth=8:min_samples_leaf=5' (the estimator's own parameters)"
                    )
                    continue
                params[key.strip()] = _parse_value(raw, f"defense {item!r}")
            if not params:
                problems.append(f"defense {item!r}: name at least one estimator parameter, e.g. regularize:C=0.1")
            out.append(DefenseSpec(name=item, kind="regularize", params=params))
        elif head in TRAINING_DEFENSES:
            name, *args = item.split(":")
            option, default = TRAINING_DEFENSES[name]
            params = {} if option is None else {option: default}
            for arg in args:
                if "=" in arg:
                    key, _, raw = arg.partition("=")
                    key = aliases.get(key.strip(), key.strip().replace("-", "_"))
                    params[key] = _parse_value(raw, f"defense {item!r}")
                elif option is None:
                    problems.append(f"defense {item!r}: 'none' takes no argument")
                else:
                    params[option] = _parse_value(arg, f"defense {item!r}")
            if "curve" in params:  # early-stopping:0:curve=privacy_curve.json -> the curve's suggested stop
                from memberscope.monitor import suggested_stop_epoch

                path = params.pop("curve")
                if name != "early-stopping":
                    problems.append(f"defense {item!r}: only early-stopping takes curve=PATH")
                else:
                    try:
                        params["stop_epoch"] = suggested_stop_epoch(str(path))
                    except InvalidInputError as exc:
                        problems.append(f"defense {item!r}: {exc}")
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
            known = sorted([*TRAINING_DEFENSES, REGULARIZE]) + sorted(n for n in POSTPROCESSORS if n != "identity")
            problems.append(f"unknown defense {head!r} in {item!r}; expected one of: {', '.join(known)}")
    names = [d.name for d in out]
    for name in {n for n in names if names.count(n) > 1}:
        problems.append(f"defense {name!r} is listed more than once")
    if problems:
        raise InvalidInputError("invalid --defenses:\n  - " + "\n  - ".join(problems))
    return out


REGULARIZE = "regularize"
"""The defense that sets a scikit-learn recipe's own regularization (``regularize:max_depth=8:min_samples_leaf=5``,
``regularize:C=0.1``, ``regularize:n_estimators=50``): the estimator's parameters, set on the target and on every
reference model, so the attacker's models are regularized alike."""


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
class DefendConfig(RunConfig):
    """Everything that determines a defense evaluation's numbers: the shared run settings
    (:class:`~memberscope.config.RunConfig`) plus the defenses, the leakage budget, the label-only attack's
    queries per record (``label_only_queries``, its ``n_queries``), the attacker budgets of the adaptive views
    (:mod:`memberscope.defenses.adaptive`: ``noise_repeats``, queries per record averaged against fresh-noise
    defenses, up to the gateway's repeat threshold 20; ``label_only_budgets``, the label-only attack's queries
    against label-only defenses) and ``draws``, how many independent training draws (games, models) every
    defense is measured on (a defense passes the budget only if it passes on every draw)."""

    kind: ClassVar[str] = "defense evaluation"
    defenses: str = DEFAULT_DEFENSES
    attacks: list[str] = field(default_factory=lambda: list(DEFAULT_ATTACKS))
    reference_models: int = 4
    budget: tuple[float, float] = DEFAULT_BUDGET
    fprs: tuple[float, ...] = (0.1, 0.01, 0.001)
    label_only_queries: int = 16
    noise_repeats: tuple[int, ...] = DEFAULT_REPEATS
    label_only_budgets: tuple[int, ...] = (16, 64, 256)
    draws: int = 1

    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        "draws": [Interval(int, 1)],
        "reference_models": [
            Satisfies(
                lambda v: isinstance(v, int) and v >= 2, "an integer >= 2 (LiRA and calibration need IN and OUT models)"
            )
        ],
        "label_only_queries": [Interval(int, 1)],
    }

    def _normalize(self) -> None:
        super()._normalize()
        self.budget = parse_budget(self.budget if not isinstance(self.budget, list) else tuple(self.budget))
        self.fprs = tuple(sorted({float(f) for f in self.fprs} | {self.budget[0]}, reverse=True))
        self.noise_repeats = _int_tuple(self.noise_repeats, "noise_repeats")
        self.label_only_budgets = _int_tuple(self.label_only_budgets, "label_only_budgets")
        if "label-only" in self.attacks:
            self.attack_params = {
                **self.attack_params,
                "label-only": {"n_queries": self.label_only_queries, **self.attack_params.get("label-only", {})},
            }

    def _check(self) -> list[str]:
        problems = super()._check()
        specs = parse_defenses(self.defenses)
        needs_torch = [
            d.name
            for d in specs
            if d.kind not in ("output", "regularize") and d.params and not _only_minimize_options(d)
        ]
        regularizers = [d for d in specs if d.kind == "regularize"]
        if regularizers and self.model != "sklearn":
            problems.append(
                f"defenses {[d.name for d in regularizers]} set a scikit-learn estimator's parameters; --model must "
                f"be sklearn, got {self.model!r} (torch recipes have l2, dropout, early-stopping, ...)"
            )
        elif regularizers:
            from memberscope.recipes import create as create_recipe

            for d in regularizers:
                try:
                    create_recipe(self.model, **_regularized(self.model_params, d.params))
                except InvalidInputError as exc:
                    problems.append(f"defense {d.name!r}: {exc}")
        if needs_torch and self.model not in ("mlp", "cnn", "logreg"):
            problems.append(
                f"defenses {needs_torch} are options of the torch recipes; --model must be mlp, cnn or logreg, "
                f"got {self.model!r}"
            )
        if not problems:
            # A defense needing an optional dependency (DP-SGD: Opacus) fails before anything is trained.
            defaults = option_defaults()
            for spec in specs:
                params = {**self.model_params, **spec.params}
                for name in DEFENSES.names():
                    cls = DEFENSES.get(name)
                    if spec.kind == "training" and params.get(cls.option, defaults[cls.option]) != defaults[cls.option]:
                        cls.check_available()
        return problems

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["budget"] = list(self.budget)
        out["noise_repeats"] = list(self.noise_repeats)
        out["label_only_budgets"] = list(self.label_only_budgets)
        return out


def _regularized(model_params: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """The sklearn recipe's parameters with a ``regularize`` defense's estimator parameters set on top."""
    return {**model_params, "params": {**(model_params.get("params") or {}), **params}}


def _int_tuple(value: Any, name: str) -> tuple[int, ...]:
    """``"1,4,16"``, ``[1, 4, 16]`` or ``16`` -> ``(1, 4, 16)``; positive integers, or InvalidInputError."""
    items = value.split(",") if isinstance(value, str) else list(value) if isinstance(value, list | tuple) else [value]
    out = []
    for item in items:
        try:
            number = int(str(item).strip())
        except ValueError:
            raise InvalidInputError(f"{name}: {item!r} is not an integer; expected e.g. '1,4,16'") from None
        if number < 1:
            raise InvalidInputError(f"{name}: every count must be >= 1; got {number}")
        out.append(number)
    if not out:
        raise InvalidInputError(f"{name}: expected at least one count, e.g. '1,4,16'")
    return tuple(sorted(set(out)))


# --------------------------------------------------------------------------------------------- observation


AVERAGING_REPEATS = tuple(m for m in DEFAULT_REPEATS if m > 1)
"""Repeats of each query averaged by the attackers a noise defense is also measured against (besides one query):
the default ``noise_repeats`` of :class:`DefendConfig` (:data:`memberscope.defenses.adaptive.DEFAULT_REPEATS`)."""


def observe(logits: np.ndarray, postprocessor, *, rng: np.random.Generator) -> np.ndarray:
    """What an attacker sees through ``postprocessor``, as logits of the same shape as ``logits`` ``(..., n_classes)``.

    The answers are read back the way every target's are (:func:`memberscope.targets.as_logits`: withheld
    entries share the unshown mass, probabilities floored so rounded zeros stay finite).
    """
    from memberscope.targets import as_logits, softmax

    shape = logits.shape
    shown = postprocessor(softmax(logits.reshape(-1, shape[-1])), rng=rng)
    return as_logits(shown, postprocessor.granularity).reshape(shape)


# ------------------------------------------------------------------------------------------------ pipeline


def _accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float((logits.argmax(axis=-1) == labels).mean())


def run_defenses(config: DefendConfig, *, progress: bool | None = None):
    """Evaluate every defense of ``config`` on ``config.draws`` training draws (membership games and models).

    Draw 0 uses ``config.seed``, draw ``d`` the seed ``derive_seed(seed, "draw", d)``. The result is draw 0's (its
    attacks, scores and files); every defense entry adds ``draws`` (per draw: seed, test accuracy, the strongest
    attack's TPR and CI at the budget FPR, the upper CI end over all attacks), and the recommendation and the plan
    (:func:`memberscope.defenses.plan.defense_plan`) judge each defense by its worst draw, so a lucky retrain
    cannot pass a budget.

    ``progress`` (None: on a terminal) shows one bar over every defense of every draw (``draw 2/4, defense 3/8:
    NAME``), advanced as each model is trained (:func:`defense_work`), with an ETA for the whole run, above each
    defense's own bars.
    """
    from dataclasses import replace as replace_config

    from memberscope.defenses.plan import defense_plan
    from memberscope.game import derive_seed
    from memberscope.metrics import fpr_key
    from memberscope.progress import StagedTask, progress_bars

    key = fpr_key(config.budget[0])
    work = defense_work(parse_defenses(config.defenses), n_models=1 + config.reference_models)
    with progress_bars(enabled=progress) as bars:
        overall = StagedTask(bars, work, label="defense", rounds=config.draws, round_label="draw")
        first = _run_draw(config, bars=bars, overall=overall, draw=0)
        sections = first.results.sections
        defenses = sections["defenses"]
        for entry in defenses.values():
            entry["draws"] = [_draw_summary(entry, key, config.seed)]
        for d in range(1, config.draws):
            seed = derive_seed(config.seed, "draw", d)
            other = _run_draw(replace_config(config, seed=seed), bars=bars, overall=overall, draw=d).results
            for name, entry in other.sections["defenses"].items():
                defenses[name]["draws"].append(_draw_summary(entry, key, seed))
            first.results.warnings.extend(w for w in other.warnings if w not in first.results.warnings)
    sections["recommendation"] = recommend(defenses, config.budget)
    sections["plan"] = defense_plan(
        defenses, config.budget, n_test=first.results.game.extra.get("test_records"), model=config.model
    )
    if config.draws == 1:
        first.results.warn(
            "one training draw: a defense's leakage varies between retrains (seeds); use --draws 4 or more before "
            "relying on a defense that passes the budget narrowly"
        )
    return first


def defense_work(specs: list[DefenseSpec], *, n_models: int) -> list[tuple[str, int]]:
    """Each defense in the order :func:`run_defenses` evaluates it, with its units of work: the models it trains
    (``n_models``: the target and the reference models) for a training-time or minimization defense, one for an
    output defense (its attacks on the undefended models); the first defense that needs the undefended models when
    no defense trained them (no ``none``) also counts their training.

    Returns
    -------
    list of ``(name, units)``, training-time defenses first, then minimization, then output defenses.
    """
    training = [s for s in specs if s.kind in ("training", "regularize")]
    later = [s for s in specs if s.kind == "minimize"] + [s for s in specs if s.kind == "output"]
    undefended = any(s.name == "none" or not s.params for s in training)
    work = [(s.name, n_models) for s in training]
    for spec in later:
        units = n_models if spec.kind == "minimize" else 1
        if not undefended:
            units, undefended = units + n_models, True
        work.append((spec.name, units))
    return work


def _draw_summary(entry: dict[str, Any], key: str, seed: int) -> dict[str, Any]:
    attack = entry["attacks"][entry["strongest_attack"]]
    summary = {
        "seed": int(seed),
        "test_accuracy": float(entry["test_accuracy"]),
        "strongest_attack": entry["strongest_attack"],
        "tpr": float(attack["tpr_at_fpr"][key]),
        "tpr_ci": [float(v) for v in attack["tpr_at_fpr_ci"][key]],
        "auc": float(attack["auc"]),
        "auc_ci": [float(v) for v in attack["auc_ci"]],
        "upper_tpr": max(float(a["tpr_at_fpr_ci"][key][1]) for a in entry["attacks"].values()),
    }
    same = entry.get("minimization", {}).get("undefended_on_same_records")
    if same is not None:
        summary["undefended_on_same_records"] = same
    return summary


def _run_draw(config: DefendConfig, *, bars, overall, draw: int):
    """Evaluate every defense of ``config`` on one membership game (training draw ``draw``), showing progress on
    ``bars`` and on the run's :class:`~memberscope.progress.StagedTask` ``overall``.

    Returns an :class:`~memberscope.results.AuditResult` of kind ``defend``: its ``attacks`` are the undefended
    model's (with its per-record ``scores``), and ``sections["defenses"]`` holds one entry per defense (its
    accuracy, ε, attacks and strongest attack), ``sections["recommendation"]`` the defense recommended.
    """
    from memberscope.api import load_and_split
    from memberscope.cache import ArtifactCache, default_cache_dir
    from memberscope.defenses.adaptive import attacker_views, break_ties, invertible_only
    from memberscope.engine.evaluation import check_needs, evaluate_attack, run_attacks
    from memberscope.engine.run import AuditPlan, attack_inputs, metric_settings, obtain_outputs
    from memberscope.game import derive_seed, make_game
    from memberscope.metrics import fpr_key
    from memberscope.recipes import create as create_recipe
    from memberscope.results import AuditResult, DatasetInfo, GameInfo, Results, TargetInfo, strongest_attack
    from memberscope.targets import Postprocessed
    from memberscope.targets.postprocess import parse_postprocessors

    started = time.perf_counter()
    specs = parse_defenses(config.defenses)
    dataset, pool_idx, population_idx = load_and_split(config)
    if len(population_idx) < 2:
        raise InvalidInputError("the defense evaluation needs population records (RMIA, test accuracy); got none")
    game = make_game(len(pool_idx), config.reference_models, seed=config.seed)
    check_needs(
        config.attacks, config.attack_params, n_reference=game.n_reference, has_population=True, output_kind="logits"
    )
    base_params = dict(config.model_params)
    plan = AuditPlan(
        config=config,
        dataset=dataset,
        pool_idx=pool_idx,
        population_idx=population_idx,
        game=game,
        recipe=create_recipe(config.model, **base_params),
        kind="defend",
    )
    cache = ArtifactCache(None if not config.use_cache else (config.cache_dir or default_cache_dir()))
    n_pool = len(pool_idx)
    labels_all = dataset.y[plan.eval_idx]
    labels = labels_all[:n_pool]
    member = game.target_mask
    test_rows = np.concatenate([np.flatnonzero(~member), n_pool + np.arange(len(population_idx))])
    budget_key = fpr_key(config.budget[0])
    settings = metric_settings(config)
    notes: list[str] = []

    def train(recipe, keep=None):
        shown = {t.id for t in bars.tasks}
        trained = obtain_outputs(plan, cache=cache, bars=bars, recipe=recipe, keep=keep, on_model=overall.advance)
        for task in [t.id for t in bars.tasks if t.id not in shown]:  # this defense's models and epochs bars
            bars.remove_task(task)
        notes.extend(w for w in trained.warnings if w not in notes)
        return trained

    def attack(trained, postprocessor=None, keep=None, names=None, params=None):
        """``(AttackResult by attack, observed target logits (n_eval, q, C), scores by attack)`` on pool records
        ``keep``, every model seen through ``postprocessor``; ``names`` and ``params`` override the run's attacks
        and their parameters. Tied scores are ordered at random before the metrics are read (tie-aware TPR,
        :func:`memberscope.defenses.adaptive.break_ties`); the scores returned are the attacks' own."""
        keep = np.ones(n_pool, dtype=bool) if keep is None else keep
        observed: dict[str, Any] = {}
        if postprocessor is not None:
            observed["target_logits"] = observe(
                trained.target.logits, postprocessor, rng=np.random.default_rng(derive_seed(config.seed, "obs", 0))
            )
            observed["reference_logits"] = np.stack(
                [
                    observe(
                        trained.reference_logits[k],
                        postprocessor,
                        rng=np.random.default_rng(derive_seed(config.seed, "obs", k + 1)),
                    )
                    for k in range(len(trained.references))
                ]
            )
            # Models are kept only when an attack queries them (label-only); then the references' are too.
            if trained.target.model is not None and all(r.model is not None for r in trained.references):
                observed["target_model"] = Postprocessed(trained.target.model, postprocessor, seed=config.seed)
                observed["reference_models"] = [
                    Postprocessed(r.model, postprocessor, seed=config.seed + 1 + k)
                    for k, r in enumerate(trained.references)
                ]
        inputs = attack_inputs(plan, trained, keep=keep, **observed)
        runs = run_attacks(
            config.attacks if names is None else list(names),
            inputs.target,
            inputs.references,
            attack_params=config.attack_params if params is None else params,
            seed=config.seed,
        )
        results = {r.name: evaluate_attack(tie_broken(r), member[keep], settings) for r in runs}
        logits = observed.get("target_logits", trained.target.logits).astype(np.float64)
        return results, logits, {r.name: r.scores for r in runs}

    def tie_broken(run):
        rng = np.random.default_rng(derive_seed(config.seed, "ties", run.name))
        return replace(run, scores=break_ties(run.scores, rng))

    def accuracies(logits, keep=None):
        train_rows = member if keep is None else member & keep
        return (
            _accuracy(logits[test_rows, 0], labels_all[test_rows]),
            _accuracy(logits[:n_pool][train_rows][:, 0], labels[train_rows]),
        )

    entries: dict[str, Any] = {}
    base = None
    base_attacks: dict[str, Any] = {}
    base_scores: dict[str, np.ndarray] = {}
    for spec in specs:
        if spec.kind not in ("training", "regularize"):
            continue
        overall.start(spec.name, round=draw)
        recipe_params = (
            _regularized(base_params, spec.params) if spec.kind == "regularize" else {**base_params, **spec.params}
        )
        recipe = create_recipe(config.model, **recipe_params)
        trained = train(recipe)
        attacks, logits, scores = attack(trained)
        if spec.name == "none" or not spec.params:
            base, base_attacks, base_scores = trained, attacks, scores
        privacy = getattr(trained.target.model, "privacy", None) if trained.target.model is not None else None
        test_acc, train_acc = accuracies(logits)
        entries[spec.name] = {
            "kind": "training",
            "regularizes": dict(spec.params) if spec.kind == "regularize" else None,
            "recipe": {"name": config.model, **recipe.config()},
            "test_accuracy": test_acc,
            "train_accuracy": train_acc,
            "epsilon": None if privacy is None else float(privacy["epsilon"]),
            "delta": None if privacy is None else float(privacy["delta"]),
            "privacy": privacy,
            "train_seconds": trained.target.train_seconds if not trained.target.cached else None,
            "reference_train_seconds": _sum_seconds(trained.references),
            "attacks": attacks,
        }
        overall.finish(spec.name)
    later = [s for s in specs if s.kind == "minimize"] + [s for s in specs if s.kind == "output"]
    if base is None and later:
        overall.start(later[0].name, round=draw)  # the first defense that needs the undefended models
        base = train(plan.recipe)
        base_attacks, _, base_scores = attack(base)
    for spec in specs:
        if spec.kind != "minimize":
            continue
        overall.start(spec.name, round=draw)
        from memberscope.defenses import minimization as mini

        opts, recipe_params = mini.split_params(spec.params)
        attack_name = _strongest(base_attacks, budget_key)
        order = mini.rank_members(
            opts["by"], member=member, scores=base_scores[attack_name], X=dataset.X[pool_idx], y=labels
        )
        removed = order[: mini.removed_count(int(member.sum()), opts["fraction"])]
        keep = np.ones(n_pool, dtype=bool)
        keep[removed] = False
        recipe = create_recipe(config.model, **{**base_params, **recipe_params})
        trained = train(recipe, keep=keep)
        attacks, logits, scores = attack(trained, keep=keep)
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
        metric_kwargs = settings.kwargs()
        layers = {}
        for layer_name, layer in (("removed", removed_mask), ("neighbours", neighbours), ("others", others)):
            layers[layer_name] = {
                "n_records": int(layer.sum()),
                "before": mini.layer_metrics(member, before, layer, **metric_kwargs),
                "after": None
                if layer_name == "removed"
                else mini.layer_metrics(member[keep], after[keep], layer[keep], **metric_kwargs),
            }
        from memberscope.engine.evaluation import AttackRun

        same = {
            name: evaluate_attack(tie_broken(AttackRun(name, values[keep], {})), member[keep], settings)
            for name, values in base_scores.items()
        }
        same_name = _strongest(same, budget_key)
        same_metrics = same[same_name].metrics
        test_acc, train_acc = accuracies(logits, keep)
        entries[spec.name] = {
            "kind": "minimize",
            "recipe": {"name": config.model, **recipe.config()},
            "test_accuracy": test_acc,
            "train_accuracy": train_acc,
            "epsilon": None,
            "delta": None,
            "train_seconds": trained.target.train_seconds if not trained.target.cached else None,
            "attacks": attacks,
            "minimization": {
                "by": opts["by"],
                "fraction": opts["fraction"],
                "neighbours_per_removed": opts["neighbours"],
                "attack": attack_name,
                "removed_records": [int(r) for r in pool_idx[removed]],
                "layers": layers,
                "undefended_on_same_records": {
                    "strongest_attack": same_name,
                    "tpr": float(same_metrics.tpr_at_fpr[budget_key]),
                    "tpr_ci": [float(v) for v in same_metrics.tpr_at_fpr_ci[budget_key]],
                    "auc": float(same_metrics.auc),
                    "records": "the members kept and every non-member: the records the defended model is measured on",
                },
                "note": "before: the undefended target's scores; after: the retrained target's, on the same "
                "records; each layer's members against every (remaining) non-member. With by=vulnerability the "
                "ranking used the same scores, so 'before' is biased low for the layers kept (selection on noise); "
                "by=uniqueness does not use the scores",
            },
        }
        overall.finish(spec.name)
    for spec in specs:
        if spec.kind != "output":
            continue
        assert base is not None  # trained above whenever an output or minimize defense is asked for
        overall.start(spec.name, round=draw)
        postprocessor = parse_postprocessors(spec.output)
        attacks, by_view, shown = {}, [], None
        for view in attacker_views(
            postprocessor,
            repeats=config.noise_repeats,
            label_queries=config.label_only_budgets,
            default_label_queries=config.label_only_queries,
        ):
            names = config.attacks if view.attacks is None else [a for a in view.attacks if a in config.attacks]
            if not names:
                continue
            params = {**config.attack_params, **view.attack_params}
            results, logits, _ = attack(base, view.postprocessor, names=names, params=params)
            shown = logits if shown is None else shown  # the first view is the policy as shown
            attacks.update({view.key(name): result for name, result in results.items()})
            strongest = strongest_attack(results, budget_key)
            metrics = results[strongest].metrics
            by_view.append(
                {
                    "view": view.name,
                    "assumes": view.assumes,
                    **view.budget,
                    "strongest_attack": strongest,
                    "tpr": float(metrics.tpr_at_fpr[budget_key]),
                    "tpr_ci": [float(v) for v in metrics.tpr_at_fpr_ci[budget_key]],
                    "auc": float(metrics.auc),
                }
            )
        test_acc, train_acc = accuracies(shown)
        entries[spec.name] = {
            "kind": "output",
            "postprocessor": postprocessor.spec,
            "granularity": postprocessor.granularity,
            "stochastic": bool(postprocessor.stochastic),
            "invertible": invertible_only(postprocessor),
            "test_accuracy": test_acc,
            "train_accuracy": train_acc,
            "epsilon": None,
            "delta": None,
            "train_seconds": base.target.train_seconds if not base.target.cached else None,
            "attacks": attacks,
            "attacker_budgets": by_view,
        }
        overall.finish(spec.name)
    # Keep the order the user gave.
    ordered = {s.name: entries[s.name] for s in specs}
    for entry in ordered.values():
        entry["strongest_attack"] = strongest_attack(entry["attacks"], budget_key)
    reference = ordered.get("none", {}).get("test_accuracy")
    if reference is None and base is not None:
        reference = accuracies(base.target.logits.astype(np.float64))[0]
    for entry in ordered.values():
        entry["accuracy_cost"] = None if reference is None else float(reference - entry["test_accuracy"])
    recommendation = recommend(ordered, config.budget)
    for entry in ordered.values():
        entry["attacks"] = {name: a.to_dict() for name, a in entry["attacks"].items()}
    results = Results(
        kind="defend",
        config=config.to_dict(),
        seeds={"seed": config.seed},
        dataset=DatasetInfo.of(dataset),
        game=GameInfo(
            pool_size=n_pool,
            population_size=len(population_idx),
            n_members=int(member.sum()),
            n_nonmembers=int((~member).sum()),
            n_reference_models=game.n_reference,
            reference_design="paired: every pool record is IN for half of the reference models",
            extra={"test_records": len(test_rows)},
        ),
        target=TargetInfo(
            recipe={"name": config.model, **plan.recipe.config()},
            description="the undefended model",
            test_accuracy=reference,
        ),
        reference_models={"count": game.n_reference},
        attacks=base_attacks,
        sections={
            "undefended_test_accuracy": reference,
            "defenses": ordered,
            "recommendation": recommendation,
            "notes": [
                "adaptive evaluation: reference models are trained with each training-time defense, and output "
                "defenses are applied to the reference models' outputs as well as the target's",
                "label-only: the registered label-only attack (Choquette-Choo et al. 2021) calibrated by the OUT "
                "reference models' shares, every model queried through the defense's output policy",
                "output defenses are measured against the attacker adapted to them (attacker_budgets): invertible "
                "steps undone, fresh noise averaged over noise_repeats queries per record, label-only policies "
                "attacked with label_only_budgets queries; a defense's leakage is its strongest attack over all views",
                "tie-aware TPR: every attack's tied scores are ordered at random before its metrics are read (the "
                "interpolated ROC in expectation); scores.csv keeps the attacks' own scores",
            ],
        },
        timings={"total_seconds": round(time.perf_counter() - started, 3)},
        warnings=notes,
    )
    return AuditResult(results=results, records=plan.record_ids, member=member, labels=labels, scores=base_scores)


def _sum_seconds(runs) -> float | None:
    """Total training seconds of ``runs``; None when any came from the cache (its time is unknown)."""
    values = [None if r.cached else r.train_seconds for r in runs]
    seconds = [v for v in values if v is not None]
    return None if len(seconds) < len(values) else float(sum(seconds))


def _strongest(attacks: dict[str, Any], fpr_key: str) -> str:
    """:func:`~memberscope.results.strongest_attack` of ``attacks``, which a defense always has."""
    from memberscope.results import strongest_attack

    name = strongest_attack(attacks, fpr_key)
    if name is None:
        raise ValueError(f"no attack results to choose the strongest from at FPR {fpr_key}")
    return name


def recommend(defenses: dict[str, Any], budget: tuple[float, float]) -> dict[str, Any]:
    """The defense with the highest test accuracy whose strongest attack's TPR CI upper bound at the budget FPR
    is within the budget on every training draw (``entry["draws"]``); ``"none"`` (no defense needed) when the
    undefended model already is; ``defense`` is None when none is."""
    from memberscope.metrics import fpr_key

    fpr, max_tpr = budget
    key = fpr_key(fpr)
    budget_entry = {
        "fpr": fpr,
        "max_tpr": max_tpr,
        "basis": "upper end of the strongest attack's TPR CI, on the worst training draw",
    }
    upper: dict[str, float] = {}
    for name, entry in defenses.items():
        upper[name] = max(_ci(a)[key][1] for a in entry["attacks"].values())
        for draw in entry.get("draws") or []:
            upper[name] = max(upper[name], draw["upper_tpr"])
    within = [n for n in defenses if upper[n] <= max_tpr]
    if "none" in within:
        return {
            "budget": budget_entry,
            "defense": "none",
            "reason": (
                f"no defense needed against the attacks tried: the undefended model's attacks stay within TPR "
                f"{_rate(max_tpr)} at FPR {_rate(fpr)} up to their CI upper bound ({_rate(upper['none'])}); not a "
                "guarantee (only DP-SGD gives one)"
            ),
            "upper_tpr": upper,
        }
    if not within:
        best = min(upper, key=lambda n: upper[n])
        return {
            "budget": budget_entry,
            "defense": None,
            "reason": (
                f"no defense keeps every attack's TPR at FPR {_rate(fpr)} within {_rate(max_tpr)} (CI upper bound); "
                f"the least leaky is {best!r} at {_rate(upper[best])} ({defenses[best]['strongest_attack']})"
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
            f"{choice!r} has the highest test accuracy ({100 * entry['test_accuracy']:.2f}%{cost_text}) among the "
            f"{len(within)} defense(s) whose strongest attack ({entry['strongest_attack']}) stays within TPR "
            f"{_rate(max_tpr)} at FPR {_rate(fpr)} up to its CI upper bound ({_rate(upper[choice])})"
        ),
        "upper_tpr": upper,
    }


def _rate(x: float) -> str:
    """A rate as a percentage to 3 significant digits (``0.0432 -> "4.32%"``), as the reports write rates."""
    return f"{100 * float(x):.3g}%"


def _ci(attack: Any) -> dict[str, Any]:
    """An attack's TPR intervals by FPR key, from an AttackResult or its dictionary."""
    return attack.metrics.tpr_at_fpr_ci if hasattr(attack, "metrics") else attack["tpr_at_fpr_ci"]


# ------------------------------------------------------------------------------------------------- outputs


def write_outputs(result, out_dir: str | Path) -> dict[str, str]:
    """``results.json``, ``scores.csv`` and ``roc.png`` of the undefended model, and ``frontier.png``, in
    ``out_dir``; returns their paths."""
    paths = result.write(out_dir)
    png_path = Path(out_dir) / "frontier.png"
    plot_frontier(result.results, png_path)
    return {**paths, "frontier": str(png_path)}


def plot_frontier(results, path: Path) -> None:
    """Write :func:`frontier_figure` of ``results`` to ``path`` (PNG)."""
    import matplotlib.pyplot as plt

    fig = frontier_figure(results)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def frontier_figure(results):
    """Test accuracy against the strongest attack's TPR at the budget FPR (log x, CI error bars), each defense
    labelled clear of the others (:func:`~memberscope.report.labels.place_labels`); a matplotlib ``Figure``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from memberscope.metrics import fpr_key

    recommendation = results.sections["recommendation"]
    fpr = recommendation["budget"]["fpr"]
    key = fpr_key(fpr)
    n_non = results.game.n_nonmembers
    floor = 0.5 / max(results.game.n_members, 1)  # a TPR of 0 is drawn at half a record
    fig, ax = plt.subplots(figsize=(7.5, 5))
    points: list[tuple[float, float]] = []
    labels: list[str] = []
    styles: list[dict[str, Any]] = []
    for name, entry in results.sections["defenses"].items():
        attack = entry["attacks"][entry["strongest_attack"]]
        tpr = attack["tpr_at_fpr"][key]
        lo, hi = attack["tpr_at_fpr_ci"][key]
        x = max(tpr, floor)
        marker = {"training": "o", "output": "s", "minimize": "^"}.get(entry["kind"], "o")
        ax.errorbar(x, entry["test_accuracy"], xerr=[[x - max(lo, floor)], [max(hi, floor) - x]], fmt=marker, capsize=3)
        label = ":".join(name.split(":")[:2])  # "dp-sgd:eps=8:epochs=10:..." is labelled "dp-sgd:eps=8"
        points.append((x, entry["test_accuracy"]))
        labels.append(label)
        styles.append({})
        same = (entry.get("minimization") or {}).get("undefended_on_same_records")
        undefended_acc = results.sections.get("undefended_test_accuracy")
        if same is not None and undefended_acc is not None:
            # minimize is measured on the members it kept: the undefended model on those same records, hollow.
            sx = max(same["tpr"], floor)
            ax.plot(sx, undefended_acc, marker="^", mfc="none", color="grey")
            points.append((sx, undefended_acc))
            labels.append(f"none, {label}'s records")
            styles.append({"fontsize": 7, "color": "grey"})
    ax.axvline(fpr, color="grey", linestyle=":", label=f"chance (TPR = FPR = {100 * fpr:g}%)")
    max_tpr = recommendation["budget"]["max_tpr"]
    ax.axvline(max_tpr, color="red", linestyle="--", label=f"budget TPR {100 * max_tpr:g}%")
    ax.set_xscale("log")
    from matplotlib.ticker import PercentFormatter

    ax.xaxis.set_major_formatter(PercentFormatter(1.0))  # rates as percentages, as every table writes them
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel(f"strongest attack's TPR at {100 * fpr:g}% FPR (95% CI; {n_non} non-members)")
    ax.set_ylabel("test accuracy")
    ax.set_title(f"{results.dataset.name}: privacy–utility frontier of defenses")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    from memberscope.report.labels import place_labels

    # Defenses often land close together (none, l2, round:2): labels placed clear of each other, with leader lines.
    place_labels(ax, points, labels, styles=styles)
    return fig
