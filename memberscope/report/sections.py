"""What the HTML and Markdown reports show, computed once from a run folder's JSON files.

A run folder holds the audit core's ``results.json`` (or a red-team / LLM one, ``"kind": "redteam"|"llm"``),
optionally ``scores.csv`` and ``defenses.json``; each function here turns one part into plain rows and
sentences, and returns None (or nothing) when its part is absent, so every combination renders.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from memberscope.exceptions import InvalidInputError

__all__ = [
    "claimed_epsilon",
    "defense_rows",
    "epsilon_alarms",
    "epsilon_rows",
    "frontier_png",
    "llm_context",
    "load_defenses",
    "load_report_results",
    "redteam_context",
]

KINDS = ("redteam", "llm")


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%" if x >= 0.001 or x == 0 else f"{100 * x:.2g}%"


def _ci_pct(ci: Any) -> str:
    return f" ({_pct(ci[0])}–{_pct(ci[1])})" if _is_pair(ci) else ""


def _is_num(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _is_pair(ci: Any) -> bool:
    return isinstance(ci, list | tuple) and len(ci) == 2 and all(_is_num(v) for v in ci)


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"cannot read {what} {str(path)!r}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"{what} {str(path)!r} is not valid JSON: {exc}") from None


def load_report_results(path: str | Path) -> dict[str, Any]:
    """``results.json`` of any kind: the audit core's is checked strictly (schema, attacks); red-team and LLM
    results need only be a JSON object whose ``attacks``, when present, map names to metrics."""
    from memberscope.report.gate import load_results

    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    results = _read_json(path, "results file")
    if not isinstance(results, dict):
        raise InvalidInputError(f"results file {str(path)!r} must hold a JSON object, got {type(results).__name__}")
    kind = results.get("kind")
    if kind is None:
        return load_results(path)
    if kind not in KINDS:
        raise InvalidInputError(f"results file {str(path)!r} has kind {kind!r}; expected one of {KINDS} or none")
    attacks = results.get("attacks")
    if attacks is not None and not (
        isinstance(attacks, dict) and all(isinstance(v, dict) and "auc" in v for v in attacks.values())
    ):
        raise InvalidInputError(f"results file {str(path)!r}: 'attacks' must map attack names to metrics")
    return results


def load_defenses(run_dir: str | Path) -> dict[str, Any] | None:
    """``run_dir/defenses.json`` (issue 5's defense matrix), or None when the folder has none."""
    path = Path(run_dir) / "defenses.json"
    if not path.exists():
        return None
    data = _read_json(path, "defenses file")
    if not isinstance(data, dict) or not isinstance(data.get("defenses"), dict):
        raise InvalidInputError(f"defenses file {str(path)!r} must hold an object with a 'defenses' mapping")
    for name, entry in data["defenses"].items():
        if not isinstance(entry, dict) or not isinstance(entry.get("attacks", {}), dict):
            raise InvalidInputError(f"defenses file {str(path)!r}: defense {name!r} must be an object with 'attacks'")
    return data


def headline_key(attacks: dict[str, Any]) -> str | None:
    """The recorded FPR key nearest 1% (None when no attack records TPR at an FPR)."""
    keys = [k for entry in attacks.values() for k in (entry.get("tpr_at_fpr") or {})]
    if not keys:
        return None
    return "0.01" if "0.01" in keys else min(keys, key=lambda k: abs(float(k) - 0.01))


def strongest(attacks: dict[str, Any], key: str) -> str:
    return max(attacks, key=lambda a: (attacks[a].get("tpr_at_fpr") or {}).get(key, -1.0))


def claimed_epsilon(results: dict[str, Any]) -> dict[str, float] | None:
    """The (ε, δ) the target claims: the audit's ``epsilon.claimed``, else ``target.recipe``'s epsilon/delta."""
    claimed = (results.get("epsilon") or {}).get("claimed")
    if isinstance(claimed, dict) and _is_num(claimed.get("epsilon")):
        return {"epsilon": float(claimed["epsilon"]), "delta": float(claimed.get("delta") or 0.0)}
    recipe = (results.get("target") or {}).get("recipe") or {}
    if isinstance(recipe, dict) and _is_num(recipe.get("epsilon")):
        return {"epsilon": float(recipe["epsilon"]), "delta": float(recipe.get("delta") or 0.0)}
    return None


def epsilon_rows(results: dict[str, Any], csv_bounds: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Per attack: the Clopper–Pearson ε bound (recorded by the audit, else from scores.csv, else from the
    summary metrics) and the one-run bound when the audit had canaries."""
    from memberscope.report.epsilon import epsilon_from_metrics

    section = results.get("epsilon") or {}
    claimed = claimed_epsilon(results)
    delta = section.get("delta", claimed["delta"] if claimed else 0.0)
    recorded = section.get("clopper_pearson") or {}
    one_run = (section.get("one_run") or {}).get("attacks") or {}
    rows = []
    for name, entry in (results.get("attacks") or {}).items():
        cp, source = None, None
        if isinstance(recorded.get(name), dict) and _is_num(recorded[name].get("epsilon")):
            cp, source = float(recorded[name]["epsilon"]), "scores"
        elif csv_bounds and name in csv_bounds:
            cp, source = float(csv_bounds[name].epsilon), "scores"
        else:
            bound = epsilon_from_metrics(entry, delta=delta)
            if bound is not None:
                cp, source = bound.epsilon, "metrics"
        run = one_run.get(name) if isinstance(one_run.get(name), dict) else None
        rows.append({"attack": name, "cp": cp, "cp_source": source, "one_run": run})
    return rows


def epsilon_alarms(claimed: dict[str, float] | None, rows: list[dict[str, Any]], *, where: str = "") -> list[str]:
    """Loud warnings for every empirical ε lower bound above the claimed ε (a broken DP implementation)."""
    if claimed is None:
        return []
    out = []
    for row in rows:
        for label, value in (
            ("Clopper–Pearson", row.get("cp")),
            ("one-run", (row.get("one_run") or {}).get("epsilon")),
        ):
            if _is_num(value) and value > claimed["epsilon"]:
                out.append(
                    f"{where}{row['attack']}: empirical ε ≥ {value:.2f} ({label}, 95% confidence) exceeds the claimed "
                    f"ε = {claimed['epsilon']:g} (δ = {claimed['delta']:g}). A correct DP implementation cannot leak "
                    "this much: the DP training or its privacy accounting is probably broken. Do not rely on the "
                    "claimed guarantee until this is explained. (Each bound holds at 95%; over many bounds a false "
                    "alarm is possible but unlikely.)"
                )
    return out


def defense_rows(defenses: dict[str, Any], key: str = "0.01") -> list[dict[str, Any]]:
    """One row per defense: test accuracy, claimed ε, the strongest attack's TPR at ``key`` FPR and AUC (with
    CIs), and the empirical ε lower bound from its metrics."""
    from memberscope.report.epsilon import epsilon_from_metrics

    rows = []
    for name, entry in defenses["defenses"].items():
        attacks = {a: m for a, m in (entry.get("attacks") or {}).items() if isinstance(m, dict)}
        row: dict[str, Any] = {
            "name": name,
            "test_accuracy": entry.get("test_accuracy") if _is_num(entry.get("test_accuracy")) else None,
            "epsilon": entry.get("epsilon") if _is_num(entry.get("epsilon")) else None,
            "delta": entry.get("delta") if _is_num(entry.get("delta")) else None,
            "train_seconds": entry.get("train_seconds") if _is_num(entry.get("train_seconds")) else None,
            "attack": None,
            "tpr": None,
            "tpr_ci": None,
            "auc": None,
            "auc_ci": None,
            "empirical_epsilon": None,
            "alarm": False,
        }
        if attacks:
            k = key if any(key in (m.get("tpr_at_fpr") or {}) for m in attacks.values()) else headline_key(attacks)
            best = strongest(attacks, k) if k is not None else max(attacks, key=lambda a: attacks[a].get("auc", 0))
            m = attacks[best]
            tpr = (m.get("tpr_at_fpr") or {}).get(k) if k is not None else None
            row.update(
                attack=best,
                fpr_key=k,
                tpr=tpr if _is_num(tpr) else None,
                tpr_ci=(m.get("tpr_at_fpr_ci") or {}).get(k) if k is not None else None,
                auc=m.get("auc") if _is_num(m.get("auc")) else None,
                auc_ci=m.get("auc_ci") if _is_pair(m.get("auc_ci")) else None,
            )
            bounds = [epsilon_from_metrics(a, delta=row["delta"] or 0.0) for a in attacks.values()]
            values = [b.epsilon for b in bounds if b is not None]
            if values:
                row["empirical_epsilon"] = max(values)
                row["alarm"] = row["epsilon"] is not None and row["empirical_epsilon"] > row["epsilon"]
        rows.append(row)
    return rows


def defense_alarms(rows: list[dict[str, Any]]) -> list[str]:
    return [
        f"defense {r['name']}: empirical ε ≥ {r['empirical_epsilon']:.2f} (from its attacks' TPR at the recorded "
        f"FPRs, 95% confidence) exceeds its claimed ε = {r['epsilon']:g}. A correct DP implementation cannot leak "
        "this much: the DP training or its privacy accounting is probably broken."
        for r in rows
        if r["alarm"]
    ]


def frontier_png(rows: list[dict[str, Any]]) -> str | None:
    """The privacy–utility frontier as a PNG data URI: test accuracy against the strongest attack's TPR."""
    points = [r for r in rows if r["test_accuracy"] is not None and r["tpr"] is not None]
    if not points:
        return None
    import base64
    import io

    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.2, 4.6), dpi=110)
    for r in points:
        ci = r["tpr_ci"] if _is_pair(r["tpr_ci"]) else None
        yerr = [[r["tpr"] - ci[0]], [ci[1] - r["tpr"]]] if ci else None
        color = "tab:red" if r["alarm"] else ("tab:green" if r["epsilon"] is not None else "tab:blue")
        ax.errorbar(r["test_accuracy"], r["tpr"], yerr=yerr, fmt="o", color=color, capsize=3)
        label = r["name"] + (f" (ε={r['epsilon']:g})" if r["epsilon"] is not None else "")
        ax.annotate(label, (r["test_accuracy"], r["tpr"]), textcoords="offset points", xytext=(5, 5), fontsize=8)
    key = points[0].get("fpr_key") or "0.01"
    ax.axhline(float(key), color="gray", linestyle="--", linewidth=1, label=f"chance ({_pct(float(key))})")
    ax.set_xlabel("test accuracy (utility)")
    ax.set_ylabel(f"TPR at {_pct(float(key))} FPR, strongest attack (leakage)")
    ax.set_title("Privacy–utility frontier (lower right is better)")
    ax.legend(loc="best", fontsize=8)
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", bbox_inches="tight")
    finally:
        plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def redteam_context(results: dict[str, Any]) -> dict[str, Any] | None:
    """The red-team block of a ``"kind": "redteam"`` result, with missing fields as None."""
    if results.get("kind") != "redteam":
        return None
    red = results.get("redteam") or {}
    target, exposure = red.get("target") or {}, red.get("exposure") or {}
    calibration, verdicts = red.get("calibration") or {}, red.get("verdicts") or {}
    return {
        "url": target.get("url"),
        "queries_spent": target.get("queries_spent"),
        "query_budget": target.get("query_budget"),
        "exposure": {k: exposure.get(k) for k in ("mode", "top_k", "decimals", "deterministic", "rate_limited")},
        "attacks_possible": list(exposure.get("attacks_possible") or []),
        "attack": red.get("attack"),
        "calibration": calibration,
        "verdicts": {k: verdicts.get(k, 0) for k in ("member", "not-member", "inconclusive")},
        "recommendations": [str(r) for r in red.get("recommendations") or []],
    }


