"""A Markdown summary of an audit, short enough for a pull-request comment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from memberscope.exceptions import InvalidInputError
from memberscope.report.gate import load_results

__all__ = ["executive_summary", "markdown_summary", "write_markdown"]


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%" if x >= 0.001 or x == 0 else f"{100 * x:.2g}%"


def _ci_pct(ci: Any) -> str:
    return f" ({_pct(ci[0])}–{_pct(ci[1])})" if isinstance(ci, list | tuple) and len(ci) == 2 else ""


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


def markdown_summary(results: dict[str, Any], *, epsilon: dict[str, Any] | None = None) -> str:
    """The summary as Markdown: executive sentence, target, one table row per attack, warnings.

    ``epsilon`` maps attack names to :class:`~memberscope.report.epsilon.EpsilonBound` (optional column).
    """
    attacks = results["attacks"]
    keys = list(attacks[next(iter(attacks))].get("tpr_at_fpr") or {})
    lines = ["## memberscope audit", "", executive_summary(results), ""]
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
    header = ["attack", "AUC (95% CI)", *[f"TPR @ {_pct(float(k))} FPR" for k in keys]]
    if epsilon is not None:
        header.append("ε lower bound")
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, entry in attacks.items():
        auc_ci = entry.get("auc_ci")
        auc = f"{entry['auc']:.3f}" + (f" ({auc_ci[0]:.3f}–{auc_ci[1]:.3f})" if auc_ci else "")
        cells = [f"`{name}`", auc]
        for k in keys:
            ci = (entry.get("tpr_at_fpr_ci") or {}).get(k)
            mark = "" if (entry.get("fpr_resolvable") or {}).get(k, True) else " †"
            cells.append(f"{_pct(entry['tpr_at_fpr'][k])}{_ci_pct(ci)}{mark}")
        if epsilon is not None:
            bound = epsilon.get(name)
            cells.append(f"{bound.epsilon:.2f}" if bound is not None else "–")
        lines.append("| " + " | ".join(cells) + " |")
    if any(not all((e.get("fpr_resolvable") or {}).values()) for e in attacks.values()):
        lines += ["", "† too few non-members to resolve this FPR: TPR at FPR 0."]
    if epsilon is not None:
        alpha = next(iter(epsilon.values())).alpha if epsilon else 0.05
        lines += [
            "",
            f"ε lower bounds: Clopper–Pearson at {_pct(1 - alpha)} confidence, δ = 0, Bonferroni over thresholds.",
        ]
    warnings = list(results.get("warnings") or [])
    for name, entry in attacks.items():
        warnings += [f"{name}: {w}" for w in entry.get("warnings") or [] if w not in warnings]
    if warnings:
        lines += ["", "**Warnings**", ""] + [f"- {w}" for w in warnings]
    return "\n".join(lines) + "\n"


def write_markdown(run_dir: str | Path) -> Path:
    """Write ``run_dir/summary.md`` from ``results.json`` (and ``scores.csv`` for ε bounds, when present)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InvalidInputError(f"run directory {str(run_dir)!r} does not exist; expected an audit's --out folder")
    results = load_results(run_dir / "results.json")
    epsilon = None
    if (run_dir / "scores.csv").exists():
        from memberscope.report.epsilon import epsilon_lower_bounds_from_csv

        epsilon = epsilon_lower_bounds_from_csv(run_dir / "scores.csv")
    path = run_dir / "summary.md"
    path.write_text(markdown_summary(results, epsilon=epsilon), encoding="utf-8")
    return path
