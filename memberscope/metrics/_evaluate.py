"""One attack's metrics with bootstrap confidence intervals, overall and per slice."""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from memberscope.exceptions import InvalidInputError, UnresolvableFPRWarning
from memberscope.metrics._bootstrap import bootstrap_counts, replicate_metrics
from memberscope.metrics._roc import (
    balanced_accuracy,
    check_scores,
    membership_advantage,
    roc_curve,
    tpr_at_fpr,
)

__all__ = ["DEFAULT_FPRS", "AttackMetrics", "evaluate", "evaluate_by_group", "fpr_key"]

DEFAULT_FPRS = (0.1, 0.01, 0.001, 0.0001)


def fpr_key(alpha: float) -> str:
    """``0.001 -> "0.001"``: the key of an FPR in results.json (positional, never ``1e-03``)."""
    return np.format_float_positional(float(alpha), trim="-")


@dataclass
class AttackMetrics:
    """Metrics of one attack; CIs are ``(low, high)`` percentile-bootstrap intervals."""

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
    confidence: float = 0.95
    n_bootstrap: int = 0
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable values (CIs as lists)."""
        out = asdict(self)
        for key in ("auc_ci", "balanced_accuracy_ci", "advantage_ci"):
            out[key] = [float(v) for v in out[key]]
        out["tpr_at_fpr_ci"] = {k: [float(v) for v in ci] for k, ci in self.tpr_at_fpr_ci.items()}
        return out


def _interval(values: np.ndarray, confidence: float, point: float) -> tuple[float, float]:
    if values.size == 0:
        return (point, point)
    tail = 100 * (1 - confidence) / 2
    lo, hi = np.percentile(values, [tail, 100 - tail])
    return (float(lo), float(hi))


def evaluate(
    member, score, *, fprs=DEFAULT_FPRS, n_bootstrap: int = 1000, confidence: float = 0.95, seed: int = 0
) -> AttackMetrics:
    """AUC, TPR at each FPR, balanced accuracy and advantage of ``score`` (n,) against ``member`` (n,).

    Confidence intervals come from a stratified bootstrap (members and non-members resampled
    separately). Warns (:class:`UnresolvableFPRWarning`) for each FPR below ``1 / n_nonmembers``.
    """
    member, score = check_scores(member, score)
    fprs = tuple(float(a) for a in fprs)
    for alpha in fprs:
        if not 0.0 < alpha < 1.0:
            raise InvalidInputError(f"fpr {alpha} is outside (0, 1)")
    if n_bootstrap < 0:
        raise InvalidInputError(f"n_bootstrap must be >= 0; got {n_bootstrap}")
    if not 0.0 < confidence < 1.0:
        raise InvalidInputError(f"confidence {confidence} is outside (0, 1)")
    n_pos, n_neg = int(member.sum()), int((~member).sum())
    fpr, tpr, _ = roc_curve(member, score)
    keys = [fpr_key(a) for a in fprs]
    notes, resolvable = [], {}
    for alpha, key in zip(fprs, keys, strict=True):
        resolvable[key] = n_neg * alpha >= 1
        if not resolvable[key]:
            msg = (
                f"FPR {key} cannot be resolved with {n_neg} non-members (at least {math.ceil(1 / alpha)} "
                f"needed); its TPR is reported at FPR 0"
            )
            notes.append(msg)
            warnings.warn(msg, UnresolvableFPRWarning, stacklevel=2)
    point_tpr = {k: tpr_at_fpr(fpr, tpr, a) for a, k in zip(fprs, keys, strict=True)}
    auc = float(np.trapezoid(tpr, fpr))
    bal, adv = balanced_accuracy(fpr, tpr), membership_advantage(fpr, tpr)
    if n_bootstrap:
        counts = bootstrap_counts(member, n_bootstrap, np.random.default_rng(seed))
        reps = replicate_metrics(member, score, counts, fprs)
    else:
        reps = {
            "auc": np.empty(0),
            "tpr": np.empty((0, len(fprs))),
            "balanced_accuracy": np.empty(0),
            "advantage": np.empty(0),
        }
    return AttackMetrics(
        auc=auc,
        auc_ci=_interval(reps["auc"], confidence, auc),
        tpr_at_fpr=point_tpr,
        tpr_at_fpr_ci={k: _interval(reps["tpr"][:, i], confidence, point_tpr[k]) for i, k in enumerate(keys)},
        balanced_accuracy=bal,
        balanced_accuracy_ci=_interval(reps["balanced_accuracy"], confidence, bal),
        advantage=adv,
        advantage_ci=_interval(reps["advantage"], confidence, adv),
        n_members=n_pos,
        n_nonmembers=n_neg,
        fpr_resolvable=resolvable,
        confidence=confidence,
        n_bootstrap=n_bootstrap,
        warnings=notes,
    )


def evaluate_by_group(member, score, groups, *, min_records: int = 20, **evaluate_kwargs) -> dict[str, AttackMetrics]:
    """:func:`evaluate` on each distinct value of ``groups`` (n,); keys are ``str(value)``.

    Groups with fewer than ``min_records`` records, or without both members and non-members, are
    skipped. Unresolvable-FPR notes go into each slice's ``warnings`` instead of Python warnings,
    since small slices always have them.
    """
    member, score = check_scores(member, score)
    groups = np.asarray(groups)
    if groups.shape != member.shape:
        raise InvalidInputError(f"groups has {groups.size} entries but score has {score.size}")
    out: dict[str, AttackMetrics] = {}
    for value in np.unique(groups):
        sel = groups == value
        m = member[sel]
        if sel.sum() < min_records or m.all() or not m.any():
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UnresolvableFPRWarning)
            out[str(value)] = evaluate(m, score[sel], **evaluate_kwargs)
    return out
