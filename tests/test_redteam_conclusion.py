"""The red team's conclusion (:func:`memberscope.redteam.verdicts.conclude`) against closed forms.

An all-clear ("no measurable leakage") needs the run's power to see the leakage that matters and the target's answers
bounding the leakage below it: the share of records called members must be, at its upper confidence bound, no more
than false positives explain. The numbers below are those of issue 14's overfit MLP on digits (2 calibration shadows,
159 known non-members of the target, 1,000 candidates).
"""

import numpy as np
import pytest
from scipy.stats import binom

from memberscope.privacy import clopper_pearson_interval
from memberscope.redteam.verdicts import Calibration, TargetCheck, conclude, min_detectable_share

FPR = 0.01
BOUND = 0.018664699758660745  # the certified FPR bound of the member verdicts, from 159 known non-members


def _calibration(tpr_ci=(0.034, 0.088)):
    return Calibration(
        fpr_target=FPR,
        threshold=1.0,
        threshold_band=(0.99, 1.01),
        shadow_tpr=float(np.mean(tpr_ci)),
        shadow_tpr_ci=tpr_ci,
        shadow_fpr=0.0094,
        shadow_fpr_ci=(0.0035, 0.0204),
        n_shadow_models=2,
        n_shadow_members=318,
        n_shadow_nonmembers=638,
    )


CHECK = TargetCheck(FPR, 159, 0, 0.0, (0.0, 0.0229), "ok", 0.95, 0.9999, BOUND)


def _clear(n):
    """The member-verdict counts out of ``n`` that get an all-clear (none above 5% of records: above the bound)."""
    scanned = range(n // 20 + 1)
    clear = [m for m in scanned if _status(m, n).status == "no measurable leakage"]
    assert scanned[-1] not in clear
    return clear


def _status(m, n, calibration=None):
    counts = {"member": m, "not-member": 0, "inconclusive": n - m}
    return conclude(counts, calibration or _calibration(), CHECK, attack="rmia-offline")


def test_the_overfit_digits_mlp_numbers_are_inconclusive_with_the_detectable_leakage_stated():
    # 16 of 1,000 called members (15 of them true members, at a true FPR of 0.25%): not separable from false
    # positives, but not ruled out either; the ground truth TPR at 1% FPR was 0.063.
    c = _status(16, 1000)
    assert c.status == "inconclusive" and c.power == "unknown"
    assert c.member_share_upper > BOUND and c.false_positive_bound == BOUND
    assert c.min_detectable == pytest.approx(0.028)
    assert "do not rule out leakage" in c.headline and "minimum leakage this run could detect: 2.8%" in c.headline


def test_min_detectable_share_is_the_smallest_share_called_leakage():
    for n in (150, 1000, 4000):
        share = min_detectable_share(n, BOUND)
        m = round(share * n)
        assert clopper_pearson_interval(m, n)[0] > BOUND >= clopper_pearson_interval(m - 1, n)[0]
        assert _status(m, n).status == "leakage" and _status(m - 1, n).status != "leakage"
    # 3 records: 1 called a member has a lower bound of 0.8%, 2 of 9.4% (above 1.9%).
    assert min_detectable_share(3, BOUND) == pytest.approx(2 / 3)
    assert min_detectable_share(1, 0.5) is None  # 1 record cannot beat a 50% false-positive bound (2.5%)


@pytest.mark.parametrize("n", [200, 1000, 3000])
def test_an_all_clear_is_rare_whenever_more_records_are_called_than_false_positives_explain(n):
    # Whatever the true share p of records called members above the false-positive bound, the chance of an
    # all-clear is that of the upper confidence bound falling below p: at most 2.5% (closed form, binomial counts).
    clear = _clear(n)
    assert clear == list(range(len(clear)))  # all-clear only for the fewest member verdicts
    for p in np.linspace(BOUND, 0.2, 40)[1:]:
        assert binom.cdf(len(clear) - 1, n, p) <= 0.025
    if n == 200:
        assert not clear  # 200 records cannot bound the share below 1.9%: never an all-clear


def test_a_target_that_never_saw_the_records_is_never_called_leaky_and_is_usually_cleared():
    # Member verdicts on a non-leaking target are false positives at a rate at most the certified bound; with the
    # certified threshold's typical FPR (0.6%: one known non-member in 159 allowed) the all-clear comes back.
    n = 1000
    leak_from = round(min_detectable_share(n, BOUND) * n)
    assert binom.sf(leak_from - 1, n, BOUND) <= 0.025  # "leakage" at most 2.5% of the time, at the worst FPR
    clear = _clear(n)
    assert binom.cdf(len(clear) - 1, n, 0.006) >= 0.95
    rng = np.random.default_rng(0)
    statuses = {_status(int(m), n).status for m in rng.binomial(n, 0.006, size=200)}
    assert "leakage" not in statuses and "no measurable leakage" in statuses


def test_an_attack_too_weak_for_the_detectable_leakage_cannot_clear():
    # Power shown (TPR above the FPR) but not above the 2.8% this run needs to call leakage: inconclusive.
    c = _status(2, 1000, _calibration(tpr_ci=(0.012, 0.05)))
    assert c.status == "inconclusive" and "not clearly above the minimum detectable leakage (2.8%)" in c.headline
    assert _status(2, 1000).status == "no measurable leakage"


def _label_only_like(counts: np.ndarray, refs: np.ndarray) -> np.ndarray:
    """Scores as the label-only attack computes them: a share of 17 answers minus the mean of the reference shares
    (multiples of 1/51 with 3 references, heavily tied, their last bits depending on how each was summed)."""
    return counts / 17 - (refs / 17).sum(axis=-1) / refs.shape[-1]


def test_certified_threshold_with_tied_discrete_scores_flags_at_most_k_and_covers():
    from scipy.stats import beta

    from memberscope.redteam.verdicts import certified_threshold

    # Known non-members' scores: a share of 17 answers (the target keeps the label on all of them 80% of the time)
    # minus the mean of 3 reference shares (each 17/17 90% of the time): mostly 0, a tail of ties up to 1. The
    # law is enumerated (every ordered outcome, its float score computed as the attack does), so each threshold's
    # true FPR is exact.
    rng = np.random.default_rng(0)
    h, misses, trials = 600, 0, 300
    p_count = np.r_[np.full(17, 0.2 / 17), 0.8]
    p_ref = np.r_[np.full(17, 0.1 / 17), 0.9]
    outcomes = np.stack(np.meshgrid(*[np.arange(18)] * 4, indexing="ij"), axis=-1).reshape(-1, 4)
    law = p_count[outcomes[:, 0]] * np.prod(p_ref[outcomes[:, 1:]], axis=1)
    law_scores = _label_only_like(outcomes[:, 0], outcomes[:, 1:])
    k = max(k for k in range(int(FPR * h) + 1) if beta.ppf(0.95, k + 1, h - k) <= 2 * FPR)
    for _ in range(trials):
        scores = _label_only_like(rng.choice(18, size=h, p=p_count), rng.choice(18, size=(h, 3), p=p_ref))
        threshold, bound = certified_threshold(scores, FPR)
        assert bound == pytest.approx(beta.ppf(0.95, k + 1, h - k))
        assert (scores >= threshold).sum() <= k  # at most k of the known non-members flagged, ties and all
        misses += law[law_scores >= threshold].sum() > bound
    # The bound holds with 95% confidence: exceeded in at most about 5% of draws (binomial slack).
    assert misses / trials <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / trials)
