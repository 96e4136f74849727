"""Metrics against scikit-learn and slow, obviously-correct references."""

import json
import re
import warnings

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.metrics import roc_curve as sk_roc_curve

import memberscope.metrics as metrics
from memberscope.exceptions import InvalidInputError, UnresolvableFPRWarning
from memberscope.metrics import (
    DEFAULT_FPRS,
    MIN_MEMBERS,
    MIN_NONMEMBERS,
    AttackMetrics,
    advantage_interval,
    auc_interval,
    balanced_accuracy,
    bootstrap_counts,
    bootstrap_replicates,
    clopper_pearson,
    evaluate,
    evaluate_by_group,
    fpr_key,
    membership_advantage,
    operating_point,
    positive_predictive_value,
    replicate_metrics,
    roc_auc,
    roc_curve,
    tpr_at_fpr,
    tpr_interval,
    wilson_interval,
)
from memberscope.metrics._intervals import _order_statistic_ranks

quiet_fpr = pytest.mark.filterwarnings("ignore::memberscope.exceptions.UnresolvableFPRWarning")


def _data(seed, n=500, ties=False, shift=0.5):
    rng = np.random.default_rng(seed)
    member = rng.random(n) < 0.4
    score = rng.normal(size=n) + shift * member
    if ties:
        score = np.round(score, 1)
    return member, score


def _slow_operating_points(member, score):
    """Every threshold t among the scores (plus +inf): (FPR, TPR) of the rule 'score >= t'."""
    member = np.asarray(member, dtype=bool)
    points = [(0.0, 0.0)]
    for t in np.unique(score):
        pred = score >= t
        points.append(((pred & ~member).sum() / (~member).sum(), (pred & member).sum() / member.sum()))
    return np.array(points)


def test_default_fprs():
    # the public names are pinned with every package's in tests/test_engine.py
    assert DEFAULT_FPRS == (0.1, 0.01, 0.001, 0.0001)
    assert (MIN_MEMBERS, MIN_NONMEMBERS) == (5, 5)


