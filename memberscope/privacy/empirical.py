"""Empirical lower bounds on the differential-privacy ε implied by a membership attack.

If training is (ε, δ)-DP, every membership test satisfies ``TPR ≤ e^ε·FPR + δ`` and
``1 − FPR ≤ e^ε·(1 − TPR) + δ`` (Kairouz et al. 2015). An attack's measured rates therefore give
``ε ≥ max(log((TPR − δ)/FPR), log((1 − FPR − δ)/(1 − TPR)))``. To make this a bound that holds with
confidence ``1 − α`` (Jagielski et al. 2020; Nasr et al. 2021), TPR is replaced by its one-sided
Clopper–Pearson lower bound and FPR by its upper bound; the threshold is chosen on the same data, so
a Bonferroni correction spends ``α / (2·m)`` on each of the two bounds at each of the ``m`` thresholds
tried. Bounds below 0 are reported as 0.

One-run auditing (Steinke, Nasr & Jagielski 2023, "Privacy auditing with one (1) training run"): ``m``
canaries are each included in training independently with probability 1/2; the auditor guesses "member"
for ``k+`` of them and "non-member" for ``k−`` (abstaining on the rest) and counts the ``v`` correct of
its ``r = k+ + k−`` guesses. Under (ε, δ)-DP, ``P[≥ v correct] ≤ P[Binomial(r, e^ε/(1+e^ε)) ≥ v] + 2mδ·α``
with ``α = max_i P[v − i ≤ Binomial(r, p) < v] / i`` (their Theorem 5.2 / Algorithm 1). The ε lower bound at
confidence ``1 − β`` is the largest ε whose p-value stays below ``β``; with δ = 0 it is the logit of the
one-sided Clopper–Pearson lower bound on the guessing accuracy ``v / r``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from memberscope.exceptions import InvalidInputError

__all__ = [
    "EpsilonBound",
    "OneRunBound",
    "clopper_pearson",
    "clopper_pearson_interval",
    "epsilon_from_metrics",
    "epsilon_lower_bound",
    "epsilon_lower_bounds_from_csv",
    "one_run_audit",
    "one_run_epsilon",
    "one_run_p_value",
]


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


def clopper_pearson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact two-sided (Clopper–Pearson) ``confidence`` interval of a binomial proportion ``k / n``."""
    if n <= 0 or not 0 <= k <= n:
        raise InvalidInputError(f"clopper_pearson_interval needs 0 <= k <= n and n > 0; got k={k}, n={n}")
    alpha = (1 - confidence) / 2
    return (
        float(clopper_pearson(k, n, alpha, side="lower")),
        float(clopper_pearson(k, n, alpha, side="upper")),
    )


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
    """ε lower bound per attack column of an audit's ``scores.csv`` (the record columns of
    :data:`memberscope.results.io.RECORD_COLUMNS`, then one column per attack)."""
    import pandas as pd

    from memberscope.results.io import RECORD_COLUMNS

    path = Path(path)
    if path.is_dir():
        path = path / "scores.csv"
    try:
        table = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"cannot read scores file {str(path)!r}: {exc}") from None
    if "member" not in table.columns:
        raise InvalidInputError(f"scores file {str(path)!r} has no 'member' column; got {list(table.columns)}")
    attacks = [c for c in table.columns if c not in RECORD_COLUMNS]
    if not attacks:
        raise InvalidInputError(f"scores file {str(path)!r} has no attack columns")
    return {
        name: epsilon_lower_bound(
            table["member"].to_numpy(), table[name].to_numpy(), alpha=alpha, delta=delta, n_thresholds=n_thresholds
        )
        for name in attacks
    }


def epsilon_from_metrics(entry: dict, *, alpha: float = 0.05, delta: float = 0.0) -> EpsilonBound | None:
    """ε lower bound from an attack's summary metrics alone (for results that carry no scores, e.g. defenses).

    At each recorded FPR ``x`` the threshold was set on the non-members, so at most ``floor(x·n_out)`` of
    them pass it (none when the FPR was not resolvable) and ``round(TPR·n_in)`` members do. The Clopper–Pearson
    upper bound on that count is conservative for a threshold at a non-member order statistic, whose true FPR
    follows Beta(k, n − k + 1). Bonferroni over the recorded FPRs; only ``TPR ≤ e^ε·FPR + δ`` is used.
    None when the entry lacks ``tpr_at_fpr``, ``n_members`` or ``n_nonmembers``.
    """
    tprs, n_in, n_out = entry.get("tpr_at_fpr"), entry.get("n_members"), entry.get("n_nonmembers")
    if not isinstance(tprs, dict) or not tprs or not isinstance(n_in, int) or not isinstance(n_out, int):
        return None
    if n_in < 1 or n_out < 1:
        return None
    if not 0 < alpha < 1:
        raise InvalidInputError(f"alpha {alpha!r} must be in (0, 1)")
    if not 0 <= delta < 1:
        raise InvalidInputError(f"delta {delta!r} must be in [0, 1)")
    resolvable = entry.get("fpr_resolvable") or {}
    keys = [k for k, v in tprs.items() if isinstance(v, int | float) and math.isfinite(v)]
    if not keys:
        return None
    each = alpha / (2 * len(keys))
    bounds: list[tuple[float, float, float]] = []  # (epsilon, TPR lower bound, FPR upper bound) per key
    for key in keys:
        fp = int(math.floor(float(key) * n_out + 1e-9)) if resolvable.get(key, True) else 0
        tp = int(round(float(tprs[key]) * n_in))
        tpr_lo = float(clopper_pearson(tp, n_in, each, side="lower"))
        fpr_hi = float(clopper_pearson(min(fp, n_out), n_out, each, side="upper"))
        eps = math.log((tpr_lo - delta) / fpr_hi) if tpr_lo > delta else -math.inf
        bounds.append((eps, tpr_lo, fpr_hi))
    eps, tpr_lo, fpr_hi = max(bounds, key=lambda b: b[0])  # the first of equals, as the keys come
    return EpsilonBound(max(eps, 0.0), None, tpr_lo, fpr_hi, alpha, delta, len(keys))


