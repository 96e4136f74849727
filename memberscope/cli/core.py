"""The audit core's commands: audit, demo, datasets, attacks, gate, report, history."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from memberscope.cli._app import app, console, parse_params
from memberscope.exceptions import InvalidInputError


def _finish(result, out: Path | None, *, report: bool = True, db: Path | None = None) -> None:
    from memberscope.outputs import results_table

    out_console = console()
    out_console.print(results_table(result.results))
    for message in result.results.get("warnings", []):
        out_console.print(f"[yellow]warning:[/] {message}")
    if out is not None:
        paths = list(result.write(out).values())
        if report:
            from memberscope.report.html import write_html

            paths.append(str(write_html(out)))
        out_console.print(f"wrote {', '.join(paths)}")
    from memberscope.report.history import default_history_db, record_run

    db = db if db is not None else default_history_db()
    record_run(db, result.results, out_dir=out)
    out_console.print(f"recorded in history {db}")


@app.command()
def audit(
    config: Path | None = typer.Option(None, "--config", help="YAML file of audit settings; flags override it."),
    dataset: str | None = typer.Option(
        None, help="Dataset name (see `memberscope datasets`) or a CSV/Parquet/NPZ path."
    ),
    data_dir: str | None = typer.Option(None, help="Folder holding the dataset's files (e.g. Fashion-MNIST IDX)."),
    label_column: str | None = typer.Option(None, help="Label column of a user table."),
    group_column: str | None = typer.Option(None, help="Group column of a user table (per-group risk)."),
    n_records: int | None = typer.Option(None, help="Use a seeded random subset of this many records."),
    model: str | None = typer.Option(None, help="Recipe: mlp, cnn, logreg or sklearn."),
    model_param: list[str] = typer.Option([], "--model-param", help="Recipe hyperparameter KEY=VALUE (repeatable)."),
    reference_models: int | None = typer.Option(None, "--reference-models", "-k", help="Number of reference models K."),
    attacks: str | None = typer.Option(None, help="Comma-separated attacks, or 'all'."),
    seed: int | None = typer.Option(None, help="Seed for masks, training and bootstrap."),
    pool_size: int | None = typer.Option(None, help="Records in the audit pool (half become target members)."),
    population_size: int | None = typer.Option(None, help="Population records no model trains on."),
    queries: str | None = typer.Option(None, help="Augmented queries: none, flip or flip-shift (images)."),
    fpr: str | None = typer.Option(None, help="Comma-separated FPRs to report, each in (0, 1)."),
    n_bootstrap: int | None = typer.Option(None, help="Bootstrap replicates for the confidence intervals."),
    cache_dir: str | None = typer.Option(None, help="Where trained models and outputs are cached."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Do not read or write the model cache."),
    train_mode: str | None = typer.Option(
        None, help="sequential, or vectorized: reference models trained as one batch (torch mlp/logreg)."
    ),
    n_jobs: int | None = typer.Option(
        None, "--n-jobs", help="Train models as parallel joblib jobs on this many workers (-1: all CPUs)."
    ),
    backend: str | None = typer.Option(
        None, help="joblib backend for --n-jobs: loky, threading, multiprocessing, ray or dask."
    ),
    ray_address: str | None = typer.Option(
        None, help="Ray cluster to train on with --backend ray (default: $RAY_ADDRESS, else a local one)."
    ),
    memory_budget: str | None = typer.Option(
        None, help="Memory for vectorized training batches, e.g. 2GiB; reference models are split to fit."
    ),
    out: Path | None = typer.Option(
        None, help="Output directory for results.json, scores.csv, roc.png and report.html."
    ),
    no_report: bool = typer.Option(False, "--no-report", help="Do not write report.html."),
    db: Path | None = typer.Option(None, "--db", help="Run-history SQLite file (default: user data dir)."),
    progress: bool | None = typer.Option(
        None, "--progress/--no-progress", help="Progress bars (default: on a terminal)."
    ),
    model_name: str | None = typer.Option(
        None, "--model-name", help="Name of the audited model, to compare its versions in `memberscope history`."
    ),
    model_version: str | None = typer.Option(None, "--model-version", help="Version of the audited model."),
    one_run_canaries: int | None = typer.Option(
        None, "--one-run-canaries", help="One-run ε audit: M pool records become canaries (Steinke et al. 2023)."
    ),
    epsilon_delta: float | None = typer.Option(
        None, "--epsilon-delta", help="δ of the ε lower bounds (default: the recipe's claimed δ, else 0)."
    ),
) -> None:
    """Audit a model trained on a dataset: train a target and reference models, attack, report."""
    from memberscope.audit import AuditConfig, load_config_file, run_audit

    values: dict[str, Any] = load_config_file(config) if config is not None else {}
    flags = dict(
        dataset=dataset,
        data_dir=data_dir,
        label_column=label_column,
        group_column=group_column,
        n_records=n_records,
        model=model,
        reference_models=reference_models,
        attacks=attacks,
        seed=seed,
        pool_size=pool_size,
        population_size=population_size,
        queries=queries,
        n_bootstrap=n_bootstrap,
        cache_dir=cache_dir,
        train_mode=train_mode,
        model_name=model_name,
        model_version=model_version,
        one_run_canaries=one_run_canaries,
        epsilon_delta=epsilon_delta,
        n_jobs=n_jobs,
        backend=backend,
        ray_address=ray_address,
        memory_budget=memory_budget,
    )
    values.update({k: v for k, v in flags.items() if v is not None})
    if model_param:
        values["model_params"] = {**values.get("model_params", {}), **parse_params(model_param, "--model-param")}
    if fpr is not None:
        try:
            values["fprs"] = [float(f) for f in fpr.split(",") if f.strip()]
        except ValueError:
            raise InvalidInputError(f"--fpr {fpr!r} must be comma-separated numbers in (0, 1)") from None
    if no_cache:
        values["use_cache"] = False
    if out is not None:
        values["out"] = str(out)
    cfg = AuditConfig.from_dict(values)
    result = run_audit(cfg, progress=progress)
    _finish(result, Path(cfg.out) if cfg.out else None, report=not no_report, db=db)


@app.command()
def demo(
    out: Path = typer.Option(Path("runs/demo"), help="Output directory."),
    seed: int = typer.Option(0, help="Seed."),
    progress: bool | None = typer.Option(None, "--progress/--no-progress"),
    no_report: bool = typer.Option(False, "--no-report", help="Do not write report.html."),
    db: Path | None = typer.Option(None, "--db", help="Run-history SQLite file (default: user data dir)."),
    model_name: str | None = typer.Option(None, "--model-name", help="Name of the model, for `history --model`."),
    model_version: str | None = typer.Option(None, "--model-version", help="Version of the model."),
) -> None:
    """The demo audit: an overfit MLP on scikit-learn's digits, 16 reference models, every attack."""
    from memberscope.api import DEMO_CONFIG
    from memberscope.audit import AuditConfig, run_audit

    named = {"model_name": model_name, "model_version": model_version}
    cfg = AuditConfig(**{**DEMO_CONFIG, "seed": seed, "out": str(out), **{k: v for k, v in named.items() if v}})
    _finish(run_audit(cfg, progress=progress), out, report=not no_report, db=db)


