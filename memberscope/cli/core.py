"""The audit core's commands: audit, demo, datasets, attacks, gate, report, history."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from memberscope.cli import _options as opt
from memberscope.cli._app import app, console
from memberscope.exceptions import InvalidInputError


def finish(result, out: Path | None, *, report: bool = True, db: Path | None = None, console_=None) -> None:
    """Print a run's table and warnings (a failed fidelity check loudest), write its files, record it in history."""
    from memberscope.report.console import headline_text, one_run_text, results_table

    out_console = console_ or console()
    out_console.print(results_table(result.results))
    out_console.print(headline_text(result.results))
    if (one_run := one_run_text(result.results)) is not None:
        out_console.print(one_run, highlight=False)
    for message in result.results.warnings:
        style = "bold red" if message.startswith("LOW FIDELITY") else "yellow"
        out_console.print(f"[{style}]warning:[/] {message}", highlight=False)
    if out is not None:
        written = result.write(out)
        paths = list(written.values())
        if report:
            from memberscope.report.html import write_html

            paths.append(str(write_html(out, roc_png=written.get("roc"))))
        out_console.print(f"wrote {', '.join(paths)}")
    from memberscope.report.history import default_history_db, record_run

    db = db if db is not None else default_history_db()
    record_run(db, result.results, out_dir=out)
    out_console.print(f"recorded in history {db}")


