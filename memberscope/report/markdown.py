"""A Markdown summary of a run, short enough for a pull-request comment.

It renders the :class:`~memberscope.report.model.ReportModel` of the run; nothing here reads
``results.json`` on its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from memberscope.report.intervals import interval_note
from memberscope.report.model import (
    ReportModel,
    build_report,
    ci_pct,
    draw_cells,
    executive_summary,
    load_run,
    membership_probability_note,
    pct,
)
from memberscope.results import Results

__all__ = ["executive_summary", "markdown_summary", "render_markdown", "write_markdown"]

HEADINGS = {
    "audit": "memberscope audit",
    "defend": "memberscope defend",
    "redteam": "memberscope red team",
    "llm": "memberscope LLM audit",
    "dataset-inference": "memberscope dataset inference",
}


def markdown_summary(
    results: Results | dict[str, Any], *, scores=None, defenses: Results | dict[str, Any] | None = None
) -> str:
    """The summary of ``results`` as Markdown (see :func:`render_markdown`)."""
    if isinstance(defenses, dict):
        defenses = Results.from_dict({"kind": "defend", **defenses})
    return render_markdown(build_report(results, scores=scores, defenses=defenses))


def render_markdown(model: ReportModel) -> str:
    """Executive sentence, ε warnings, target, one row per attack, the one-run ε audit, red-team / LLM findings and
    the defense matrix when present, warnings."""
    risk = model.results.risk()
    lines = [f"## {HEADINGS[model.kind]}", "", f"**Risk: {risk.level.upper()}** ({risk.reason}). {model.summary}", ""]
    for alarm in model.alarms:
        lines += [f"> **⚠ WARNING:** {alarm}", ""]
    target, game = model.target, model.game
    if target.train_accuracy is not None and target.test_accuracy is not None:
        gap = target.train_accuracy - target.test_accuracy
        lines.append(
            f"Target on **{model.subject}**: train accuracy {pct(target.train_accuracy)}, "
            f"test accuracy {pct(target.test_accuracy)} (gap {pct(gap)}); "
            f"{_q(game.n_members)} members, {_q(game.n_nonmembers)} non-members, "
            f"K = {_q(game.n_reference_models)} reference models."
        )
        lines.append("")
    rows, claimed = model.attack_rows, model.claimed
    if rows:
        keys = model.fpr_keys
        has_cp = any(r.epsilon is not None for r in rows)
        header = ["attack", "AUC (95% CI)", *[f"TPR @ {pct(float(k))} FPR" for k in keys]]
        header += ["ε lower bound"] if has_cp else []
        header += ["one-run ε"] if model.has_one_run else []
        header += ["claimed ε"] if claimed else []
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for r in rows:
            auc = f"{r.auc:.3f}" + (f" ({r.auc_ci[0]:.3f}–{r.auc_ci[1]:.3f})" if r.auc_ci else "")
            cells = [f"`{r.name}`", auc]
            for k in keys:
                if k not in r.tprs:
                    cells.append("–")
                    continue
                mark = "" if r.resolvable.get(k, True) else " †"
                cells.append(f"{pct(r.tprs[k])}{ci_pct(r.tpr_cis.get(k))}{mark}")
            if has_cp:
                cells.append(
                    "–" if r.epsilon is None else f"{r.epsilon:.2f}" + (" *" if r.epsilon_source == "metrics" else "")
                )
            if model.has_one_run:
                cells.append(f"{r.one_run['epsilon']:.2f}" if r.one_run else "–")
            if claimed:
                cells.append(f"{claimed['epsilon']:g}")
            lines.append("| " + " | ".join(cells) + " |")
        if any(not all(r.resolvable.values()) for r in rows):
            lines += ["", "† too few non-members to resolve this FPR: TPR at FPR 0."]
        note = (
            f"ε lower bounds: Clopper–Pearson at 95% confidence, δ = {model.epsilon_delta:g}, "
            "Bonferroni over thresholds"
        )
        if model.epsilon_from_metrics:
            note += "; * from the TPR at the recorded FPRs only (no scores)"
        if claimed:
            note += f". Claimed: (ε, δ) = ({claimed['epsilon']:g}, {claimed['delta']:g})"
        if has_cp:
            lines += ["", note + "."]
        if (methods := interval_note(model.results)) is not None:
            lines += ["", methods]
    if model.draws:
        key = pct(float(model.headline_fpr)) if model.headline_fpr is not None else "1%"
        header = ["attack", "AUC mean ± sd", "worst AUC", f"TPR @ {key} FPR mean ± sd", "worst TPR"]
        lines += ["", "**Spread over training draws**", "", "| " + " | ".join(header) + " |", "|" + "---|" * 5]
        lines += ["| " + " | ".join(draw_cells(r)) + " |" for r in model.draws]
    for paragraph in (model.ppv_note, model.draw_note, membership_probability_note(model.membership_probability)):
        if paragraph:
            lines += ["", paragraph]
        one_run = model.one_run
        if model.has_one_run and one_run:
            lines += [
                "",
                f"**One-run ε audit** (Steinke, Nasr & Jagielski 2023): {one_run['canaries']} canaries, each included "
                f"independently with probability ½ ({one_run['canaries_included']} were); 95% confidence.",
                "",
                "| attack | guesses (k+ + k−) | correct | one-run ε ≥ |",
                "|---|---|---|---|",
            ]
            for r in rows:
                if r.one_run:
                    b = r.one_run
                    lines.append(
                        f"| `{r.name}` | {b['k_plus']} + {b['k_minus']} | {b['correct']} | {b['epsilon']:.2f} |"
                    )
    red = model.redteam
    if red is not None:
        exp = red["exposure"]
        lines += [
            "",
            "### Red-team findings",
            "",
            f"- Target: {red['url'] or '–'}; queries spent {red['queries_spent']}"
            + (f" of {red['query_budget']}." if red["query_budget"] is not None else " (no budget set)."),
            f"- The API exposes: {exp['shown']}"
            + f"; {'deterministic' if exp['deterministic'] else 'non-deterministic'}"
            + f"; {'rate-limited' if exp['rate_limited'] else 'not rate-limited'}.",
            f"- Attacks possible: {', '.join(red['attacks_possible']) or '–'}; used: {red['attack'] or '–'}.",
        ]
        cal = red["calibration"]
        if cal:
            tpr, fpr = cal.get("shadow_tpr"), cal.get("shadow_fpr")
            lines.append(
                f"- Calibration ({cal.get('n_shadow_models', '?')} shadow models, "
                f"target FPR {pct(cal['fpr_target']) if isinstance(cal.get('fpr_target'), int | float) else '?'}, "
                f"threshold {_num(cal.get('threshold'))}):"
                f" shadow TPR {pct(tpr) if isinstance(tpr, int | float) else '–'}{ci_pct(cal.get('shadow_tpr_ci'))},"
                f" shadow FPR {pct(fpr) if isinstance(fpr, int | float) else '–'}{ci_pct(cal.get('shadow_fpr_ci'))}."
            )
        v = red["verdicts"]
        lines.append(
            f"- Verdicts: {v['member']} member, {v['not-member']} not-member, {v['inconclusive']} inconclusive."
        )
        if red["recommendations"]:
            lines += ["", "**Recommendations**", ""] + [f"{i}. {r}" for i, r in enumerate(red["recommendations"], 1)]
    llm = model.llm
    if llm is not None:
        validity = ""
        if llm["baseline_auc"] is not None:
            ci = llm["baseline_auc_ci"]
            validity = f" Validity baseline AUC {llm['baseline_auc']:.3f}" + (
                f" ({ci[0]:.3f}–{ci[1]:.3f})" if ci else ""
            )
            validity += "."
        lines += [
            "",
            "### Language model",
            "",
            f"Model `{llm['model']}`, reference `{llm['reference_model'] or 'none'}`; {llm['n_members']} member and "
            f"{llm['n_nonmembers']} non-member texts." + validity,
        ]
        if llm["canaries"]:
            lines += ["", "| canary repetitions | mean exposure (95% CI) | TPR |", "|---|---|---|"]
            for c in llm["canaries"]:
                exposure = "–" if c["exposure"] is None else f"{c['exposure']:.2f}"
                if c["exposure_ci"]:
                    exposure += f" ({c['exposure_ci'][0]:.2f}–{c['exposure_ci'][1]:.2f})"
                lines.append(f"| {c['repetitions']} | {exposure} | {c['tpr']} |")
    if model.dataset_inference is not None:
        lines += _dataset_inference_lines(model.dataset_inference)
        if model.recommendations:
            lines += ["", "**Recommendations**", ""] + [f"{i}. {r}" for i, r in enumerate(model.recommendations, 1)]
    if model.defenses:
        key = model.defenses[0].fpr_key or "0.01"
        lines += [
            "",
            "### Defenses",
            "",
            "| defense | test accuracy | claimed ε | empirical ε ≥ | strongest attack | "
            f"TPR @ {pct(float(key))} FPR (95% CI) | AUC |",
            "|---|---|---|---|---|---|---|",
        ]
        for d in model.defenses:
            cells = [
                f"`{d.name}`" + (" ⚠" if d.alarm else ""),
                "–" if d.test_accuracy is None else pct(d.test_accuracy),
                "–" if d.epsilon is None else f"{d.epsilon:g}" + (f" (δ={d.delta:g})" if d.delta else ""),
                "–" if d.empirical_epsilon is None else f"{d.empirical_epsilon:.2f}",
                d.attack or "–",
                "–" if d.tpr is None else f"{pct(d.tpr)}{ci_pct(d.tpr_ci)}",
                "–" if d.auc is None else f"{d.auc:.3f}",
            ]
            lines.append("| " + " | ".join(cells) + " |")
        plan = model.defense_plan
        if plan:
            lines += [
                "",
                f"**Plan: {plan['verdict']}** (TPR points removed per accuracy point lost; what it assumes)",
                "",
            ]
            for row in plan.get("ranking", []):
                if "removed_points" in row:
                    lo, hi = row["removed_points_ci"]
                    lines.append(
                        f"- `{row['defense']}` ({row['group']}): {row['removed_points']:+.2f} points ({lo:+.2f}–"
                        f"{hi:+.2f}) for {row['cost_points']:+.2f} accuracy points"
                        + (
                            f" ({row['removed_per_point']:.2f} per point)"
                            if row.get("removed_per_point") is not None
                            else f" ({row['trade']}{': no trade-off' if row['trade'] == 'dominant' else ''})"
                            if row.get("trade")
                            else ""
                        )
                        + ("" if row["within_budget"] else "; over the budget")
                    )
            lines += [f"- next: {step}" for step in plan.get("next_steps", [])]
        rec = model.defense_recommendation
        if rec.get("defense") or rec.get("reason"):
            lines += [
                "",
                f"**Recommended defense:** {rec.get('defense') or 'none meets the budget'} — {rec.get('reason', '')}",
            ]
    if model.warnings:
        lines += ["", "**Warnings**", ""] + [f"- {w}" for w in model.warnings]
    lines += _frameworks(model)
    return "\n".join(lines) + "\n"


def _frameworks(model: ReportModel) -> list[str]:
    """The frameworks section, folded (``<details>``) so the summary stays short enough for a PR comment."""
    if not model.frameworks:
        return []
    from memberscope.report.frameworks import DISCLAIMER

    lines = ["", "<details><summary><b>Frameworks</b> (MITRE ATLAS, OWASP, EU AI Act, GDPR DPIA)</summary>", ""]
    lines += [f"_{DISCLAIMER}_", ""]
    for f in model.frameworks:
        lines += [f"#### {f.framework}: {f.item}", "", f"Source: [{f.source}]({f.url})", ""]
        lines += [f"- **Measured:** {f.measured}", "- **Not measured:**"]
        lines += [f"  - {x}" for x in f.not_measured]
        lines += ["- **Next steps:**"] + [f"  - {x}" for x in f.next_steps] + [""]
    return [*lines, "</details>"]


def _dataset_inference_lines(di: dict[str, Any]) -> list[str]:
    """The dataset-inference facts: the test, the counts, the recommended number of texts, the effect, validity."""

    def num(value: float | None, fmt: str) -> str:
        return "–" if value is None else format(value, fmt)

    test = f"{di['test'] or 'test'}: t = {num(di['statistic'], '.3f')}, p = {num(di['p_value'], '.3g')}"
    if di["alpha"] is not None:
        test += f" (level {di['alpha']:g}; {'significant' if di['significant'] else 'not significant'})"
    lines = [
        "",
        "### Dataset inference",
        "",
        f"- Model: `{di['model'] or '–'}`" + (f" ({di['model_kind']} LM)" if di["model_kind"] else "") + ".",
        f"- {test}.",
        f"- Texts: {_q(di['n_suspect'])} suspect, {_q(di['n_validation'])} validation; aggregation fitted on "
        f"{_q(di['fit']['suspect'])} + {_q(di['fit']['validation'])}, tested on {_q(di['held_out']['suspect'])} + "
        f"{_q(di['held_out']['validation'])} held out.",
    ]
    if di["recommended_suspect"] is not None:
        needed = (
            f"- Recommended: at least {di['recommended_suspect']} suspect texts (the demo model was caught reliably)"
        )
        if di["needed_for_a_weak_leak"] is not None:
            needed += f"; a weakly memorising model needed {di['needed_for_a_weak_leak']}"
        lines.append(needed + ".")
    if di["auc_held_out"] is not None:
        lines.append(f"- Effect: held-out AUC {di['auc_held_out']:.3f} of the aggregated score.")
    if di["baseline_auc"] is not None:
        ci = di["baseline_auc_ci"]
        lines.append(
            f"- Validity baseline AUC {di['baseline_auc']:.3f}" + (f" ({ci[0]:.3f}–{ci[1]:.3f})" if ci else "") + "."
        )
    if di["features"]:
        lines.append(f"- Features: {', '.join(f'`{f}`' for f in di['features'])}.")
    return lines


def _num(value: Any) -> str:
    """A measured number to 4 significant digits (``"–"`` when not a number)."""
    return f"{value:.4g}" if isinstance(value, int | float) and not isinstance(value, bool) else "–"


def _q(value: Any) -> str:
    return "?" if value is None else str(value)


def write_markdown(run_dir: str | Path) -> Path:
    """Write ``run_dir/summary.md`` for the run in ``run_dir`` (any kind; see
    :func:`~memberscope.report.model.load_run`)."""
    results, scores, defenses = load_run(run_dir, figures=False)
    path = Path(run_dir) / "summary.md"
    path.write_text(render_markdown(build_report(results, scores=scores, defenses=defenses)), encoding="utf-8")
    return path
