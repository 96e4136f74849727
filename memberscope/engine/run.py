"""The engine: one sequence of small steps behind every command.

    load data → make the game → build models like the target → get outputs → run attacks → evaluate → Results

:func:`run_plan` wires the steps for one :class:`AuditPlan`; ``memberscope audit`` and ``audit_model`` build
a plan and call it, and ``defend`` and the red team call the same steps (:func:`obtain_outputs`,
:func:`attack_inputs`, :func:`~memberscope.engine.evaluation.run_attacks`,
:func:`~memberscope.engine.evaluation.evaluate_attack`) with their own plans.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from memberscope.attacks import ReferenceOutputs, TargetOutputs
from memberscope.engine.draws import Draw, leave_one_out, membership_probability, run_draws, summarize_draws
from memberscope.engine.evaluation import (
    MetricSettings,
    accuracy,
    check_needs,
    claimed_privacy,
    epsilon_section,
    evaluate_attack,
    record_slices,
    run_attacks,
    vulnerable_records,
)
from memberscope.engine.fidelity import fidelity_check, fidelity_warning
from memberscope.engine.models import ModelRun, take
from memberscope.engine.training import RunInfo, TrainedRuns, train_models
from memberscope.exceptions import LowFidelityWarning
from memberscope.game import MembershipGame
from memberscope.progress import progress_bars
from memberscope.results import AuditResult, DatasetInfo, GameInfo, Results, TargetInfo

__all__ = ["AuditPlan", "Outputs", "attack_inputs", "obtain_outputs", "run_plan"]


@dataclass
class AuditPlan:
    """Everything one audit needs: the settings, the records, the game, how to build models, and the target.

    Attributes
    ----------
    config : the run's settings (an :class:`~memberscope.config.AuditConfig` or a config sharing its fields:
        ``seed``, ``attacks``, ``attack_params``, ``fprs``, ``n_bootstrap``, ``confidence``, ``queries``, the
        training options and the cache).
    dataset : :class:`~memberscope.datasets.Dataset`
    pool_idx, population_idx : ndarray of int — dataset rows of the audit pool and of the population.
    game : :class:`~memberscope.game.MembershipGame` over the pool.
    recipe : :class:`~memberscope.recipes.Recipe` — how to build models like the target.
    target : :class:`~memberscope.targets.Target` or None — a model to query instead of training one.
    canaries : ndarray of pool positions or None — one-run canaries.
    records : ndarray of shape (n_pool,) — what ``record`` means in every output (the user's ids, row numbers,
        or dataset indices); default the dataset's ids of the pool rows.
    target_description : dict — what results.json says about the target (its recipe or the user's model).
    columns : dict of str to ndarray of shape (n_pool,) — further per-record columns of scores.csv (e.g. which
        file a record came from).
    inputs : dict or None — the ``inputs`` block of results.json (how the user's records were read).
    warnings : list of str — what the plan's preparation noticed (carried into results.json).
    default_recipe : bool — the reference models are built by the default recipe for ``target`` (a clone of the
        user's scikit-learn model, or a memberscope model's own recipe), so a failed fidelity check is not advised
        to switch to that default.
    """

    config: Any
    dataset: Any
    pool_idx: np.ndarray
    population_idx: np.ndarray
    game: MembershipGame
    recipe: Any
    target: Any = None
    canaries: np.ndarray | None = None
    records: np.ndarray | None = None
    target_description: dict[str, Any] = field(default_factory=dict)
    kind: str = "audit"
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    inputs: dict[str, Any] | None = None
    default_recipe: bool = False
    warnings: list[str] = field(default_factory=list)

    @property
    def eval_idx(self) -> np.ndarray:
        return np.concatenate([self.pool_idx, self.population_idx])

    @property
    def record_ids(self) -> np.ndarray:
        if self.records is not None:
            return np.asarray(self.records)
        ids = getattr(self.dataset, "ids", None)
        return np.asarray(ids)[self.pool_idx] if ids is not None else np.asarray(self.pool_idx)


@dataclass
class Outputs:
    """The models' outputs on the pool and population records, and the models when attacks query them."""

    trained: TrainedRuns
    target: TargetOutputs
    references: ReferenceOutputs | None


def _needs_queries(config: Any) -> bool:
    from memberscope.attacks import needs

    return any(needs(name, **config.attack_params.get(name, {})).queries for name in config.attacks)


def obtain_outputs(
    plan: AuditPlan, *, cache, bars, recipe=None, keep: np.ndarray | None = None, on_model=None
) -> TrainedRuns:
    """Train (or fetch from ``cache``) the target and reference models of ``plan`` and get their outputs.

    ``recipe`` overrides the plan's; ``keep`` (bool over the pool) trains every model on its kept records only
    (data minimization); ``on_model()`` is called as each model's outputs arrive.
    """
    game = plan.game
    if keep is not None:
        game = MembershipGame(target_mask=game.target_mask & keep, reference_masks=game.reference_masks & keep)
    return train_models(
        config=plan.config,
        recipe=recipe or plan.recipe,
        dataset=plan.dataset,
        pool_idx=plan.pool_idx,
        eval_idx=plan.eval_idx,
        game=game,
        target_model=plan.target,
        cache=cache,
        bars=bars,
        keep_models=_needs_queries(plan.config),
        on_model=on_model,
    )


def attack_inputs(
    plan: AuditPlan,
    trained: TrainedRuns,
    *,
    target_logits: np.ndarray | None = None,
    reference_logits: np.ndarray | None = None,
    target_model: Any = None,
    reference_models: list[Any] | None = None,
    keep: np.ndarray | None = None,
) -> Outputs:
    """What the attacks see: :class:`TargetOutputs` and :class:`ReferenceOutputs` over the pool records ``keep``.

    The logits and models default to ``trained``'s; an output defense passes what its policy shows instead.
    """
    n_pool = len(plan.pool_idx)
    labels_all = plan.dataset.y[plan.eval_idx]
    labels, pop_labels = labels_all[:n_pool], labels_all[n_pool:]
    keep = np.ones(n_pool, dtype=bool) if keep is None else keep
    t_logits = trained.target.logits if target_logits is None else target_logits
    records = take(plan.dataset.X, plan.pool_idx[keep])
    population = take(plan.dataset.X, plan.population_idx)
    target = TargetOutputs(
        logits=t_logits[:n_pool][keep],
        labels=labels[keep],
        population_logits=t_logits[n_pool:],
        population_labels=pop_labels,
        model=trained.target.model if target_model is None else target_model,
        records=records,
        population_records=population,
    )
    references = None
    if trained.references:
        r_logits = trained.reference_logits if reference_logits is None else reference_logits
        if r_logits is None:
            raise ValueError("reference models were trained but their outputs (reference_logits) are missing")
        models = [r.model for r in trained.references] if reference_models is None else reference_models
        references = ReferenceOutputs(
            logits=r_logits[:, :n_pool][:, keep],
            masks=plan.game.reference_masks[:, keep],
            labels=labels[keep],
            population_logits=r_logits[:, n_pool:],
            population_labels=pop_labels,
            models=None if any(m is None for m in models) else models,
        )
    return Outputs(trained=trained, target=target, references=references)


def metric_settings(config: Any) -> MetricSettings:
    return MetricSettings(
        fprs=tuple(config.fprs), n_bootstrap=config.n_bootstrap, confidence=config.confidence, seed=config.seed
    )


def run_plan(plan: AuditPlan, *, progress: bool | None = None) -> AuditResult:
    """Run the audit ``plan`` describes: models, outputs, attacks, metrics; the typed result with its scores."""
    from memberscope.cache import ArtifactCache, default_cache_dir
    from memberscope.metrics import check_class_counts

    started = time.perf_counter()
    config, dataset = plan.config, plan.dataset
    n_pool = len(plan.pool_idx)
    n_members = int(plan.game.target_mask.sum())
    check_class_counts(n_members, n_pool - n_members)  # before any training: evaluate would refuse these metrics
    check_needs(
        config.attacks,
        config.attack_params,
        n_reference=plan.game.n_reference,
        has_population=len(plan.population_idx) > 0,
        output_kind=getattr(plan.target, "output_kind", "logits"),
    )
    cache = ArtifactCache(None if not config.use_cache else (config.cache_dir or default_cache_dir()))

    # 1. Target and reference models (each trained once, then cached; on joblib workers with n_jobs).
    train_start = time.perf_counter()
    with progress_bars(enabled=progress) as bars:
        trained = obtain_outputs(plan, cache=cache, bars=bars)
    train_seconds = time.perf_counter() - train_start
    run_warnings: list[str] = list(dict.fromkeys([*plan.warnings, *trained.warnings]))
    if plan.target is not None:
        run_warnings += [n for n in plan.target.notes if n not in run_warnings]
    fidelity = fidelity_check(
        trained.target.logits,
        trained.reference_logits if trained.references else None,
        target_mask=plan.game.target_mask,
        reference_masks=plan.game.reference_masks,
        labels=dataset.y[plan.eval_idx],
        n_pool=n_pool,
    )
    low_fidelity = fidelity_warning(fidelity, default_recipe=plan.default_recipe)
    if low_fidelity:
        run_warnings.insert(0, low_fidelity)
        warnings.warn(low_fidelity, LowFidelityWarning, stacklevel=2)
    inputs = attack_inputs(plan, trained)

    # 2. Attacks and their metrics.
    member = plan.game.target_mask
    labels = inputs.target.labels
    groups = dataset.groups[plan.pool_idx] if dataset.groups is not None else None
    slices = record_slices(
        inputs.target.logits, labels, with_loss=getattr(plan.target, "output_kind", "logits") != "label"
    )
    settings = metric_settings(config)
    with progress_bars(enabled=progress) as bars:
        task = bars.add_task("attacks", total=len(config.attacks))

        def on_attack(name: str) -> None:
            bars.update(task, description=f"attack {name}", completed=config.attacks.index(name))

        runs = run_attacks(
            config.attacks,
            inputs.target,
            inputs.references,
            attack_params=config.attack_params,
            seed=config.seed,
            on_attack=on_attack,
        )
        bars.update(task, completed=len(config.attacks))
    attacks = {}
    with progress_bars(enabled=progress) as bars:  # the bootstrap CIs take seconds per attack
        task = bars.add_task(f"metrics ({settings.n_bootstrap} bootstrap replicates)", total=len(runs))
        for r in runs:
            attacks[r.name] = evaluate_attack(
                r,
                member,
                settings,
                labels=labels,
                class_names=dataset.class_names,
                groups=groups,
                slices=slices,
                warnings_out=run_warnings,
            )
            bars.advance(task)
    scores = {r.name: r.scores for r in runs}
    draws = _draws(plan, inputs, member, scores, progress=progress)

    # 3. Everything a reader needs to trust and reproduce the numbers.
    records = plan.record_ids
    target_logits = trained.target.logits
    pop_labels = dataset.y[plan.population_idx]
    train_accuracy = accuracy(target_logits[:n_pool][member], labels[member])
    test_accuracy = accuracy(
        np.concatenate([target_logits[:n_pool][~member], target_logits[n_pool:]]),
        np.concatenate([labels[~member], pop_labels]),
    )
    target_info = TargetInfo(
        recipe=plan.target_description.get("recipe", {"name": plan.recipe.name, **plan.recipe.config()}),
        description=plan.target_description.get("description"),
        extra={k: v for k, v in plan.target_description.items() if k not in ("recipe", "description")},
        train_accuracy=train_accuracy,
        test_accuracy=test_accuracy,
        user_supplied=plan.target is not None,
    )
    target_info.generalization_gap = train_accuracy - test_accuracy
    n_members = int(member.sum())
    game = GameInfo(
        pool_size=n_pool,
        population_size=len(plan.population_idx),
        n_members=n_members,
        n_nonmembers=int((~member).sum()),
        n_reference_models=plan.game.n_reference,
        reference_design="paired: every pool record is IN for half of the reference models",
    )
    if plan.canaries is not None:
        game.extra["one_run_canaries"] = int(plan.canaries.size)
        game.extra["canary_design"] = "canaries' inclusion re-drawn independently with probability 1/2"
    refs = trained.references
    claimed = claimed_privacy(target_info.recipe if isinstance(target_info.recipe, dict) else {}, n_train=n_members)
    model_runs: list[ModelRun | RunInfo] = [trained.target, *refs]
    results = Results(
        kind=plan.kind,
        config=config.to_dict(),
        seeds={"seed": config.seed, "target": trained.target.seed, "references": [r.seed for r in refs]},
        dataset=DatasetInfo.of(dataset),
        game=game,
        target=target_info,
        reference_models={**_reference_summary(refs), "precision": trained.precision},
        attacks=attacks,
        timings={
            "training_seconds": round(train_seconds, 3),
            "models_trained": int(sum(not r.cached for r in model_runs)),
            "models_from_cache": int(sum(r.cached for r in model_runs)),
            "training_workers": trained.n_jobs,
            "vectorized_batches": trained.n_batches,
        },
        warnings=run_warnings,
        sections={
            "fidelity": fidelity,
            **({"draws": summarize_draws(draws)} if draws else {}),
            **({"inputs": plan.inputs} if plan.inputs is not None else {}),
        },
    )
    if dataset.features is not None:
        results.dataset.features = list(dataset.features)
    from memberscope.results.schema import headline_fpr_note

    moved = headline_fpr_note(attacks, game.n_nonmembers)
    if moved is not None:
        results.warn(moved)
    results.vulnerable_records = vulnerable_records(
        attacks, scores, records, member, labels, dataset.class_names, groups
    )
    results.epsilon = epsilon_section(
        member,
        scores,
        delta=config.epsilon_delta,
        claimed=claimed,
        seed=config.seed,
        canaries=plan.canaries,
        records=records,
    )
    results.timings["total_seconds"] = round(time.perf_counter() - started, 3)
    columns = dict(plan.columns)
    columns.setdefault("label", np.asarray(dataset.class_names, dtype=object)[labels])
    if groups is not None:
        columns.setdefault("group", groups)
    probability, results.sections["membership_probability"] = _membership_probability(
        plan, inputs, attacks, scores, draws, member
    )
    if probability is not None:
        columns["membership_probability"] = probability
    results.sections["ppv"] = ppv_section(attacks, getattr(config, "member_prior", None))
    return AuditResult(results=results, records=records, member=member, labels=labels, scores=scores, columns=columns)


def _draws(plan: AuditPlan, inputs: Outputs, member: np.ndarray, scores, *, progress: bool | None) -> list[Draw]:
    """The training draws of ``--targets N`` (the target and N - 1 reference models playing it); [] for N = 1."""
    n_draws = int(getattr(plan.config, "targets", 1) or 1)
    if n_draws <= 1 or inputs.references is None:
        return []
    config = plan.config
    with progress_bars(enabled=progress) as bars:
        task = bars.add_task("training draws (reference models as the target)", total=n_draws)
        return run_draws(
            inputs.target,
            inputs.references,
            target_member=member,
            target_scores=scores,
            n_draws=n_draws,
            attacks=config.attacks,
            attack_params=config.attack_params,
            seed=config.seed,
            fprs=config.fprs,
            accuracy=accuracy,
            on_draw=lambda done: bars.update(task, completed=done),
        )


def _defined_ppv(metrics: Any, values: dict[str, float]) -> dict[str, float | None]:
    """``values`` (PPV per FPR key) with None where the FPR cannot be resolved with the game's non-members or
    nothing is flagged: a precision of 1.0 from one true positive and no possible false positive is no figure."""
    resolvable = getattr(metrics, "fpr_resolvable", {}) or {}
    out: dict[str, float | None] = {}
    for k, v in values.items():
        flagged = metrics.tpr_at_fpr[k] + metrics.operating_fpr[k] > 0
        out[k] = float(v) if resolvable.get(k, True) and flagged and np.isfinite(v) else None
    return out


def ppv_section(attacks: dict[str, Any], member_prior: float | None) -> dict[str, Any]:
    """results.json ``ppv``: each attack's precision ``Pr(member | flagged)`` at each reported FPR, at the game's
    member share and, when ``member_prior`` is given, re-weighted to it by Bayes' rule on the measured TPR and
    operating FPR (:meth:`memberscope.metrics.AttackMetrics.ppv`). At a prior of 1% an attack with TPR 10% at
    FPR 1% is right about one flagged record in eleven, however high its AUC."""
    out: dict[str, Any] = {"member_prior": member_prior, "attacks": {}}
    for name, result in attacks.items():
        m = result.metrics
        entry: dict[str, Any] = {"game_prior": float(m.ppv_prior), "at_game_prior": _defined_ppv(m, m.ppv_at_fpr)}
        if member_prior is not None:
            entry["at_member_prior"] = _defined_ppv(m, m.ppv(float(member_prior)))
        out["attacks"][name] = entry
    return out


def _membership_probability(
    plan: AuditPlan, inputs: Outputs, attacks, scores, draws: list[Draw], member: np.ndarray
) -> tuple[np.ndarray | None, dict[str, Any]]:
    """The strongest attack's per-record membership probability, calibrated on reference models playing the
    target (the draws of ``--targets``, else reference model 0 attacked leave-one-out); the target's own ground
    truth is never used. Returns the column (None when it cannot be calibrated) and its results.json block."""
    from memberscope.attacks import needs
    from memberscope.engine.draws import uses_in_models
    from memberscope.results import strongest_attack

    # Online attacks are left out: on a reference model playing the target, its members are IN one other
    # reference model fewer than its non-members (paired masks), which would bias their calibration.
    best = strongest_attack({k: v for k, v in attacks.items() if not uses_in_models(k)})
    if best is None:
        return None, {"attack": None, "reason": "no attack that can be calibrated without bias (online attacks only)"}
    refs = inputs.references
    prior = float(getattr(plan.config, "member_prior", None) or member.mean())
    block: dict[str, Any] = {"attack": best, "prior": round(prior, 6), "method": MEMBERSHIP_PROBABILITY_METHOD}
    calibration = [(d.member, d.scores[best]) for d in draws[1:] if best in d.scores]
    if not calibration:
        need = needs(best, **plan.config.attack_params.get(best, {})).reference_models
        if refs is None or refs.n_models < max(need + 1, 1):
            block["reason"] = (
                f"no membership probability: calibrating {best!r} needs a reference model to play the target and "
                f"{need} others; the audit has {0 if refs is None else refs.n_models}"
            )
            return None, block
        target, others, draw_member = leave_one_out(inputs.target, refs, 0)
        (run,) = run_attacks([best], target, others, attack_params=plan.config.attack_params, seed=plan.config.seed)
        calibration = [(draw_member, run.scores)]
    block["calibration_draws"] = len(calibration)
    block["calibration_records"] = int(sum(len(m) for m, _ in calibration))
    return membership_probability(scores[best], calibration, prior=prior), block


MEMBERSHIP_PROBABILITY_METHOD = (
    "isotonic regression of membership on the score of the strongest attack that uses no IN reference model, over "
    "reference models playing the target (leave-one-out), clipped away from 0 and 1 by half a record of the "
    "calibration set, moved to the member prior"
)


def _reference_summary(runs) -> dict[str, Any]:
    if not runs:
        return {"count": 0}
    return {
        "count": len(runs),
        "mean_train_accuracy": float(np.mean([r.train_accuracy for r in runs])),
        "mean_test_accuracy": float(np.mean([r.test_accuracy for r in runs])),
        "train_seconds": round(float(sum(r.train_seconds for r in runs)), 3),
    }
