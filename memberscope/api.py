"""The Python API: ``audit`` and ``run_audit`` (a dataset: the target trained on a random half of the audit pool),
``audit_model`` (a model the user trained, on the members and non-members they give) and ``demo``.

Each builds a plan for the engine (:mod:`memberscope.engine`), nothing more.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from memberscope.config import AuditConfig
from memberscope.engine.run import AuditPlan, run_plan
from memberscope.exceptions import InvalidInputError
from memberscope.game import MembershipGame, derive_seed, make_game, paired_masks, split_pool
from memberscope.recipes import Recipe
from memberscope.recipes import create as create_recipe
from memberscope.results import AuditResult

__all__ = ["DEMO_CONFIG", "audit", "audit_model", "demo", "pool_sizes", "run_audit"]

# The demo: a small MLP on scikit-learn's bundled digits, overfit on purpose, 16 reference models.
DEMO_CONFIG: dict[str, Any] = {
    "dataset": "digits",
    "model": "mlp",
    "model_params": {"hidden": [256, 256], "epochs": 100},
    "reference_models": 16,
    "attacks": ["all"],
    "seed": 0,
}


def audit(*, out: str | None = None, progress: bool | None = None, **config_values: Any) -> AuditResult:
    """Run an audit; ``config_values`` are :class:`~memberscope.config.AuditConfig` fields. Writes outputs when
    ``out`` is given.

    >>> result = memberscope.audit(dataset="digits", model="mlp", reference_models=8, out="runs/digits")
    >>> result.results.attacks["lira-online"].auc
    """
    config = AuditConfig(out=out, **config_values)
    result = run_audit(config, progress=progress)
    if out is not None:
        result.write(out)
    return result


def demo(*, out: str = "runs/demo", progress: bool | None = None, **overrides: Any) -> AuditResult:
    """The demo audit (digits, MLP, 16 reference models, every attack)."""
    return audit(out=out, progress=progress, **{**DEMO_CONFIG, **overrides})


def pool_sizes(n_total: int, config: Any) -> tuple[int, int]:
    """``(pool, population)`` sizes: the configured ones, else a quarter of the records (at most 10,000) as
    population and the rest (at most 20,000) as the audit pool."""
    population = config.population_size if config.population_size is not None else min(10_000, n_total // 4)
    pool = config.pool_size if config.pool_size is not None else min(20_000, n_total - population)
    return pool, population


def run_audit(config: AuditConfig, *, progress: bool | None = None) -> AuditResult:
    """Run the audit ``config`` describes: train a target and reference models on a dataset and attack the target."""
    from memberscope import datasets

    dataset = datasets.load(
        config.dataset,
        data_dir=config.data_dir,
        seed=config.seed,
        n_records=config.n_records,
        label_column=config.label_column,
        group_column=config.group_column,
    )
    pool_size, population_size = pool_sizes(dataset.n_records, config)
    pool_idx, population_idx = split_pool(
        dataset.n_records,
        pool_size=pool_size,
        population_size=population_size,
        seed=derive_seed(config.seed, "split", 0),
    )
    game = make_game(pool_size, config.reference_models, seed=config.seed)
    canaries = None
    if config.one_run_canaries is not None:
        game, canaries = _with_canaries(game, config.one_run_canaries, seed=config.seed)
    plan = AuditPlan(
        config=config,
        dataset=dataset,
        pool_idx=pool_idx,
        population_idx=population_idx,
        game=game,
        recipe=create_recipe(config.model, **config.model_params),
        canaries=canaries,
    )
    return run_plan(plan, progress=progress)


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
    model : anything :func:`memberscope.targets.wrap` accepts: a fitted scikit-learn classifier
        (``predict_proba``), a ``torch.nn.Module``, a callable, a saved model file, an http(s) URL, or a
        :class:`~memberscope.targets.Target`.
    members, nonmembers : ``(X, y)`` with ``X`` of shape ``(n, ...)`` and ``y`` of shape ``(n,)``;
        records the model did and did not train on.
    recipe : how to train reference models like it (a :class:`Recipe` or a recipe name).
    population : ``(X, y)`` of further records no model trained on (for RMIA and class calibration).
        When omitted, a quarter of the non-members (at most 2,000) is set aside as population.
    config_values : other :class:`AuditConfig` fields (``reference_models``, ``attacks``, ``seed``, ...).
    """
    from memberscope.datasets import Dataset
    from memberscope.targets import wrap

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
        rng = np.random.default_rng(derive_seed(config.seed, "byo-population", 0))
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
    target_mask = np.zeros(n_mem + n_non, dtype=bool)
    target_mask[:n_mem] = True
    references = paired_masks(
        n_mem + n_non, config.reference_models, seed=derive_seed(config.seed, "reference-masks", 0)
    )
    target = wrap(model, n_classes=n_classes)
    plan = AuditPlan(
        config=config,
        dataset=dataset,
        pool_idx=np.arange(n_mem + n_non),
        population_idx=np.arange(n_mem + n_non, n_mem + n_non + n_pop),
        game=MembershipGame(target_mask=target_mask, reference_masks=references),
        recipe=recipe,
        target=target,
    )
    return run_plan(plan, progress=progress)


def _with_canaries(game: MembershipGame, m: int, *, seed: int) -> tuple[MembershipGame, np.ndarray]:
    """Pick ``m`` pool records as canaries and re-draw their inclusion independently with probability 1/2.

    The one-run theorem needs independent inclusions; the game's own mask has exactly half members, so the
    canaries' bits are re-drawn (the other records keep theirs, independently of the canaries).
    """
    if m > game.n_pool:
        raise InvalidInputError(f"one_run_canaries {m} exceeds the audit pool of {game.n_pool} records")
    rng = np.random.default_rng(derive_seed(seed, "one-run-canaries", 0))
    canaries = np.sort(rng.choice(game.n_pool, size=m, replace=False))
    mask = game.target_mask.copy()
    mask[canaries] = rng.random(m) < 0.5
    included = int(mask[canaries].sum())
    if included in (0, m):  # likely only for a handful of canaries; checked before any training
        raise InvalidInputError(f"all {m} canaries were drawn {'in' if included else 'out'}; use more canaries")
    return MembershipGame(target_mask=mask, reference_masks=game.reference_masks), canaries
