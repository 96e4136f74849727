"""Metrics against scikit-learn and slow, obviously-correct references."""

import json
import warnings

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.metrics import roc_curve as sk_roc_curve

from memberscope.exceptions import InvalidInputError, UnresolvableFPRWarning
from memberscope.metrics import (
    balanced_accuracy,
    bootstrap_counts,
    evaluate,
    evaluate_by_group,
    fpr_key,
    membership_advantage,
    replicate_metrics,
    roc_auc,
    roc_curve,
    tpr_at_fpr,
)


def _data(seed, n=500, ties=False, shift=0.5):
    rng = np.random.default_rng(seed)
    member = rng.random(n) < 0.4
    score = rng.normal(size=n) + shift * member
    if ties:
        score = np.round(score, 1)
    return member, score


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_roc_and_auc_equal_sklearn(seed, ties, weighted):
    member, score = _data(seed, ties=ties)
    weight = np.random.default_rng(seed + 100).uniform(0.1, 3, member.size) if weighted else None
    fpr, tpr, thr = roc_curve(member, score, sample_weight=weight)
    sk_fpr, sk_tpr, sk_thr = sk_roc_curve(member, score, sample_weight=weight, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sk_fpr)
    np.testing.assert_allclose(tpr, sk_tpr)
    np.testing.assert_allclose(thr[1:], sk_thr[1:])
    assert roc_auc(member, score, sample_weight=weight) == pytest.approx(
        roc_auc_score(member, score, sample_weight=weight), abs=1e-12
    )


def _slow_operating_points(member, score):
    """Every threshold t in the scores (plus +inf): FPR and TPR of 'score >= t'."""
    points = [(0.0, 0.0)]
    for t in np.unique(score):
        pred = score >= t
        points.append(((pred & ~member).sum() / (~member).sum(), (pred & member).sum() / member.sum()))
    return np.array(points)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("alpha", [0.5, 0.1, 0.01, 0.003])
def test_tpr_at_fpr_equals_loop_over_thresholds(seed, alpha):
    member, score = _data(seed, n=800, ties=seed % 2 == 0)
    pts = _slow_operating_points(member, score)
    expected = max(tpr for fpr, tpr in pts if fpr <= alpha)
    fpr, tpr, _ = roc_curve(member, score)
    assert tpr_at_fpr(fpr, tpr, alpha) == pytest.approx(expected)


@pytest.mark.parametrize("seed", range(4))
def test_balanced_accuracy_and_advantage_equal_brute_force(seed):
    member, score = _data(seed, n=300, ties=True)
    pts = _slow_operating_points(member, score)
    fpr, tpr, _ = roc_curve(member, score)
    assert balanced_accuracy(fpr, tpr) == pytest.approx(max((t + 1 - f) / 2 for f, t in pts))
    assert membership_advantage(fpr, tpr) == pytest.approx(max(t - f for f, t in pts))


@pytest.mark.filterwarnings("ignore::memberscope.exceptions.UnresolvableFPRWarning")
def test_perfect_and_reversed_attacks():
    member = np.r_[np.ones(50, bool), np.zeros(5000, bool)]
    score = member.astype(float)
    m = evaluate(member, score, n_bootstrap=50)
    assert m.auc == 1.0 and all(v == 1.0 for v in m.tpr_at_fpr.values())
    assert m.advantage == 1.0 and m.balanced_accuracy == 1.0
    assert evaluate(member, -score, n_bootstrap=0, fprs=(0.1,)).auc == 0.0


def test_fast_bootstrap_matches_naive_resampling_replicate_by_replicate():
    member, score = _data(7, n=400, ties=True)
    counts = bootstrap_counts(member, 40, np.random.default_rng(3))
    # counts keep the numbers of members and non-members
    assert np.all(counts[:, member].sum(1) == member.sum())
    assert np.all(counts[:, ~member].sum(1) == (~member).sum())
    fast = replicate_metrics(member, score, counts, (0.1, 0.01))
    for b in range(counts.shape[0]):
        idx = np.repeat(np.arange(member.size), counts[b])
        m, s = member[idx], score[idx]
        assert fast["auc"][b] == pytest.approx(roc_auc_score(m, s), abs=1e-12)
        fpr, tpr, _ = sk_roc_curve(m, s, drop_intermediate=False)
        for i, alpha in enumerate((0.1, 0.01)):
            assert fast["tpr"][b, i] == pytest.approx(tpr[fpr <= alpha].max())
        assert fast["advantage"][b] == pytest.approx((tpr - fpr).max())