def one_run_p_value(m: int, r: int, v: int, eps: float, delta: float = 0.0) -> float:
    """Probability of ``≥ v`` correct of ``r`` guesses on ``m`` canaries under (ε, δ)-DP (Steinke et al. 2023)."""
    from scipy.stats import binom

    if not (isinstance(m, int | np.integer) and 0 <= v <= r <= m):
        raise InvalidInputError(f"counts must satisfy 0 <= v <= r <= m; got m={m}, r={r}, v={v}")
    if not eps >= 0:
        raise InvalidInputError(f"eps {eps!r} must be >= 0")
    if not 0 <= delta <= 1:
        raise InvalidInputError(f"delta {delta!r} must be in [0, 1]")
    q = 1.0 / (1.0 + np.exp(-eps))  # accuracy of ε-DP randomized response
    tail = float(binom.sf(v - 1, r, q))  # P[Binomial(r, q) >= v]
    if delta == 0 or v == 0:
        return min(tail, 1.0)
    below = np.cumsum(binom.pmf(np.arange(v - 1, -1, -1), r, q))  # i-th: P[v - i <= Binomial < v], i = 1..v
    alpha = float(np.max(below / np.arange(1, v + 1)))
    return min(tail + 2 * m * delta * alpha, 1.0)


def one_run_epsilon(m: int, r: int, v: int, *, delta: float = 0.0, beta: float = 0.05, tol: float = 1e-6) -> float:
    """Largest ε that ``v`` correct of ``r`` guesses on ``m`` canaries rejects at level ``beta`` (0 if none)."""
    if not 0 < beta < 1:
        raise InvalidInputError(f"beta {beta!r} must be in (0, 1)")
    if one_run_p_value(m, r, v, 0.0, delta) >= beta:
        return 0.0
    lo, hi = 0.0, 1.0
    while one_run_p_value(m, r, v, hi, delta) < beta:  # the p-value grows to 1 with ε, so this ends
        lo, hi = hi, 2 * hi
    while hi - lo > tol:
        mid = (lo + hi) / 2
        if one_run_p_value(m, r, v, mid, delta) < beta:
            lo = mid
        else:
            hi = mid
    return lo


@dataclass(frozen=True)
class OneRunBound:
    """The one-run ε lower bound of one attack and the guesses that achieved it."""

    epsilon: float
    canaries: int  # m
    k_plus: int  # guessed members (highest scores)
    k_minus: int  # guessed non-members (lowest scores)
    correct: int  # v, of r = k_plus + k_minus guesses
    beta: float
    delta: float
    n_choices: int  # guess counts tried; beta is split over them (Bonferroni)

    @property
    def guesses(self) -> int:
        return self.k_plus + self.k_minus

    def to_dict(self) -> dict[str, float | int]:
        return {**vars(self), "guesses": self.guesses}


DEFAULT_GUESS_FRACTIONS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.7, 1.0)


def one_run_audit(
    member,
    score,
    *,
    beta: float = 0.05,
    delta: float = 0.0,
    guess_fractions=DEFAULT_GUESS_FRACTIONS,
    seed: int = 0,
) -> OneRunBound:
    """One-run ε lower bound from an attack's scores on canaries included independently with probability 1/2.

    For each fraction ``f`` of ``guess_fractions`` the auditor guesses "member" for the ``round(f·m/2)``
    highest-scoring canaries and "non-member" for as many lowest-scoring ones; each distinct guess count is
    tested at level ``beta`` divided by their number (Bonferroni) and the largest bound is reported. Ties in
    the scores are broken by a seeded random order, so the guesses depend on membership only through the scores.

    Parameters
    ----------
    member : array-like of shape (m,) — whether each canary was included (0/1 or boolean).
    score : array-like of shape (m,) — attack scores, higher = more likely member.
    """
    from memberscope.metrics._validate import check_scores

    member, score = check_scores(member, score)
    m = int(member.size)
    fractions = np.unique(np.asarray(guess_fractions, dtype=float))
    if fractions.size == 0 or np.any((fractions <= 0) | (fractions > 1)):
        raise InvalidInputError(f"guess_fractions {list(guess_fractions)!r} must be non-empty, each in (0, 1]")
    if not 0 < beta < 1:
        raise InvalidInputError(f"beta {beta!r} must be in (0, 1)")
    if not 0 <= delta < 1:
        raise InvalidInputError(f"delta {delta!r} must be in [0, 1)")
    shuffle = np.random.default_rng(seed).permutation(m)
    order = shuffle[np.argsort(-score[shuffle], kind="stable")]  # descending, ties in random order
    ks = sorted({max(1, min(m // 2, int(round(f * m / 2)))) for f in fractions})
    each = beta / len(ks)
    best: OneRunBound | None = None
    for k in ks:
        correct = int(member[order[:k]].sum() + (~member[order[m - k :]]).sum())
        eps = one_run_epsilon(m, 2 * k, correct, delta=delta, beta=each)
        if best is None or eps > best.epsilon:
            best = OneRunBound(eps, m, k, k, correct, beta, delta, len(ks))
    assert best is not None
    return best
