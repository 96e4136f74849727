"""ROC curve by one sort, and the operating-point metrics read off it.

Convention: an attack gives every record a score, higher meaning "more likely a member"; the
operating point at threshold ``t`` predicts "member" for every record with ``score >= t``.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Real

import numpy as np

from memberscope.exceptions import InvalidInputError
from memberscope.metrics._validate import check_fpr, check_scores, check_weight

__all__ = [
    "RankedRecords",
    "balanced_accuracy",
    "membership_advantage",
    "operating_point",
    "positive_predictive_value",
    "rank_records",
    "roc_auc",
    "roc_curve",
    "roc_from_ranked",
    "tpr_at_fpr",
]


@dataclass(frozen=True)
class RankedRecords:
    """Records sorted once by descending score, with tied scores grouped.

    Attributes
    ----------
    order : ndarray of shape (n,)
        Record indices by descending score (stable, so ties keep their input order).
    member : ndarray of shape (n,), dtype bool
        Ground truth in that order.
    score : ndarray of shape (n,)
        Scores in that order.
    group_starts : ndarray of shape (g,)
        Position (in that order) of the first record of each run of equal scores.
    """

    order: np.ndarray
    member: np.ndarray
    score: np.ndarray
    group_starts: np.ndarray

    @property
    def has_ties(self) -> bool:
        """Whether some score is shared by two or more records."""
        return self.group_starts.size < self.order.size


def rank_records(member: np.ndarray, score: np.ndarray) -> RankedRecords:
    """Sort validated ``member`` (n,) bool and ``score`` (n,) float once, by descending score."""
    order = np.argsort(-score, kind="stable")
    s = score[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    return RankedRecords(order=order, member=member[order], score=s, group_starts=starts)


def roc_from_ranked(ranked: RankedRecords) -> tuple[np.ndarray, np.ndarray]:
    """``(fpr, tpr)`` of :func:`roc_curve` for unit weights, from records already ranked."""
    last = np.r_[ranked.group_starts[1:] - 1, ranked.order.size - 1]
    pos = np.cumsum(ranked.member)[last]
    neg = (last + 1) - pos
    return np.r_[0.0, neg / neg[-1]], np.r_[0.0, pos / pos[-1]]


def _trapezoid(y: np.ndarray, x: np.ndarray) -> float:
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1])) / 2.0)


def roc_curve(member, score, *, sample_weight=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC curve of an attack: one point per distinct score, plus (0, 0) at threshold +inf.

    Computed by one sort of the scores (descending) and cumulative sums of the member and
    non-member weights; tied scores collapse into one point. The points equal
    ``sklearn.metrics.roc_curve(member, score, sample_weight=..., drop_intermediate=False)``,
    including its rule that records of weight zero are dropped.

    Parameters
    ----------
    member : array-like of shape (n,)
        Ground truth: 1 / ``True`` for members, 0 / ``False`` for non-members.
    score : array-like of shape (n,)
        Finite attack scores; higher means more likely a member.
    sample_weight : array-like of shape (n,), optional
        Non-negative weight per record; each class needs a positive total.

    Returns
    -------
    fpr : ndarray of shape (g + 1,)
        False-positive rate of ``score >= thresholds[i]``, non-decreasing from 0 to 1.
    tpr : ndarray of shape (g + 1,)
        True-positive rate of the same rule, non-decreasing from 0 to 1.
    thresholds : ndarray of shape (g + 1,)
        ``+inf`` followed by the ``g`` distinct scores in decreasing order.

    Raises
    ------
    InvalidInputError
        On malformed input (see :func:`memberscope.metrics.evaluate`).
    """
    member, score = check_scores(member, score)
    weight = check_weight(sample_weight, member)
    if sample_weight is not None:
        keep = weight > 0
        member, score, weight = member[keep], score[keep], weight[keep]
    ranked = rank_records(member, score)
    w = weight[ranked.order]
    last = np.r_[ranked.group_starts[1:] - 1, score.size - 1]
    pos = np.cumsum(w * ranked.member)[last]
    neg = np.cumsum(w * ~ranked.member)[last]
    fpr = np.r_[0.0, neg / neg[-1]]
    tpr = np.r_[0.0, pos / pos[-1]]
    return fpr, tpr, np.r_[np.inf, ranked.score[ranked.group_starts]]


def roc_auc(member, score, *, sample_weight=None) -> float:
    """Area under the ROC curve of :func:`roc_curve`, by the trapezoid rule.

    A tied member/non-member pair counts one half, so this equals
    ``sklearn.metrics.roc_auc_score`` and the Mann-Whitney U statistic divided by ``n1 * n0``.

    Parameters
    ----------
    member : array-like of shape (n,)
        Ground truth, 0/1 or boolean.
    score : array-like of shape (n,)
        Finite attack scores; higher means more likely a member.
    sample_weight : array-like of shape (n,), optional
        Non-negative weight per record.

    Returns
    -------
    auc : float
        In [0, 1]; 0.5 is chance, 1 perfect separation, 0 perfectly reversed.
    """
    fpr, tpr, _ = roc_curve(member, score, sample_weight=sample_weight)
    return _trapezoid(tpr, fpr)


