"""The Python API: ``audit`` and ``run_audit`` (a dataset: the target trained on a random half of the audit pool),
``audit_model`` (a model the user trained, on the members and non-members they give) and ``demo``.

Each builds a plan for the engine (:mod:`memberscope.engine`), nothing more.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

import numpy as np

from memberscope.config import AuditConfig
from memberscope.engine.run import AuditPlan, run_plan
from memberscope.exceptions import InvalidInputError
from memberscope.game import MembershipGame, derive_seed, make_game, paired_masks, split_pool
from memberscope.recipes import Recipe
from memberscope.recipes import create as create_recipe
from memberscope.results import AuditResult

__all__ = [
    "DEMO_CONFIG",
    "audit",
    "audit_model",
    "check_pool_size",
    "demo",
    "pool_sizes",
    "run_audit",
    "write_run",
]

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
        write_run(result, out)
    return result


def write_run(result: AuditResult, out: str, *, report: bool = True) -> dict[str, str]:
    """Everything of a run in ``out``: results.json, scores.csv, roc.png and (``report``) report.html."""
    paths = result.write(out)
    if report:
        from memberscope.report.html import write_html

        paths["report"] = str(write_html(out, roc_png=paths.get("roc")))  # the ROC just drawn, not drawn again
    return paths


def demo(*, out: str = "runs/demo", progress: bool | None = None, **overrides: Any) -> AuditResult:
    """The demo audit (digits, MLP, 16 reference models, every attack)."""
    return audit(out=out, progress=progress, **{**DEMO_CONFIG, **overrides})


def pool_sizes(n_total: int, config: Any) -> tuple[int, int]:
    """``(pool, population)`` sizes: the configured ones, else a quarter of the records (at most 10,000) as
    population and the rest (at most 20,000) as the audit pool."""
    population = config.population_size if config.population_size is not None else min(10_000, n_total // 4)
    pool = config.pool_size if config.pool_size is not None else min(20_000, n_total - population)
    return pool, population


def _game_counts(pool_size: int) -> tuple[int, int]:
    """``(members, non-members)`` of a pool of ``pool_size`` records, as :func:`~memberscope.game.make_game` splits
    it."""
    n_members = int(round(0.5 * pool_size))
    return n_members, pool_size - n_members


def check_pool_size(n_records: int, pool_size: int, config: Any) -> None:
    """Refuse, before any training, a dataset whose audit pool (:func:`pool_sizes`) cannot give the target
    :data:`~memberscope.metrics.MIN_MEMBERS` members and as many non-members.

    Raises
    ------
    InvalidInputError
        Naming the table's row count and the minimum it needs (or, for an explicit ``pool_size``, the pool's).
    """
    from memberscope.metrics import MIN_MEMBERS, MIN_NONMEMBERS

    def enough(pool: int) -> bool:
        members, nonmembers = _game_counts(pool)
        return members >= MIN_MEMBERS and nonmembers >= MIN_NONMEMBERS

    if enough(pool_size):
        return
    members, nonmembers = _game_counts(pool_size)
    need = f"at least {MIN_MEMBERS} members and {MIN_NONMEMBERS} non-members"
    if config.pool_size is not None:
        raise InvalidInputError(
            f"pool_size {pool_size} gives the target {members} members and {nonmembers} non-members; {need} are "
            f"needed: use a pool_size of at least {MIN_MEMBERS + MIN_NONMEMBERS}"
        )
    # The pool grows with the row count (all but the population), so a large enough table always passes.
    minimum = next(n for n in itertools.count(n_records + 1) if enough(pool_sizes(n, config)[0]))
    raise InvalidInputError(
        f"dataset {str(config.dataset)!r} has {n_records} rows: too few to audit. An audit needs at least {minimum} "
        f"rows: the rows not kept as population ({pool_size} here) are split in half into the target's members "
        f"and non-members, and {need} are needed (here {members} and {nonmembers})"
    )


def load_and_split(config: Any) -> tuple[Any, np.ndarray, np.ndarray]:
    """The run's dataset (``config``'s data options) and its seeded disjoint ``(pool_idx, population_idx)``
    (:func:`pool_sizes`), as ``audit`` and ``defend`` both draw them."""
    from memberscope import datasets

    dataset = datasets.load(
        config.dataset,
        data_dir=config.data_dir,
        seed=config.seed,
        n_records=config.n_records,
        label_column=config.label_column,
        group_column=config.group_column,
        id_column=config.id_column,
    )
    _check_two_classes(dataset, config.label_column)
    pool_size, population_size = pool_sizes(dataset.n_records, config)
    check_pool_size(dataset.n_records, pool_size, config)
    pool_idx, population_idx = split_pool(
        dataset.n_records,
        pool_size=pool_size,
        population_size=population_size,
        seed=derive_seed(config.seed, "split", 0),
    )
    return dataset, pool_idx, population_idx


def _check_two_classes(dataset: Any, label_column: str | None) -> None:
    """Refuse a dataset whose records are all of one class, naming the class counts: no model (target or
    reference) can be trained on one class, and its membership figures would be meaningless."""
    counts = np.bincount(np.asarray(dataset.y, dtype=np.int64), minlength=dataset.n_classes)
    if np.count_nonzero(counts) >= 2:
        return
    names = dataset.class_names or [str(c) for c in range(len(counts))]
    listing = ", ".join(f"{names[c]!r}: {int(counts[c])} records" for c in np.flatnonzero(counts)) or "no records"
    column = f" in label column {label_column!r}" if label_column else ""
    raise InvalidInputError(
        f"dataset {dataset.name!r} has records of one class only{column} ({listing}); a membership audit needs "
        "records of at least two classes (neither the target nor reference models can be trained on one)"
    )


def run_audit(config: AuditConfig, *, progress: bool | None = None) -> AuditResult:
    """Run the audit ``config`` describes: train a target and reference models on a dataset and attack the target."""
    dataset, pool_idx, population_idx = load_and_split(config)
    game = make_game(len(pool_idx), config.reference_models, seed=config.seed)
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
    members: Any,
    nonmembers: Any,
    population: Any = None,
    recipe: Recipe | str | Any = None,
    recipe_params: dict[str, Any] | None = None,
    label_column: str = "label",
    id_column: str | None = None,
    group_column: str | None = None,
    feature_columns: list[str] | None = None,
    drop_columns: list[str] | None = None,
    drop_duplicates: bool = False,
    n_classes: int | None = None,
    out: str | None = None,
    db: str | os.PathLike | None = None,
    progress: bool | None = None,
    **config_values: Any,
) -> AuditResult:
    """Audit a model you trained yourself ("does MY model leak who was in its training data?").

    Parameters
    ----------
    model : anything :func:`memberscope.targets.wrap` accepts: a fitted scikit-learn classifier or Pipeline
        (``predict_proba``), a ``torch.nn.Module``, a callable, a saved model file, an http(s) URL, or a
        :class:`~memberscope.targets.Target`.
    members, nonmembers : the records the model did and did not train on: tables (pandas DataFrames, or paths to
        CSV, Parquet or R data files, with a ``label_column``) or ``(X, y)`` pairs (arrays or DataFrames).
    population : further records no model trained on (RMIA, class calibration), as above; by default a seeded
        quarter of the non-members (at most 2,000).
    recipe : how to train reference models like the model: None (a clone of a scikit-learn model; a memberscope
        model's own recipe), a recipe name (``"mlp"``, with ``recipe_params``), a :class:`~memberscope.recipes.Recipe`,
        or a training function ``train_fn(X, y, seed) -> model``. See :func:`memberscope.recipes.recipe_for`.
    label_column, id_column, group_column : columns of the tables; ``record`` in every output is the id column's
        value, else the record's row in the table or array given.
    feature_columns, drop_columns : which table columns are features; columns are matched to the model's by name.
    drop_duplicates : drop non-members (and population records) that are exact copies of a member.
    n_classes : output columns of a model that does not name its classes (a torch module, a callable).
    out : write results.json, scores.csv, roc.png and report.html here; nothing is written without it.
    db : record the run in this run-history SQLite file, as ``audit-model --db`` does (``memberscope history``);
        nothing is recorded without it.
    config_values : other :class:`~memberscope.config.AuditConfig` fields (``reference_models``, ``attacks``,
        ``seed``, ``n_jobs``, ...).

    Returns
    -------
    AuditResult
        With ``results.sections["fidelity"]`` (do the reference models behave like the target?),
        ``results.sections["inputs"]`` (columns used, label mapping, duplicates) and ``results.headline`` (the FPR,
        the strongest attack, the finding and the risk level: results.json's ``headline``).

    Raises
    ------
    InvalidInputError
        For a model that cannot be queried (no ``predict_proba``, a regressor), records that do not fit it (missing
        or extra columns, unknown labels, one class, text in a numeric column, members and non-members that are the
        same records), no way to build reference models like it, or a keyword that is no setting.
    """
    from memberscope.engine.inputs import prepare_inputs
    from memberscope.recipes import recipe_for
    from memberscope.results.io import json_safe
    from memberscope.targets import wrap

    _check_config_names(config_values, "audit_model", set_here=("dataset", "model", "model_params"))
    seed = int(config_values.get("seed", 0))
    if config_values.get("one_run_canaries") is not None:
        raise InvalidInputError(
            "one_run_canaries needs the audit to draw which records the target trains on; a model you trained "
            "yourself has fixed members, so audit it without one_run_canaries"
        )
    target = wrap(model, n_classes=n_classes)
    needs_references = config_values.get("reference_models", AuditConfig.reference_models) != 0
    reference_recipe = recipe_for(target, recipe, recipe_params, required=needs_references)
    config = AuditConfig(
        dataset="user-model",
        model=reference_recipe.name,
        model_params=json_safe(reference_recipe.config()),
        label_column=label_column,
        group_column=group_column,
        id_column=id_column,
        out=None if out is None else str(out),
        **config_values,
    )
    inputs = prepare_inputs(
        target,
        members,
        nonmembers,
        population,
        label_column=label_column,
        id_column=id_column,
        group_column=group_column,
        feature_columns=feature_columns,
        drop_columns=drop_columns,
        drop_duplicates=drop_duplicates,
        n_classes=n_classes,
        seed=seed,
    )
    n_mem, n_non = inputs.n_members, inputs.n_nonmembers
    target_mask = np.zeros(n_mem + n_non, dtype=bool)
    target_mask[:n_mem] = True
    references = paired_masks(n_mem + n_non, config.reference_models, seed=derive_seed(seed, "reference-masks", 0))
    plan = AuditPlan(
        config=config,
        dataset=inputs.dataset,
        pool_idx=np.arange(n_mem + n_non),
        population_idx=np.arange(n_mem + n_non, n_mem + n_non + inputs.n_population),
        game=MembershipGame(target_mask=target_mask, reference_masks=references),
        recipe=reference_recipe,
        target=target,
        target_description={
            "recipe": None,
            "description": target.description,
            "reference_recipe": {"name": reference_recipe.name, **json_safe(reference_recipe.config())},
        },
        columns={"set": inputs.sets[: n_mem + n_non]},
        inputs=inputs.section,
        warnings=inputs.warnings,
        default_recipe=recipe is None and not recipe_params,
    )
    result = run_plan(plan, progress=progress)
    if out is not None:
        write_run(result, out)
    if db is not None:
        from memberscope.report.history import record_run

        record_run(Path(db), result.results, out_dir=out)
    return result


def _check_config_names(values: dict[str, Any], where: str, *, set_here: tuple[str, ...] = ()) -> None:
    """Refuse keywords that are neither parameters nor :class:`~memberscope.config.AuditConfig` fields (or are
    fields ``where`` sets itself, ``set_here``), naming them and the settings there are (instead of a TypeError
    from deep inside)."""
    import dataclasses

    known = {f.name for f in dataclasses.fields(AuditConfig)} - set(set_here)
    unknown = sorted(set(values) - known)
    if unknown:
        raise InvalidInputError(
            f"{where}() got the unknown setting(s) {unknown}; expected its parameters or AuditConfig fields: "
            f"{', '.join(sorted(known))}"
        )


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