@pytest.mark.filterwarnings("ignore::memberscope.exceptions.UnresolvableFPRWarning")
def test_bootstrap_is_seeded_and_ci_brackets_the_estimate():
    member, score = _data(1, n=2000)
    a, b, c = (evaluate(member, score, n_bootstrap=300, seed=s) for s in (0, 0, 1))
    assert a.auc_ci == b.auc_ci and a.tpr_at_fpr_ci == b.tpr_at_fpr_ci
    assert a.auc_ci != c.auc_ci
    assert a.auc_ci[0] <= a.auc <= a.auc_ci[1]
    for _key, (lo, hi) in a.tpr_at_fpr_ci.items():
        assert lo <= hi


def test_null_scores_ci_covers_half_about_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    covered = 0
    trials = 200
    for t in range(trials):
        member = rng.random(400) < 0.5
        score = rng.normal(size=400)
        lo, hi = evaluate(member, score, n_bootstrap=200, seed=t, fprs=(0.1,)).auc_ci
        covered += lo <= 0.5 <= hi
    assert 0.88 <= covered / trials <= 0.99


def test_unresolvable_fpr_warns_and_is_flagged():
    member = np.r_[np.ones(500, bool), np.zeros(500, bool)]
    score = np.random.default_rng(0).normal(size=1000)
    with pytest.warns(UnresolvableFPRWarning, match="FPR 0.001 cannot be resolved with 500 non-members"):
        m = evaluate(member, score, n_bootstrap=10, fprs=(0.01, 0.001))
    assert m.fpr_resolvable == {"0.01": True, "0.001": False}
    assert any("at least 1000 needed" in w for w in m.warnings)
    member = np.r_[np.ones(500, bool), np.zeros(2000, bool)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        evaluate(member, np.random.default_rng(0).normal(size=2500), n_bootstrap=10, fprs=(0.001,))


def test_evaluate_by_group_slices_and_keeps_warnings_quiet():
    rng = np.random.default_rng(2)
    member = rng.random(3000) < 0.5
    groups = rng.choice(["a", "b", "c"], 3000)
    score = rng.normal(size=3000) + member * (groups == "b")  # only group b leaks
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = evaluate_by_group(member, score, groups, n_bootstrap=100)
    assert set(out) == {"a", "b", "c"}
    assert out["b"].auc > 0.65 and out["a"].auc_ci[0] < 0.5 < out["a"].auc_ci[1]
    assert out["a"].warnings  # small slices cannot resolve 0.01% FPR
    only_members = evaluate_by_group(member, score, np.where(member, "m", "x"), n_bootstrap=0)
    assert only_members == {}


@pytest.mark.filterwarnings("ignore::memberscope.exceptions.UnresolvableFPRWarning")
def test_fpr_keys_and_json():
    assert [fpr_key(a) for a in (0.1, 0.01, 0.001, 0.0001)] == ["0.1", "0.01", "0.001", "0.0001"]
    member, score = _data(0)
    d = evaluate(member, score, n_bootstrap=20).to_dict()
    json.dumps(d, allow_nan=False)
    assert set(d["tpr_at_fpr"]) == {"0.1", "0.01", "0.001", "0.0001"}
    assert isinstance(d["auc_ci"], list)


@pytest.mark.parametrize(
    "member,score,kwargs,message",
    [
        ([1, 0, 1], [0.1, 0.2], {}, "member has 3 entries but score has 2"),
        ([[1, 0]], [[0.1, 0.2]], {}, "must be 1-D"),
        ([1, 0, 2], [0.1, 0.2, 0.3], {}, "only 0/1"),
        ([1, 0, 1], [0.1, np.nan, 0.3], {}, "1 NaN or infinite values (first at index 1)"),
        ([1, 1, 1], [0.1, 0.2, 0.3], {}, "need both members and non-members"),
        ([1, 0, 1], [0.1, 0.2, 0.3], {"fprs": (1.5,)}, "fpr 1.5 is outside (0, 1)"),
        ([1, 0, 1], [0.1, 0.2, 0.3], {"n_bootstrap": -1}, "n_bootstrap must be >= 0"),
        ([1, 0, 1], [0.1, 0.2, 0.3], {"confidence": 1.0}, "confidence 1.0 is outside (0, 1)"),
    ],
)
def test_errors_name_the_bad_value(member, score, kwargs, message):
    with pytest.raises(InvalidInputError) as exc, warnings.catch_warnings():
        warnings.simplefilter("ignore", UnresolvableFPRWarning)
        evaluate(np.array(member), np.array(score), **kwargs)
    assert message in str(exc.value)
