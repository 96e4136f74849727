"""Membership verdicts without ground truth: a threshold calibrated on shadow models to a chosen FPR.

The threshold ``t`` is read off the shadow models' *non-member* scores: the rule "member iff
score >= t" flags at most ``floor(fpr · n0)`` of the ``n0`` shadow non-members. That count is a
sample, so the threshold is uncertain: the number of non-members above the true (1 - fpr) quantile
is Binomial(n0, fpr), and its ``confidence`` interval ``[r_lo, r_hi]`` gives a band of thresholds
``[t_low, t_high]``. A record is

- **member** if its score is at or above ``t_high`` (above the threshold even at its most conservative);
- **not-member** if its score is below ``t_low``;
- **inconclusive** otherwise: whether it exceeds the FPR-``fpr`` threshold is not settled by the
  calibration sample (more shadow records would narrow the band).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from memberscope.exceptions import InvalidInputError
from memberscope.privacy import clopper_pearson_interval

__all__ = ["VERDICTS", "Calibration", "calibrate_threshold", "verdicts"]

VERDICTS = ("member", "not-member", "inconclusive")


@dataclass
class Calibration:
    """A threshold at a target FPR and the evidence for it (the ``calibration`` block of results.json)."""

    fpr_target: float
    threshold: float
    threshold_band: tuple[float, float]
    shadow_tpr: float
    shadow_tpr_ci: tuple[float, float]
    shadow_fpr: float
    shadow_fpr_ci: tuple[float, float]
    n_shadow_models: int
    n_shadow_members: int
    n_shadow_nonmembers: int
    confidence: float = 0.95
    resolvable: bool = True

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("threshold_band", "shadow_tpr_ci", "shadow_fpr_ci"):
            out[key] = [float(v) for v in out[key]]
        return out


def _threshold_allowing(sorted_desc: np.ndarray, allowed: int) -> float:
    """Smallest ``t`` with at most ``allowed`` of the scores ``>= t`` (scores sorted in descending order)."""
    if allowed >= len(sorted_desc):
        return float(sorted_desc[-1])
    return float(np.nextafter(sorted_desc[allowed], np.inf))


def calibrate_threshold(
    scores: np.ndarray, member: np.ndarray, *, fpr: float, n_models: int, confidence: float = 0.95
) -> Calibration:
    """Threshold at ``fpr`` on shadow scores, with Clopper-Pearson CIs of the shadow TPR and FPR.

    ``scores`` and ``member`` are the out-of-fold shadow scores and membership (see the module docstring).
    """
    from scipy.stats import binom

    scores, member = np.asarray(scores, dtype=np.float64), np.asarray(member, bool)
    if not 0 < fpr < 1:
        raise InvalidInputError(f"fpr must be in (0, 1); got {fpr}")
    if scores.shape != member.shape or member.all() or not member.any():
        raise InvalidInputError("calibration needs scores of shadow members and non-members, one per record")
    neg = -np.sort(-scores[~member])
    n0, n1 = len(neg), int(member.sum())
    threshold = _threshold_allowing(neg, int(np.floor(fpr * n0)))
    r_lo, r_hi = binom.ppf([(1 - confidence) / 2, (1 + confidence) / 2], n0, fpr).astype(int)
    band = (_threshold_allowing(neg, int(r_hi)), _threshold_allowing(neg, int(r_lo)))
    fp, tp = int((neg >= threshold).sum()), int((scores[member] >= threshold).sum())
    return Calibration(
        fpr_target=float(fpr),
        threshold=threshold,
        threshold_band=band,
        shadow_tpr=tp / n1,
        shadow_tpr_ci=clopper_pearson_interval(tp, n1, confidence),
        shadow_fpr=fp / n0,
        shadow_fpr_ci=clopper_pearson_interval(fp, n0, confidence),
        n_shadow_models=int(n_models),
        n_shadow_members=n1,
        n_shadow_nonmembers=n0,
        confidence=confidence,
        resolvable=n0 * fpr >= 1,
    )


def verdicts(scores: np.ndarray, calibration: Calibration) -> np.ndarray:
    """``member`` / ``not-member`` / ``inconclusive`` per score (see the module docstring)."""
    scores = np.asarray(scores, dtype=np.float64)
    low, high = calibration.threshold_band
    out = np.full(scores.shape, "inconclusive", dtype=object)
    out[scores >= high] = "member"
    out[scores < low] = "not-member"
    return out
