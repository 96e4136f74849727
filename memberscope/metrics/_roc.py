"""ROC curve and the operating-point metrics derived from it, by one sort."""

from __future__ import annotations

import numpy as np

from memberscope.exceptions import InvalidInputError

__all__ = ["balanced_accuracy", "check_scores", "membership_advantage", "roc_auc", "roc_curve", "tpr_at_fpr"]


def check_scores(member, score) -> tuple[np.ndarray, np.ndarray]:
    """Validate ground truth ``member`` (n,) of 0/1 and ``score`` (n,) finite; returns (bool, float64) arrays."""
    member, score = np.asarray(member), np.asarray(score)
    if member.ndim != 1 or score.ndim != 1:
        raise InvalidInputError(f"member and score must be 1-D; got shapes {member.shape} and {score.shape}")
    if member.shape != score.shape:
        raise InvalidInputError(f"member has {member.size} entries but score has {score.size}")
    if member.dtype != bool:
        values = np.unique(member)
        if not np.isin(values, (0, 1)).all():
            raise InvalidInputError(f"member must hold only 0/1 or True/False; got values {values[:5].tolist()}")
        member = member.astype(bool)
    try:
        score = score.astype(np.float64)
    except (TypeError, ValueError):
        raise InvalidInputError(f"score must be numeric; got dtype {score.dtype}") from None
    bad = ~np.isfinite(score)
    if bad.any():
        raise InvalidInputError(
            f"score contains {int(bad.sum())} NaN or infinite values (first at index {int(np.flatnonzero(bad)[0])}); "
            "expected finite scores"
        )
    n_pos = int(member.sum())
    if n_pos == 0 or n_pos == member.size:
        raise InvalidInputError(
            f"need both members and non-members; got {n_pos} members and {member.size - n_pos} non-members"
        )
    return member, score


def _sorted_order(score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Descending order of ``score`` and the index (in that order) of the last record of each tie group."""
    order = np.argsort(-score, kind="mergesort")
    s = score[order]
    last_of_group = np.r_[np.flatnonzero(np.diff(s) != 0), s.size - 1]
    return order, last_of_group


def roc_curve(member, score, *, sample_weight=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC points ``(fpr, tpr, thresholds)``, one per distinct score, starting at (0, 0) with threshold +inf.

    The point at threshold ``t`` counts records with ``score >= t`` as members; the points equal
    ``sklearn.metrics.roc_curve(member, score, drop_intermediate=False)``.
    """
    member, score = check_scores(member, score)
    weight = np.ones(score.size) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    order, last = _sorted_order(score)
    pos = np.cumsum(weight[order] * member[order])[last]
    neg = np.cumsum(weight[order] * ~member[order])[last]
    fpr = np.r_[0.0, neg / neg[-1]]
    tpr = np.r_[0.0, pos / pos[-1]]
    return fpr, tpr, np.r_[np.inf, score[order][last]]


def roc_auc(member, score, *, sample_weight=None) -> float:
    """Area under the ROC curve (trapezoid rule; ties count one half, as in scikit-learn)."""
    fpr, tpr, _ = roc_curve(member, score, sample_weight=sample_weight)
    return float(np.trapezoid(tpr, fpr))


def tpr_at_fpr(fpr: np.ndarray, tpr: np.ndarray, alpha: float) -> float:
    """The largest TPR among ROC points whose FPR is at most ``alpha``.

    This is the TPR an attacker gets with a threshold whose observed false-positive rate does not
    exceed ``alpha``; no interpolation between points. With fewer than ``1/alpha`` non-members it is
    the TPR at FPR 0.
    """
    if not 0.0 < alpha < 1.0:
        raise InvalidInputError(f"fpr {alpha} is outside (0, 1)")
    return float(np.max(np.where(np.asarray(fpr) <= alpha, tpr, 0.0)))


def balanced_accuracy(fpr: np.ndarray, tpr: np.ndarray) -> float:
    """Best balanced accuracy over thresholds: ``max (TPR + 1 - FPR) / 2``."""
    return float(np.max((np.asarray(tpr) + 1.0 - np.asarray(fpr)) / 2.0))


def membership_advantage(fpr: np.ndarray, tpr: np.ndarray) -> float:
    """Membership advantage (Yeom et al. 2018): ``max TPR - FPR`` over thresholds."""
    return float(np.max(np.asarray(tpr) - np.asarray(fpr)))
