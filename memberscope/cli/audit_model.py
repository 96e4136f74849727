"""``memberscope audit-model``: a saved model of the user's, their members and non-members, their ids."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from memberscope.cli import _options as opt
from memberscope.cli._app import app, console
from memberscope.exceptions import InvalidInputError


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
    member_prior: float | None = opt.MEMBER_PRIOR,
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
    mlflow_run: str | None = typer.Option(
        None, "--mlflow-run", help="Log metrics, config and report to this existing MLflow run (the mlflow extra)."
    ),
    mlflow_experiment: str | None = typer.Option(
        None, "--mlflow-experiment", help="Log to a new MLflow run in this experiment (created when missing)."
    ),
    mlflow_tracking_uri: str | None = typer.Option(
        None, "--mlflow-tracking-uri", help="MLflow tracking store (default: $MLFLOW_TRACKING_URI, else MLflow's)."
    ),
    evidence: Path | None = typer.Option(
        None, "--evidence", help="Also write an evidence bundle (zip) here; needs --out (see `memberscope verify`)."
    ),
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
        member_prior=member_prior,
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
    if mlflow_run is not None and mlflow_experiment is not None:
        raise InvalidInputError("give either --mlflow-run RUN_ID or --mlflow-experiment NAME, not both")
    if mlflow_tracking_uri is not None and mlflow_run is None and mlflow_experiment is None:
        raise InvalidInputError("--mlflow-tracking-uri needs --mlflow-run RUN_ID or --mlflow-experiment NAME")
    if evidence is not None and out is None:
        raise InvalidInputError("--evidence needs --out DIR (the bundle packs the run's files)")
    if mlflow_run is not None or mlflow_experiment is not None:
        from memberscope.integrations.mlflow_logging import _mlflow

        _mlflow()  # a missing extra fails before the audit runs, not after
    files = {"model": model, "members": members, "nonmembers": nonmembers, "population": population}
    digests = _digests({**files, "model_sidecar": Path(str(model) + ".json")})
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
    result.results.config["out"] = None if out is None else str(out)  # written by `finish`, not by audit_model
    result.results.sections["inputs"]["files"] = {k: None if v is None else str(v) for k, v in files.items()}
    result.results.sections["inputs"]["file_digests"] = digests
    finish(result, out, report=not no_report, db=db, console_=console())
    if evidence is not None:
        assert out is not None  # --evidence without --out was refused above
        from memberscope.cli.evidence import print_bundle
        from memberscope.report.evidence import write_evidence

        print_bundle(write_evidence(out, out=evidence))
    if mlflow_run is not None or mlflow_experiment is not None:
        from memberscope.integrations.mlflow_logging import log_to_mlflow

        logged = log_to_mlflow(
            result if out is None else out,
            run_id=mlflow_run,
            experiment=mlflow_experiment,
            run_name=model_name,
            tracking_uri=mlflow_tracking_uri,
        )
        console().print(f"logged to MLflow run {logged}")


def _digests(files: dict[str, Path | None]) -> dict[str, dict[str, Any]]:
    """SHA-256 of each input file as it was read for the audit (kept in results.json; the evidence bundle compares
    the files against them later)."""
    from memberscope.report.evidence import file_digest

    return {
        role: {"path": str(path), "sha256": file_digest(path), "bytes": path.stat().st_size}
        for role, path in files.items()
        if path is not None and Path(path).is_file()
    }
