"""A prioritized defense plan: what each defense removes per accuracy point it costs, and what it assumes.

:func:`defense_plan` ranks the measured defenses by the leakage they remove (the strongest attack's TPR at the
budget FPR, undefended minus defended, in percentage points) per accuracy point they cost, with intervals, and
groups them by what they assume about the attacker (:data:`ASSUMPTIONS`). It says "no defense needed" only when the
undefended model is at chance *and* within the budget, and when no defense meets the budget it names the closest
ones and what would close the gap, including the ε at which DP-SGD's guarantee alone meets it
(TPR ≤ e^ε·FPR + δ at every FPR; Kairouz et al., ICML 2015).

Intervals: a defense's TPR CI and the undefended one's are bootstrap intervals on the same records; the removed
leakage's interval is their difference taken end to end (``[lo_none - hi_def, hi_none - lo_def]``, conservative).
The accuracy cost's interval is the normal interval of a difference of two accuracies on ``n_test`` records each.
Over several training draws, the point is the mean over draws and the interval the envelope of the draws'
intervals.

Ranking: a defense that removes leakage without costing accuracy (cost ≤ 0 points) is *dominant* — no trade-off,
ranked first by the leakage removed, and no per-point ratio is given (dividing by a zero or negative cost means
nothing). A defense that removes leakage at a positive cost is a *trade-off*, ranked by removed points per accuracy
point (a cost below 0.1 point counts as 0.1); one that removes none is ranked last. Rows whose removed interval
includes 0 rank after those whose interval lies above 0.

Next steps name only what ``memberscope defend`` accepts for the model kind (``model``: the recipe name): DP-SGD
and the other torch-recipe options only for the torch recipes, the estimator's own parameters (``regularize:``)
and output policies for scikit-learn.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["ASSUMPTIONS", "assumption", "defense_plan", "epsilon_for_budget"]

ASSUMPTIONS = {
    "formal": "formal guarantee: (ε, δ)-differential privacy bounds every attack, adaptive or not",
    "adaptive": "holds against the adaptive attacks tried: the attacker knew the defense (reference models trained "
    "with it; outputs undone, averaged or queried at every budget tried), yet a stronger attack may exist",
    "tried": "holds only against the attacks tried: it removed the records one attack exposed, and records that "
    "were safe become exposed (the privacy onion); another attack, or a retrain, can find them",
    "slows": "only slows an attacker down: its leakage grows with the attacker's queries per record, so it holds "
    "only while queries are limited or detected (rate limits, the gateway's repeat detection)",
    "none": "no protection: it is invertible, an attacker who knows it undoes it (same leakage as undefended)",
}
"""What a defense assumes about the attacker, strongest first."""

_ORDER = list(ASSUMPTIONS)
MIN_COST = 0.1  # accuracy points: a smaller positive cost counts as this much in a trade-off's ratio
TORCH_RECIPES = ("mlp", "cnn", "logreg")
"""The recipes whose training options (DP-SGD, l2, dropout, early stopping, ...) ``defend`` can set."""
TRADES = {
    "dominant": "removes leakage and costs no accuracy (or gains some): no trade-off",
    "trade-off": "removes leakage at an accuracy cost",
    "no leakage removed": "removes no leakage",
}


def assumption(entry: dict[str, Any], key: str | None = None) -> str:
    """The :data:`ASSUMPTIONS` key of one defense entry of a defend result (``key``: the budget FPR's key).

    A label-only policy "only slows an attacker down" when the label-only attack with more queries scores higher
    (AUC, or TPR at ``key``) than with the run's default number of queries."""
    if entry.get("epsilon") is not None:
        return "formal"
    if entry.get("kind") == "minimize":
        return "tried"
    if entry.get("kind") == "output":
        if entry.get("invertible"):
            return "none"
        if entry.get("stochastic"):
            return "slows"
        budgets = [b for b in entry.get("attacker_budgets") or [] if b["view"].startswith("label-only")]
        default = (entry.get("attacks") or {}).get("label-only")
        if budgets and default is not None:
            grows = max(b["auc"] for b in budgets) > default["auc"]
            if key is not None and key in default["tpr_at_fpr"]:
                grows = grows or max(b["tpr"] for b in budgets) > default["tpr_at_fpr"][key]
            if grows:
                return "slows"
    return "adaptive"


def epsilon_for_budget(fpr: float, max_tpr: float, delta: float) -> float | None:
    """The largest ε with ``e^ε·fpr + δ <= max_tpr``: DP-SGD at that ε meets the budget against any attack; None
    when even ε = 0 does not (``fpr + δ > max_tpr``)."""
    if max_tpr - delta <= fpr:
        return None
    return math.log((max_tpr - delta) / fpr)


def _tpr(attack: dict[str, Any], key: str) -> tuple[float, float, float]:
    lo, hi = attack["tpr_at_fpr_ci"][key]
    return float(attack["tpr_at_fpr"][key]), float(lo), float(hi)


def _draws(entry: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """Per draw: the strongest attack's TPR (point, lo, hi), the upper end over all attacks, the test accuracy."""
    if entry.get("draws"):
        return entry["draws"]
    attack = entry["attacks"][entry["strongest_attack"]]
    tpr, lo, hi = _tpr(attack, key)
    upper = max(_tpr(a, key)[2] for a in entry["attacks"].values())
    return [{"tpr": tpr, "tpr_ci": [lo, hi], "upper_tpr": upper, "test_accuracy": entry["test_accuracy"],
             "auc": attack["auc"], "auc_ci": attack.get("auc_ci", [attack["auc"], attack["auc"]])}]  # fmt: skip


def _baseline_draws(entry: dict[str, Any], undefended: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """The undefended draws a defense is compared with, draw by draw: for ``minimize``, the undefended model on the
    same records (each draw's own)."""
    draws = entry.get("draws") or [{"undefended_on_same_records": entry.get("minimization", {}).get(
        "undefended_on_same_records")}]  # fmt: skip
    out = []
    for base, draw in zip(undefended, draws, strict=False):
        same = draw.get("undefended_on_same_records")
        out.append(base if same is None else {**base, "tpr": same["tpr"], "tpr_ci": same["tpr_ci"]})
    return out


def _cost_ci(a0: float, a1: float, n_test: int | None) -> tuple[float, float]:
    cost = a0 - a1
    if not n_test or a0 == a1:
        return (cost, cost)
    se = math.sqrt(a0 * (1 - a0) / n_test + a1 * (1 - a1) / n_test)
    return (cost - 1.96 * se, cost + 1.96 * se)


def defense_plan(
    defenses: dict[str, dict[str, Any]],
    budget: tuple[float, float],
    *,
    n_test: int | None = None,
    undefended: str = "none",
    model: str | None = None,
) -> dict[str, Any]:
    """The prioritized plan of a defend run's ``defenses`` (their JSON entries) under ``budget`` (FPR, max TPR);
    ``model`` is the run's recipe name (next steps name only defenses ``defend`` accepts for it; None: any).

    Returns
    -------
    dict
        ``verdict`` ("no defense needed", "defenses within budget", "none meets the budget" or "no undefended
        baseline"), ``undefended`` (its strongest attack, at chance or not), ``ranking`` (one row per defense,
        best first: group, removed TPR points and interval, accuracy cost points and interval, removed per point,
        within budget), ``groups`` (assumption -> defenses), ``closest`` and ``next_steps`` (when none meets the
        budget), ``notes``.
    """
    from memberscope.metrics import fpr_key

    fpr, max_tpr = budget
    key = fpr_key(fpr)
    base = defenses.get(undefended)
    base_draws = _draws(base, key) if base is not None else None
    rows = []
    for name, entry in defenses.items():
        draws = _draws(entry, key)
        upper = max(d["upper_tpr"] for d in draws)
        row: dict[str, Any] = {
            "defense": name,
            "group": assumption(entry, key) if name != undefended else "undefended",
            "tpr": sum(d["tpr"] for d in draws) / len(draws),
            "upper_tpr": upper,
            "within_budget": upper <= max_tpr,
            "test_accuracy": sum(d["test_accuracy"] for d in draws) / len(draws),
        }
        if base_draws is not None and name != undefended:
            against = _baseline_draws(entry, base_draws, key)
            pairs = list(zip(against, draws, strict=False))
            removed = [100 * (b["tpr"] - d["tpr"]) for b, d in pairs]
            removed_lo = min(100 * (b["tpr_ci"][0] - d["tpr_ci"][1]) for b, d in pairs)
            removed_hi = max(100 * (b["tpr_ci"][1] - d["tpr_ci"][0]) for b, d in pairs)
            costs = [100 * (b["test_accuracy"] - d["test_accuracy"]) for b, d in pairs]
            cis = [_cost_ci(b["test_accuracy"], d["test_accuracy"], n_test) for b, d in pairs]
            point_removed, point_cost = sum(removed) / len(removed), sum(costs) / len(costs)
            cost_lo, cost_hi = min(100 * c[0] for c in cis), max(100 * c[1] for c in cis)
            low_cost = max(cost_hi, MIN_COST) if removed_lo >= 0 else max(cost_lo, MIN_COST)
            ratio_ci = [removed_lo / low_cost, removed_hi / max(cost_lo, MIN_COST)]
            if point_removed <= 0:
                trade = "no leakage removed"
            elif point_cost <= 0:
                trade = "dominant"
            else:
                trade = "trade-off"
            row.update(
                removed_points=point_removed,
                removed_points_ci=[removed_lo, removed_hi],
                cost_points=point_cost,
                cost_points_ci=[cost_lo, cost_hi],
                trade=trade,
                removed_per_point=point_removed / max(point_cost, MIN_COST) if trade == "trade-off" else None,
                removed_per_point_ci=ratio_ci if trade == "trade-off" else None,
                compared_with="the undefended model on the same records"
                if entry.get("kind") == "minimize"
                else "the undefended model",
            )
        rows.append(row)

    def rank(row: dict[str, Any]) -> tuple:
        if row["group"] == "undefended":
            return (3, 0, 0.0)
        measurable = row.get("removed_points_ci", [0.0])[0] > 0
        trade = row.get("trade", "no leakage removed")
        if trade == "dominant":
            return (0 if measurable else 1, 0, -row["removed_points"])
        if trade == "trade-off":
            return (0 if measurable else 1, 1, -row["removed_per_point"])
        return (2, 0, -row.get("removed_points", 0.0))

    rows.sort(key=rank)
    groups: dict[str, list[str]] = {g: [] for g in _ORDER}
    for row in rows:
        if row["group"] in groups:
            groups[row["group"]].append(row["defense"])
    out: dict[str, Any] = {
        "budget": {"fpr": fpr, "max_tpr": max_tpr},
        "ranking": rows,
        "groups": {g: names for g, names in groups.items() if names},
        "assumptions": ASSUMPTIONS,
        "notes": [
            "removed: the strongest attack's TPR at the budget FPR, undefended minus defended, in percentage "
            "points (minimize: against the undefended model on the same records); cost: test accuracy points lost",
            "trade: dominant (removes leakage and costs no accuracy, or gains some: ranked first, by points "
            "removed), trade-off (ranked by removed_per_point: points removed per accuracy point lost, a cost "
            "below 0.1 point counting as 0.1) or no leakage removed (last); rows whose removed interval includes "
            "0 rank after those whose interval lies above 0",
        ],
    }
    if base is None or base_draws is None:
        out["verdict"] = "no undefended baseline"
        out["next_steps"] = ["add 'none' to --defenses to compare every defense with the undefended model"]
        return out
    b = base_draws[0]
    at_chance = all(d["auc_ci"][0] <= 0.5 <= d["auc_ci"][1] and d["tpr_ci"][0] <= fpr for d in base_draws)
    base_upper = max(d["upper_tpr"] for d in base_draws)
    out["undefended"] = {
        "strongest_attack": base["strongest_attack"],
        "tpr": b["tpr"],
        "tpr_ci": b["tpr_ci"],
        "auc": b["auc"],
        "auc_ci": b["auc_ci"],
        "upper_tpr": base_upper,
        "at_chance": at_chance,
    }
    within = [r["defense"] for r in rows if r["within_budget"] and r["group"] not in ("undefended", "none")]
    if base_upper <= max_tpr:
        out["verdict"] = "no defense needed"
        why = (
            f"at chance against every attack tried (AUC interval includes 0.5, TPR interval reaches the FPR {fpr:g})"
            if at_chance
            else f"within the budget (CI upper end {100 * base_upper:.2f}% <= {100 * max_tpr:g}%)"
        )
        out["next_steps"] = [
            f"the undefended model is {why}: no defense is needed against these attacks; this is not a guarantee "
            "(only DP-SGD gives one), re-audit when the model or data change"
        ]
    elif within:
        out["verdict"] = "defenses within budget"
        best = [r["defense"] for r in rows if r["defense"] in within]
        out["next_steps"] = [
            f"within the budget, by leakage removed per accuracy point: {', '.join(best)}; prefer the formal "
            "guarantee where its cost is acceptable, and read each one's assumption before relying on it"
        ]
    else:
        out["verdict"] = "none meets the budget"
        candidates = [r for r in rows if r["group"] not in ("undefended", "none")]
        closest = sorted(candidates, key=lambda r: r["upper_tpr"])[:3]
        out["closest"] = [
            {"defense": r["defense"], "upper_tpr": r["upper_tpr"], "gap_points": 100 * (r["upper_tpr"] - max_tpr)}
            for r in closest
        ]
        torch = model is None or model in TORCH_RECIPES
        out["next_steps"] = [_close_gap(defenses[r["defense"]], r, budget, torch=torch) for r in closest]
        if torch:
            delta = next((e["delta"] for e in defenses.values() if e.get("delta") is not None), None)
            eps = epsilon_for_budget(fpr, max_tpr, delta or 0.0)
            out["next_steps"].append(
                f"DP-SGD at ε <= {eps:.2f} (δ = {delta or 0:g}) meets the budget against any attack (TPR <= "
                f"e^ε·FPR + δ), at an accuracy cost to be measured: --defenses none,dp-sgd:eps={eps:.2f}"
                if eps is not None
                else f"no DP-SGD ε meets the budget: it is below FPR + δ ({fpr:g} + {delta or 0:g}); raise the budget"
            )
        else:
            measured = [n for n, e in defenses.items() if e.get("kind") == "regularize" or n.startswith("regularize:")]
            example = f"none,{measured[0]},label-only,top-k:1" if measured else "none,label-only,top-k:1"
            out["next_steps"].append(
                f"for this {model} model `defend` measures the estimator's own parameters (regularize:PARAM=VALUE, "
                "e.g. a smaller max_depth or a larger min_samples_leaf for trees, a smaller C for linear models) and "
                f"output policies: --defenses {example}; DP-SGD and the other torch-recipe options need --model "
                f"{'/'.join(TORCH_RECIPES)}"
            )
    return out


def _close_gap(entry: dict[str, Any], row: dict[str, Any], budget: tuple[float, float], *, torch: bool = True) -> str:
    """What would close the gap between one of the closest defenses and the budget, in words."""
    name, gap = row["defense"], 100 * (row["upper_tpr"] - budget[1])
    head = f"{name!r} misses the budget by {gap:.2f} TPR points (CI upper end {100 * row['upper_tpr']:.2f}%): "
    if entry.get("epsilon") is not None:
        return head + f"a smaller ε than {entry['epsilon']:.3g} (δ = {entry['delta']:g}) or fewer epochs at the same ε"
    if entry.get("kind") == "minimize":
        return head + "a larger fraction removed, or by=uniqueness; re-measure the neighbours (onion effect)"
    if entry.get("kind") == "output":
        if entry.get("stochastic"):
            return head + "consistent (keyed) noise so repeats do not average it away, a larger scale, or fewer queries"
        return head + "a coarser output combined with a training-time defense (output policies cannot hide labels)"
    if not torch:
        return head + "a stronger setting of the estimator's parameters (regularize:...), or an output policy on top"
    return head + "a stronger setting (more regularization, fewer epochs), or combine it with dp-sgd"
