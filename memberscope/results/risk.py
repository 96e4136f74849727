"""The risk level of a run: one word, from the strongest attack's TPR at the headline FPR and its CI.

Thresholds (α = the headline FPR, e.g. 1%; [lo, hi] = the TPR's confidence interval):

============== ===================================================================================
level          rule
============== ===================================================================================
high           lo ≥ 10·α — with the CI's confidence, the attack finds members at least 10× as
               often as chance (at α = 1%: at least 10% of training records)
elevated       lo > α — measurably above chance, below the ``high`` bar
low            hi ≤ 2·α and the FPR is resolvable — the data rule out an attack better than twice
               chance at this FPR
inconclusive   everything else: a CI too wide to tell, an FPR the non-members cannot resolve, or no
               ground truth — never reported as ``low``, since a false all-clear is the worst defect
============== ===================================================================================

A run's level (:func:`assess`) is the most severe of these rules over every attack and every recorded
FPR (an FPR too small for the non-members to resolve counts up to ``elevated`` only), and at least
``elevated`` when an attack's AUC has its whole CI above 0.5 or its empirical ε lower bound is above 0
(members are told apart on average even where no single threshold shows it); it is ``low`` only when the
headline attack's rule says ``low`` and nothing else is elevated. The reason cites the strongest attack's
figures whenever they reach the level, another attack's only when the strongest's do not.

:func:`distinguishable` is the one reading every report text derives from the level: leakage is measurable
(distinguishable from chance) exactly when the level is ``high`` or ``elevated``.

Without ground truth (a red team against a model it cannot see the training data of), the level follows the
verdicts' conclusion (:func:`verdict_risk`), with the same thresholds read on the lower confidence bound ``lo`` of
the share of records called members: ``high`` when ``lo ≥ 10·α``, ``elevated`` for any other leakage (``lo`` above
what false positives explain), ``low`` for "no measurable leakage" (the upper bound no more than false positives
explain, which the verdicts certify at most ``2·α``), ``inconclusive`` otherwise.

The level describes the attacks run, not every attack possible: a stronger attack may find more.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "HIGH_FACTOR",
    "LOW_FACTOR",
    "RISK_LEVELS",
    "Risk",
    "assess",
    "dataset_inference_risk",
    "distinguishable",
    "risk_level",
    "verdict_risk",
]

RISK_LEVELS = ("high", "elevated", "inconclusive", "low")
HIGH_FACTOR = 10.0
LOW_FACTOR = 2.0


@dataclass(frozen=True)
class Risk:
    """A risk level and the reason for it, in words that name the numbers."""

    level: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"level": self.level, "reason": self.reason}


def _pct(x: float) -> str:
    return f"{100 * x:.3g}%"


def risk_level(
    tpr: float | None,
    ci: Sequence[float] | None,
    fpr: float | None,
    *,
    resolvable: bool = True,
) -> Risk:
    """The :class:`Risk` of TPR ``tpr`` (CI ``ci``, a pair of fractions) at FPR ``fpr`` (a fraction).

    ``tpr``/``fpr`` None (no ground truth, no metrics) gives ``inconclusive``; a missing ``ci`` counts as
    ``(tpr, tpr)`` for ``high``/``elevated`` and never allows ``low``.
    """
    if tpr is None or fpr is None:
        return Risk("inconclusive", "no attack metrics with ground truth to measure leakage")
    lo, hi = (float(ci[0]), float(ci[1])) if ci is not None else (float(tpr), float(tpr))
    if lo >= HIGH_FACTOR * fpr:
        return Risk("high", f"the CI's lower end, {_pct(lo)}, is at least {HIGH_FACTOR:g}× the FPR {_pct(fpr)}")
    if lo > fpr:
        return Risk("elevated", f"the CI's lower end, {_pct(lo)}, is above chance (the FPR {_pct(fpr)})")
    if not resolvable:
        return Risk("inconclusive", f"too few non-members to resolve FPR {_pct(fpr)}")
    if ci is not None and hi <= LOW_FACTOR * fpr:
        return Risk("low", f"the CI's upper end, {_pct(hi)}, is at most {LOW_FACTOR:g}× the FPR {_pct(fpr)}")
    return Risk(
        "inconclusive",
        f"the CI [{_pct(lo)}, {_pct(hi)}] is too wide to rule out leakage above {LOW_FACTOR:g}× the FPR "
        f"{_pct(fpr)}; more records or reference models narrow it",
    )


def distinguishable(risk: Risk) -> bool:
    """Whether ``risk`` says the attacks tell members from non-members better than chance (``high`` or
    ``elevated``): the one reading behind every "measurable" / "not distinguishable from chance" text."""
    return risk.level in ("high", "elevated")


def assess(
    attacks: dict,
    key: str | None,
    strongest: str | None,
    *,
    epsilon: Mapping[str, float] | None = None,
) -> Risk:
    """The run's :class:`Risk` (see the module docstring) from ``attacks`` (name → ``AttackResult``), the
    headline FPR ``key``, the ``strongest`` attack's name and the empirical ε lower bounds (name → ε at 95%
    confidence, e.g. results.json ``epsilon.clopper_pearson``), if recorded."""
    if key is None or strongest is None:
        return risk_level(None, None, None)
    m = attacks[strongest].metrics
    ci = m.tpr_at_fpr_ci.get(key)
    headline = risk_level(m.tpr_at_fpr[key], ci if ci else None, float(key), resolvable=m.fpr_resolvable.get(key, True))
    headline = Risk(headline.level, f"{strongest} at FPR {_pct(float(key))}: {headline.reason}")
    if headline.level == "high" and m.fpr_resolvable.get(key, True):
        return headline
    if headline.level == "high":
        headline = Risk("elevated", f"unresolvable FPR (the TPR at an empirical FPR of 0): {headline.reason}")
    findings: list[Risk] = []
    # The strongest attack first, so that the reason cites its figures whenever they reach the run's level.
    for name in sorted(attacks, key=lambda n: n != strongest):
        a = attacks[name].metrics
        for fpr_key, tpr in a.tpr_at_fpr.items():
            if tpr is None:
                continue
            # An unresolvable FPR's TPR is the TPR at an empirical FPR of 0, whose true FPR is only known to be below
            # a few over the number of non-members: evidence of leakage (``elevated``), never of safety, and not
            # enough for ``high`` (which compares with α itself).
            resolvable = a.fpr_resolvable.get(fpr_key, True)
            found = risk_level(tpr, a.tpr_at_fpr_ci.get(fpr_key) or None, float(fpr_key), resolvable=resolvable)
            level = found.level if resolvable or found.level != "high" else "elevated"
            if level in ("high", "elevated"):
                note = "" if resolvable else " (unresolvable FPR: the TPR at an empirical FPR of 0)"
                findings.append(Risk(level, f"{name} at FPR {_pct(float(fpr_key))}{note}: {found.reason}"))
        auc_ci = a.auc_ci
        if auc_ci is not None and len(auc_ci) == 2 and auc_ci[0] is not None and float(auc_ci[0]) > 0.5:
            findings.append(
                Risk("elevated", f"{name}'s AUC CI [{float(auc_ci[0]):.3f}, {float(auc_ci[1]):.3f}] lies above 0.5")
            )
        eps = (epsilon or {}).get(name)
        if eps is not None and math.isfinite(float(eps)) and float(eps) > 0:
            findings.append(Risk("elevated", f"{name}'s empirical ε lower bound, {float(eps):.2f}, is above 0"))
    for level in ("high", "elevated"):
        first = next((f for f in findings if f.level == level), None)
        if first is not None:
            return first if headline.level != level else headline
    return headline


def verdict_risk(conclusion: dict, fpr: float) -> Risk:
    """The :class:`Risk` of a red-team run without ground truth, from its ``conclusion`` block (status,
    ``member_share_lower``, ``member_share_upper``, ``false_positive_bound``) at FPR ``fpr`` (see the module
    docstring): the level always agrees with the conclusion the verdicts support."""
    status = conclusion.get("status")
    lo, hi = conclusion.get("member_share_lower"), conclusion.get("member_share_upper")
    bound = conclusion.get("false_positive_bound")
    if status == "leakage" and lo is not None:
        if lo >= HIGH_FACTOR * fpr:
            return Risk(
                "high",
                f"no ground truth; the records called members are at least {_pct(lo)} (95% confidence), at least "
                f"{HIGH_FACTOR:g}× the FPR {_pct(fpr)}",
            )
        return Risk(
            "elevated",
            f"no ground truth; the records called members are at least {_pct(lo)} (95% confidence), more than the "
            f"{_pct(bound if bound is not None else fpr)} false positives explain",
        )
    if status == "no measurable leakage" and hi is not None:
        return Risk(
            "low",
            f"no ground truth; the records called members are at most {_pct(hi)} (95% confidence), no more than "
            "false positives explain, with the attack's power shown on models like the target",
        )
    return Risk("inconclusive", "no ground truth, and the verdicts neither show leakage nor rule it out")


def dataset_inference_risk(test: dict, *, shifted: bool) -> Risk:
    """The :class:`Risk` of a dataset-inference run (its ``test`` block: ``p_value``, ``alpha``, ``significant``):
    ``elevated`` when the suspect set was very likely trained on, else ``inconclusive`` (a large p-value never
    shows that the texts were unused; a significant one under a distribution shift may be the shift)."""
    p, alpha = test.get("p_value"), test.get("alpha")
    if p is None or alpha is None:
        return risk_level(None, None, None)
    if test.get("significant") and not shifted:
        return Risk("elevated", f"p = {p:.3g} < α = {alpha:g}: the suspect texts were very likely in the training data")
    if test.get("significant"):
        return Risk("inconclusive", f"p = {p:.3g} < α = {alpha:g}, but the sets differ without the model (a shift)")
    return Risk("inconclusive", f"p = {p:.3g} ≥ α = {alpha:g}: no evidence either way, not evidence of non-use")
