"""Empirical ε lower bounds: Clopper–Pearson against scipy, the closed form, monotonicity, soundness."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest

from memberscope.exceptions import InvalidInputError
from memberscope.privacy.empirical import clopper_pearson, epsilon_lower_bound, epsilon_lower_bounds_from_csv


@pytest.mark.parametrize("k,n", [(0, 10), (3, 10), (10, 10), (52, 1000), (999, 1000)])
def test_clopper_pearson_matches_scipy_exact_interval(k, n):
    # A one-sided bound at level 1 − α is the end of the two-sided exact interval at level 1 − 2α.
    ci = binomtest(k, n).proportion_ci(confidence_level=0.9, method="exact")
    assert clopper_pearson(k, n, 0.05, side="lower") == pytest.approx(ci.low, abs=1e-12)
    assert clopper_pearson(k, n, 0.05, side="upper") == pytest.approx(ci.high, abs=1e-12)


def test_perfect_separation_closed_form():
    # TP = n, FP = 0 at one threshold: TPR_lo = q, FPR_hi = 1 − q with q = (α/2)^(1/n).
    n, alpha = 200, 0.05
    member = np.r_[np.ones(n), np.zeros(n)]
    score = np.r_[np.ones(n), np.zeros(n)]
    bound = epsilon_lower_bound(member, score, alpha=alpha, thresholds=[0.5])
    q = (alpha / 2) ** (1 / n)
    assert bound.epsilon == pytest.approx(math.log(q / (1 - q)), rel=1e-9)
    assert bound.threshold == 0.5 and bound.n_thresholds == 1


def test_known_counts_match_formula():
    # 300 of 1000 members and 10 of 1000 non-members above the threshold.
    member = np.r_[np.ones(1000), np.zeros(1000)]
    score = np.r_[np.arange(1000) < 300, np.arange(1000) < 10].astype(float)
    bound = epsilon_lower_bound(member, score, alpha=0.05, thresholds=[0.5])
    lo = binomtest(300, 1000).proportion_ci(confidence_level=0.95, method="exact").low
    hi = binomtest(10, 1000).proportion_ci(confidence_level=0.95, method="exact").high
    expected = max(math.log(lo / hi), math.log((1 - hi) / (1 - lo)))
    assert bound.epsilon == pytest.approx(expected, rel=1e-9)
    assert (bound.tpr_lower, bound.fpr_upper) == (pytest.approx(lo), pytest.approx(hi))


def _separated(shift, seed=0, n=1000):
    rng = np.random.default_rng(seed)
    member = np.r_[np.ones(n), np.zeros(n)].astype(bool)
    return member, rng.normal(size=2 * n) + shift * member


def test_monotone_in_alpha_delta_and_thresholds_tried():
    member, score = _separated(2.0)
    eps = [epsilon_lower_bound(member, score, alpha=a).epsilon for a in (0.001, 0.01, 0.05, 0.2)]
    assert eps == sorted(eps) and eps[0] > 0
    by_delta = [epsilon_lower_bound(member, score, delta=d).epsilon for d in (0.0, 1e-3, 1e-2, 0.1)]
    assert by_delta == sorted(by_delta, reverse=True)
    # More thresholds on the same grid point cost confidence (Bonferroni): same threshold, lower bound.
    one = epsilon_lower_bound(member, score, thresholds=[1.0]).epsilon
    many = epsilon_lower_bound(member, score, thresholds=np.r_[1.0, np.linspace(5, 6, 99)]).epsilon
    assert many < one


def test_stronger_attack_gives_larger_bound():
    eps = [epsilon_lower_bound(*_separated(s)).epsilon for s in (0.5, 1.0, 2.0, 3.0)]
    assert eps == sorted(eps) and eps[0] > 0


def test_bound_is_zero_for_scores_independent_of_membership():
    zeros = 0
    for seed in range(100):
        rng = np.random.default_rng(seed)
        member = rng.random(400) < 0.5
        zeros += epsilon_lower_bound(member, rng.normal(size=400), alpha=0.05).epsilon == 0.0
    assert zeros >= 95


def test_from_scores_csv(tmp_path):
    member, score = _separated(2.0)
    path = tmp_path / "scores.csv"
    pd.DataFrame({"record": np.arange(member.size), "member": member.astype(int), "strong": score}).assign(
        noise=np.random.default_rng(1).normal(size=member.size)
    ).to_csv(path, index=False)
    bounds = epsilon_lower_bounds_from_csv(tmp_path)
    assert set(bounds) == {"strong", "noise"}
    assert bounds["strong"].epsilon == pytest.approx(epsilon_lower_bound(member, score).epsilon)
    assert bounds["strong"].epsilon > 1 and bounds["noise"].epsilon == 0.0


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"delta": 1.0}, "delta 1.0 must be in"),
        ({"alpha": 0.0}, "alpha 0.0 must be in"),
        ({"alpha": 1.5}, "alpha 1.5 must be in"),
        ({"thresholds": []}, "thresholds must be a non-empty"),
        ({"n_thresholds": 0}, "n_thresholds 0 must be at least 1"),
    ],
)
def test_bad_arguments(kwargs, message):
    member, score = _separated(1.0, n=20)
    with pytest.raises(InvalidInputError, match=message):
        epsilon_lower_bound(member, score, **kwargs)


def test_bad_scores_file(tmp_path):
    with pytest.raises(InvalidInputError, match="cannot read scores file"):
        epsilon_lower_bounds_from_csv(tmp_path / "missing.csv")
    (tmp_path / "scores.csv").write_text("record,a\n1,0.5\n")
    with pytest.raises(InvalidInputError, match="no 'member' column"):
        epsilon_lower_bounds_from_csv(tmp_path / "scores.csv")


def test_bound_from_summary_metrics_matches_counts():
    from memberscope.metrics import evaluate
    from memberscope.privacy.empirical import epsilon_from_metrics

    member, score = _separated(3.0, n=1000)
    entry = evaluate(member, score, fprs=(0.1, 0.01), n_bootstrap=0).to_dict()
    bound = epsilon_from_metrics(entry)
    # Recompute by hand at each FPR: members above the threshold, at most floor(x·n) non-members.
    candidates = []
    for key, x in (("0.1", 0.1), ("0.01", 0.01)):
        lo = clopper_pearson(round(entry["tpr_at_fpr"][key] * 1000), 1000, 0.05 / 4, side="lower")
        hi = clopper_pearson(int(x * 1000), 1000, 0.05 / 4, side="upper")
        candidates.append(math.log(lo / hi))
    assert bound.epsilon == pytest.approx(max(candidates), rel=1e-9) and bound.n_thresholds == 2
    assert epsilon_from_metrics({"auc": 0.5}) is None
    assert epsilon_from_metrics(entry, delta=0.2).epsilon < bound.epsilon


def test_bound_from_summary_metrics_is_sound_for_a_dp_mechanism():
    from memberscope.metrics import evaluate
    from memberscope.privacy.empirical import epsilon_from_metrics

    for eps in (0.5, 2.0):
        for seed in range(10):
            rng = np.random.default_rng(seed)
            member = rng.random(2000) < 0.5
            score = np.where(member, 1.0, -1.0) + rng.laplace(scale=2 / eps, size=member.size)
            entry = evaluate(member, score, fprs=(0.1, 0.01, 0.002), n_bootstrap=0).to_dict()
            assert epsilon_from_metrics(entry).epsilon <= eps


def test_clopper_pearson_bound_never_exceeds_a_dp_mechanisms_epsilon():
    # score = ±1 + Laplace(2/ε) is ε-DP in each record's membership bit.
    for eps in (0.5, 1.0, 3.0):
        for seed in range(10):
            rng = np.random.default_rng(seed)
            member = rng.random(2000) < 0.5
            score = np.where(member, 1.0, -1.0) + rng.laplace(scale=2 / eps, size=member.size)
            bound = epsilon_lower_bound(member, score).epsilon
            assert bound <= eps
            if eps == 3.0:
                assert bound > 0.5  # and it does detect strong leakage
