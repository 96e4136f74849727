"""One attack's metrics with bootstrap confidence intervals, overall and per slice."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from memberscope.exceptions import InvalidInputError, UnresolvableFPRWarning
from memberscope.metrics._bootstrap import ReplicateMetrics, bootstrap_counts, replicate_metrics
from memberscope.metrics._roc import balanced_accuracy, membership_advantage, roc_curve, tpr_at_fpr
from memberscope.metrics._validate import (
    check_confidence,
    check_count,
    check_fprs,
    check_scores,
    needed_nonmembers,
)

__all__ = ["DEFAULT_FPRS", "AttackMetrics", "evaluate", "evaluate_by_group", "fpr_key"]

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


def _interval(values: np.ndarray, confidence: float, point: float) -> tuple[float, float]:
    """Percentile interval of bootstrap ``values`` (b,); ``(point, point)`` when there are none."""
    if values.size == 0:
        return (point, point)
    tail = 100.0 * (1.0 - confidence) / 2.0
    lo, hi = np.percentile(values, [tail, 100.0 - tail])
    return (float(lo), float(hi))


@dataclass
class AttackMetrics:
    """Metrics of one attack on one membership game, with percentile-bootstrap confidence intervals.

    Every ``*_ci`` is a ``(low, high)`` interval at level ``confidence``; with ``n_bootstrap=0``
    it collapses to ``(value, value)``. Dictionaries over false-positive rates are keyed by
    :func:`fpr_key`.

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
        One sentence per unresolvable FPR.
    confidence : float
        Level of the intervals.
    n_bootstrap : int
        Bootstrap replicates behind the intervals.
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
        }


def evaluate(
    member,
    score,
    *,
    fprs=DEFAULT_FPRS,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int | None = 0,
) -> AttackMetrics:
    """AUC, TPR at low FPRs, balanced accuracy and advantage of one attack, with bootstrap CIs.

    The intervals are percentile intervals of a stratified bootstrap: each replicate resamples
    the members and the non-members separately, with replacement, keeping both counts (see
    :func:`memberscope.metrics.bootstrap_counts`). The same ``seed`` gives the same intervals.

    An FPR ``alpha`` with ``n_nonmembers * alpha < 1`` cannot be resolved: no false positive at all
    is allowed. Its TPR is still reported (it is the TPR at FPR 0), but ``fpr_resolvable`` is
    False, a sentence goes into ``warnings`` and an :class:`UnresolvableFPRWarning` is emitted.

    Parameters
    ----------
    member : array-like of shape (n,)
        Ground truth: 1 / ``True`` for members, 0 / ``False`` for non-members.
    score : array-like of shape (n,)
        Finite attack scores; higher means more likely a member.
    fprs : sequence of float, default ``DEFAULT_FPRS``
        Distinct false-positive rates in (0, 1) at which to report the TPR.
    n_bootstrap : int, default 1000
        Bootstrap replicates; 0 skips the bootstrap (intervals collapse to the estimate).
    confidence : float, default 0.95
        Level of the intervals, in (0, 1).
    seed : int or None, default 0
        Seed of ``numpy.random.default_rng`` for the bootstrap.

    Returns
    -------
    AttackMetrics

    Raises
    ------
    InvalidInputError
        If ``member`` and ``score`` are not 1-D arrays of one length, ``member`` is not 0/1,
        ``score`` holds NaN or ±inf, only one class is present, an FPR is outside (0, 1),
        ``n_bootstrap < 0`` or ``confidence`` is outside (0, 1).

    Warns
    -----
    UnresolvableFPRWarning
        Once per FPR below ``1 / n_nonmembers``.
    """
    member, score = check_scores(member, score)
    fprs = check_fprs(fprs)
    n_bootstrap = check_count(n_bootstrap, "n_bootstrap")
    confidence = check_confidence(confidence)
    n_pos = int(member.sum())
    n_neg = member.size - n_pos
    keys = [fpr_key(a) for a in fprs]

    # 1. Resolvability of each FPR.
    notes: list[str] = []
    resolvable: dict[str, bool] = {}
    for alpha, key in zip(fprs, keys, strict=True):
        needed = needed_nonmembers(alpha)
        resolvable[key] = n_neg >= needed
        if not resolvable[key]:
            msg = (
                f"FPR {key} cannot be resolved with {n_neg} non-members (at least {needed} needed); "
                "its TPR is reported at FPR 0"
            )
            notes.append(msg)
            warnings.warn(msg, UnresolvableFPRWarning, stacklevel=2)

    # 2. Point estimates from the full ROC curve.
    fpr, tpr, _ = roc_curve(member, score)
    auc = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1])) / 2.0)
    point_tpr = {k: tpr_at_fpr(fpr, tpr, a) for a, k in zip(fprs, keys, strict=True)}
    bal, adv = balanced_accuracy(fpr, tpr), membership_advantage(fpr, tpr)

    # 3. Bootstrap replicates, drawn and scored chunk by chunk.
    counts = bootstrap_counts(member, n_bootstrap, rng=np.random.default_rng(seed))
    reps: ReplicateMetrics = replicate_metrics(member, score, counts=counts, fprs=fprs)

    return AttackMetrics(
        auc=auc,
        auc_ci=_interval(reps.auc, confidence, auc),
        tpr_at_fpr=point_tpr,
        tpr_at_fpr_ci={k: _interval(reps.tpr_at_fpr[:, j], confidence, point_tpr[k]) for j, k in enumerate(keys)},
        balanced_accuracy=bal,
        balanced_accuracy_ci=_interval(reps.balanced_accuracy, confidence, bal),
        advantage=adv,
        advantage_ci=_interval(reps.advantage, confidence, adv),
        n_members=n_pos,
        n_nonmembers=n_neg,
        fpr_resolvable=resolvable,
        warnings=notes,
        confidence=confidence,
        n_bootstrap=n_bootstrap,
    )


def evaluate_by_group(
    member, score, groups, *, min_records: int = 20, **evaluate_kwargs: Any
) -> dict[str, AttackMetrics]:
    """:func:`evaluate` on each slice of the records sharing a value of ``groups``.

    Slices with fewer than ``min_records`` records, or without both members and non-members,
    are skipped. Small slices nearly always leave low FPRs unresolvable, so those notes are
    kept in each slice's ``warnings`` and ``fpr_resolvable`` but not emitted as Python warnings.

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
        Passed to :func:`evaluate` (``fprs``, ``n_bootstrap``, ``confidence``, ``seed``); a smaller
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
        if m.size < min_records or m.all() or not m.any():
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UnresolvableFPRWarning)
            out[str(value)] = evaluate(m, score[sel], **evaluate_kwargs)
    return out
