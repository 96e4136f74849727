"""One attack's metrics with confidence intervals that keep their level, overall and per slice."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from memberscope.exceptions import InvalidInputError, UnresolvableFPRWarning
from memberscope.metrics._bootstrap import ReplicateMetrics, check_chunk, replicates_from_ranked
from memberscope.metrics._intervals import (
    ADVANTAGE_DKW,
    AUC_BOOTSTRAP,
    AUC_DELONG,
    AUC_WORST_CASE,
    BOOTSTRAP_MIN_CLASS,
    BOOTSTRAP_MIN_REPLICATES,
    MIN_MEMBERS,
    MIN_NONMEMBERS,
    TPR_BOOTSTRAP,
    TPR_ORDER_STATISTICS,
    advantage_interval,
    auc_interval,
    auc_uses_bootstrap,
    auc_uses_delong,
    delong_interval,
    tpr_interval,
    tpr_uses_bootstrap,
)
from memberscope.metrics._roc import (
    balanced_accuracy,
    membership_advantage,
    operating_point,
    positive_predictive_value,
    rank_records,
    roc_from_ranked,
)
from memberscope.metrics._validate import (
    check_confidence,
    check_count,
    check_fprs,
    check_scores,
    needed_nonmembers,
)

__all__ = ["DEFAULT_FPRS", "AttackMetrics", "check_class_counts", "evaluate", "evaluate_by_group", "fpr_key"]

DEFAULT_FPRS = (0.1, 0.01, 0.001, 0.0001)
"""False-positive rates reported by default: 10%, 1%, 0.1% and 0.01%."""


def fpr_key(alpha: float) -> str:
    """The key of a false-positive rate in result dictionaries, written positionally.

    Parameters
    ----------
    alpha : float
        A false-positive rate.

    Returns
    -------
    key : str
        The shortest positional decimal that round-trips, e.g. ``0.001 -> "0.001"`` and
        ``0.0001 -> "0.0001"`` (never ``"1e-04"``).
    """
    return np.format_float_positional(float(alpha), trim="-")


def _percentile_interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    """Percentile interval of bootstrap ``values`` (b,)."""
    tail = 100.0 * (1.0 - confidence) / 2.0
    lo, hi = np.percentile(values, [tail, 100.0 - tail])
    return (float(lo), float(hi))


@dataclass
class AttackMetrics:
    """Metrics of one attack on one membership game, with confidence intervals that keep their level.

    Every ``*_ci`` is a ``(low, high)`` interval at level ``confidence``, made by the method named in
    the matching ``*_ci_method``: ``"bootstrap"`` (stratified percentile bootstrap, where it covers),
    ``"wilson-worst-case-variance"`` (AUC), ``"delong-logit"`` (AUC, above ``BOOTSTRAP_MAX_RECORDS``
    records), ``"order-statistics-clopper-pearson"`` (TPR at an FPR)
    or ``"dkw"`` (advantage and balanced accuracy); see :mod:`memberscope.metrics._intervals`.
    Dictionaries over false-positive rates are keyed by :func:`fpr_key`.

    Attributes
    ----------
    auc : float
        Area under the ROC curve.
    auc_ci : tuple of (float, float)
    tpr_at_fpr : dict of str to float
        TPR at each requested FPR (see :func:`memberscope.metrics.tpr_at_fpr`).
    tpr_at_fpr_ci : dict of str to (float, float)
    balanced_accuracy : float
        Best balanced accuracy over thresholds, ``max (TPR + 1 - FPR) / 2``.
    balanced_accuracy_ci : tuple of (float, float)
    advantage : float
        Membership advantage ``max (TPR - FPR)`` (Yeom et al., 2018).
    advantage_ci : tuple of (float, float)
    n_members, n_nonmembers : int
        Records of each class in the game.
    fpr_resolvable : dict of str to bool
        False where ``n_nonmembers * fpr < 1``: not even one false positive is allowed, so the
        reported TPR is the TPR at FPR 0.
    warnings : list of str
        One sentence per unresolvable FPR, and one when the AUC's interval had to fall back to the
        worst-case method because the game is small.
    confidence : float
        Level of the intervals.
    n_bootstrap : int
        Bootstrap replicates requested (used only by intervals whose method is ``"bootstrap"``).
    auc_ci_method : str
    tpr_at_fpr_ci_method : dict of str to str
    advantage_ci_method : str
        Also the method of ``balanced_accuracy_ci``.
    operating_fpr : dict of str to float
        Observed FPR of the threshold behind each ``tpr_at_fpr`` (see
        :func:`memberscope.metrics.operating_point`).
    ppv_at_fpr : dict of str to float
        Attack precision at that threshold for the game's member share ``ppv_prior``, i.e.
        ``TP / (TP + FP)`` counted on the game; :meth:`ppv` re-weights it to another prior.
    ppv_prior : float
        ``n_members / (n_members + n_nonmembers)``.
    """

    auc: float
    auc_ci: tuple[float, float]
    tpr_at_fpr: dict[str, float]
    tpr_at_fpr_ci: dict[str, tuple[float, float]]
    balanced_accuracy: float
    balanced_accuracy_ci: tuple[float, float]
    advantage: float
    advantage_ci: tuple[float, float]
    n_members: int
    n_nonmembers: int
    fpr_resolvable: dict[str, bool]
    warnings: list[str] = field(default_factory=list)
    confidence: float = 0.95
    n_bootstrap: int = 0
    auc_ci_method: str = AUC_WORST_CASE
    tpr_at_fpr_ci_method: dict[str, str] = field(default_factory=dict)
    advantage_ci_method: str = ADVANTAGE_DKW
    operating_fpr: dict[str, float] = field(default_factory=dict)
    ppv_at_fpr: dict[str, float] = field(default_factory=dict)
    ppv_prior: float = 0.5

    def ppv(self, prior: float) -> dict[str, float]:
        """Attack precision at each reported FPR if a fraction ``prior`` of the records were members.

        Parameters
        ----------
        prior : float
            Member share in (0, 1), e.g. 0.01 for "1% of the population were members".

        Returns
        -------
        dict of str to float
            Keyed like ``tpr_at_fpr``; see :func:`memberscope.metrics.positive_predictive_value`.
        """
        return {k: positive_predictive_value(v, self.operating_fpr[k], prior) for k, v in self.tpr_at_fpr.items()}

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable Python values: floats, ints, bools, strings, lists for the intervals."""

        def ci(pair: tuple[float, float]) -> list[float]:
            return [float(pair[0]), float(pair[1])]

        return {
            "auc": float(self.auc),
            "auc_ci": ci(self.auc_ci),
            "tpr_at_fpr": {str(k): float(v) for k, v in self.tpr_at_fpr.items()},
            "tpr_at_fpr_ci": {str(k): ci(v) for k, v in self.tpr_at_fpr_ci.items()},
            "balanced_accuracy": float(self.balanced_accuracy),
            "balanced_accuracy_ci": ci(self.balanced_accuracy_ci),
            "advantage": float(self.advantage),
            "advantage_ci": ci(self.advantage_ci),
            "n_members": int(self.n_members),
            "n_nonmembers": int(self.n_nonmembers),
            "fpr_resolvable": {str(k): bool(v) for k, v in self.fpr_resolvable.items()},
            "warnings": [str(w) for w in self.warnings],
            "confidence": float(self.confidence),
            "n_bootstrap": int(self.n_bootstrap),
            "auc_ci_method": str(self.auc_ci_method),
            "tpr_at_fpr_ci_method": {str(k): str(v) for k, v in self.tpr_at_fpr_ci_method.items()},
            "balanced_accuracy_ci_method": str(self.advantage_ci_method),
            "advantage_ci_method": str(self.advantage_ci_method),
            "operating_fpr": {str(k): float(v) for k, v in self.operating_fpr.items()},
            "ppv_at_fpr": {str(k): float(v) for k, v in self.ppv_at_fpr.items()},
            "ppv_prior": float(self.ppv_prior),
        }


