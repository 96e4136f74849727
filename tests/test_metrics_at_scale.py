"""``evaluate`` above ``BOOTSTRAP_MAX_RECORDS`` records: DeLong (logit) for the AUC, order statistics for the TPR.

The switch-over is at 2 * 10^6 records; the tests lower it (``monkeypatch``) so that games CI can
afford take the at-scale path, and check that path as ``tests/test_interval_coverage.py`` checks
the others: seeded simulated games from the same score models (a normal shift, one near AUC 1,
Student t(2), Poisson counts with ties), 200 per cell, every cell's interval holding the truth in at
least 90% of games and each metric's games pooled over the cells in at least 92%.
"""

import numpy as np
import pytest
from scipy import special

import memberscope.metrics._intervals as intervals
from memberscope.metrics import BOOTSTRAP_MAX_RECORDS, auc_interval, delong_interval, evaluate, tpr_interval
from memberscope.metrics.coverage import SCORE_MODELS, simulate_coverage

GAMES = 200
FPRS = (0.1, 0.01)
CELL_FLOOR = 0.90
POOLED_FLOOR = 0.92


@pytest.fixture
def at_scale(monkeypatch):
    """Every game counts as 'at scale' (more records than the switch-over)."""
    monkeypatch.setattr(intervals, "BOOTSTRAP_MAX_RECORDS", 0)


def _delong_slow(members, nonmembers, confidence):
    """DeLong's variance from the n1 x n0 kernel matrix, straight from the 1988 paper, on the logit scale."""
    kernel = (members[:, None] > nonmembers[None, :]) + 0.5 * (members[:, None] == nonmembers[None, :])
    auc = kernel.mean()
    v10, v01 = kernel.mean(axis=1), kernel.mean(axis=0)
    s10 = np.sum((v10 - auc) ** 2) / (members.size - 1)
    s01 = np.sum((v01 - auc) ** 2) / (nonmembers.size - 1)
    half = special.ndtri(0.5 + confidence / 2) * np.sqrt(s10 / members.size + s01 / nonmembers.size)
    half /= auc * (1 - auc)
    return special.expit(special.logit(auc) - half), special.expit(special.logit(auc) + half)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("ties", [False, True])
def test_delong_interval_equals_the_kernel_matrix_formula(seed, ties):
    rng = np.random.default_rng(seed)
    members, nonmembers = rng.normal(0.7, 1, 300), rng.normal(0, 1, 500)
    if ties:
        members, nonmembers = np.round(members), np.round(nonmembers)
    got = delong_interval(np.sort(members), np.sort(nonmembers), 0.9)
    np.testing.assert_allclose(got, _delong_slow(members, nonmembers, 0.9), rtol=0, atol=1e-12)
    # separated classes: AUC 1, no spread to estimate
    assert delong_interval(np.arange(5.0) + 10, np.arange(5.0), 0.95) == (1.0, 1.0)


def test_default_switch_over_and_what_each_side_uses(at_scale):
    assert BOOTSTRAP_MAX_RECORDS == 2_000_000  # the documented default (the fixture patches the module's)
    rng = np.random.default_rng(5)
    member = rng.random(3000) < 0.4
    score = rng.normal(size=3000) + 0.8 * member
    m = evaluate(member, score, fprs=(0.1, 0.01), n_bootstrap=1000)
    assert m.auc_ci_method == "delong-logit"
    assert m.tpr_at_fpr_ci_method == {
        "0.1": "order-statistics-clopper-pearson",
        "0.01": "order-statistics-clopper-pearson",
    }
    members_ascending, nonmembers_descending = np.sort(score[member]), np.sort(score[~member])[::-1]
    assert m.auc_ci == delong_interval(members_ascending, nonmembers_descending[::-1], 0.95)
    assert m.tpr_at_fpr_ci["0.1"] == tpr_interval(members_ascending, nonmembers_descending, 0.1, 0.95)
    assert m.auc_ci[0] < m.auc < m.auc_ci[1]
    # the seed no longer matters: nothing is resampled
    assert evaluate(member, score, fprs=(0.1, 0.01), seed=7) == m
    # near AUC 1 with few non-members DeLong is too narrow: the worst-case Wilson interval instead
    few = np.r_[np.ones(300, bool), np.zeros(200, bool)]
    separated = np.r_[rng.normal(4, 1, 300), rng.normal(0, 1, 200)]
    m = evaluate(few, separated, fprs=(0.1,))
    assert m.auc_ci_method == "wilson-worst-case-variance" and m.auc_ci == auc_interval(m.auc, 300, 200, 0.95)


def test_below_the_switch_over_the_bootstrap_still_runs():
    rng = np.random.default_rng(6)
    member = rng.random(3000) < 0.4
    m = evaluate(member, rng.normal(size=3000) + 0.8 * member, fprs=(0.1,), n_bootstrap=1000)
    assert m.auc_ci_method == "bootstrap" and m.tpr_at_fpr_ci_method == {"0.1": "bootstrap"}


@pytest.mark.slow
def test_at_scale_intervals_cover_the_truth(at_scale):
    pooled: dict[str, list[float]] = {}
    table = []
    for n_members, n_nonmembers in [(1000, 1000), (300, 3000), (3000, 300)]:
        for seed, name in enumerate(SCORE_MODELS):
            result = simulate_coverage(n_members, n_nonmembers, name, games=GAMES, fprs=FPRS, seed=50 + seed)
            cells = {"auc": result.auc, **{f"tpr@{a}": result.tpr_at_fpr[str(a)] for a in FPRS}}
            for metric, value in cells.items():
                pooled.setdefault(metric, []).append(value)
                table.append((n_members, n_nonmembers, name, metric, value, result.methods))
            # the at-scale methods ran (the AUC away from the bounds: DeLong)
            assert set(result.methods["0.1"]) == {"order-statistics-clopper-pearson"}
            assert "bootstrap" not in result.methods["auc"]
            if name != "normal-near-1":
                assert result.methods["auc"] == {"delong-logit": GAMES}
    failures = [row for row in table if row[4] < CELL_FLOOR]
    assert not failures, f"cells below {CELL_FLOOR}: {failures}"
    for metric, values in pooled.items():
        assert np.mean(values) >= POOLED_FLOOR, (metric, values)