def redteam_summary(red: dict[str, Any]) -> str:
    cal = red["calibration"]
    tpr = cal.get("shadow_tpr")
    calib = ""
    if _is_num(tpr):
        calib = (
            f" calibrated on {cal.get('n_shadow_models', '?')} shadow models to FPR {cal.get('fpr_target', '?')}"
            f" (shadow TPR {_pct(tpr)}{_ci_pct(cal.get('shadow_tpr_ci'))})"
        )
    v = red["verdicts"]
    return (
        f"Against {red['url'] or 'the target'}, the {red['attack'] or '?'} attack{calib} called {v['member']} "
        f"record(s) members, {v['not-member']} non-members and {v['inconclusive']} inconclusive, "
        f"spending {red['queries_spent'] if red['queries_spent'] is not None else '?'} of "
        f"{red['query_budget'] if red['query_budget'] is not None else '?'} queries."
    )


def llm_context(results: dict[str, Any]) -> dict[str, Any] | None:
    """The LLM block of a ``"kind": "llm"`` result: canary exposure rows and the validity check."""
    if results.get("kind") != "llm":
        return None
    llm = results.get("llm") or {}
    canaries = llm.get("canaries") or {}
    rows = []
    for reps, entry in sorted(canaries.items(), key=lambda kv: float(kv[0]) if _is_num_str(kv[0]) else math.inf):
        entry = entry if isinstance(entry, dict) else {}
        tprs = entry.get("tpr_at_fpr")
        rows.append(
            {
                "repetitions": reps,
                "exposure": entry.get("exposure_mean") if _is_num(entry.get("exposure_mean")) else None,
                "exposure_ci": entry.get("exposure_ci") if _is_pair(entry.get("exposure_ci")) else None,
                "tpr": ", ".join(f"{_pct(float(v))} @ {_pct(float(k))} FPR" for k, v in tprs.items() if _is_num(v))
                if isinstance(tprs, dict)
                else (f"{_pct(tprs)}" if _is_num(tprs) else "–"),
            }
        )
    validity = llm.get("validity") or {}
    return {
        "model": llm.get("model"),
        "reference_model": llm.get("reference_model"),
        "n_members": llm.get("n_members"),
        "n_nonmembers": llm.get("n_nonmembers"),
        "canaries": rows,
        "baseline_auc": validity.get("baseline_auc") if _is_num(validity.get("baseline_auc")) else None,
        "baseline_auc_ci": validity.get("baseline_auc_ci") if _is_pair(validity.get("baseline_auc_ci")) else None,
        "validity_warning": validity.get("warning"),
    }


def _is_num_str(s: str) -> bool:
    try:
        return math.isfinite(float(s))
    except (TypeError, ValueError):
        return False
