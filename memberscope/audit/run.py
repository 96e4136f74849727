"""The audit pipeline: data → membership game → models → outputs → attacks → metrics.

It only wires the pieces; each step lives in its own module.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from memberscope import __version__
from memberscope.attacks import ReferenceOutputs, TargetOutputs
from memberscope.attacks import create as create_attack
from memberscope.audit.config import AuditConfig
from memberscope.audit.models import model_seed
from memberscope.audit.training import train_models
from memberscope.cache import ArtifactCache, default_cache_dir
from memberscope.exceptions import InvalidInputError
from memberscope.game import MembershipGame, make_game, paired_masks, split_pool
from memberscope.progress import progress_bars
from memberscope.recipes import Recipe
from memberscope.recipes import create as create_recipe

__all__ = ["SCHEMA_VERSION", "AuditResult", "audit_model", "run_audit"]

SCHEMA_VERSION = "1.0"
SLICE_BOOTSTRAP = 200
TOP_VULNERABLE = 25


@dataclass
class AuditResult:
    """The outcome of an audit.

    Attributes
    ----------
    results : dict — the content of ``results.json``.
    records : ndarray of shape (n_pool,) — dataset indices of the audited records.
    member : ndarray of shape (n_pool,), bool — ground truth.
    scores : dict attack name → ndarray of shape (n_pool,).
    """

    results: dict[str, Any]
    records: np.ndarray
    member: np.ndarray
    labels: np.ndarray
    scores: dict[str, np.ndarray] = field(default_factory=dict)

    def write(self, out_dir) -> dict[str, str]:
        """Write results.json, scores.csv and roc.png into ``out_dir``; returns the paths."""
        from memberscope.outputs import write_outputs

        return write_outputs(self, out_dir)


def _sizes(n_total: int, config: AuditConfig) -> tuple[int, int]:
    population = config.population_size if config.population_size is not None else min(10_000, n_total // 4)
    pool = config.pool_size if config.pool_size is not None else min(20_000, n_total - population)
    return pool, population


def run_audit(config: AuditConfig, *, progress: bool | None = None) -> AuditResult:
    """Run the audit ``config`` describes: train a target and reference models on a dataset and attack the target."""
    from memberscope import datasets

    started = time.perf_counter()
    dataset = datasets.load(
        config.dataset,
        data_dir=config.data_dir,
        seed=config.seed,
        n_records=config.n_records,
        label_column=config.label_column,
        group_column=config.group_column,
    )
    pool_size, population_size = _sizes(dataset.n_records, config)
    pool_idx, population_idx = split_pool(
        dataset.n_records, pool_size=pool_size, population_size=population_size, seed=model_seed(config.seed, "split")
    )
    game = make_game(pool_size, config.reference_models, seed=config.seed)
    canaries = None
    if config.one_run_canaries is not None:
        game, canaries = _with_canaries(game, config.one_run_canaries, seed=config.seed)
    recipe = create_recipe(config.model, **config.model_params)
    return _execute(
        canaries=canaries,
        config=config,
        dataset=dataset,
        pool_idx=pool_idx,
        population_idx=population_idx,
        game=game,
        recipe=recipe,
        target_model=None,
        progress=progress,
        started=started,
    )


def audit_model(
    model: Any,
    *,
    members: tuple[np.ndarray, np.ndarray],
    nonmembers: tuple[np.ndarray, np.ndarray],
    recipe: Recipe | str = "mlp",
    recipe_params: dict[str, Any] | None = None,
    population: tuple[np.ndarray, np.ndarray] | None = None,
    n_classes: int | None = None,
    progress: bool | None = None,
    **config_values: Any,
) -> AuditResult:
    """Audit a model you trained yourself ("bring your own target").

    Parameters
    ----------
    model : fitted scikit-learn classifier (``predict_proba``), ``torch.nn.Module`` returning logits, or callable.
    members, nonmembers : ``(X, y)`` with ``X`` of shape ``(n, ...)`` and ``y`` of shape ``(n,)``;
        records the model did and did not train on.
    recipe : how to train reference models like it (a :class:`Recipe` or a recipe name).
    population : ``(X, y)`` of further records no model trained on (for RMIA and class calibration).
        When omitted, a quarter of the non-members (at most 2,000) is set aside as population.
    config_values : other :class:`AuditConfig` fields (``reference_models``, ``attacks``, ``seed``, ...).
    """
    from memberscope.datasets import Dataset
    from memberscope.targets import as_trained_model

    started = time.perf_counter()
    config = AuditConfig(
        dataset="user-model",
        model=recipe if isinstance(recipe, str) else recipe.name,
        model_params=dict(recipe_params or {}),
        **config_values,
    )
    if config.one_run_canaries is not None:
        raise InvalidInputError(
            "one_run_canaries needs the audit to draw which records the target trains on; a model you trained "
            "yourself has fixed members, so audit it without one_run_canaries"
        )
    if isinstance(recipe, str):
        recipe = create_recipe(recipe, **(recipe_params or {}))
    parts = {"members": members, "nonmembers": nonmembers}
    if population is None:
        rng = np.random.default_rng(model_seed(config.seed, "byo-population"))
        X_non, y_non = (np.asarray(a) for a in nonmembers)
        order = rng.permutation(len(y_non))
        n_pop = min(2000, len(y_non) // 4)
        parts["nonmembers"] = (X_non[order[n_pop:]], y_non[order[n_pop:]])
        population = (X_non[order[:n_pop]], y_non[order[:n_pop]])
    parts["population"] = population
    Xs, ys = [], []
    for what, (X, y) in parts.items():
        X, y = np.asarray(X, dtype=np.float32), np.asarray(y)
        if X.ndim < 2 or y.ndim != 1 or len(X) != len(y):
            raise InvalidInputError(
                f"{what} must be (X, y) with X of shape (n, ...) and y of shape (n,); got X {X.shape} and y {y.shape}"
            )
        Xs.append(X)
        ys.append(y)
    if len({x.shape[1:] for x in Xs}) != 1:
        raise InvalidInputError(
            f"members, non-members and population have different record shapes: {[x.shape[1:] for x in Xs]}"
        )
    y_all = np.concatenate(ys).astype(np.int64)
    n_classes = int(n_classes if n_classes is not None else y_all.max() + 1)
    dataset = Dataset(
        name="user-model",
        X=np.concatenate(Xs),
        y=y_all,
        n_classes=n_classes,
        class_names=[str(c) for c in range(n_classes)],
        groups=None,
        description="records supplied with a user's model",
        source="user",
    )
    n_mem, n_non, n_pop = (len(y) for y in ys)
    pool_idx = np.arange(n_mem + n_non)
    population_idx = np.arange(n_mem + n_non, n_mem + n_non + n_pop)
    target_mask = np.zeros(n_mem + n_non, dtype=bool)
    target_mask[:n_mem] = True
    references = paired_masks(len(pool_idx), config.reference_models, seed=model_seed(config.seed, "reference-masks"))
    game = MembershipGame(target_mask=target_mask, reference_masks=references)
    return _execute(
        config=config,
        dataset=dataset,
        pool_idx=pool_idx,
        population_idx=population_idx,
        game=game,
        recipe=recipe,
        target_model=as_trained_model(model, n_classes=n_classes),
        progress=progress,
        started=started,
    )


def _with_canaries(game: MembershipGame, m: int, *, seed: int) -> tuple[MembershipGame, np.ndarray]:
    """Pick ``m`` pool records as canaries and re-draw their inclusion independently with probability 1/2.

    The one-run theorem needs independent inclusions; the game's own mask has exactly half members, so the
    canaries' bits are re-drawn (the other records keep theirs, independently of the canaries).
    """
    if m > game.n_pool:
        raise InvalidInputError(f"one_run_canaries {m} exceeds the audit pool of {game.n_pool} records")
    rng = np.random.default_rng(model_seed(seed, "one-run-canaries"))
    canaries = np.sort(rng.choice(game.n_pool, size=m, replace=False))
    mask = game.target_mask.copy()
    mask[canaries] = rng.random(m) < 0.5
    included = int(mask[canaries].sum())
    if included in (0, m):  # likely only for a handful of canaries; checked before any training
        raise InvalidInputError(f"all {m} canaries were drawn {'in' if included else 'out'}; use more canaries")
    return MembershipGame(target_mask=mask, reference_masks=game.reference_masks), canaries


def _claimed_privacy(recipe_config: dict[str, Any], *, n_train: int) -> dict[str, float] | None:
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


def _epsilon_section(config: AuditConfig, member, scores, canaries, claimed, records) -> dict[str, Any]:
    """Empirical ε lower bounds of every attack: Clopper–Pearson over all records, one-run over the canaries."""
    from memberscope.report.epsilon import epsilon_lower_bound, one_run_audit

    delta = config.epsilon_delta if config.epsilon_delta is not None else (claimed or {}).get("delta", 0.0)
    section: dict[str, Any] = {
        "alpha": 0.05,
        "delta": delta,
        "claimed": claimed,
        "clopper_pearson": {name: epsilon_lower_bound(member, s, delta=delta).to_dict() for name, s in scores.items()},
        "one_run": None,
    }
    if canaries is not None:
        bounds = {
            name: one_run_audit(member[canaries], s[canaries], delta=delta, seed=model_seed(config.seed, "one-run"))
            for name, s in scores.items()
        }
        section["one_run"] = {
            "canaries": int(canaries.size),
            "canaries_included": int(member[canaries].sum()),
            "records": [int(r) for r in records[canaries]],  # dataset indices, as in scores.csv's record column
            "beta": 0.05,
            "delta": delta,
            "attacks": {name: b.to_dict() for name, b in bounds.items()},
        }
    return section


def _accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float((logits[:, 0, :].argmax(axis=1) == labels).mean()) if len(labels) else float("nan")


def _execute(
    *,
    config: AuditConfig,
    dataset,
    pool_idx: np.ndarray,
    population_idx: np.ndarray,
    game: MembershipGame,
    recipe: Recipe,
    target_model,
    progress: bool | None,
    started: float,
    canaries: np.ndarray | None = None,
) -> AuditResult:
    from memberscope.metrics import evaluate, evaluate_by_group

    cache = ArtifactCache(None if not config.use_cache else (config.cache_dir or default_cache_dir()))
    fingerprint = dataset.fingerprint()
    eval_idx = np.concatenate([pool_idx, population_idx])
    n_pool = len(pool_idx)
    labels_all = dataset.y[eval_idx]

    # 1. Target and reference models (each trained once, then cached; on joblib workers with n_jobs).
    train_start = time.perf_counter()
    with progress_bars(enabled=progress) as bars:
        trained = train_models(
            config=config,
            recipe=recipe,
            dataset=dataset,
            pool_idx=pool_idx,
            eval_idx=eval_idx,
            game=game,
            target_model=target_model,
            cache=cache,
            bars=bars,
        )
    train_seconds = time.perf_counter() - train_start
    run_warnings: list[str] = list(trained.warnings)
    target_run, reference_runs = trained.target, trained.references

    member = game.target_mask
    labels = labels_all[:n_pool]
    pop_labels = labels_all[n_pool:]
    target_logits = target_run.logits
    target = TargetOutputs(
        logits=target_logits[:n_pool],
        labels=labels,
        population_logits=target_logits[n_pool:],
        population_labels=pop_labels,
    )
    references = None
    if reference_runs:
        ref_logits = trained.reference_logits  # (K, n_eval, q, c), file-backed
        references = ReferenceOutputs(
            logits=ref_logits[:, :n_pool],
            masks=game.reference_masks,
            labels=labels,
            population_logits=ref_logits[:, n_pool:],
            population_labels=pop_labels,
        )

    # 2. Attacks and their metrics.
    scores: dict[str, np.ndarray] = {}
    attack_results: dict[str, Any] = {}
    groups = dataset.groups[pool_idx] if dataset.groups is not None else None
    metric_kwargs = dict(fprs=config.fprs, confidence=config.confidence, seed=model_seed(config.seed, "bootstrap"))
    with progress_bars(enabled=progress) as bars:
        task = bars.add_task("attacks", total=len(config.attacks))
        for name in config.attacks:
            bars.update(task, description=f"attack {name}")
            attack = create_attack(name, **config.attack_params.get(name, {}))
            t0 = time.perf_counter()
            attack.fit(references)
            t1 = time.perf_counter()
            score = np.asarray(attack.score(target), dtype=np.float64)
            t2 = time.perf_counter()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                metrics = evaluate(member, score, n_bootstrap=config.n_bootstrap, **metric_kwargs)
            for w in caught:
                if str(w.message) not in run_warnings:
                    run_warnings.append(str(w.message))
            entry = metrics.to_dict()
            slice_kwargs = dict(n_bootstrap=min(config.n_bootstrap, SLICE_BOOTSTRAP), **metric_kwargs)
            entry["per_class"] = {
                dataset.class_names[int(k)] if int(k) < len(dataset.class_names) else k: m.to_dict()
                for k, m in evaluate_by_group(member, score, labels, **slice_kwargs).items()
            }
            if groups is not None:
                entry["per_group"] = {
                    k: m.to_dict() for k, m in evaluate_by_group(member, score, groups, **slice_kwargs).items()
                }
            entry["params"] = attack.params()
            entry["timings"] = {
                "fit_seconds": round(t1 - t0, 4),
                "score_seconds": round(t2 - t1, 4),
                "metrics_seconds": round(time.perf_counter() - t2, 4),
            }
            attack_results[name] = entry
            scores[name] = score
            bars.advance(task)

    # 3. Everything a reader needs to trust and reproduce the numbers.
    records = pool_idx
    results = {
        "schema_version": SCHEMA_VERSION,
        "memberscope_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": config.to_dict(),
        "seeds": {
            "seed": config.seed,
            "target": target_run.seed,
            "references": [r.seed for r in reference_runs],
        },
        "dataset": {
            "name": dataset.name,
            "source": dataset.source,
            "n_records": dataset.n_records,
            "n_classes": dataset.n_classes,
            "feature_shape": list(dataset.feature_shape),
            "fingerprint": fingerprint,
        },
        "game": {
            "pool_size": n_pool,
            "population_size": len(population_idx),
            "n_members": int(member.sum()),
            "n_nonmembers": int((~member).sum()),
            "n_reference_models": game.n_reference,
            "reference_design": "paired: every pool record is IN for half of the reference models",
        },
        "target": {
            "recipe": {"name": recipe.name, **recipe.config()},
            "train_accuracy": _accuracy(target_logits[:n_pool][member], labels[member]),
            "test_accuracy": _accuracy(
                np.concatenate([target_logits[:n_pool][~member], target_logits[n_pool:]]),
                np.concatenate([labels[~member], pop_labels]),
            ),
            "user_supplied": target_model is not None,
        },
        "reference_models": _reference_summary(reference_runs),
        "attacks": attack_results,
        "vulnerable_records": _vulnerable_records(attack_results, scores, records, member, labels, dataset.class_names),
        "timings": {
            "training_seconds": round(train_seconds, 3),
            "models_trained": int(sum(not r.cached for r in [target_run, *reference_runs])),
            "models_from_cache": int(sum(r.cached for r in [target_run, *reference_runs])),
            "training_workers": trained.n_jobs,
            "vectorized_batches": trained.n_batches,
            "total_seconds": round(time.perf_counter() - started, 3),
        },
        "warnings": run_warnings,
    }
    results["target"]["generalization_gap"] = results["target"]["train_accuracy"] - results["target"]["test_accuracy"]
    if canaries is not None:
        results["game"]["one_run_canaries"] = int(canaries.size)
        results["game"]["canary_design"] = "canaries' inclusion re-drawn independently with probability 1/2"
    claimed = _claimed_privacy(results["target"]["recipe"], n_train=int(member.sum()))
    results["epsilon"] = _epsilon_section(config, member, scores, canaries, claimed, records)
    return AuditResult(results=results, records=records, member=member, labels=labels, scores=scores)


def _reference_summary(runs) -> dict[str, Any]:
    if not runs:
        return {"count": 0}
    return {
        "count": len(runs),
        "mean_train_accuracy": float(np.mean([r.train_accuracy for r in runs])),
        "mean_test_accuracy": float(np.mean([r.test_accuracy for r in runs])),
        "train_seconds": round(float(sum(r.train_seconds for r in runs)), 3),
    }


def _vulnerable_records(
    attack_results: dict[str, Any],
    scores: dict[str, np.ndarray],
    records: np.ndarray,
    member: np.ndarray,
    labels: np.ndarray,
    class_names: list[str],
) -> dict[str, Any]:
    """Members the strongest attack singles out most confidently.

    The strongest attack is the one with the highest TPR at the smallest resolvable FPR (AUC breaks
    ties). ``nonmember_exceedance`` is the fraction of non-members scoring at least as high: the
    false-positive rate an attacker accepts to flag this record.
    """
    if not attack_results:
        return {}

    def strength(name: str):
        tprs = attack_results[name]["tpr_at_fpr"]
        resolvable = attack_results[name]["fpr_resolvable"]
        keys = sorted((k for k in tprs if resolvable.get(k, True)), key=float)
        return (tprs[keys[0]] if keys else 0.0, attack_results[name]["auc"])

    best = max(attack_results, key=strength)
    score = scores[best]
    non_sorted = np.sort(score[~member])
    exceed = 1.0 - np.searchsorted(non_sorted, score, side="left") / max(len(non_sorted), 1)
    idx = np.flatnonzero(member)
    idx = idx[np.lexsort((-score[idx], exceed[idx]))][:TOP_VULNERABLE]
    return {
        "attack": best,
        "records": [
            {
                "record": int(records[i]),
                "label": class_names[int(labels[i])] if int(labels[i]) < len(class_names) else int(labels[i]),
                "score": float(score[i]),
                "nonmember_exceedance": float(exceed[i]),
            }
            for i in idx
        ],
    }
