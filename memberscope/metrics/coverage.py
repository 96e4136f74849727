"""How often :func:`memberscope.metrics.evaluate`'s intervals hold the truth: simulated games with a known ROC.

A score model gives member and non-member score distributions whose AUC, TPR at each FPR and
advantage are known in closed form (or by quadrature). :func:`simulate_coverage` draws many games
from it at once, evaluates each one as an audit would, and counts the games whose reported
interval contains the true value. ``tests/test_interval_coverage.py`` and
``benchmarks/interval_coverage.py`` run it over game sizes and score models.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import integrate, stats

from memberscope.exceptions import UnresolvableFPRWarning

__all__ = ["SCORE_MODELS", "CoverageResult", "ScoreModel", "simulate_coverage"]


@dataclass(frozen=True)
class ScoreModel:
    """Member and non-member score distributions with their true ROC metrics.

    Attributes
    ----------
    name : str
    draw_members, draw_nonmembers : callable ``(rng, shape) -> ndarray of that shape``
    auc : float
        ``P(X1 > X0) + P(X1 = X0) / 2``.
    tpr_at_fpr : callable ``alpha -> float``
        ``max{P(X1 >= t) : P(X0 >= t) <= alpha}``, what the TPR at FPR ``alpha`` estimates.
    advantage : float
        ``max_t P(X1 >= t) - P(X0 >= t)``.
    """

    name: str
    draw_members: Callable[[np.random.Generator, tuple[int, ...]], np.ndarray]
    draw_nonmembers: Callable[[np.random.Generator, tuple[int, ...]], np.ndarray]
    auc: float
    tpr_at_fpr: Callable[[float], float]
    advantage: float


def _normal_shift(shift: float) -> ScoreModel:
    return ScoreModel(
        name=f"normal, shift {shift:g}",
        draw_members=lambda rng, shape: rng.normal(shift, 1.0, shape),
        draw_nonmembers=lambda rng, shape: rng.normal(0.0, 1.0, shape),
        auc=float(stats.norm.cdf(shift / np.sqrt(2.0))),
        tpr_at_fpr=lambda alpha: float(stats.norm.sf(stats.norm.isf(alpha) - shift)),
        advantage=float(2.0 * stats.norm.cdf(shift / 2.0) - 1.0),
    )


def _student_t_shift(df: float, shift: float) -> ScoreModel:
    law = stats.t(df)
    auc = integrate.quad(lambda x: law.pdf(x) * law.sf(x - shift), -np.inf, np.inf, limit=200)[0]
    return ScoreModel(
        name=f"Student t({df:g}), shift {shift:g}",
        draw_members=lambda rng, shape: rng.standard_t(df, shape) + shift,
        draw_nonmembers=lambda rng, shape: rng.standard_t(df, shape),
        auc=float(auc),
        tpr_at_fpr=lambda alpha: float(law.sf(law.isf(alpha) - shift)),
        advantage=float(2.0 * law.cdf(shift / 2.0) - 1.0),  # symmetric, unimodal: best threshold at shift / 2
    )


def _poisson(rate_members: float, rate_nonmembers: float) -> ScoreModel:
    members, nonmembers = stats.poisson(rate_members), stats.poisson(rate_nonmembers)
    t = np.arange(0, int(10 * max(rate_members, rate_nonmembers)) + 50)
    at_least_1, at_least_0 = members.sf(t - 1), nonmembers.sf(t - 1)  # P(X >= t)
    auc = float(np.sum(nonmembers.pmf(t) * (members.sf(t) + 0.5 * members.pmf(t))))
    return ScoreModel(
        name=f"Poisson({rate_members:g}) vs Poisson({rate_nonmembers:g})",
        draw_members=lambda rng, shape: rng.poisson(rate_members, shape).astype(np.float64),
        draw_nonmembers=lambda rng, shape: rng.poisson(rate_nonmembers, shape).astype(np.float64),
        auc=auc,
        tpr_at_fpr=lambda alpha: float(np.max(np.where(at_least_0 <= alpha, at_least_1, 0.0))),
        advantage=float(np.max(at_least_1 - at_least_0)),
    )


SCORE_MODELS: dict[str, Callable[[], ScoreModel]] = {
    "normal": lambda: _normal_shift(1.0),
    "normal-near-1": lambda: _normal_shift(2.5),
    "heavy-tailed": lambda: _student_t_shift(2.0, 1.5),
    "discrete": lambda: _poisson(6.0, 3.0),
}
"""Score models by name: a normal shift (AUC 0.76), one near the boundary (AUC 0.96), Student t
with 2 degrees of freedom (no variance), and Poisson counts (heavy ties)."""


@dataclass
class CoverageResult:
    """Fraction of games whose interval held the true value, per metric.

    Attributes
    ----------
    games : int
    auc : float
    tpr_at_fpr : dict of str to float
        Keyed by :func:`memberscope.metrics.fpr_key`.
    advantage : float
    methods : dict of str to dict of str to int
        For ``"auc"`` and each FPR key, how many games used each interval method.
    mean_width : dict of str to float
        Mean interval width for ``"auc"``, each FPR key and ``"advantage"``.
    """

    games: int
    auc: float
    tpr_at_fpr: dict[str, float]
    advantage: float
    methods: dict[str, dict[str, int]] = field(default_factory=dict)
    mean_width: dict[str, float] = field(default_factory=dict)


def simulate_coverage(
    n_members: int,
    n_nonmembers: int,
    model: str | ScoreModel,
    *,
    games: int = 200,
    fprs=(0.1, 0.01),
    seed: int = 0,
    **evaluate_kwargs: Any,
) -> CoverageResult:
    """Draw ``games`` membership games from ``model`` and count how often each interval covers.

    All games' scores are drawn in one call per class; game ``g`` is evaluated with ``seed=g``
    (so its bootstrap, where used, is reproducible). Unresolvable-FPR warnings are silenced: their
    intervals are counted like the others.

    Parameters
    ----------
    n_members, n_nonmembers : int
        Records of each class in every game.
    model : str or ScoreModel
        A key of :data:`SCORE_MODELS` or a :class:`ScoreModel`.
    games : int, default 200
    fprs : sequence of float, default (0.1, 0.01)
    seed : int, default 0
        Seed of the draws of the scores.
    **evaluate_kwargs
        Passed to :func:`memberscope.metrics.evaluate` (``n_bootstrap``, ``confidence``, ``chunk``).

    Returns
    -------
    CoverageResult
    """
    from memberscope.metrics._evaluate import evaluate, fpr_key

    truth = SCORE_MODELS[model]() if isinstance(model, str) else model
    rng = np.random.default_rng(seed)
    members = truth.draw_members(rng, (games, n_members))
    nonmembers = truth.draw_nonmembers(rng, (games, n_nonmembers))
    member = np.r_[np.ones(n_members, bool), np.zeros(n_nonmembers, bool)]
    keys = [fpr_key(a) for a in fprs]
    true_tpr = {k: truth.tpr_at_fpr(a) for a, k in zip(fprs, keys, strict=True)}
    hits = dict.fromkeys(["auc", "advantage", *keys], 0)
    width = dict.fromkeys(hits, 0.0)
    methods: dict[str, dict[str, int]] = {k: {} for k in ["auc", *keys]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnresolvableFPRWarning)
        for g in range(games):
            m = evaluate(member, np.r_[members[g], nonmembers[g]], fprs=fprs, seed=g, **evaluate_kwargs)
            cells = [("auc", m.auc_ci, truth.auc, m.auc_ci_method), ("advantage", m.advantage_ci, truth.advantage, "")]
            cells += [(k, m.tpr_at_fpr_ci[k], true_tpr[k], m.tpr_at_fpr_ci_method[k]) for k in keys]
            for name, (lo, hi), value, method in cells:
                hits[name] += lo <= value <= hi
                width[name] += hi - lo
                if method:
                    methods[name][method] = methods[name].get(method, 0) + 1
    return CoverageResult(
        games=games,
        auc=hits["auc"] / games,
        tpr_at_fpr={k: hits[k] / games for k in keys},
        advantage=hits["advantage"] / games,
        methods=methods,
        mean_width={k: v / games for k, v in width.items()},
    )