def _check_curve(fpr, tpr) -> tuple[np.ndarray, np.ndarray]:
    fpr, tpr = np.asarray(fpr, dtype=np.float64), np.asarray(tpr, dtype=np.float64)
    if fpr.ndim != 1 or fpr.shape != tpr.shape or fpr.size == 0:
        raise InvalidInputError(
            f"fpr and tpr must be non-empty 1-D arrays of equal length (a ROC curve); "
            f"got shapes {fpr.shape} and {tpr.shape}"
        )
    return fpr, tpr


def tpr_at_fpr(fpr, tpr, alpha: float) -> float:
    """True-positive rate at false-positive rate ``alpha``: the largest TPR among ROC points with FPR <= alpha.

    This is the TPR an attacker gets with a threshold whose *observed* FPR does not exceed
    ``alpha``. There is no interpolation between ROC points. When fewer than ``1 / alpha``
    non-members were scored, no false positive at all is allowed and the value is the TPR at FPR 0.

    Parameters
    ----------
    fpr : array-like of shape (m,)
        False-positive rates of a ROC curve, e.g. from :func:`roc_curve`.
    tpr : array-like of shape (m,)
        The matching true-positive rates.
    alpha : float
        Target false-positive rate, in the open interval (0, 1).

    Returns
    -------
    tpr : float
        0.0 if no point has FPR <= ``alpha`` (never the case for a curve from :func:`roc_curve`,
        which starts at (0, 0)).
    """
    alpha = check_fpr(alpha)
    fpr, tpr = _check_curve(fpr, tpr)
    return float(np.max(np.where(fpr <= alpha, tpr, 0.0)))


def operating_point(fpr, tpr, alpha: float) -> tuple[float, float]:
    """The ROC point behind :func:`tpr_at_fpr`: ``(tpr, fpr)`` of the threshold an attacker would use.

    Among the points with FPR <= ``alpha`` it has the largest TPR and, of the points with that TPR,
    the smallest FPR (the most precise threshold reaching it).

    Parameters
    ----------
    fpr, tpr : array-like of shape (m,)
        A ROC curve, e.g. from :func:`roc_curve` (both non-decreasing).
    alpha : float
        Target false-positive rate, in (0, 1).

    Returns
    -------
    (tpr, fpr) : tuple of float
        ``(0.0, 0.0)`` when no point with FPR <= ``alpha`` flags a member.
    """
    alpha = check_fpr(alpha)
    fpr, tpr = _check_curve(fpr, tpr)
    best = float(np.max(np.where(fpr <= alpha, tpr, 0.0)))
    if best == 0.0:
        return (0.0, 0.0)
    return (best, float(np.min(fpr[(tpr == best) & (fpr <= alpha)])))


def positive_predictive_value(tpr: float, fpr: float, prior: float) -> float:
    """Attack precision ``Pr(member | flagged)`` at an operating point, for a member prior.

    ``PPV = prior TPR / (prior TPR + (1 - prior) FPR)`` (Bayes' rule). With ``prior`` the share
    of members in the game it equals ``TP / (TP + FP)`` counted on the game; another prior answers
    "how precise would the attack be if 1% of the population were members" (Jayaraman et al. 2021,
    "Revisiting membership inference under realistic assumptions").

    Parameters
    ----------
    tpr, fpr : float
        The operating point, e.g. from :func:`operating_point`, each in [0, 1].
    prior : float
        Fraction of members among the records the attacker faces, in (0, 1).

    Returns
    -------
    ppv : float
        In [0, 1]; 0.0 when the point flags no member (``tpr = 0``).

    Raises
    ------
    InvalidInputError
        If ``prior`` is not in (0, 1) or ``tpr``/``fpr`` not in [0, 1].
    """
    if isinstance(prior, bool) or not isinstance(prior, Real) or not 0.0 < float(prior) < 1.0:
        raise InvalidInputError(f"prior {prior!r} is outside (0, 1); expected the fraction of members")
    for name, value in (("tpr", tpr), ("fpr", fpr)):
        if not 0.0 <= float(value) <= 1.0:
            raise InvalidInputError(f"{name} {value!r} is outside [0, 1]")
    prior, tpr, fpr = float(prior), float(tpr), float(fpr)
    if tpr == 0.0:
        return 0.0
    return prior * tpr / (prior * tpr + (1.0 - prior) * fpr)


def membership_advantage(fpr, tpr) -> float:
    """Membership advantage (Yeom et al., 2018): the largest ``TPR - FPR`` over the ROC points.

    Parameters
    ----------
    fpr, tpr : array-like of shape (m,)
        A ROC curve, e.g. from :func:`roc_curve`.

    Returns
    -------
    advantage : float
        In [0, 1] for a curve from :func:`roc_curve` (its end points give 0).
    """
    fpr, tpr = _check_curve(fpr, tpr)
    return float(np.max(tpr - fpr))


def balanced_accuracy(fpr, tpr) -> float:
    """Best balanced accuracy over the ROC points: ``max (TPR + 1 - FPR) / 2``.

    Equal to ``(1 + membership_advantage(fpr, tpr)) / 2``; the accuracy of the best threshold on a
    membership game with equally many members and non-members.

    Parameters
    ----------
    fpr, tpr : array-like of shape (m,)
        A ROC curve, e.g. from :func:`roc_curve`.

    Returns
    -------
    balanced_accuracy : float
        In [0.5, 1] for a curve from :func:`roc_curve`.
    """
    fpr, tpr = _check_curve(fpr, tpr)
    return float(np.max((tpr + 1.0 - fpr) / 2.0))