@app.command()
def datasets(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """List the datasets memberscope can load and whether their files are present."""
    from rich.table import Table

    from memberscope.datasets import available

    infos = available()
    if as_json:
        typer.echo(
            json.dumps(
                [{k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(i).items()} for i in infos], indent=2
            )
        )
        return
    table = Table(title="memberscope datasets")
    for col in ("name", "records", "features", "classes", "available", "description"):
        table.add_column(col)
    for info in infos:
        table.add_row(
            info.name,
            f"{info.n_records:,}" if info.n_records else "?",
            "×".join(map(str, info.feature_shape)) if info.feature_shape else "?",
            str(info.n_classes or "?"),
            "yes" if info.available else f"no — {info.hint}",
            info.description,
        )
    console().print(table)


@app.command()
def attacks() -> None:
    """List the attacks and how many reference models each needs."""
    from memberscope.attacks import ATTACKS

    for name in ATTACKS.names():
        cls = ATTACKS.get(name)
        doc = (cls.__doc__ or "").strip().splitlines()[0]
        typer.echo(f"{name:18s} K>={cls.min_reference_models:<3d} {doc}")


@app.command()
def gate(
    results: Path = typer.Argument(..., help="An audit's results.json (or the folder holding it)."),
    max_tpr_at_fpr: list[str] = typer.Option(
        [], "--max-tpr-at-fpr", help="Budget FPR:TPR, e.g. 0.01:0.05 (repeatable); FPR must be recorded."
    ),
    max_auc: float | None = typer.Option(None, "--max-auc", help="Largest acceptable AUC, in (0, 1)."),
    attacks: str | None = typer.Option(None, help="Comma-separated attacks to check (default: all recorded)."),
    use_upper_ci: bool = typer.Option(
        False, "--use-upper-ci", help="Compare the 95% CI upper bound instead of the point estimate."
    ),
) -> None:
    """Privacy gate: exit 1 if any attack exceeds a budget, 0 if all are within it, 2 on bad input."""
    from memberscope.report.gate import check_budget, load_results, parse_tpr_budget

    budgets: dict[float, float] = {}
    for spec in max_tpr_at_fpr:
        fpr, tpr = parse_tpr_budget(spec)
        budgets[fpr] = tpr
    names = [a.strip() for a in attacks.split(",") if a.strip()] if attacks is not None else None
    verdict = check_budget(
        load_results(results), max_tpr_at_fpr=budgets, max_auc=max_auc, attacks=names, use_upper_ci=use_upper_ci
    )
    typer.echo(verdict.summary())
    if not verdict.passed:
        sys.exit(1)


@app.command()
def report(
    run_dir: Path = typer.Argument(..., help="An audit's output folder (holding results.json, scores.csv)."),
    format: str = typer.Option(
        "html", "--format", help="html (DIR/report.html, self-contained) or md (DIR/summary.md, for a PR comment)."
    ),
) -> None:
    """Write a report of a finished audit into its folder."""
    if format == "md":
        from memberscope.report.markdown import write_markdown

        typer.echo(f"wrote {write_markdown(run_dir)}")
    elif format == "html":
        from memberscope.report.html import write_html

        typer.echo(f"wrote {write_html(run_dir)}")
    else:
        raise InvalidInputError(f"--format {format!r} is not supported; expected html or md")


@app.command()
def history(
    db: Path | None = typer.Option(None, "--db", help="Run-history SQLite file (default: user data dir)."),
    limit: int = typer.Option(20, help="Show the latest N rows."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    model: str | None = typer.Option(
        None, "--model", help="Compare the recorded versions of this model name (audit --model-name)."
    ),
    rule: str = typer.Option(
        "ci", "--rule", help="Regression rule: ci (new CI above old CI) or point (new estimate above old CI)."
    ),
    fail_on_regression: bool = typer.Option(
        False, "--fail-on-regression", help="With --model: exit 1 when the newest version regressed."
    ),
) -> None:
    """List past audits (one row per attack), newest first; with --model, compare a model's versions."""
    from rich.table import Table

    from memberscope.report.history import default_history_db, list_runs

    if model is not None:
        _history_compare(db if db is not None else default_history_db(), model, rule, as_json, fail_on_regression)
        return
    if fail_on_regression:
        raise InvalidInputError("--fail-on-regression needs --model NAME (the model whose versions to compare)")
    rows = list_runs(db if db is not None else default_history_db(), limit=limit)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="memberscope history")
    for col in ("created", "dataset", "model", "name@version", "K", "attack", "AUC", "TPR @ 1% FPR (95% CI)", "out"):
        table.add_column(col)
    for r in rows:
        tpr = "–" if r["tpr_at_1pct"] is None else f"{r['tpr_at_1pct']:.4f}"
        if r["tpr_at_1pct_low"] is not None:
            tpr += f" ({r['tpr_at_1pct_low']:.4f}–{r['tpr_at_1pct_high']:.4f})"
        table.add_row(
            str(r["created"]),
            str(r["dataset"]),
            str(r["model"]),
            f"{r['model_name']}@{r['model_version'] or '?'}" if r["model_name"] else "–",
            str(r["reference_models"]),
            r["attack"],
            f"{r['auc']:.3f}",
            tpr,
            str(r["out_dir"] or "–"),
        )
    console().print(table)


def _history_compare(db: Path, model: str, rule: str, as_json: bool, fail_on_regression: bool) -> None:
    from rich.table import Table

    from memberscope.report.history import REGRESSION_RULES, compare_versions

    comparison = compare_versions(db, model, rule=rule)
    if as_json:
        typer.echo(json.dumps(comparison.to_dict(), indent=2))
    else:

        def cell(value, ci, digits):
            if value is None:
                return "–"
            return f"{value:.{digits}f}" + (f" ({ci[0]:.{digits}f}–{ci[1]:.{digits}f})" if ci else "")

        table = Table(title=f"memberscope history: {model}")
        for col in ("version", "created", "attack", "AUC (95% CI)", "TPR @ 1% FPR (95% CI)", "vs previous"):
            table.add_column(col)
        for version in comparison.versions:
            for attack, entry in version["attacks"].items():
                flagged = [c for c in entry["changes"] if c.regression]
                verdict = "[bold red]REGRESSION[/]" if flagged else ("ok" if entry["changes"] else "–")
                table.add_row(
                    version["version"],
                    str(version["created"]),
                    attack,
                    cell(entry["auc"], entry["auc_ci"], 3),
                    cell(entry["tpr_at_1pct"], entry["tpr_at_1pct_ci"], 4),
                    verdict,
                )
        out = console()
        out.print(table)
        out.print(f"regression rule ({rule}): {REGRESSION_RULES[rule]}")
        for version, attack, change in comparison.regressions():
            out.print(f"[bold red]REGRESSION[/] {model} {version}: {attack} {change.describe()}")
    if fail_on_regression and comparison.latest_regressed:
        typer.echo(f"FAIL: the newest version of {model!r} leaks significantly more than the one before it", err=True)
        sys.exit(1)
