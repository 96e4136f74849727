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

The level describes the attacks run, not every attack possible: a stronger attack may find more.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["HIGH_FACTOR", "LOW_FACTOR", "RISK_LEVELS", "Risk", "risk_level"]

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
