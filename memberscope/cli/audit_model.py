"""``memberscope audit-model``: a saved model of the user's, their members and non-members, their ids."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from memberscope.cli import _options as opt
from memberscope.cli._app import app, console


def _columns(value: str | None) -> list[str] | None:
    return None if value is None else [c.strip() for c in value.split(",") if c.strip()]


@app.command("audit-model")
def audit_model_command(
    model: Path = typer.Option(
        ...,
        "--model",
        help="The saved model: a joblib/pickle scikit-learn estimator or Pipeline, a TorchScript or torch.save'd "
        "module, or a memberscope model (with its .json sidecar).",
    ),
    members: Path = typer.Option(..., "--members", help="Records the model trained on: CSV, Parquet, .rda/.rds."),
    nonmembers: Path = typer.Option(..., "--nonmembers", help="Records it did not train on (same columns)."),
    population: Path | None = typer.Option(
        None, "--population", help="Further records no model trained on (default: a quarter of the non-members)."
    ),
    label_column: str = typer.Option("label", "--label-column", help="The label column of the tables."),
    id_column: str | None = typer.Option(
        None, "--id-column", help="Column naming each record (default: its row number in its file, 0 first)."
    ),
    group_column: str | None = typer.Option(None, "--group-column", help="Group column (per-group risk)."),
    feature_columns: str | None = typer.Option(
        None, "--feature-columns", help="Comma-separated feature columns (default: the model's own, by name)."
    ),
    drop_columns: str | None = typer.Option(
        None, "--drop-columns", help="Comma-separated columns that are not features (left out)."
    ),
    drop_duplicates: bool = typer.Option(
        False, "--drop-duplicates", help="Drop non-members that are exact copies of members (an ill-posed question)."
    ),
    recipe: str | None = typer.Option(
        None,
        "--recipe",
        help="How to train reference models like the model: default a clone of a scikit-learn model (or a "
        "memberscope model's own recipe); or a recipe name with --model-param (required for torch modules).",
    ),
    model_param: list[str] = opt.MODEL_PARAM,
    n_classes: int | None = typer.Option(
        None, "--n-classes", help="Outputs of a model that does not name its classes."
    ),
    reference_models: int | None = opt.REFERENCE_MODELS,
    targets: int | None = opt.TARGETS,
    attacks: str | None = opt.ATTACKS,
    seed: int | None = opt.SEED,
    fpr: str | None = opt.FPR,
    n_bootstrap: int | None = opt.N_BOOTSTRAP,
    n_jobs: int | None = opt.N_JOBS,
    backend: str | None = opt.BACKEND,
    ray_address: str | None = opt.RAY_ADDRESS,
    cache_dir: str | None = opt.CACHE_DIR,
    no_cache: bool = opt.NO_CACHE,
    out: Path | None = typer.Option(
        None, "--out", help="Write results.json, scores.csv, roc.png and report.html here (nothing without it)."
    ),
    no_report: bool = typer.Option(False, "--no-report", help="Do not write report.html."),
    db: Path | None = typer.Option(None, "--db", help="Run-history SQLite file (default: user data dir)."),
    model_name: str | None = typer.Option(None, "--model-name", help="Name of the model, for `history --model`."),
    model_version: str | None = typer.Option(None, "--model-version", help="Version of the model."),
    progress: bool | None = opt.PROGRESS,
) -> None:
    """Audit your own saved model on the records it did and did not train on, with reference models like it."""
    from memberscope.api import audit_model
    from memberscope.cli._app import parse_params
    from memberscope.cli.core import finish
    from memberscope.targets import load_target

    values: dict[str, Any] = opt.run_values(
        model_param=[],
        fpr=fpr,
        no_cache=no_cache,
        reference_models=reference_models,
        targets=targets,
        attacks=attacks,
        seed=seed,
        n_bootstrap=n_bootstrap,
        n_jobs=n_jobs,
        backend=backend,
        ray_address=ray_address,
        cache_dir=cache_dir,
        model_name=model_name,
        model_version=model_version,
    )
    target = load_target(model, n_classes=n_classes)
    result = audit_model(
        target,
        members=members,
        nonmembers=nonmembers,
        population=population,
        recipe=recipe,
        recipe_params=parse_params(model_param, "--model-param") if model_param else None,
        label_column=label_column,
        id_column=id_column,
        group_column=group_column,
        feature_columns=_columns(feature_columns),
        drop_columns=_columns(drop_columns),
        drop_duplicates=drop_duplicates,
        n_classes=n_classes,
        progress=progress,
        **values,
    )
    result.results.sections["inputs"]["files"] = {
        "model": str(model),
        "members": str(members),
        "nonmembers": str(nonmembers),
        "population": None if population is None else str(population),
    }
    finish(result, out, report=not no_report, db=db, console_=console())
