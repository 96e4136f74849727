"""The console rendering of a run: the attack table, from the same :class:`~memberscope.report.model.ReportModel`
as the HTML and Markdown reports (so the strongest attack it marks is the one they name)."""

from __future__ import annotations

from typing import Any

from memberscope.report.model import ReportModel, build_report, pct
from memberscope.results import Results

__all__ = ["headline_text", "one_run_text", "results_table"]

RISK_STYLES = {"high": "bold red", "elevated": "bold yellow", "inconclusive": "bold", "low": "bold green"}

CONSOLE_FPRS = ("0.01", "0.001")
"""The FPRs the console table shows (results.json and the reports have every recorded FPR)."""


def _cell(value: float | None, ci: Any, *, percent: bool) -> str:
    if value is None:
        return "–"
    f = pct if percent else (lambda v: f"{v:.3f}")
    # The CI on a line of its own: at 80 columns a cell then wraps between value and interval, never inside it.
    return f"{f(value)}\n[{f(ci[0])}, {f(ci[1])}]" if ci else f(value)


def results_table(results: Results | ReportModel):
    """A ``rich.table.Table``: attack, AUC, TPR at 1% and 0.1% FPR, each with its CI; the strongest attack marked."""
    from rich.table import Table

    model = results if isinstance(results, ReportModel) else build_report(results)
    target = model.target
    level = int(round(100 * model.results.config.get("confidence", 0.95)))
    accuracy = ""
    if target.train_accuracy is not None and target.test_accuracy is not None:
        accuracy = f": target train acc {pct(target.train_accuracy)}, test acc {pct(target.test_accuracy)}"
    table = Table(title=f"{model.subject}{accuracy} ({level}% CIs)")
    table.add_column("attack")
    table.add_column("AUC", justify="right")
    for key in CONSOLE_FPRS:
        table.add_column(f"TPR @ {100 * float(key):g}% FPR", justify="right")
    unresolved = False
    for row in model.attack_rows:
        cells = [_cell(row.auc, row.auc_ci, percent=False)]
        for key in CONSOLE_FPRS:
            text = _cell(row.tprs.get(key), row.tpr_cis.get(key), percent=True)
            if key in row.tprs and not row.resolvable.get(key, True):
                text += " *"
                unresolved = True
            cells.append(text)
        name = f"{row.name} (strongest)" if row.name == model.strongest else row.name
        table.add_row(name, *cells)
    notes = []
    if model.strongest is not None and model.headline_fpr is not None:
        notes.append(f"strongest: highest TPR at {pct(float(model.headline_fpr))} FPR, AUC breaking ties")
    if unresolved:
        notes.append("* too few non-members to resolve this FPR; the value is the TPR at FPR 0")
    if model.draws:
        spread = "; ".join(
            f"{r.name} AUC {r.auc_mean:.3f}"
            + (f" ± {r.auc_std:.3f}" if r.auc_std is not None else "")
            + f" (worst {r.auc_worst:.3f})"
            for r in model.draws
            if r.name == model.strongest
        )
        notes.append(f"over {model.results.sections['draws']['n_draws']} training draws: {spread}")
    elif model.draw_note:
        notes.append("figures for one training draw; `--targets N` measures the spread")
    table.caption = "; ".join(notes) or None
    return table


def headline_text(results: Results | ReportModel):
    """The headline every rendering shows: the risk level and the one-sentence finding (a ``rich`` Text)."""
    from rich.text import Text

    model = results if isinstance(results, ReportModel) else build_report(results)
    risk = model.results.risk()
    text = Text()
    text.append(f"Risk: {risk.level.upper()}", style=RISK_STYLES.get(risk.level, "bold"))
    text.append(f" ({risk.reason}). ")
    text.append(model.summary)
    return text


def one_run_text(results: Results) -> str | None:
    """The one-run ε audit's result in a line (``--one-run-canaries``), or None for a run without canaries."""
    section = (results.epsilon or {}).get("one_run") or {}
    attacks = section.get("attacks") or {}
    if not attacks:
        return None
    name, best = max(attacks.items(), key=lambda item: item[1]["epsilon"])
    confidence = 100 * (1 - float(section.get("beta", 0.05)))
    return (
        f"One-run ε audit ({section.get('canaries', '?')} canaries, δ = {section.get('delta', 0):g}): "
        f"ε ≥ {best['epsilon']:.2f} at {confidence:g}% confidence ({name}: {best['correct']} of "
        f"{best.get('guesses', best['k_plus'] + best['k_minus'])} guesses right; Steinke et al. 2023)"
    )
