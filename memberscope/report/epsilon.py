"""Empirical lower bounds on the differential-privacy ε implied by a membership attack.

If training is (ε, δ)-DP, every membership test satisfies ``TPR ≤ e^ε·FPR + δ`` and
``1 − FPR ≤ e^ε·(1 − TPR) + δ`` (Kairouz et al. 2015). An attack's measured rates therefore give
``ε ≥ max(log((TPR − δ)/FPR), log((1 − FPR − δ)/(1 − TPR)))``. To make this a bound that holds with
confidence ``1 − α`` (Jagielski et al. 2020; Nasr et al. 2021), TPR is replaced by its one-sided
Clopper–Pearson lower bound and FPR by its upper bound; the threshold is chosen on the same data, so
a Bonferroni correction spends ``α / (2·m)`` on each of the two bounds at each of the ``m`` thresholds
tried. Bounds below 0 are reported as 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from memberscope.exceptions import InvalidInputError

__all__ = ["EpsilonBound", "clopper_pearson", "epsilon_lower_bound", "epsilon_lower_bounds_from_csv"]


def clopper_pearson(k, n, alpha: float, *, side: str) -> np.ndarray:
    """One-sided Clopper–Pearson bound on a binomial proportion at confidence ``1 − alpha``.

    ``side="lower"``: ``p_lo`` with ``P(p < p_lo) ≤ alpha``; ``side="upper"``: ``p_hi``. ``k`` successes of ``n``.
    """
    from scipy.stats import beta

    k, n = np.asarray(k, dtype=float), np.asarray(n, dtype=float)
    if not 0 < alpha < 1:
        raise InvalidInputError(f"alpha {alpha!r} must be in (0, 1)")
    if np.any(k < 0) or np.any(k > n) or np.any(n < 1):
        raise InvalidInputError("counts must satisfy 0 <= k <= n and n >= 1")
    with np.errstate(invalid="ignore"):
        if side == "lower":
            return np.where(k == 0, 0.0, beta.ppf(alpha, np.maximum(k, 1), n - k + 1))
        if side == "upper":
            return np.where(k == n, 1.0, beta.ppf(1 - alpha, k + 1, np.maximum(n - k, 1)))
    raise InvalidInputError(f"side {side!r} must be 'lower' or 'upper'")


@dataclass(frozen=True)
class EpsilonBound:
    """An ε lower bound at confidence ``1 − alpha`` and the threshold that achieved it."""

    epsilon: float
    threshold: float | None  # score ≥ threshold is guessed "member"; None when the bound is 0
    tpr_lower: float
    fpr_upper: float
    alpha: float
    delta: float
    n_thresholds: int

    def to_dict(self) -> dict[str, float | int | None]:
        return dict(vars(self))


def epsilon_lower_bound(
    member,
    score,
    *,
    alpha: float = 0.05,
    delta: float = 0.0,
    thresholds=None,
    n_thresholds: int = 100,
) -> EpsilonBound:
    """ε lower bound from an attack's scores (higher = more likely member), at confidence ``1 − alpha``.

    Parameters
    ----------
    member : array-like of shape (n,) — ground truth, 0/1 or boolean.
    score : array-like of shape (n,) — attack scores.
    alpha : float — total failure probability, split over every threshold tried (Bonferroni).
    delta : float in [0, 1) — the δ of (ε, δ)-DP.
    thresholds : array-like or None — the thresholds to try; by default ``n_thresholds`` quantiles of
        the pooled scores (chosen without looking at membership).
    """
    from memberscope.metrics._validate import check_scores

    member, score = check_scores(member, score)
    if not 0 < alpha < 1:
        raise InvalidInputError(f"alpha {alpha!r} must be in (0, 1)")
    if not 0 <= delta < 1:
        raise InvalidInputError(f"delta {delta!r} must be in [0, 1)")
    n_in, n_out = int(member.sum()), int((~member).sum())
    if n_in == 0 or n_out == 0:
        raise InvalidInputError(f"need members and non-members; got {n_in} members and {n_out} non-members")
    if thresholds is None:
        if n_thresholds < 1:
            raise InvalidInputError(f"n_thresholds {n_thresholds!r} must be at least 1")
        thresholds = np.unique(np.quantile(score, np.linspace(0, 1, n_thresholds + 2)[1:-1]))
    thresholds = np.asarray(thresholds, dtype=float).ravel()
    if thresholds.size == 0 or not np.all(np.isfinite(thresholds)):
        raise InvalidInputError("thresholds must be a non-empty array of finite numbers")
    m = thresholds.size
    each = alpha / (2 * m)
    guess = score[None, :] >= thresholds[:, None]  # (m, n)
    tp = (guess & member[None, :]).sum(axis=1)
    fp = (guess & ~member[None, :]).sum(axis=1)
    tpr_lo = clopper_pearson(tp, n_in, each, side="lower")
    fpr_hi = clopper_pearson(fp, n_out, each, side="upper")
    with np.errstate(divide="ignore", invalid="ignore"):
        forward = np.log(np.clip(tpr_lo - delta, 0, None) / fpr_hi)
        backward = np.log(np.clip(1 - fpr_hi - delta, 0, None) / (1 - tpr_lo))
    eps = np.nan_to_num(np.maximum(forward, backward), nan=-np.inf)
    best = int(np.argmax(eps))
    if not eps[best] > 0:
        return EpsilonBound(0.0, None, float(tpr_lo[best]), float(fpr_hi[best]), alpha, delta, m)
    return EpsilonBound(
        float(eps[best]), float(thresholds[best]), float(tpr_lo[best]), float(fpr_hi[best]), alpha, delta, m
    )


def epsilon_lower_bounds_from_csv(
    path: str | Path, *, alpha: float = 0.05, delta: float = 0.0, n_thresholds: int = 100
) -> dict[str, EpsilonBound]:
    """ε lower bound per attack column of an audit's ``scores.csv`` (columns ``record``, ``member``, attacks...)."""
    import pandas as pd

    path = Path(path)
    if path.is_dir():
        path = path / "scores.csv"
    try:
        table = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"cannot read scores file {str(path)!r}: {exc}") from None
    if "member" not in table.columns:
        raise InvalidInputError(f"scores file {str(path)!r} has no 'member' column; got {list(table.columns)}")
    attacks = [c for c in table.columns if c not in ("record", "member")]
    if not attacks:
        raise InvalidInputError(f"scores file {str(path)!r} has no attack columns")
    return {
        name: epsilon_lower_bound(
            table["member"].to_numpy(), table[name].to_numpy(), alpha=alpha, delta=delta, n_thresholds=n_thresholds
        )
        for name in attacks
    }