def check_class_counts(n_members: int, n_nonmembers: int) -> None:
    """Refuse a game with fewer than :data:`MIN_MEMBERS` members or :data:`MIN_NONMEMBERS` non-members.

    Raises
    ------
    InvalidInputError
        Naming both counts and the minimum.
    """
    if n_members < MIN_MEMBERS or n_nonmembers < MIN_NONMEMBERS:
        raise InvalidInputError(
            f"too few records to report an attack's metrics: {n_members} members and {n_nonmembers} "
            f"non-members; at least {MIN_MEMBERS} members and {MIN_NONMEMBERS} non-members are needed "
            "(below that no confidence interval keeps its level)"
        )


def evaluate(
    member,
    score,
    *,
    fprs=DEFAULT_FPRS,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int | None = 0,
    chunk: int | None = None,
) -> AttackMetrics:
    """AUC, TPR at low FPRs, PPV, balanced accuracy and advantage of one attack, with honest CIs.

    Each interval is the stratified percentile bootstrap where simulations show it covers (both
    classes large, the estimate away from 0 and 1, enough expected false positives; see
    :func:`memberscope.metrics._intervals.auc_uses_bootstrap` and ``tpr_uses_bootstrap``), and
    otherwise an interval whose coverage holds for any score distributions: the Wilson interval on
    the worst-case variance for the AUC, order statistics with Clopper-Pearson for the TPR at a
    fixed FPR (the threshold being estimated from the non-members), DKW bands for the advantage
    and balanced accuracy. Above :data:`~memberscope.metrics._intervals.BOOTSTRAP_MAX_RECORDS`
    records (2 * 10^6) no bootstrap runs, whatever ``n_bootstrap``: DeLong's interval (logit scale) for the AUC
    (away from 0 and 1; its normal approximation is excellent at that size) and order statistics for
    the TPR. The method of each is recorded (``*_ci_method``). The bootstrap resamples
    the members and the non-members separately, with replacement, keeping both counts (see
    :func:`memberscope.metrics.bootstrap_replicates`); the same ``seed`` gives the same intervals.

    An FPR ``alpha`` with ``n_nonmembers * alpha < 1`` cannot be resolved: no false positive at all
    is allowed, so the TPR reported for it is the TPR at FPR 0. Such FPRs are flagged in
    ``fpr_resolvable`` and ``warnings``, and an :class:`UnresolvableFPRWarning` is emitted; their
    intervals still cover the TPR at ``alpha`` (their lower end is 0).

    Parameters
    ----------
    member : array-like of shape (n,)
        Ground truth: 1 / ``True`` for members, 0 / ``False`` for non-members.
    score : array-like of shape (n,)
        Finite attack scores; higher means more likely a member.
    fprs : sequence of float, default ``DEFAULT_FPRS``
        Distinct false-positive rates in (0, 1) at which to report the TPR.
    n_bootstrap : int, default 1000
        Bootstrap replicates. Below :data:`BOOTSTRAP_MIN_REPLICATES` (1,000; 0 included), or above
        ``BOOTSTRAP_MAX_RECORDS`` records, no bootstrap runs and every interval is analytic.
    confidence : float, default 0.95
        Level of the intervals, in (0, 1).
    seed : int or None, default 0
        Seed of ``numpy.random.default_rng`` for the bootstrap.
    chunk : int or None, default None
        Bootstrap replicates scored together (memory about ``50 * chunk * n`` bytes); None picks it
        (one at a time from 131,072 records up).

    Returns
    -------
    AttackMetrics

    Raises
    ------
    InvalidInputError
        If ``member`` and ``score`` are not 1-D arrays of one length, ``member`` is not 0/1,
        ``score`` holds NaN or ±inf, an FPR is outside (0, 1), ``n_bootstrap < 0``,
        ``confidence`` is outside (0, 1) or ``chunk < 1``; and if there are fewer than
        :data:`MIN_MEMBERS` (5) members or :data:`MIN_NONMEMBERS` (5) non-members.

    Warns
    -----
    UnresolvableFPRWarning
        Once per FPR below ``1 / n_nonmembers``.
    """
    member, score = check_scores(member, score)
    fprs = check_fprs(fprs)
    n_bootstrap = check_count(n_bootstrap, "n_bootstrap")
    confidence = check_confidence(confidence)
    chunk = check_chunk(chunk)
    n_pos = int(member.sum())
    n_neg = member.size - n_pos
    check_class_counts(n_pos, n_neg)
    keys = [fpr_key(a) for a in fprs]

    # 1. Resolvability of each FPR.
    notes: list[str] = []
    resolvable: dict[str, bool] = {}
    for alpha, key in zip(fprs, keys, strict=True):
        needed = needed_nonmembers(alpha)
        resolvable[key] = n_neg >= needed
        if not resolvable[key]:
            msg = (
                f"FPR {100 * alpha:g}% cannot be resolved with {n_neg} non-members (at least {needed} needed); "
                "its TPR is reported at FPR 0"
            )
            notes.append(msg)
            warnings.warn(msg, UnresolvableFPRWarning, stacklevel=2)

    # 2. Point estimates from the full ROC curve (one sort, shared with the intervals).
    ranked = rank_records(member, score)
    fpr, tpr = roc_from_ranked(ranked)
    auc = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1])) / 2.0)
    points = {k: operating_point(fpr, tpr, a) for a, k in zip(fprs, keys, strict=True)}
    point_tpr = {k: p[0] for k, p in points.items()}
    bal, adv = balanced_accuracy(fpr, tpr), membership_advantage(fpr, tpr)
    prior = n_pos / member.size

    # 3. Intervals: the bootstrap where it covers, else the analytic ones.
    boot_auc = auc_uses_bootstrap(auc, n_pos, n_neg, n_bootstrap)
    boot_tpr = {
        k: tpr_uses_bootstrap(point_tpr[k], a, n_pos, n_neg, n_bootstrap) for a, k in zip(fprs, keys, strict=True)
    }
    reps: ReplicateMetrics | None = None
    if boot_auc or any(boot_tpr.values()):
        rng = np.random.default_rng(seed)
        reps = replicates_from_ranked(member, ranked, n_bootstrap, rng=rng, fprs=fprs, chunk=chunk, advantage=False)
    members_ascending = ranked.score[ranked.member][::-1]
    nonmembers_descending = ranked.score[~ranked.member]
    tpr_ci: dict[str, tuple[float, float]] = {}
    tpr_method: dict[str, str] = {}
    for j, (alpha, key) in enumerate(zip(fprs, keys, strict=True)):
        if reps is not None and boot_tpr[key]:
            tpr_ci[key], tpr_method[key] = _percentile_interval(reps.tpr_at_fpr[:, j], confidence), TPR_BOOTSTRAP
        else:
            tpr_ci[key] = tpr_interval(members_ascending, nonmembers_descending, alpha, confidence)
            tpr_method[key] = TPR_ORDER_STATISTICS
    if reps is not None and boot_auc:
        auc_ci, auc_method = _percentile_interval(reps.auc, confidence), AUC_BOOTSTRAP
    elif auc_uses_delong(auc, n_pos, n_neg):
        auc_ci, auc_method = delong_interval(members_ascending, nonmembers_descending[::-1], confidence), AUC_DELONG
    else:
        auc_ci, auc_method = auc_interval(auc, n_pos, n_neg, confidence), AUC_WORST_CASE
        if n_bootstrap >= BOOTSTRAP_MIN_REPLICATES and min(n_pos, n_neg) < BOOTSTRAP_MIN_CLASS:
            notes.append(
                f"AUC from {n_pos} members and {n_neg} non-members: the bootstrap does not cover below "
                f"{BOOTSTRAP_MIN_CLASS} of each, so its interval assumes the worst-case variance (wider)"
            )
    adv_ci = advantage_interval(adv, n_pos, n_neg, confidence)

    return AttackMetrics(
        auc=auc,
        auc_ci=auc_ci,
        tpr_at_fpr=point_tpr,
        tpr_at_fpr_ci=tpr_ci,
        balanced_accuracy=bal,
        balanced_accuracy_ci=((1.0 + adv_ci[0]) / 2.0, (1.0 + adv_ci[1]) / 2.0),
        advantage=adv,
        advantage_ci=adv_ci,
        n_members=n_pos,
        n_nonmembers=n_neg,
        fpr_resolvable=resolvable,
        warnings=notes,
        confidence=confidence,
        n_bootstrap=n_bootstrap,
        auc_ci_method=auc_method,
        tpr_at_fpr_ci_method=tpr_method,
        advantage_ci_method=ADVANTAGE_DKW,
        operating_fpr={k: p[1] for k, p in points.items()},
        ppv_at_fpr={k: positive_predictive_value(p[0], p[1], prior) for k, p in points.items()},
        ppv_prior=prior,
    )


