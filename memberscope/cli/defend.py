"""``memberscope defend``: measure defenses on the privacy–utility frontier."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from memberscope.cli._app import app, console, parse_params
from memberscope.exceptions import InvalidInputError


def defenses_table(results: dict[str, Any]):
    """A ``rich.table.Table``: one row per defense, its accuracy, ε and the strongest attack's leakage."""
    from rich.table import Table

    from memberscope.metrics import fpr_key

    budget = results["recommendation"]["budget"]
    key = fpr_key(budget["fpr"])
    table = Table(title=f"{results['dataset']['name']}: defenses (95% CIs; strongest attack per defense)")
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
    for name, entry in results["defenses"].items():
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


@app.command()
def defend(
    dataset: str = typer.Option("digits", help="Dataset name (see `memberscope datasets`) or a CSV/Parquet/NPZ path."),
    data_dir: str | None = typer.Option(None, help="Folder holding the dataset's files."),
    defenses: str = typer.Option(
        "none,l2,dropout,early-stopping,label-smoothing,augment,ensemble,dp-sgd:eps=8,round:2,top-k:1,label-only",
        help="Comma-separated defenses: none, l2[:wd], l1[:w], dropout[:p], early-stopping[:patience], "
        "label-smoothing[:eps], augment, ensemble[:n], coarsen[:step], dp-sgd:eps=E[:delta=D][:clip=C], "
        "minimize[:fraction][:by=vulnerability|uniqueness], "
        "and output post-processors round:D, top-k:K, label-only, gaussian:S, laplace:S, temperature:T "
        "('+' composes them).",
    ),
    model: str = typer.Option("mlp", help="Recipe: mlp, cnn or logreg."),
    model_param: list[str] = typer.Option([], "--model-param", help="Recipe hyperparameter KEY=VALUE (repeatable)."),
    reference_models: int = typer.Option(4, "--reference-models", "-k", help="Reference models per defense."),
    attacks: str | None = typer.Option(None, help="Comma-separated attacks (default: LiRA, RMIA, loss, label-only)."),
    n_records: int | None = typer.Option(None, help="Use a seeded random subset of this many records."),
    pool_size: int | None = typer.Option(None, help="Records in the audit pool (half become target members)."),
    population_size: int | None = typer.Option(None, help="Population records no model trains on."),
    seed: int = typer.Option(0, help="Seed for masks, training and bootstrap."),
    budget: str = typer.Option("0.01:0.05", help="Leakage budget FPR:TPR for the recommendation (CI upper bound)."),
    n_bootstrap: int = typer.Option(1000, help="Bootstrap replicates for the confidence intervals."),
    label_only_queries: int = typer.Option(16, help="Perturbed queries per record of the label-only attack."),
    cache_dir: str | None = typer.Option(None, help="Where trained models and outputs are cached."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Do not read or write the model cache."),
    out: Path = typer.Option(Path("runs/defend"), help="Output directory for defenses.json and frontier.png."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Print a line per model trained."),
) -> None:
    """Train and attack each defense (adaptively), write defenses.json and frontier.png, recommend one."""
    from memberscope.defenses.evaluate import DEFAULT_ATTACKS, DefendConfig, run_defenses, write_outputs

    values: dict[str, Any] = dict(
        dataset=dataset,
        data_dir=data_dir,
        n_records=n_records,
        model=model,
        model_params=parse_params(model_param, "--model-param"),
        defenses=defenses,
        reference_models=reference_models,
        seed=seed,
        pool_size=pool_size,
        population_size=population_size,
        budget=budget,
        n_bootstrap=n_bootstrap,
        label_only_queries=label_only_queries,
        cache_dir=cache_dir,
        use_cache=not no_cache,
        attacks=attacks if attacks is not None else DEFAULT_ATTACKS,
    )
    if n_bootstrap < 0:
        raise InvalidInputError(f"--n-bootstrap must be >= 0; got {n_bootstrap}")
    cfg = DefendConfig(**values)
    out_console = console()
    say = (lambda message: out_console.print(f"[dim]{message}[/]")) if progress else None
    results = run_defenses(cfg, progress=say)
    paths = write_outputs(results, out)
    out_console.print(defenses_table(results))
    rec = results["recommendation"]
    out_console.print(f"[bold]recommendation:[/] {rec['defense'] or 'none meets the budget'} — {rec['reason']}")
    out_console.print(f"wrote {', '.join(paths.values())}")
