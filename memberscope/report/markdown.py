"""A Markdown summary of an audit, short enough for a pull-request comment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from memberscope.exceptions import InvalidInputError

__all__ = ["executive_summary", "markdown_summary", "write_markdown"]


from memberscope.report.sections import _ci_pct, _pct


def _headline_fpr(attacks: dict[str, Any]) -> str:
    keys = list(next(iter(attacks.values())).get("tpr_at_fpr") or {})
    if not keys:
        raise InvalidInputError("results have no 'tpr_at_fpr' entries to summarize")
    return "0.01" if "0.01" in keys else min(keys, key=lambda k: abs(float(k) - 0.01))


def executive_summary(results: dict[str, Any]) -> str:
    """One sentence: what the strongest attack achieves at 1% FPR (or the recorded FPR nearest it), with its CI."""
    attacks = results["attacks"]
    key = _headline_fpr(attacks)
    name = max(attacks, key=lambda a: attacks[a]["tpr_at_fpr"].get(key, -1.0))
    entry = attacks[name]
    tpr = entry["tpr_at_fpr"][key]
    ci = (entry.get("tpr_at_fpr_ci") or {}).get(key)
    sentence = (
        f"An attacker who accepts {_pct(float(key))} false positives identifies {_pct(tpr)}{_ci_pct(ci)} "
        f"of training records ({name}, the strongest of {len(attacks)} attacks; chance is {_pct(float(key))})."
    )
    if not (entry.get("fpr_resolvable") or {}).get(key, True):
        sentence += f" Too few non-members to resolve FPR {key}: this is the TPR at FPR 0."
    return sentence


def markdown_summary(
    results: dict[str, Any], *, epsilon: dict[str, Any] | None = None, defenses: dict[str, Any] | None = None
) -> str:
    """The summary as Markdown: executive sentence, ε warnings, target, one row per attack, the one-run ε audit,
    red-team / LLM findings and the defense matrix when present, warnings.

    ``epsilon`` maps attack names to :class:`~memberscope.report.epsilon.EpsilonBound` from scores.csv (used when
    the results do not record their own bounds); ``defenses`` is the content of ``defenses.json``.
    """
    from memberscope.report import sections

    attacks = results.get("attacks") or {}
    kind = results.get("kind") or "audit"
    key = sections.headline_key(attacks) if attacks else None
    title = {"audit": "memberscope audit", "redteam": "memberscope red team", "llm": "memberscope LLM audit"}[kind]
    red, llm = sections.redteam_context(results), sections.llm_context(results)
    if key is not None:
        headline = executive_summary(results)
    elif red is not None:
        headline = sections.redteam_summary(red)
    else:
        headline = "This results file holds no attack metrics with ground truth to summarize."
    lines = [f"## {title}", "", headline, ""]
    eps_rows = sections.epsilon_rows(results, epsilon)
    claimed = sections.claimed_epsilon(results)
    defense_rows = sections.defense_rows(defenses) if defenses is not None else []
    alarms = sections.epsilon_alarms(claimed, eps_rows) + sections.defense_alarms(defense_rows)
    if llm is not None and llm["validity_warning"]:
        alarms.append(f"LLM audit validity: {llm['validity_warning']}")
    for alarm in alarms:
        lines += [f"> **⚠ WARNING:** {alarm}", ""]
    target, dataset, game = results.get("target") or {}, results.get("dataset") or {}, results.get("game") or {}
    if "train_accuracy" in target and "test_accuracy" in target:
        gap = target["train_accuracy"] - target["test_accuracy"]
        lines.append(
            f"Target on **{dataset.get('name', '?')}**: train accuracy {_pct(target['train_accuracy'])}, "
            f"test accuracy {_pct(target['test_accuracy'])} (gap {_pct(gap)}); "
            f"{game.get('n_members', '?')} members, {game.get('n_nonmembers', '?')} non-members, "
            f"K = {game.get('n_reference_models', '?')} reference models."
        )
        lines.append("")
    if attacks:
        keys = list(dict.fromkeys(k for entry in attacks.values() for k in (entry.get("tpr_at_fpr") or {})))
        by_attack = {r["attack"]: r for r in eps_rows}
        has_one_run = any(r["one_run"] for r in eps_rows)
        has_cp = any(r["cp"] is not None for r in eps_rows)
        header = ["attack", "AUC (95% CI)", *[f"TPR @ {_pct(float(k))} FPR" for k in keys]]
        header += ["ε lower bound"] if has_cp else []
        header += ["one-run ε"] if has_one_run else []
        header += ["claimed ε"] if claimed else []
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for name, entry in attacks.items():
            auc_ci = entry.get("auc_ci")
            auc = f"{entry['auc']:.3f}" + (f" ({auc_ci[0]:.3f}–{auc_ci[1]:.3f})" if auc_ci else "")
            cells = [f"`{name}`", auc]
            for k in keys:
                tprs = entry.get("tpr_at_fpr") or {}
                if k not in tprs:
                    cells.append("–")
                    continue
                ci = (entry.get("tpr_at_fpr_ci") or {}).get(k)
                mark = "" if (entry.get("fpr_resolvable") or {}).get(k, True) else " †"
                cells.append(f"{_pct(tprs[k])}{_ci_pct(ci)}{mark}")
            row = by_attack.get(name) or {}
            cp = row.get("cp")
            if has_cp:
                cells.append("–" if cp is None else f"{cp:.2f}" + (" *" if row.get("cp_source") == "metrics" else ""))
            if has_one_run:
                cells.append(f"{row['one_run']['epsilon']:.2f}" if row.get("one_run") else "–")
            if claimed:
                cells.append(f"{claimed['epsilon']:g}")
            lines.append("| " + " | ".join(cells) + " |")
        if any(not all((e.get("fpr_resolvable") or {}).values()) for e in attacks.values()):
            lines += ["", "† too few non-members to resolve this FPR: TPR at FPR 0."]
        delta = (results.get("epsilon") or {}).get("delta", claimed["delta"] if claimed else 0.0)
        note = f"ε lower bounds: Clopper–Pearson at 95% confidence, δ = {delta:g}, Bonferroni over thresholds"
        if any(r["cp_source"] == "metrics" for r in eps_rows):
            note += "; * from the TPR at the recorded FPRs only (no scores)"
        if claimed:
            note += f". Claimed: (ε, δ) = ({claimed['epsilon']:g}, {claimed['delta']:g})"
        if has_cp:
            lines += ["", note + "."]
        one_run = (results.get("epsilon") or {}).get("one_run")
        if has_one_run and one_run:
            lines += [
                "",
                f"**One-run ε audit** (Steinke, Nasr & Jagielski 2023): {one_run['canaries']} canaries, each included "
                f"independently with probability ½ ({one_run['canaries_included']} were); 95% confidence.",
                "",
                "| attack | guesses (k+ + k−) | correct | one-run ε ≥ |",
                "|---|---|---|---|",
            ]
            for r in eps_rows:
                if r["one_run"]:
                    b = r["one_run"]
                    lines.append(
                        f"| `{r['attack']}` | {b['k_plus']} + {b['k_minus']} | {b['correct']} | {b['epsilon']:.2f} |"
                    )
    if red is not None:
        exp = red["exposure"]
        lines += [
            "",
            "### Red-team findings",
            "",
            f"- Target: {red['url'] or '–'}; queries spent {red['queries_spent']} of {red['query_budget']}.",
            f"- The API exposes: {exp['mode'] or '–'}"
            + (f", top-{exp['top_k']}" if exp["top_k"] else "")
            + (f", {exp['decimals']} decimals" if exp["decimals"] is not None else "")
            + f"; {'deterministic' if exp['deterministic'] else 'non-deterministic'}"
            + f"; {'rate-limited' if exp['rate_limited'] else 'not rate-limited'}.",
            f"- Attacks possible: {', '.join(red['attacks_possible']) or '–'}; used: {red['attack'] or '–'}.",
        ]
        cal = red["calibration"]
        if cal:
            tpr, fpr = cal.get("shadow_tpr"), cal.get("shadow_fpr")
            lines.append(
                f"- Calibration ({cal.get('n_shadow_models', '?')} shadow models, "
                f"target FPR {cal.get('fpr_target', '?')}):"
                f" shadow TPR {_pct(tpr) if isinstance(tpr, int | float) else '–'}{_ci_pct(cal.get('shadow_tpr_ci'))},"
                f" shadow FPR {_pct(fpr) if isinstance(fpr, int | float) else '–'}{_ci_pct(cal.get('shadow_fpr_ci'))}."
            )
        v = red["verdicts"]
        lines.append(
            f"- Verdicts: {v['member']} member, {v['not-member']} not-member, {v['inconclusive']} inconclusive."
        )
        if red["recommendations"]:
            lines += ["", "**Recommendations**", ""] + [f"{i}. {r}" for i, r in enumerate(red["recommendations"], 1)]
    if llm is not None:
        lines += [
            "",
            "### Language model",
            "",
            f"Model `{llm['model']}`, reference `{llm['reference_model'] or 'none'}`; {llm['n_members']} member and "
            f"{llm['n_nonmembers']} non-member texts."
            + (
                f" Validity baseline AUC {llm['baseline_auc']:.3f}"
                + (
                    f" ({llm['baseline_auc_ci'][0]:.3f}–{llm['baseline_auc_ci'][1]:.3f})"
                    if llm["baseline_auc_ci"]
                    else ""
                )
                + "."
                if llm["baseline_auc"] is not None
                else ""
            ),
        ]
        if llm["canaries"]:
            lines += ["", "| canary repetitions | mean exposure (95% CI) | TPR |", "|---|---|---|"]
            for c in llm["canaries"]:
                exposure = "–" if c["exposure"] is None else f"{c['exposure']:.2f}"
                if c["exposure_ci"]:
                    exposure += f" ({c['exposure_ci'][0]:.2f}–{c['exposure_ci'][1]:.2f})"
                lines.append(f"| {c['repetitions']} | {exposure} | {c['tpr']} |")
    if defense_rows:
        lines += [
            "",
            "### Defenses",
            "",
            "| defense | test accuracy | claimed ε | empirical ε ≥ | strongest attack | TPR @ 1% FPR (95% CI) | AUC |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in defense_rows:
            cells = [
                f"`{r['name']}`" + (" ⚠" if r["alarm"] else ""),
                "–" if r["test_accuracy"] is None else _pct(r["test_accuracy"]),
                "–" if r["epsilon"] is None else f"{r['epsilon']:g}",
                "–" if r["empirical_epsilon"] is None else f"{r['empirical_epsilon']:.2f}",
                r["attack"] or "–",
                "–" if r["tpr"] is None else f"{_pct(r['tpr'])}{_ci_pct(r['tpr_ci'])}",
                "–" if r["auc"] is None else f"{r['auc']:.3f}",
            ]
            lines.append("| " + " | ".join(cells) + " |")
        rec = (defenses or {}).get("recommendation") or {}
        if rec.get("defense") or rec.get("reason"):
            lines += [
                "",
                f"**Recommended defense:** {rec.get('defense') or 'none meets the budget'} — {rec.get('reason', '')}",
            ]
    warnings = list(results.get("warnings") or [])
    for name, entry in attacks.items():
        warnings += [f"{name}: {w}" for w in entry.get("warnings") or [] if w not in warnings]
    if warnings:
        lines += ["", "**Warnings**", ""] + [f"- {w}" for w in warnings]
    return "\n".join(lines) + "\n"


def write_markdown(run_dir: str | Path) -> Path:
    """Write ``run_dir/summary.md`` from ``results.json`` (any kind), ``scores.csv`` and ``defenses.json``."""
    from memberscope.report.sections import load_defenses, load_report_results

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InvalidInputError(f"run directory {str(run_dir)!r} does not exist; expected an audit's --out folder")
    results = load_report_results(run_dir / "results.json")
    epsilon = None
    if (
        (run_dir / "scores.csv").exists()
        and results.get("attacks")
        and "clopper_pearson" not in (results.get("epsilon") or {})
    ):
        from memberscope.report.epsilon import epsilon_lower_bounds_from_csv

        epsilon = epsilon_lower_bounds_from_csv(run_dir / "scores.csv")
    path = run_dir / "summary.md"
    path.write_text(markdown_summary(results, epsilon=epsilon, defenses=load_defenses(run_dir)), encoding="utf-8")
    return path