def evaluate_by_group(
    member, score, groups, *, min_records: int = 20, **evaluate_kwargs: Any
) -> dict[str, AttackMetrics]:
    """:func:`evaluate` on each slice of the records sharing a value of ``groups``.

    Slices with fewer than ``min_records`` records, or fewer than :data:`MIN_MEMBERS` members or
    :data:`MIN_NONMEMBERS` non-members (which :func:`evaluate` refuses), are skipped. Small slices
    nearly always leave low FPRs unresolvable, so those notes are kept in each slice's ``warnings``
    and ``fpr_resolvable`` but not emitted as Python warnings.

    Parameters
    ----------
    member : array-like of shape (n,)
        Ground truth, 0/1 or boolean.
    score : array-like of shape (n,)
        Finite attack scores; higher means more likely a member.
    groups : array-like of shape (n,)
        Slice label per record (class label, demographic group, ...).
    min_records : int, default 20
        Smallest slice evaluated.
    **evaluate_kwargs
        Passed to :func:`evaluate` (``fprs``, ``n_bootstrap``, ``confidence``, ``seed``, ``chunk``); a smaller
        ``n_bootstrap`` keeps many slices fast.

    Returns
    -------
    dict of str to AttackMetrics
        Keyed by ``str(value)``, in sorted order of the values.
    """
    member, score = check_scores(member, score)
    groups = np.asarray(groups)
    if groups.ndim != 1 or groups.size != member.size:
        raise InvalidInputError(f"groups must have shape ({member.size},) like score; got shape {groups.shape}")
    min_records = check_count(min_records, "min_records")
    out: dict[str, AttackMetrics] = {}
    for value in np.unique(groups):
        sel = groups == value
        m = member[sel]
        n_pos = int(m.sum())
        if m.size < min_records or n_pos < MIN_MEMBERS or m.size - n_pos < MIN_NONMEMBERS:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UnresolvableFPRWarning)
            out[str(value)] = evaluate(m, score[sel], **evaluate_kwargs)
    return out
