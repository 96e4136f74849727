"""``memberscope defend``: measure defenses on the privacy–utility frontier."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from memberscope.cli import _options as opt
from memberscope.cli._app import app, console


def defenses_table(results):
    """A ``rich.table.Table``: one row per defense, its accuracy, ε (δ) and the strongest attack's leakage; below an
    output defense one row per attacker view (undone, averaged over m queries, label-only at q queries), below
    ``minimize`` the undefended model on the same records and the removed / neighbour / other members; the last
    column is the CI upper end over every training draw, the figure the budget is judged by."""
    from rich import box
    from rich.table import Table

    from memberscope.metrics import fpr_key

    budget = results.sections["recommendation"]["budget"]
    key = fpr_key(budget["fpr"])
    table = Table(
        title=f"{results.dataset.name}: defenses (95% CIs; strongest attack per defense and attacker view)",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    # 80 columns: numbers and attack names never split (no_wrap), each figure's CI on a line of its own; the
    # defense's name folds rather than being cut.
    for col, numeric in (
        ("defense", False),
        ("test acc\ncost", True),
        ("ε\n(δ)", True),
        ("strongest\nattack", False),
        (f"TPR @\n{100 * budget['fpr']:g}% FPR", True),
        ("AUC", True),
        ("worst draw\n(CI upper)", True),
    ):
        no_wrap = numeric or col.startswith("strongest")
        table.add_column(col, justify="right" if numeric else "left", no_wrap=no_wrap, overflow="fold")

    def pct(value, ci):  # the CI on its own line, so a narrow column wraps between value and interval
        return f"{100 * value:.2f}%\n({100 * ci[0]:.2f}–\n{100 * ci[1]:.2f}%)"

    for name, entry in results.sections["defenses"].items():
        attack = entry["attacks"][entry["strongest_attack"]]
        cost = entry.get("accuracy_cost")
        draws = entry.get("draws") or []
        table.add_row(
            name,
            f"{100 * entry['test_accuracy']:.2f}%\n" + ("–" if cost is None else f"{100 * cost:+.2f} pt"),
            "–" if entry["epsilon"] is None else f"{entry['epsilon']:.2f}\n(δ={entry['delta']:.0e})",
            entry["strongest_attack"],
            pct(attack["tpr_at_fpr"][key], attack["tpr_at_fpr_ci"][key]),
            f"{attack['auc']:.3f}\n({attack['auc_ci'][0]:.3f}–\n{attack['auc_ci'][1]:.3f})",
            "–" if not draws else f"{100 * max(d['upper_tpr'] for d in draws):.2f}%\nof {len(draws)}",
        )
        for view in entry.get("attacker_budgets") or []:
            if view["view"] == "as shown" and len(entry["attacker_budgets"]) == 1:
                continue
            table.add_row(
                f"  ↳ {view['view']} ({view['queries_per_record']} q/record)",
                *[""] * 2,
                view["strongest_attack"],
                pct(view["tpr"], view["tpr_ci"]),
                f"{view['auc']:.3f}",
                "",
            )
        mini = entry.get("minimization")
        if mini:
            same = mini["undefended_on_same_records"]
            table.add_row(
                "  ↳ undefended, same records", *[""] * 2, same["strongest_attack"], pct(same["tpr"], same["tpr_ci"]),
                f"{same['auc']:.3f}", "",
            )  # fmt: skip
            for layer, values in mini["layers"].items():
                before = values["before"]
                after = values["after"]
                text = "" if before is None else f"before {100 * before['tpr_at_fpr'][key]:.2f}%"
                if after is not None:
                    text += f"\nafter {100 * after['tpr_at_fpr'][key]:.2f}%"
                table.add_row(f"  ↳ {layer} ({values['n_records']} members)", *[""] * 2, mini["attack"], text, "", "")
        table.add_section()  # a rule between defenses: each one's rows read as one group
    return table


def plan_lines(results) -> list[str]:
    """The prioritized plan (:func:`memberscope.defenses.plan.defense_plan`) as console lines."""
    from rich.markup import escape

    plan = results.sections.get("plan")
    if not plan:
        return []
    lines = [f"[bold]plan:[/] {escape(plan['verdict'])}"]
    for i, row in enumerate((r for r in plan["ranking"] if "removed_points" in r), 1):
        lo, hi = row["removed_points_ci"]
        cost = row["cost_points"]
        if row.get("trade") == "dominant":
            trade = f"{'gains' if cost < 0 else 'costs'} {abs(cost):.2f} accuracy points: dominant (no trade-off)"
        elif row.get("removed_per_point") is not None:
            trade = f"costs {cost:.2f} accuracy points; {row['removed_per_point']:.2f} TPR points removed per point"
        else:
            trade = f"{'gains' if cost < 0 else 'costs'} {abs(cost):.2f} accuracy points; removes no leakage"
        lines.append(
            escape(
                f"  {i}. {row['defense']}: removes {row['removed_points']:+.2f} TPR points ({lo:+.2f}–{hi:+.2f}); "
                f"{trade}; {row['group']}" + ("" if row["within_budget"] else "; over the budget")
            )
        )
    for group, names in plan["groups"].items():
        lines.append(escape(f"  [{group}] {plan['assumptions'][group]}: {', '.join(names)}"))
    lines += [escape(f"  next: {step}") for step in plan.get("next_steps", [])]
    return lines


def _defenses_help() -> str:
    from memberscope.defenses.evaluate import TRAINING_DEFENSES
    from memberscope.targets.postprocess import POSTPROCESSORS

    training = ", ".join(sorted(TRAINING_DEFENSES))
    output = ", ".join(sorted(n for n in POSTPROCESSORS if n != "identity"))
    return (
        f"Comma-separated defenses. Training-time: {training} (a bare value sets the main option, e.g. l2:1e-3, "
        f"or KEY=VALUE pairs, e.g. dp-sgd:eps=8:delta=1e-5:clip=1; minimize[:fraction] [:by=vulnerability | "
        f"uniqueness]; with --model sklearn, regularize:KEY=VALUE[:...] sets the estimator's own regularization, "
        f"e.g. regularize:max_depth=8 or regularize:C=0.1). Output post-processors: {output} "
        f"(e.g. round:2, top-k:1; '+' composes them)."
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
    noise_repeats: str | None = typer.Option(
        None, help="Queries per record of the averaging attacker against fresh-noise defenses; default 1,10,20,100."
    ),
    label_only_budgets: str | None = typer.Option(
        None, help="Label-only attack budgets (queries per record) against label-only defenses; default 16,64,256."
    ),
    draws: int | None = typer.Option(
        None, help="Independent training draws per defense (a defense passes the budget only if it passes on all)."
    ),
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
        noise_repeats=noise_repeats,
        label_only_budgets=label_only_budgets,
        draws=draws,
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
    if result.results.attacks:  # the headline every rendering opens with (summary.md, report.html): the undefended
        from rich.text import Text

        from memberscope.report.console import headline_text

        out_console.print(Text("Undefended model: ", style="bold") + headline_text(result.results))
    out_console.print(defenses_table(result.results))
    for message in result.results.warnings:
        out_console.print(f"[yellow]warning:[/] {message}")
    paths = list(write_outputs(result, out).values())
    if not no_report:
        from memberscope.report.html import write_html

        paths.append(str(write_html(out)))
    for line in plan_lines(result.results):
        out_console.print(line, highlight=False)
    rec = result.results.sections["recommendation"]
    out_console.print(f"[bold]recommendation:[/] {rec['defense'] or 'none meets the budget'} — {rec['reason']}")
    out_console.print(f"wrote {', '.join(paths)}")
