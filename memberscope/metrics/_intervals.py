"""Confidence intervals that keep their coverage on small games, and the rule for when the bootstrap is used.

The stratified percentile bootstrap (:mod:`memberscope.metrics._bootstrap`) covers the AUC and the TPR
at a fixed FPR once both classes are large; on small games, near 0 or 1, or at low FPRs it does not
(with 30 non-members its TPR@10%FPR interval held the true value in 87% of simulated games). There
these intervals are used instead; each holds its level whatever the score distributions:

* **AUC** — on small games, the Wilson score interval with ``n = min(n_members, n_nonmembers)``: the variance of the
  Mann-Whitney estimate never exceeds ``AUC (1 - AUC) / min(n1, n0)`` (van Dantzig 1951; Birnbaum &
  McCarty 1958), and the score interval solves ``|AUC_hat - AUC| = z sqrt(AUC (1 - AUC) / n)`` for
  ``AUC``, so it does not collapse at 0 or 1 as DeLong's and Hanley & McNeil's Wald intervals do.
  Above :data:`BOOTSTRAP_MAX_RECORDS` records, DeLong's interval on the logit scale (its normal
  approximation is excellent with millions of records per class) where the AUC is away from 0 and 1.
* **TPR at FPR alpha** — order statistics of the non-member scores bracket the threshold whose FPR is
  ``alpha`` (a binomial argument, valid for ties), and Clopper-Pearson bounds the members above each
  end of the bracket. The two error sources are joined by a union bound, so the interval covers
  with probability at least ``confidence`` for any distributions, including the choice of the
  threshold from the non-members.
* **Advantage and balanced accuracy** — the Dvoretzky-Kiefer-Wolfowitz band with Massart's (1990)
  constant on both classes' score distributions. The bootstrap of this maximum over thresholds
  does not cover even at 1,000 records per class (its estimate is biased upwards), so the band is
  used at every size.

**At scale** — above :data:`BOOTSTRAP_MAX_RECORDS` records the bootstrap is not run (its replicates
cost O(n) each): DeLong for the AUC, order statistics for the TPR, DKW for the advantage.

Below :data:`MIN_MEMBERS` members or :data:`MIN_NONMEMBERS` non-members :func:`evaluate` refuses to
report (coverage simulations in ``benchmarks/interval_coverage.py`` and ``tests/test_interval_coverage.py``).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

from memberscope.exceptions import InvalidInputError

__all__ = [
    "AUC_BOOTSTRAP",
    "AUC_DELONG",
    "BOOTSTRAP_MAX_RECORDS",
    "BOOTSTRAP_MIN_AUC_MARGIN",
    "BOOTSTRAP_MIN_CLASS",
    "BOOTSTRAP_MIN_FALSE_POSITIVES",
    "BOOTSTRAP_MIN_REPLICATES",
    "BOOTSTRAP_MIN_TRUE_POSITIVES",
    "MIN_MEMBERS",
    "MIN_NONMEMBERS",
    "advantage_interval",
    "auc_interval",
    "auc_uses_bootstrap",
    "auc_uses_delong",
    "clopper_pearson",
    "delong_interval",
    "tpr_interval",
    "tpr_uses_bootstrap",
    "wilson_interval",
]

MIN_MEMBERS = 5
"""Fewest members :func:`memberscope.metrics.evaluate` reports on."""

MIN_NONMEMBERS = 5
"""Fewest non-members :func:`memberscope.metrics.evaluate` reports on."""

BOOTSTRAP_MIN_REPLICATES = 1000
"""Fewer replicates place a percentile interval's 2.5% tails too loosely (with 200 replicates the
AUC interval of 1,000 + 1,000 records held the truth in 93.2% of 1,500 games, with 1,000 in 95.0%
of 1,000); the analytic intervals are used instead."""

BOOTSTRAP_MIN_CLASS = 200
"""AUC: the bootstrap is used only with at least this many members and non-members ..."""

BOOTSTRAP_MIN_AUC_MARGIN = 10.0
"""... and ``min(n1, n0) * min(AUC, 1 - AUC)`` at least this (the estimate is away from 0 and 1)."""

BOOTSTRAP_MIN_FALSE_POSITIVES = 30.0
"""TPR at FPR alpha: the bootstrap is used only when ``alpha * n_nonmembers`` is at least this ..."""

BOOTSTRAP_MIN_TRUE_POSITIVES = 10.0
"""... and ``n_members * min(TPR, 1 - TPR)`` at least this (the TPR is away from 0 and 1)."""

BOOTSTRAP_MAX_RECORDS = 2_000_000
"""Above this many records (members + non-members) no bootstrap runs: a replicate costs O(n) and more
per record once the arrays leave the cache (1,000 replicates: about 20 s of CPU at 10^6 records,
50 s at 2 * 10^6, about 10 minutes at 10^7; ``benchmarks/metrics_scaling.py``), while the
analytic intervals are tight and cover there: DeLong's on the logit scale for the AUC (away from
0 and 1, else the worst-case Wilson), order statistics with Clopper-Pearson for the TPR at each
FPR."""

AUC_BOOTSTRAP = "bootstrap"
AUC_DELONG = "delong-logit"
AUC_WORST_CASE = "wilson-worst-case-variance"
TPR_BOOTSTRAP = "bootstrap"
TPR_ORDER_STATISTICS = "order-statistics-clopper-pearson"
ADVANTAGE_DKW = "dkw"


def _z(confidence: float) -> float:
    return float(special.ndtri(0.5 + confidence / 2.0))


def wilson_interval(p: float, n: float, confidence: float) -> tuple[float, float]:
    """Wilson score interval for a proportion ``p`` estimated from ``n`` observations.

    Solves ``(p - theta)^2 = z^2 theta (1 - theta) / n`` for ``theta`` (Wilson 1927).

    Parameters
    ----------
    p : float
        Estimate in [0, 1].
    n : float
        Number of observations (> 0); a non-integer effective size is allowed.
    confidence : float
        Level in (0, 1).

    Returns
    -------
    (low, high) : tuple of float
        In [0, 1], with ``low <= p <= high``.
    """
    z2 = _z(confidence) ** 2
    centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n)
    half = math.sqrt(z2) / (1.0 + z2 / n) * math.sqrt(max(p * (1.0 - p), 0.0) / n + z2 / (4.0 * n * n))
    return (max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half)))


def auc_interval(auc: float, n_members: int, n_nonmembers: int, confidence: float) -> tuple[float, float]:
    """AUC interval from the worst-case variance of the Mann-Whitney estimate.

    ``Var(AUC_hat) <= AUC (1 - AUC) / min(n1, n0)`` for every pair of score distributions (van
    Dantzig 1951; Birnbaum & McCarty 1958, Ann. Math. Statist. 29:558), so the Wilson score
    interval with ``n = min(n1, n0)`` (see :func:`wilson_interval`) is conservative whatever the
    distributions; it is wider than a DeLong interval when the true variance is smaller.

    Parameters
    ----------
    auc : float
        Estimated AUC in [0, 1].
    n_members, n_nonmembers : int
        Records of each class (>= 1).
    confidence : float
        Level in (0, 1).

    Returns
    -------
    (low, high) : tuple of float
    """
    return wilson_interval(auc, float(min(n_members, n_nonmembers)), confidence)


def delong_interval(
    members_ascending: np.ndarray, nonmembers_ascending: np.ndarray, confidence: float
) -> tuple[float, float]:
    """DeLong's interval for the AUC, on the logit scale.

    The variance of the Mann-Whitney estimate is estimated from the placements (DeLong, DeLong &
    Clarke-Pearson 1988, Biometrics 44:837): ``V10_i`` the share of non-members below member ``i``
    (ties count half), ``V01_j`` the share of members above non-member ``j``, and
    ``Var = s^2(V10) / n1 + s^2(V01) / n0`` (sample variances). The interval is
    ``expit(logit(AUC) +- z sqrt(Var) / (AUC (1 - AUC)))`` (the delta method on the logit scale),
    which stays inside (0, 1) and holds its level nearer the bounds than the plain Wald interval
    (simulated: 94.3% against 93.5% at AUC 0.96 with 1,000 records per class). Asymptotically
    exact, ties included; on small games it is too narrow, so :func:`memberscope.metrics.evaluate`
    uses it only at scale (:data:`BOOTSTRAP_MAX_RECORDS`, :func:`auc_uses_delong`).

    Parameters
    ----------
    members_ascending : ndarray of shape (n1,)
        Member scores sorted in ascending order (n1 >= 2).
    nonmembers_ascending : ndarray of shape (n0,)
        Non-member scores sorted in ascending order (n0 >= 2).
    confidence : float
        Level in (0, 1).

    Returns
    -------
    (low, high) : tuple of float
        ``(AUC, AUC)`` when the AUC is 0 or 1 (the placements do not vary).
    """
    n1, n0 = members_ascending.size, nonmembers_ascending.size
    below = np.searchsorted(nonmembers_ascending, members_ascending, side="left")
    below += np.searchsorted(nonmembers_ascending, members_ascending, side="right")
    v10 = below / (2.0 * n0)  # non-members below each member, ties half
    del below
    not_above = np.searchsorted(members_ascending, nonmembers_ascending, side="left")
    not_above += np.searchsorted(members_ascending, nonmembers_ascending, side="right")
    v01 = 1.0 - not_above / (2.0 * n1)  # members above each non-member, ties half
    del not_above
    auc = float(v10.mean())
    if not 0.0 < auc < 1.0:
        return (auc, auc)
    se = math.sqrt(float(v10.var(ddof=1)) / n1 + float(v01.var(ddof=1)) / n0)
    centre, half = float(special.logit(auc)), _z(confidence) * se / (auc * (1.0 - auc))
    return (float(special.expit(centre - half)), float(special.expit(centre + half)))


def clopper_pearson(k, n, lower_tail: float, upper_tail: float):
    """Clopper-Pearson (1934) bounds for a binomial proportion from ``k`` successes in ``n`` trials.

    The one implementation in memberscope: the TPR intervals here and the ε lower bounds of
    :mod:`memberscope.privacy` (one-sided, one tail set to 0) both use it.

    Parameters
    ----------
    k, n : int or array-like of int
        Successes and trials, ``0 <= k <= n``, ``n >= 1``; arrays broadcast together.
    lower_tail, upper_tail : float
        Probability that the true proportion lies below the lower (above the upper) bound, at most;
        each in [0, 1). A tail of 0 gives the trivial bound (0 below, 1 above), so a one-sided bound
        is ``clopper_pearson(k, n, alpha, 0.0)[0]`` or ``clopper_pearson(k, n, 0.0, alpha)[1]``.

    Returns
    -------
    (low, high) : tuple of float, or of ndarray of the broadcast shape for array input
        ``low = 0`` where ``k = 0`` and ``high = 1`` where ``k = n``.

    Raises
    ------
    InvalidInputError
        If a count is outside ``0 <= k <= n``, ``n >= 1``, or a tail is outside [0, 1).
    """
    k_arr, n_arr = np.broadcast_arrays(np.asarray(k, dtype=float), np.asarray(n, dtype=float))
    if np.any(n_arr < 1) or np.any(k_arr < 0) or np.any(k_arr > n_arr):
        raise InvalidInputError(f"Clopper-Pearson bounds need counts with 0 <= k <= n and n >= 1; got k={k}, n={n}")
    for name, tail in (("lower_tail", lower_tail), ("upper_tail", upper_tail)):
        if not 0.0 <= tail < 1.0:
            raise InvalidInputError(f"{name} must be in [0, 1); got {tail!r}")
    if lower_tail == 0.0:
        low = np.zeros_like(k_arr)
    else:
        low = np.where(k_arr <= 0, 0.0, special.betaincinv(np.maximum(k_arr, 1.0), n_arr - k_arr + 1.0, lower_tail))
    if upper_tail == 0.0:
        high = np.ones_like(k_arr)
    else:
        high = np.where(
            k_arr >= n_arr, 1.0, special.betaincinv(k_arr + 1.0, np.maximum(n_arr - k_arr, 1.0), 1.0 - upper_tail)
        )
    if k_arr.ndim == 0:
        return (float(low), float(high))
    return (low, high)


def _order_statistic_ranks(n_nonmembers: int, alpha: float, tail: float) -> tuple[int | None, int | None]:
    """Ranks (1 = highest) of the non-member scores bracketing the threshold of FPR ``alpha``.

    ``r``: the largest rank with ``P(Bin(n0, alpha) <= r - 1) <= tail``, or None (no such rank; the
    threshold may lie above every non-member). ``s``: the smallest rank with
    ``P(Bin(n0, alpha) >= s) <= tail``, or None (it may lie below every non-member).
    """
    n0 = n_nonmembers

    def cdf(j: int) -> float:  # P(Bin(n0, alpha) <= j)
        return 1.0 if j >= n0 else (0.0 if j < 0 else float(special.bdtr(j, n0, alpha)))

    # start from the continuous inverse of the binomial cdf, then step to the exact integer
    j = int(np.floor(special.bdtrik(tail, n0, alpha))) if cdf(0) <= tail else -1
    while j >= 0 and cdf(j) > tail:
        j -= 1
    while j + 1 < n0 and cdf(j + 1) <= tail:
        j += 1
    r = j + 1 if j >= 0 else None
    # s: the smallest s with P(X >= s) = 1 - cdf(s - 1) <= tail
    s = int(np.ceil(special.bdtrik(1.0 - tail, n0, alpha))) + 1 if cdf(n0 - 1) >= 1.0 - tail else n0 + 1
    while s > 0 and 1.0 - cdf(s - 2) <= tail:
        s -= 1
    while 1.0 - cdf(s - 1) > tail:
        s += 1
    return r, (s if s <= n_nonmembers else None)


def tpr_interval(
    members_ascending: np.ndarray, nonmembers_descending: np.ndarray, alpha: float, confidence: float
) -> tuple[float, float]:
    """Interval for the TPR at FPR ``alpha`` that accounts for the threshold being estimated.

    Let ``X0_(k)`` be the ``k``-th highest non-member score. With probability at least
    ``1 - tail`` (``tail = (1 - confidence) / 4``) the rule ``score > X0_(r)`` has true FPR <= alpha,
    so the true TPR at FPR alpha is at least that rule's TPR; and every rule with true FPR <= alpha
    flags only scores above ``X0_(s)``, so the true TPR is at most the TPR of ``score > X0_(s)``
    (``r``, ``s`` from binomial quantiles of ``Bin(n0, alpha)``). Given the non-members, the members
    above each of the two thresholds are binomial, bounded by Clopper-Pearson at ``tail`` each. A
    union bound gives coverage at least ``confidence`` for any score distributions, ties included
    (the true TPR at FPR alpha being ``max{P(X1 >= t) : P(X0 >= t) <= alpha}``).

    Parameters
    ----------
    members_ascending : ndarray of shape (n1,)
        Member scores sorted in ascending order.
    nonmembers_descending : ndarray of shape (n0,)
        Non-member scores sorted in descending order.
    alpha : float
        False-positive rate in (0, 1).
    confidence : float
        Level in (0, 1).

    Returns
    -------
    (low, high) : tuple of float
        ``low = 0`` when even the highest non-member may lie below the threshold (e.g. fewer than
        ``1 / alpha`` non-members); ``high = 1`` when even the lowest may lie above it.
    """
    n1 = members_ascending.size
    tail = (1.0 - confidence) / 4.0
    r, s = _order_statistic_ranks(nonmembers_descending.size, alpha, tail)

    def above(threshold: float) -> int:
        return int(n1 - np.searchsorted(members_ascending, threshold, side="right"))

    low = 0.0 if r is None else clopper_pearson(above(nonmembers_descending[r - 1]), n1, tail, tail)[0]
    high = 1.0 if s is None else clopper_pearson(above(nonmembers_descending[s - 1]), n1, tail, tail)[1]
    return (low, high)


def advantage_interval(advantage: float, n_members: int, n_nonmembers: int, confidence: float) -> tuple[float, float]:
    """Interval for the membership advantage ``max_t (TPR(t) - FPR(t))`` from DKW bands.

    With probability at least ``1 - (1 - confidence) / 2`` each, the empirical member and
    non-member score distributions lie within ``eps_c = sqrt(log(4 / (1 - confidence)) / (2 n_c))``
    of the true ones at every threshold (Dvoretzky-Kiefer-Wolfowitz with Massart's 1990 constant),
    so the true advantage is within ``eps_1 + eps_0`` of the estimate. Balanced accuracy is
    ``(1 + advantage) / 2``.

    Returns
    -------
    (low, high) : tuple of float
        Clipped to [0, 1].
    """
    log_term = math.log(4.0 / (1.0 - confidence))
    eps = math.sqrt(log_term / (2.0 * n_members)) + math.sqrt(log_term / (2.0 * n_nonmembers))
    return (max(0.0, advantage - eps), min(1.0, advantage + eps))


def _auc_away_from_the_bounds(auc: float, n_members: int, n_nonmembers: int) -> bool:
    n_min = min(n_members, n_nonmembers)
    return n_min >= BOOTSTRAP_MIN_CLASS and n_min * min(auc, 1.0 - auc) >= BOOTSTRAP_MIN_AUC_MARGIN


def auc_uses_bootstrap(auc: float, n_members: int, n_nonmembers: int, n_bootstrap: int) -> bool:
    """Whether the percentile bootstrap covers the AUC of this game and is run (see the module constants)."""
    return (
        n_bootstrap >= BOOTSTRAP_MIN_REPLICATES
        and n_members + n_nonmembers <= BOOTSTRAP_MAX_RECORDS
        and _auc_away_from_the_bounds(auc, n_members, n_nonmembers)
    )


def auc_uses_delong(auc: float, n_members: int, n_nonmembers: int) -> bool:
    """Whether the AUC's interval is DeLong's: above :data:`BOOTSTRAP_MAX_RECORDS` records, away from 0 and 1."""
    return n_members + n_nonmembers > BOOTSTRAP_MAX_RECORDS and _auc_away_from_the_bounds(auc, n_members, n_nonmembers)


def tpr_uses_bootstrap(tpr: float, alpha: float, n_members: int, n_nonmembers: int, n_bootstrap: int) -> bool:
    """Whether the percentile bootstrap covers the TPR at FPR ``alpha`` of this game and is run."""
    return (
        n_bootstrap >= BOOTSTRAP_MIN_REPLICATES
        and n_members + n_nonmembers <= BOOTSTRAP_MAX_RECORDS
        and alpha * n_nonmembers >= BOOTSTRAP_MIN_FALSE_POSITIVES
        and n_members * min(tpr, 1.0 - tpr) >= BOOTSTRAP_MIN_TRUE_POSITIVES
    )
