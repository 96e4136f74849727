"""``memberscope defend``: measure defenses on the privacy–utility frontier."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from memberscope.cli import _options as opt
from memberscope.cli._app import app, console


def defenses_table(results):
    """A ``rich.table.Table``: one row per defense, its accuracy, ε and the strongest attack's leakage."""
    from rich.table import Table

    from memberscope.metrics import fpr_key

    budget = results.sections["recommendation"]["budget"]
    key = fpr_key(budget["fpr"])
    table = Table(title=f"{results.dataset.name}: defenses (95% CIs; strongest attack per defense)")
    for col in (
        "defense",
        "test acc",
        "cost",
        "ε (δ)",
        "strongest attack",
        f"TPR @ {100 * budget['fpr']:g}% FPR",
        "AUC",
    ):
        table.add_column(col, justify="left" if col in ("defense", "strongest attack") else "right")
    for name, entry in results.sections["defenses"].items():
        attack = entry["attacks"][entry["strongest_attack"]]
        lo, hi = attack["tpr_at_fpr_ci"][key]
        cost = entry.get("accuracy_cost")
        table.add_row(
            name,
            f"{entry['test_accuracy']:.4f}",
            "–" if cost is None else f"{100 * cost:+.2f} pt",
            "–" if entry["epsilon"] is None else f"{entry['epsilon']:.2f} ({entry['delta']:.0e})",
            entry["strongest_attack"],
            f"{100 * attack['tpr_at_fpr'][key]:.2f}% ({100 * lo:.2f}–{100 * hi:.2f})",
            f"{attack['auc']:.3f} ({attack['auc_ci'][0]:.3f}–{attack['auc_ci'][1]:.3f})",
        )
    return table


def _defenses_help() -> str:
    from memberscope.defenses.evaluate import TRAINING_DEFENSES
    from memberscope.targets.postprocess import POSTPROCESSORS

    training = ", ".join(sorted(TRAINING_DEFENSES))
    output = ", ".join(sorted(n for n in POSTPROCESSORS if n != "identity"))
    return (
        f"Comma-separated defenses. Training-time: {training} (a bare value sets the main option, e.g. l2:1e-3, "
        f"or KEY=VALUE pairs, e.g. dp-sgd:eps=8:delta=1e-5:clip=1; minimize[:fraction][:by=vulnerability|"
        f"uniqueness]). Output post-processors: {output} (e.g. round:2, top-k:1; '+' composes them)."
    )


@app.command()
def defend(
    config: Path | None = typer.Option(None, "--config", help="YAML file of settings; flags override it."),
    dataset: str | None = opt.DATASET,
    data_dir: str | None = opt.DATA_DIR,
    label_column: str | None = opt.LABEL_COLUMN,
    group_column: str | None = opt.GROUP_COLUMN,
    id_column: str | None = opt.ID_COLUMN,
    n_records: int | None = opt.N_RECORDS,
    defenses: str | None = typer.Option(None, help=_defenses_help()),
    model: str | None = opt.MODEL,
    model_param: list[str] = opt.MODEL_PARAM,
    reference_models: int | None = opt.REFERENCE_MODELS,
    attacks: str | None = opt.ATTACKS,
    pool_size: int | None = opt.POOL_SIZE,
    population_size: int | None = opt.POPULATION_SIZE,
    seed: int | None = opt.SEED,
    budget: str | None = typer.Option(
        None, help="Leakage budget FPR:TPR for the recommendation (CI upper bound); default 0.01:0.05."
    ),
    fpr: str | None = opt.FPR,
    n_bootstrap: int | None = opt.N_BOOTSTRAP,
    label_only_queries: int | None = typer.Option(None, help="Perturbed queries per record of the label-only attack."),
    train_mode: str | None = opt.TRAIN_MODE,
    n_jobs: int | None = opt.N_JOBS,
    backend: str | None = opt.BACKEND,
    ray_address: str | None = opt.RAY_ADDRESS,
    memory_budget: str | None = opt.MEMORY_BUDGET,
    precision: str | None = opt.PRECISION,
    cache_dir: str | None = opt.CACHE_DIR,
    no_cache: bool = opt.NO_CACHE,
    out: Path = typer.Option(Path("runs/defend"), help="Output directory (results.json, frontier.png, report.html)."),
    no_report: bool = typer.Option(False, "--no-report", help="Do not write report.html."),
    progress: bool | None = opt.PROGRESS,
) -> None:
    """Train and attack each defense (adaptively), write results.json, frontier.png and report.html, recommend one."""
    from memberscope.config import load_config_file
    from memberscope.defenses.evaluate import DefendConfig, run_defenses, write_outputs

    values: dict[str, Any] = load_config_file(config) if config is not None else {}
    flags = opt.run_values(
        dataset=dataset,
        data_dir=data_dir,
        label_column=label_column,
        group_column=group_column,
        id_column=id_column,
        n_records=n_records,
        defenses=defenses,
        model=model,
        model_param=model_param,
        reference_models=reference_models,
        attacks=attacks,
        pool_size=pool_size,
        population_size=population_size,
        seed=seed,
        budget=budget,
        fpr=fpr,
        n_bootstrap=n_bootstrap,
        label_only_queries=label_only_queries,
        train_mode=train_mode,
        n_jobs=n_jobs,
        backend=backend,
        ray_address=ray_address,
        memory_budget=memory_budget,
        precision=precision,
        cache_dir=cache_dir,
        no_cache=no_cache,
    )
    if "model_params" in flags:
        flags["model_params"] = {**values.get("model_params", {}), **flags["model_params"]}
    values.update(flags)
    cfg = DefendConfig.from_dict(values)
    result = run_defenses(cfg, progress=progress)
    out_console = console()
    out_console.print(defenses_table(result.results))
    for message in result.results.warnings:
        out_console.print(f"[yellow]warning:[/] {message}")
    paths = list(write_outputs(result, out).values())
    if not no_report:
        from memberscope.report.html import write_html

        paths.append(str(write_html(out)))
    rec = result.results.sections["recommendation"]
    out_console.print(f"[bold]recommendation:[/] {rec['defense'] or 'none meets the budget'} — {rec['reason']}")
    out_console.print(f"wrote {', '.join(paths)}")