# --- ROC curve and AUC ------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_roc_and_auc_equal_sklearn(seed, ties, weighted):
    member, score = _data(seed, ties=ties)
    weight = np.random.default_rng(seed + 100).uniform(0.1, 3, member.size) if weighted else None
    fpr, tpr, thr = roc_curve(member.astype(int), score, sample_weight=weight)
    sk_fpr, sk_tpr, sk_thr = sk_roc_curve(member, score, sample_weight=weight, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sk_fpr, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(tpr, sk_tpr, rtol=1e-12, atol=1e-12)
    assert thr[0] == np.inf and sk_thr[0] == np.inf
    np.testing.assert_array_equal(thr[1:], sk_thr[1:])
    assert roc_auc(member, score, sample_weight=weight) == pytest.approx(
        roc_auc_score(member, score, sample_weight=weight), abs=1e-12
    )


def test_roc_drops_zero_weights_like_sklearn():
    member, score = _data(3, ties=True)
    weight = np.random.default_rng(0).choice([0.0, 1.0, 2.5], member.size)
    fpr, tpr, thr = roc_curve(member, score, sample_weight=weight)
    sk_fpr, sk_tpr, sk_thr = sk_roc_curve(member, score, sample_weight=weight, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sk_fpr)
    np.testing.assert_allclose(tpr, sk_tpr)
    np.testing.assert_array_equal(thr[1:], sk_thr[1:])


def test_roc_curve_end_points_and_tie_collapse():
    member = np.array([1, 0, 1, 0, 1, 0])
    score = np.array([0.9, 0.9, 0.5, 0.3, 0.3, 0.1])
    fpr, tpr, thr = roc_curve(member, score)
    np.testing.assert_array_equal(thr, [np.inf, 0.9, 0.5, 0.3, 0.1])
    np.testing.assert_allclose(fpr, [0, 1 / 3, 1 / 3, 2 / 3, 1])
    np.testing.assert_allclose(tpr, [0, 1 / 3, 2 / 3, 1, 1])
    # pairs: members (0.9, 0.5, 0.3) against non-members (0.9, 0.3, 0.1); ties count one half
    assert roc_auc(member, score) == pytest.approx((1.5 + 2 + 2.5) / 9)


def test_perfect_and_reversed_attacks():
    member = np.r_[np.ones(50, bool), np.zeros(10_000, bool)]  # 10,000 non-members resolve FPR 1e-4
    score = member.astype(float)
    m = evaluate(member, score, n_bootstrap=50)
    assert m.auc == 1.0 and all(v == 1.0 for v in m.tpr_at_fpr.values())
    assert m.advantage == 1.0 and m.balanced_accuracy == 1.0
    # 50 members cannot pin the AUC at exactly 1: the interval reaches down to what 50 members allow
    assert m.auc_ci == wilson_interval(1.0, 50, 0.95) and m.auc_ci[1] == 1.0 and 0.9 < m.auc_ci[0] < 0.95
    assert all(lo < hi == 1.0 for lo, hi in m.tpr_at_fpr_ci.values())
    assert m.auc_ci_method == "wilson-worst-case-variance"
    r = evaluate(member, -score, n_bootstrap=50)
    assert r.auc == 0.0 and r.auc_ci[0] == 0.0 < r.auc_ci[1] < 0.1
    assert all(v == 0.0 for v in r.tpr_at_fpr.values())
    assert all(lo == 0.0 < hi for lo, hi in r.tpr_at_fpr_ci.values())
    assert r.advantage == 0.0 and r.balanced_accuracy == 0.5


# --- operating points -------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("alpha", [0.5, 0.1, 0.01, 0.003, 0.0001])
def test_tpr_at_fpr_equals_loop_over_thresholds(seed, alpha):
    member, score = _data(seed, n=800, ties=seed % 2 == 0)
    pts = _slow_operating_points(member, score)
    expected = max(tpr for fpr, tpr in pts if fpr <= alpha)
    fpr, tpr, _ = roc_curve(member, score)
    assert tpr_at_fpr(fpr, tpr, alpha) == expected


def test_tpr_at_fpr_counts_a_point_exactly_at_alpha():
    # 100 non-members: FPR 0.01 allows exactly one false positive
    member = np.r_[np.ones(10, bool), np.zeros(100, bool)]
    score = np.r_[np.arange(10) + 100.0, 150.0, np.zeros(99)]  # one non-member outscores every member
    fpr, tpr, _ = roc_curve(member, score)
    assert tpr_at_fpr(fpr, tpr, 0.01) == 1.0
    assert tpr_at_fpr(fpr, tpr, 0.0099) == 0.0


@pytest.mark.parametrize("seed", range(6))
def test_balanced_accuracy_and_advantage_equal_brute_force(seed):
    member, score = _data(seed, n=300, ties=seed % 2 == 1)
    pts = _slow_operating_points(member, score)
    fpr, tpr, _ = roc_curve(member, score)
    assert balanced_accuracy(fpr, tpr) == pytest.approx(max((t + 1 - f) / 2 for f, t in pts), abs=1e-12)
    assert membership_advantage(fpr, tpr) == pytest.approx(max(t - f for f, t in pts), abs=1e-12)


# --- bootstrap --------------------------------------------------------------------------------


def _naive_replicate(member, score, counts_row, fprs):
    """Resample the records by index and recompute everything with scikit-learn."""
    idx = np.repeat(np.arange(member.size), counts_row)
    m, s = member[idx], score[idx]
    fpr, tpr, _ = sk_roc_curve(m, s, drop_intermediate=False)
    return {
        "auc": roc_auc_score(m, s),
        "tpr": [tpr[fpr <= a].max() for a in fprs],
        "balanced_accuracy": ((tpr + 1 - fpr) / 2).max(),
        "advantage": (tpr - fpr).max(),
    }


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("ties", [False, True])
def test_fast_bootstrap_matches_naive_resampling_replicate_by_replicate(seed, ties):
    member, score = _data(seed, n=400, ties=ties)
    fprs = (0.5, 0.1, 0.01, 0.004)  # 0.01 of the 240-odd non-members is below 3 false positives
    counts = np.vstack(list(bootstrap_counts(member, 30, rng=np.random.default_rng(seed))))
    assert counts.shape == (30, member.size) and counts.dtype.kind == "i"
    # stratified: each replicate keeps the numbers of members and non-members
    assert np.all(counts[:, member].sum(axis=1) == member.sum())
    assert np.all(counts[:, ~member].sum(axis=1) == (~member).sum())
    fast = replicate_metrics(member, score, counts=counts, fprs=fprs)
    assert fast.fprs == fprs and fast.tpr_at_fpr.shape == (30, len(fprs))
    for b in range(counts.shape[0]):
        slow = _naive_replicate(member, score, counts[b], fprs)
        assert fast.auc[b] == pytest.approx(slow["auc"], abs=1e-12)
        np.testing.assert_allclose(fast.tpr_at_fpr[b], slow["tpr"], atol=1e-12)
        assert fast.balanced_accuracy[b] == pytest.approx(slow["balanced_accuracy"], abs=1e-12)
        assert fast.advantage[b] == pytest.approx(slow["advantage"], abs=1e-12)


def test_replicate_metrics_accepts_any_counts_not_only_stratified():
    # Poisson counts: class totals differ from row to row, which the per-row FPR threshold must handle
    member, score = _data(11, n=300, ties=True)
    counts = np.random.default_rng(0).poisson(1.0, size=(20, member.size))
    fprs = (0.2, 0.05, 0.01)
    fast = replicate_metrics(member, score, counts=counts, fprs=fprs)
    for b in range(counts.shape[0]):
        slow = _naive_replicate(member, score, counts[b], fprs)
        assert fast.auc[b] == pytest.approx(slow["auc"], abs=1e-12)
        np.testing.assert_allclose(fast.tpr_at_fpr[b], slow["tpr"], atol=1e-12)
        assert fast.advantage[b] == pytest.approx(slow["advantage"], abs=1e-12)


def test_bootstrap_counts_do_not_depend_on_the_chunk_size():
    member, score = _data(5, n=200)
    chunks = list(bootstrap_counts(member, 70, rng=np.random.default_rng(9), chunk=64))
    assert [c.shape[0] for c in chunks] == [64, 6]
    small = np.vstack(list(bootstrap_counts(member, 70, rng=np.random.default_rng(9), chunk=3)))
    np.testing.assert_array_equal(np.vstack(chunks), small)
    # a stream of chunks gives the same replicates as one stacked array
    streamed = replicate_metrics(member, score, counts=iter(chunks), fprs=(0.1,))
    stacked = replicate_metrics(member, score, counts=small, fprs=(0.1,))
    np.testing.assert_array_equal(streamed.auc, stacked.auc)
    np.testing.assert_array_equal(streamed.tpr_at_fpr, stacked.tpr_at_fpr)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("chunk", [None, 1, 7])
def test_streaming_bootstrap_equals_the_counts_bootstrap_replicate_by_replicate(seed, ties, chunk):
    member, score = _data(seed, n=400, ties=ties)
    fprs = (0.5, 0.1, 0.01, 0.004)
    fast = bootstrap_replicates(member, score, 40, rng=np.random.default_rng(seed), fprs=fprs, chunk=chunk)
    counts = bootstrap_counts(member, 40, rng=np.random.default_rng(seed))
    slow = replicate_metrics(member, score, counts=counts, fprs=fprs)
    np.testing.assert_allclose(fast.auc, slow.auc, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(fast.tpr_at_fpr, slow.tpr_at_fpr)
    np.testing.assert_allclose(fast.advantage, slow.advantage, rtol=0, atol=1e-12)
    np.testing.assert_allclose(fast.balanced_accuracy, slow.balanced_accuracy, rtol=0, atol=1e-12)
    assert fast.fprs == fprs


def test_evaluate_uses_the_seeded_bootstrap_where_it_covers_and_analytic_intervals_elsewhere():
    member, score = _data(4, n=2000)  # about 800 members and 1,200 non-members
    fprs = (0.1, 0.05, 0.01)  # 120, 60 and 12 expected false positives
    m = evaluate(member, score, fprs=fprs, n_bootstrap=1000, confidence=0.9, seed=21)
    reps = bootstrap_replicates(member, score, 1000, rng=np.random.default_rng(21), fprs=fprs)

    def same(values):
        return pytest.approx(tuple(np.percentile(values, [5, 95])), abs=1e-12)

    assert m.auc_ci_method == "bootstrap" and m.auc_ci == same(reps.auc)
    analytic = "order-statistics-clopper-pearson"
    assert m.tpr_at_fpr_ci_method == {"0.1": "bootstrap", "0.05": "bootstrap", "0.01": analytic}
    assert m.tpr_at_fpr_ci["0.1"] == same(reps.tpr_at_fpr[:, 0])
    assert m.tpr_at_fpr_ci["0.05"] == same(reps.tpr_at_fpr[:, 1])
    members_ascending, nonmembers_descending = np.sort(score[member]), np.sort(score[~member])[::-1]
    assert m.tpr_at_fpr_ci["0.01"] == tpr_interval(members_ascending, nonmembers_descending, 0.01, 0.9)
    n1, n0 = int(member.sum()), int((~member).sum())
    assert m.advantage_ci_method == "dkw" and m.advantage_ci == advantage_interval(m.advantage, n1, n0, 0.9)
    assert m.balanced_accuracy_ci == pytest.approx(tuple((1 + b) / 2 for b in m.advantage_ci))
    assert m.n_bootstrap == 1000 and m.confidence == 0.9
    # too few replicates for percentile tails: every interval is analytic
    few = evaluate(member, score, fprs=fprs, n_bootstrap=999, confidence=0.9)
    assert few.auc_ci == auc_interval(few.auc, n1, n0, 0.9)
    assert set(few.tpr_at_fpr_ci_method.values()) == {"order-statistics-clopper-pearson"}


@quiet_fpr
def test_bootstrap_is_seeded_and_ci_brackets_the_estimate():
    member, score = _data(1, n=2000)
    a, b, c = (evaluate(member, score, n_bootstrap=1000, seed=s) for s in (0, 0, 1))
    assert a == b
    assert a.auc_ci != c.auc_ci and a.tpr_at_fpr_ci["0.1"] != c.tpr_at_fpr_ci["0.1"]
    assert a.advantage_ci == c.advantage_ci  # analytic (DKW): no randomness
    assert a.auc == c.auc  # the seed only moves the bootstrap intervals
    assert a.auc_ci[0] < a.auc < a.auc_ci[1]
    assert a.balanced_accuracy_ci[0] <= a.balanced_accuracy <= a.balanced_accuracy_ci[1]
    assert a.advantage_ci[0] <= a.advantage <= a.advantage_ci[1]
    for key, (lo, hi) in a.tpr_at_fpr_ci.items():
        assert lo <= a.tpr_at_fpr[key] <= hi


def test_auc_equals_sklearn_and_no_bootstrap_gives_analytic_intervals():
    member, score = _data(2, n=800, ties=True)
    m = evaluate(member, score, fprs=(0.1,), n_bootstrap=0)
    assert m.auc == pytest.approx(roc_auc_score(member, score), abs=1e-12)
    n1, n0 = int(member.sum()), int((~member).sum())
    assert m.n_members == n1 and m.n_nonmembers == n0
    assert m.auc_ci == auc_interval(m.auc, n1, n0, 0.95) and m.auc_ci[0] < m.auc < m.auc_ci[1]
    assert m.tpr_at_fpr_ci_method == {"0.1": "order-statistics-clopper-pearson"}
    lo, hi = m.tpr_at_fpr_ci["0.1"]
    assert lo < m.tpr_at_fpr["0.1"] < hi
    assert m.warnings == []


def test_null_scores_ci_covers_half_about_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    trials, covered = 200, 0
    for t in range(trials):
        member = rng.random(400) < 0.5
        score = rng.normal(size=400)  # independent of membership: true AUC 0.5
        lo, hi = evaluate(member, score, n_bootstrap=200, seed=t, fprs=(0.1,)).auc_ci
        covered += lo <= 0.5 <= hi
    assert 0.88 <= covered / trials <= 0.99


# --- unresolvable FPRs ------------------------------------------------------------------------


def test_unresolvable_fpr_warns_and_is_flagged():
    member = np.r_[np.ones(500, bool), np.zeros(500, bool)]
    score = np.random.default_rng(0).normal(size=1000)
    with pytest.warns(UnresolvableFPRWarning, match="FPR 0.1% cannot be resolved with 500 non-members") as rec:
        m = evaluate(member, score, n_bootstrap=10, fprs=(0.01, 0.001))
    assert len(rec) == 1
    assert m.fpr_resolvable == {"0.01": True, "0.001": False}
    assert m.warnings == [
        "FPR 0.1% cannot be resolved with 500 non-members (at least 1000 needed); its TPR is reported at FPR 0"
    ]
    # the value is still there: the TPR at FPR 0
    fpr, tpr, _ = roc_curve(member, score)
    assert m.tpr_at_fpr["0.001"] == tpr[fpr == 0].max()


@pytest.mark.parametrize("n_nonmembers", [1000, 2000])
def test_enough_nonmembers_resolve_the_fpr_without_warning(n_nonmembers):
    member = np.r_[np.ones(500, bool), np.zeros(n_nonmembers, bool)]
    score = np.random.default_rng(0).normal(size=member.size)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = evaluate(member, score, n_bootstrap=10, fprs=(0.001,))
    assert m.fpr_resolvable == {"0.001": True} and m.warnings == []


# --- slices -----------------------------------------------------------------------------------


def test_evaluate_by_group_slices_and_keeps_warnings_quiet():
    rng = np.random.default_rng(2)
    member = rng.random(3000) < 0.5
    groups = rng.choice(["a", "b", "c"], 3000)
    score = rng.normal(size=3000) + member * (groups == "b")  # only group b leaks
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = evaluate_by_group(member, score, groups, n_bootstrap=100)
    assert list(out) == ["a", "b", "c"]
    assert out["b"].auc > 0.65 and out["a"].auc_ci[0] < 0.5 < out["a"].auc_ci[1]
    assert out["a"].n_members + out["a"].n_nonmembers == (groups == "a").sum()
    assert out["a"].fpr_resolvable["0.0001"] is False
    assert any("FPR 0.01% cannot be resolved" in w for w in out["a"].warnings)
    assert out["a"].n_bootstrap == 100


def test_evaluate_by_group_skips_small_and_one_class_slices():
    score = np.random.default_rng(3).normal(size=400)
    member = np.r_[np.arange(200) % 2, np.zeros(100), np.ones(90), np.arange(10) % 2].astype(bool)
    groups = np.r_[np.zeros(200, int), np.ones(100, int), np.full(90, 3), np.full(10, 2)]
    # group 0: both classes; 1: non-members only; 3: members only; 2: both but only 10 records
    out = evaluate_by_group(member, score, groups, n_bootstrap=0, fprs=(0.1,))
    assert list(out) == ["0"]
    out = evaluate_by_group(member, score, groups, min_records=5, n_bootstrap=0, fprs=(0.1,))
    assert list(out) == ["0", "2"]
    assert out["2"].n_members == 5 and out["2"].n_nonmembers == 5


# --- keys and serialisation ---------------------------------------------------------------------


def test_fpr_keys_are_positional():
    assert [fpr_key(a) for a in DEFAULT_FPRS] == ["0.1", "0.01", "0.001", "0.0001"]
    assert fpr_key(0.05) == "0.05" and fpr_key(1e-5) == "0.00001" and fpr_key(np.float32(0.25)) == "0.25"


def _plain(value):
    """True if ``value`` holds only built-in JSON types."""
    if isinstance(value, dict):
        return all(type(k) is str and _plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    return type(value) in (float, int, bool, str)


@quiet_fpr
def test_to_dict_is_plain_json():
    member, score = _data(0)
    m = evaluate(member, score, n_bootstrap=20)
    assert isinstance(m, AttackMetrics)
    d = m.to_dict()
    assert _plain(d)
    assert json.loads(json.dumps(d, allow_nan=False)) == d
    keys = {"0.1", "0.01", "0.001", "0.0001"}
    assert set(d["tpr_at_fpr"]) == set(d["tpr_at_fpr_ci"]) == set(d["fpr_resolvable"]) == keys
    assert d["auc_ci"] == list(m.auc_ci) and d["warnings"] == m.warnings
    assert d["n_members"] == member.sum() and type(d["n_members"]) is int


# --- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "member,score,kwargs,message",
    [
        ([1, 0] * 5, [0.1] * 9, {}, "member has 10 entries but score has 9"),
        ([[1, 0]], [[0.1, 0.2]], {}, "must be 1-D"),
        ([1, 0, 2], [0.1, 0.2, 0.3], {}, "member must hold only 0/1 or True/False; got 2 at index 2"),
        ([1, 0, 0.5], [0.1, 0.2, 0.3], {}, "got 0.5 at index 2"),
        (["a", "b", "a"], [0.1, 0.2, 0.3], {}, "member must hold only 0/1 or True/False; got dtype <U1"),
        ([1, 0, 1, 0], [0.1, np.nan, 0.3, np.inf], {}, "2 NaN or infinite value(s), the first at index 1"),
        ([1, 0, 1], ["x", "y", "z"], {}, "score must be real numbers"),
        ([1, 1, 1], [0.1, 0.2, 0.3], {}, "need both members and non-members; got 3 members and 0 non-members"),
        ([1, 0, 1], [0.1, 0.2, 0.3], {"fprs": (0.1, 1.5)}, "fpr 1.5 is outside (0, 1)"),
        ([1, 0, 1], [0.1, 0.2, 0.3], {"fprs": (0.0,)}, "fpr 0.0 is outside (0, 1)"),
        ([1, 0, 1], [0.1, 0.2, 0.3], {"fprs": (0.1, 0.1)}, "fprs lists 0.1 more than once"),
        ([1, 0, 1], [0.1, 0.2, 0.3], {"n_bootstrap": -1}, "n_bootstrap must be an integer >= 0; got -1"),
        ([1, 0, 1], [0.1, 0.2, 0.3], {"n_bootstrap": 2.5}, "n_bootstrap must be an integer >= 0; got 2.5"),
        ([1, 0, 1], [0.1, 0.2, 0.3], {"confidence": 1.0}, "confidence 1.0 is outside (0, 1)"),
        ([1, 0, 1], [0.1, 0.2, 0.3], {"confidence": 0}, "confidence 0 is outside (0, 1)"),
    ],
)
def test_evaluate_errors_name_the_bad_value(member, score, kwargs, message):
    with pytest.raises(InvalidInputError) as exc, warnings.catch_warnings():
        warnings.simplefilter("ignore", UnresolvableFPRWarning)
        evaluate(np.array(member), np.array(score), **kwargs)
    assert message in str(exc.value)


def test_curve_function_errors_name_the_bad_value():
    member, score = _data(0, n=20)
    with pytest.raises(InvalidInputError, match=r"sample_weight must have shape \(20,\)"):
        roc_curve(member, score, sample_weight=np.ones(19))
    with pytest.raises(
        InvalidInputError, match=re.escape("sample_weight must be finite and >= 0; got -1.0 at index 3")
    ):
        roc_curve(member, score, sample_weight=np.r_[1.0, 1.0, 1.0, -1.0, np.ones(16)])
    with pytest.raises(InvalidInputError, match="gives the members zero total weight"):
        roc_auc(member, score, sample_weight=(~member).astype(float))
    fpr, tpr, _ = roc_curve(member, score)
    with pytest.raises(InvalidInputError, match=r"fpr 1.0 is outside \(0, 1\)"):
        tpr_at_fpr(fpr, tpr, 1.0)
    with pytest.raises(InvalidInputError, match="equal length"):
        membership_advantage(fpr, tpr[:-1])


def test_bootstrap_and_group_errors_name_the_bad_value():
    member, score = _data(0, n=30)
    with pytest.raises(InvalidInputError, match=r"counts must have shape \(b, 30\)"):
        replicate_metrics(member, score, counts=np.ones((2, 29), int), fprs=(0.1,))
    bad = np.ones((3, 30), int)
    bad[2, 5] = -1
    with pytest.raises(InvalidInputError, match="row 2 has a negative count"):
        replicate_metrics(member, score, counts=bad, fprs=(0.1,))
    with pytest.raises(InvalidInputError, match="counts row 1 draws no members or no non-members"):
        replicate_metrics(member, score, counts=np.vstack([np.ones(30, int), ~member]), fprs=(0.1,))
    with pytest.raises(InvalidInputError, match="counts must be integers"):
        replicate_metrics(member, score, counts=np.ones((2, 30)), fprs=(0.1,))
    with pytest.raises(InvalidInputError, match="n_replicates must be an integer >= 0; got -2"):
        next(bootstrap_counts(member, -2, rng=np.random.default_rng(0)))
    with pytest.raises(InvalidInputError, match=r"groups must have shape \(30,\) like score; got shape \(29,\)"):
        evaluate_by_group(member, score, np.zeros(29))
    with pytest.raises(InvalidInputError, match="min_records must be an integer >= 0; got -1"):
        evaluate_by_group(member, score, np.zeros(30), min_records=-1)


# --- minimum counts -------------------------------------------------------------------------------


@pytest.mark.parametrize("n_members,n_nonmembers", [(4, 4), (4, 1000), (1000, 4), (1, 1)])
def test_evaluate_refuses_games_below_the_minimum_counts(n_members, n_nonmembers):
    member = np.r_[np.ones(n_members, bool), np.zeros(n_nonmembers, bool)]
    score = np.random.default_rng(0).normal(size=member.size) + member
    with pytest.raises(InvalidInputError) as exc, warnings.catch_warnings():
        warnings.simplefilter("ignore", UnresolvableFPRWarning)
        evaluate(member, score)
    message = str(exc.value)
    assert f"{n_members} members and {n_nonmembers} non-members" in message
    assert f"at least {MIN_MEMBERS} members and {MIN_NONMEMBERS} non-members are needed" in message


@quiet_fpr
def test_a_ten_row_table_with_four_members_is_refused_not_reported_as_certain():
    member = np.r_[np.ones(4, bool), np.zeros(4, bool), np.zeros(2, bool)][:8]
    score = np.r_[np.full(4, 0.9), np.full(4, 0.1)]  # perfectly separated: used to give "100.0% (100.0%-100.0%)"
    with pytest.raises(InvalidInputError, match="4 members and 4 non-members"):
        evaluate(member, score)
    five = evaluate(np.r_[np.ones(5, bool), np.zeros(5, bool)], np.r_[np.full(5, 0.9), np.full(5, 0.1)])
    assert five.auc == 1.0 and five.auc_ci[0] < 0.75  # reported, with an interval that says how little 5 show
    assert five.tpr_at_fpr_ci["0.1"] == (0.0, 1.0)


def test_evaluate_by_group_skips_slices_below_the_minimum_counts():
    rng = np.random.default_rng(1)
    member = np.r_[np.ones(30, bool), np.zeros(30, bool), np.ones(4, bool), np.zeros(40, bool)]
    groups = np.r_[np.zeros(60, int), np.ones(44, int)]
    out = evaluate_by_group(member, rng.normal(size=member.size), groups, n_bootstrap=0, fprs=(0.1,))
    assert list(out) == ["0"]


# --- PPV ------------------------------------------------------------------------------------------


def _brute_force_ppv(member, score, alpha):
    """Over every threshold with FP <= alpha * n0: the most true positives, then the fewest false positives."""
    member = np.asarray(member, bool)
    n0 = (~member).sum()
    best = (0, 0)  # (tp, -fp) of the rule flagging nothing
    for t in np.unique(score):
        flagged = score >= t
        tp, fp = int((flagged & member).sum()), int((flagged & ~member).sum())
        if fp <= alpha * n0 + 1e-9 and (tp, -fp) > best:
            best = (tp, -fp)
    tp, fp = best[0], -best[1]
    return (tp / (tp + fp) if tp else 0.0), fp / n0


@quiet_fpr
@pytest.mark.parametrize("seed", range(6))
def test_ppv_at_each_fpr_equals_a_brute_force_count(seed):
    member, score = _data(seed, n=600, ties=seed % 2 == 0, shift=1.0)
    fprs = (0.2, 0.1, 0.05, 0.01, 0.002)
    m = evaluate(member, score, fprs=fprs, n_bootstrap=0)
    assert m.ppv_prior == pytest.approx(member.mean())
    for alpha in fprs:
        key = fpr_key(alpha)
        ppv, fpr = _brute_force_ppv(member, score, alpha)
        assert m.ppv_at_fpr[key] == pytest.approx(ppv, abs=1e-12)
        assert m.operating_fpr[key] == pytest.approx(fpr, abs=1e-12)
    assert m.ppv(m.ppv_prior) == pytest.approx(m.ppv_at_fpr, abs=1e-12)


def test_ppv_reweights_to_another_member_prior():
    member, score = _data(3, n=2000, shift=1.5)
    m = evaluate(member, score, fprs=(0.1, 0.01), n_bootstrap=0)
    rare = m.ppv(0.01)
    for key in ("0.1", "0.01"):
        tpr, fpr = m.tpr_at_fpr[key], m.operating_fpr[key]
        assert rare[key] == pytest.approx(0.01 * tpr / (0.01 * tpr + 0.99 * fpr))
        assert rare[key] < m.ppv_at_fpr[key]  # fewer members in the population: a flag is less often right
    # brute force: replicate the non-members 99 times over per member to make the prior 1%
    n1 = int(member.sum())
    tp = round(m.tpr_at_fpr["0.1"] * n1)
    fp_scaled = m.operating_fpr["0.1"] * 99 * n1
    assert rare["0.1"] == pytest.approx(tp / (tp + fp_scaled))
    with pytest.raises(InvalidInputError, match=r"prior 1.5 is outside \(0, 1\)"):
        m.ppv(1.5)
    assert positive_predictive_value(0.0, 0.0, 0.3) == 0.0
    assert positive_predictive_value(0.5, 0.0, 0.3) == 1.0


def test_operating_point_is_the_most_precise_threshold_reaching_the_tpr():
    fpr = np.array([0.0, 0.0, 0.05, 0.08, 0.1, 0.2, 1.0])
    tpr = np.array([0.0, 0.3, 0.3, 0.5, 0.5, 0.7, 1.0])
    assert operating_point(fpr, tpr, 0.1) == (0.5, 0.08)
    assert operating_point(fpr, tpr, 0.06) == (0.3, 0.0)
    assert operating_point(fpr, tpr, 0.01) == (0.3, 0.0)
    assert operating_point(np.array([0.0, 0.5, 1.0]), np.array([0.0, 0.0, 1.0]), 0.6) == (0.0, 0.0)


# --- analytic intervals ---------------------------------------------------------------------------


@pytest.mark.parametrize("k,n", [(0, 10), (3, 10), (10, 10), (17, 250), (1, 5000)])
def test_clopper_pearson_and_wilson_equal_scipy(k, n):
    from scipy.stats import binomtest

    exact = binomtest(k, n).proportion_ci(0.95, method="exact")
    assert clopper_pearson(k, n, 0.025, 0.025) == pytest.approx((exact.low, exact.high), abs=1e-12)
    wilson = binomtest(k, n).proportion_ci(0.95, method="wilson")
    assert wilson_interval(k / n, n, 0.95) == pytest.approx((wilson.low, wilson.high), abs=1e-12)


def test_clopper_pearson_is_one_implementation_for_metrics_and_privacy(monkeypatch):
    from scipy.stats import binomtest

    from memberscope import privacy
    from memberscope.privacy import empirical

    k = np.array([0, 1, 3, 9, 10, 0, 17, 250])
    n = np.array([10, 10, 10, 10, 10, 250, 250, 250])
    low, high = clopper_pearson(k, n, 0.01, 0.04)
    for j in range(k.size):  # vectorised = scalar = scipy's exact one-sided bounds
        assert (low[j], high[j]) == clopper_pearson(int(k[j]), int(n[j]), 0.01, 0.04)
        test = binomtest(int(k[j]), int(n[j]))  # a two-sided exact interval puts half its error in each tail
        assert low[j] == pytest.approx(test.proportion_ci(0.98, method="exact").low, abs=1e-12)
        assert high[j] == pytest.approx(test.proportion_ci(0.92, method="exact").high, abs=1e-12)
    # a tail of 0 is the trivial bound; privacy's one-sided bounds and interval are the same numbers
    assert clopper_pearson(3, 10, 0.0, 0.0) == (0.0, 1.0)
    np.testing.assert_array_equal(privacy.clopper_pearson(k, n, 0.01, side="lower"), low)
    np.testing.assert_array_equal(privacy.clopper_pearson(k, n, 0.04, side="upper"), high)
    assert privacy.clopper_pearson_interval(17, 250, 0.95) == clopper_pearson(17, 250, (1 - 0.95) / 2, (1 - 0.95) / 2)
    # bad counts and tails are refused by name
    with pytest.raises(InvalidInputError, match="0 <= k <= n"):
        clopper_pearson(11, 10, 0.025, 0.025)
    with pytest.raises(InvalidInputError, match="0 <= k <= n"):
        privacy.clopper_pearson(np.array([1, -1]), 10, 0.05, side="upper")
    with pytest.raises(InvalidInputError, match="upper_tail"):
        clopper_pearson(1, 10, 0.025, 1.0)
    # privacy calls the metrics implementation: replacing it changes privacy's answers
    calls = []

    def spy(*args):
        calls.append(args)
        return (0.123, 0.456)

    monkeypatch.setattr(metrics, "clopper_pearson", spy)
    assert float(empirical.clopper_pearson(3, 10, 0.05, side="lower")) == 0.123
    assert empirical.clopper_pearson_interval(3, 10) == (0.123, 0.456)
    assert len(calls) == 2


def test_auc_interval_is_wilson_on_the_smaller_class():
    assert auc_interval(0.8, 1000, 30, 0.95) == wilson_interval(0.8, 30, 0.95)
    assert auc_interval(0.8, 30, 1000, 0.95) == wilson_interval(0.8, 30, 0.95)


def test_order_statistic_ranks_equal_a_scan_of_the_binomial_law():
    from scipy.stats import binom

    for n0 in [*range(1, 40), 99, 100, 101, 1000, 4321]:
        for alpha in (0.5, 0.1, 0.01, 0.001):
            for tail in (0.0125, 0.005):
                law, j = binom(n0, alpha), np.arange(n0 + 1)
                lower_ok = np.flatnonzero(law.cdf(j) <= tail)
                upper_ok = np.flatnonzero(law.sf(j - 1) <= tail)
                expected = (
                    int(lower_ok.max()) + 1 if lower_ok.size else None,
                    int(upper_ok.min()) if upper_ok.size and upper_ok.min() <= n0 else None,
                )
                assert _order_statistic_ranks(n0, alpha, tail) == expected, (n0, alpha, tail)


def test_tpr_interval_brackets_the_threshold_by_order_statistics():
    rng = np.random.default_rng(0)
    s1, s0 = np.sort(rng.normal(1, 1, 300)), np.sort(rng.normal(0, 1, 500))[::-1]
    lo, hi = tpr_interval(s1, s0, 0.1, 0.95)
    r, s = _order_statistic_ranks(500, 0.1, 0.0125)
    assert lo == clopper_pearson(int((s1 > s0[r - 1]).sum()), 300, 0.0125, 0.0125)[0]
    assert hi == clopper_pearson(int((s1 > s0[s - 1]).sum()), 300, 0.0125, 0.0125)[1]
    # fewer than 1/alpha non-members: the threshold may lie above every non-member, so the lower end is 0
    assert tpr_interval(s1, s0[:50], 0.01, 0.95)[0] == 0.0


def test_advantage_interval_is_the_dkw_band_on_both_classes():
    eps = np.sqrt(np.log(4 / 0.05) / (2 * 400)) + np.sqrt(np.log(4 / 0.05) / (2 * 100))
    assert advantage_interval(0.5, 400, 100, 0.95) == pytest.approx((0.5 - eps, 0.5 + eps))
    assert advantage_interval(0.01, 400, 100, 0.95)[0] == 0.0