@app.command()
def audit(
    config: Path | None = typer.Option(None, "--config", help="YAML file of audit settings; flags override it."),
    dataset: str | None = opt.DATASET,
    data_dir: str | None = opt.DATA_DIR,
    label_column: str | None = opt.LABEL_COLUMN,
    group_column: str | None = opt.GROUP_COLUMN,
    id_column: str | None = opt.ID_COLUMN,
    n_records: int | None = opt.N_RECORDS,
    model: str | None = opt.MODEL,
    model_param: list[str] = opt.MODEL_PARAM,
    reference_models: int | None = opt.REFERENCE_MODELS,
    targets: int | None = opt.TARGETS,
    member_prior: float | None = opt.MEMBER_PRIOR,
    attacks: str | None = opt.ATTACKS,
    seed: int | None = opt.SEED,
    pool_size: int | None = opt.POOL_SIZE,
    population_size: int | None = opt.POPULATION_SIZE,
    queries: str | None = typer.Option(None, help="Augmented queries: none, flip or flip-shift (images)."),
    fpr: str | None = opt.FPR,
    n_bootstrap: int | None = opt.N_BOOTSTRAP,
    cache_dir: str | None = opt.CACHE_DIR,
    no_cache: bool = opt.NO_CACHE,
    train_mode: str | None = opt.TRAIN_MODE,
    n_jobs: int | None = opt.N_JOBS,
    backend: str | None = opt.BACKEND,
    ray_address: str | None = opt.RAY_ADDRESS,
    memory_budget: str | None = opt.MEMORY_BUDGET,
    precision: str | None = opt.PRECISION,
    out: Path | None = typer.Option(
        None, help="Output directory for results.json, scores.csv, roc.png and report.html."
    ),
    no_report: bool = typer.Option(False, "--no-report", help="Do not write report.html."),
    db: Path | None = typer.Option(None, "--db", help="Run-history SQLite file (default: user data dir)."),
    progress: bool | None = opt.PROGRESS,
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
    from memberscope.api import run_audit
    from memberscope.config import AuditConfig, load_config_file

    values: dict[str, Any] = load_config_file(config) if config is not None else {}
    flags = opt.run_values(
        dataset=dataset,
        data_dir=data_dir,
        label_column=label_column,
        group_column=group_column,
        id_column=id_column,
        n_records=n_records,
        model=model,
        model_param=model_param,
        reference_models=reference_models,
        targets=targets,
        member_prior=member_prior,
        attacks=attacks,
        seed=seed,
        pool_size=pool_size,
        population_size=population_size,
        queries=queries,
        fpr=fpr,
        n_bootstrap=n_bootstrap,
        cache_dir=cache_dir,
        no_cache=no_cache,
        train_mode=train_mode,
        n_jobs=n_jobs,
        backend=backend,
        ray_address=ray_address,
        memory_budget=memory_budget,
        precision=precision,
        model_name=model_name,
        model_version=model_version,
        one_run_canaries=one_run_canaries,
        epsilon_delta=epsilon_delta,
        out=None if out is None else str(out),
    )
    if "model_params" in flags:
        flags["model_params"] = {**values.get("model_params", {}), **flags["model_params"]}
    values.update(flags)
    cfg = AuditConfig.from_dict(values)
    result = run_audit(cfg, progress=progress)
    finish(result, Path(cfg.out) if cfg.out else None, report=not no_report, db=db)


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
    from memberscope.api import DEMO_CONFIG, run_audit
    from memberscope.config import AuditConfig

    named = {"model_name": model_name, "model_version": model_version}
    cfg = AuditConfig(**{**DEMO_CONFIG, "seed": seed, "out": str(out), **{k: v for k, v in named.items() if v}})
    finish(run_audit(cfg, progress=progress), out, report=not no_report, db=db)


@app.command()
def datasets(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """List the datasets memberscope can load and whether their files are present."""
    from memberscope.datasets import available

    infos = available()
    if as_json:
        typer.echo(
            json.dumps(
                [{k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(i).items()} for i in infos], indent=2
            )
        )
        return
    console().print(datasets_table(infos))


def datasets_table(infos):
    """The ``datasets`` table: each dataset's name with its description below it (wrapped in one wide column,
    so nothing is cut at 80 columns), then its size and whether its files are present."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title="memberscope datasets", show_lines=True)
    table.add_column("dataset", overflow="fold", ratio=1)
    for col in ("records", "features", "classes"):
        table.add_column(col, justify="right", no_wrap=True)
    table.add_column("available", overflow="fold", max_width=24)
    for info in infos:
        cell = Text(info.name, style="bold")
        cell.append(f"\n{info.description}")
        table.add_row(
            cell,
            f"{info.n_records:,}" if info.n_records else "?",
            "×".join(map(str, info.feature_shape)) if info.feature_shape else "?",
            str(info.n_classes or "?"),
            "yes" if info.available else f"no — {info.hint}",
        )
    return table


@app.command()
def attacks(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text.")) -> None:
    """List every attack (classifier and language model): the access it needs, what else, its paper."""
    from memberscope.cli._attacks_listing import print_attacks

    print_attacks(as_json=as_json, width=min(console().width, 100))


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
    allow_low_fidelity: bool = typer.Option(
        False,
        "--allow-low-fidelity",
        help="Let a run whose reference models failed the fidelity check pass (by default it fails).",
    ),
    over_draws: str | None = typer.Option(
        None,
        "--over-draws",
        help="Gate on the training draws of `audit --targets N`: mean (their average) or worst (the leakiest draw).",
    ),
    allow_unresolved_fpr: bool = typer.Option(
        False,
        "--allow-unresolved-fpr",
        help="Gate on a TPR budget at an FPR too small for the run's non-members to resolve (by default it fails: "
        "that TPR is read at FPR 0, so the budget is not measured).",
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
        load_results(results),
        max_tpr_at_fpr=budgets,
        max_auc=max_auc,
        attacks=names,
        use_upper_ci=use_upper_ci,
        allow_low_fidelity=allow_low_fidelity,
        over_draws=over_draws,
        allow_unresolved_fpr=allow_unresolved_fpr,
    )
    typer.echo(verdict.summary())
    if not verdict.passed:
        sys.exit(1)


REPORT_FORMATS = {
    "html": "DIR/report.html, self-contained",
    "md": "DIR/summary.md, for a PR comment",
    "model-card": "DIR/model_card.md: a privacy section with model-index metadata for a Hugging Face model card",
    "evidence": "DIR/evidence.zip: results, report, config, seeds, versions, input digests and a manifest",
}


@app.command()
def report(
    run_dir: Path = typer.Argument(..., help="A run's output folder (audit, defend, attack, llm-audit: results.json)."),
    format: str = typer.Option(
        "html", "--format", help="; ".join(f"{k} ({v})" for k, v in REPORT_FORMATS.items()) + "."
    ),
    out: Path | None = typer.Option(None, "--out", help="Write here instead of the default path in DIR."),
    model_name: str | None = typer.Option(
        None, "--model-name", help="model-card: the model's name in the model-index (default: the run's)."
    ),
    merge_into: Path | None = typer.Option(
        None,
        "--merge-into",
        help="model-card: merge into this Hugging Face model card (README.md; updated in place unless --out).",
    ),
    include: list[Path] = typer.Option(
        [], "--include", help="evidence: also record the SHA-256 of this model or data file (repeatable)."
    ),
) -> None:
    """Write a report of a finished run (any command's --out folder) into its folder."""
    if format not in REPORT_FORMATS:
        raise InvalidInputError(f"--format {format!r} is not supported; expected one of {', '.join(REPORT_FORMATS)}")
    if format != "model-card" and (model_name is not None or merge_into is not None):
        raise InvalidInputError("--model-name and --merge-into apply to --format model-card only")
    if format != "evidence" and include:
        raise InvalidInputError("--include applies to --format evidence only")
    if format in ("md", "html") and out is not None:
        raise InvalidInputError(f"--out applies to --format model-card and evidence; {format} is written into DIR")
    if format == "md":
        from memberscope.report.markdown import write_markdown

        typer.echo(f"wrote {write_markdown(run_dir)}")
    elif format == "html":
        from memberscope.report.html import write_html

        typer.echo(f"wrote {write_html(run_dir)}")
    elif format == "model-card":
        from memberscope.report.model_card import write_model_card

        path = write_model_card(run_dir, model_name=model_name, merge_into=merge_into, out=out)
        typer.echo(f"{'merged into' if merge_into is not None else 'wrote'} {path}")
    else:
        from memberscope.cli.evidence import print_bundle
        from memberscope.report.evidence import write_evidence

        print_bundle(write_evidence(run_dir, out=out, include=include))


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
    console().print(history_table(rows))


def history_table(rows):
    """The ``history`` table, stacked to fit 80 columns without cutting a value: one cell per run holds its date,
    dataset, model, the model's name@version and its output folder (each on its own line, explained in the
    caption); then the reference models (K), the attack and its AUC and TPR @ 1% FPR with the interval below it."""
    from rich.table import Table

    table = Table(
        title="memberscope history",
        show_lines=True,
        caption="run: when it was created, the dataset, the model (and its name@version from --model-name), the "
        "output folder; K: reference models",
    )
    table.add_column("run", overflow="fold", ratio=1)
    table.add_column("K", justify="right", no_wrap=True)
    table.add_column("attack", overflow="fold")
    table.add_column("AUC", justify="right", no_wrap=True)
    table.add_column("TPR @ 1% FPR", justify="right", no_wrap=True)
    for r in rows:
        tpr = "–" if r["tpr_at_1pct"] is None else f"{100 * r['tpr_at_1pct']:.1f}%"
        if r["tpr_at_1pct_low"] is not None:
            tpr += f"\n({100 * r['tpr_at_1pct_low']:.1f}–{100 * r['tpr_at_1pct_high']:.1f}%)"
        run = [str(r["created"]).replace("T", " ", 1), str(r["dataset"]), str(r["model"])]
        if r["model_name"]:
            run.append(f"{r['model_name']}@{r['model_version'] or '?'}")
        run.append(str(r["out_dir"] or "–"))
        table.add_row("\n".join(run), str(r["reference_models"]), r["attack"], f"{r['auc']:.3f}", tpr)
    return table


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
        for regressed, attack, change in comparison.regressions():
            out.print(f"[bold red]REGRESSION[/] {model} {regressed}: {attack} {change.describe()}")
    if fail_on_regression and comparison.latest_regressed:
        typer.echo(f"FAIL: the newest version of {model!r} leaks significantly more than the one before it", err=True)
        sys.exit(1)
