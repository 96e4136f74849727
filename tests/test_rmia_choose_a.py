"""RMIA's choice of ``a``: the fast search against the search it replaced and an all-pairs reference.

The fast search (members first, buffers reused, a radix-grouped exact count) must choose what the
previous histogram search chose and what a brute-force search over the whole grid chooses, on
seeded inputs with and without ties and with K = 1 .. 4 reference models.
"""

from __future__ import annotations

import numpy as np
import pytest
from rmia_reference import calibration_games

from memberscope import attacks
from memberscope.attacks import ReferenceOutputs
from memberscope.attacks.rmia import (
    FIXED_OFFLINE_A,
    LOG_FLOOR,
    _auc_bounds,
    _binned_auc,
    _log,
    _mann_whitney_auc,
    _offline_log_ratio,
    _offline_prior,
    pairwise_dominance,
)
from memberscope.game import paired_masks


def _references(seed, *, k, n=240, m=160, c=4, ties=False):
    """Reference outputs, members more confident; ``ties`` rounds logits so many probabilities are equal."""
    rng = np.random.default_rng(seed)
    labels, pop_labels = rng.integers(0, c, n), rng.integers(0, c, m)
    masks = paired_masks(n, k, seed=seed) if k > 1 else rng.permutation(n)[None, :] < n // 2
    logits = rng.normal(size=(k, n, 1, c))
    for j in range(k):
        logits[j, masks[j], :, labels[masks[j]]] += 1.5
    population = rng.normal(size=(k, m, 1, c))
    if ties:
        logits, population = np.round(logits), np.round(population)
    return ReferenceOutputs(
        logits=logits, masks=masks, labels=labels, population_logits=population, population_labels=pop_labels
    )


# --- the search as it was before this change (histogram bounds, then sorting), kept as a reference ---


def _old_mann_whitney_auc(member, scores):
    negatives, positives = np.sort(scores[~member]), np.sort(scores[member])
    below = np.searchsorted(negatives, positives, side="left")
    upto = np.searchsorted(negatives, positives, side="right")
    return float((2 * int(below.sum()) + int((upto - below).sum())) / (2.0 * positives.size * negatives.size))


def _old_auc_bounds(member, scores, bins=8192):
    sample = np.sort(scores[:: max(1, scores.size // 4096)])
    lo, hi = sample[len(sample) // 1000], sample[-1 - len(sample) // 1000]
    scale = bins / (hi - lo) if hi > lo else 0.0
    cell = np.clip((scores - lo) * scale, -1.0, float(bins)).astype(np.int64)
    cell += np.where(member, bins + 3, 1)
    counts = np.bincount(cell, minlength=2 * (bins + 2)).reshape(2, bins + 2)
    neg, pos = counts[0], counts[1]
    won = int(np.dot(pos, np.cumsum(neg) - neg))
    shared = int(np.dot(pos, neg))
    pairs = float(pos.sum()) * float(neg.sum())
    return won / pairs, (won + shared) / pairs


def _old_scores(attack, game, a):
    _, log_p_x, p_out_x, log_p_z, p_out_z = game
    scores = log_p_x - _log(_offline_prior(p_out_x, a))
    if not attack.tie_break:
        scores = pairwise_dominance(scores, log_p_z - _log(_offline_prior(p_out_z, a)), gamma=attack.gamma)
    return scores


def _old_choose_a(attack):
    games = calibration_games(attack)
    if not games:
        return FIXED_OFFLINE_A, None
    grid = [float(a) for a in attack.a_grid]
    scores = {(i, g): _old_scores(attack, game, a) for i, a in enumerate(grid) for g, game in enumerate(games)}
    bounds = np.array(
        [[_old_auc_bounds(games[g][0], scores[i, g]) for g in range(len(games))] for i in range(len(grid))]
    ).sum(axis=1)
    candidates = np.flatnonzero(bounds[:, 1] >= bounds[:, 0].max())
    exact = {
        i: sum(_old_mann_whitney_auc(games[g][0], scores[i, g]) for g in range(len(games))) for i in candidates.tolist()
    }
    best = max(exact, key=lambda i: (exact[i], -i))
    return grid[best], {grid[i]: round(v / len(games), 4) for i, v in sorted(exact.items())}


# --- an independent reference: every grid value, the paper's score, every (member, non-member) pair ---


def _all_pairs_auc(member, scores):
    diff = scores[member][:, None] - scores[~member][None, :]
    return float(((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size)


def _brute_force_choose_a(attack):
    games = calibration_games(attack)
    if not games:
        return FIXED_OFFLINE_A, None
    aucs = np.zeros(len(attack.a_grid))
    for member, log_p_x, p_out_x, log_p_z, p_out_z in games:
        for i, a in enumerate(attack.a_grid):
            ratio_x = log_p_x - _log(_offline_prior(p_out_x, a))
            ratio_z = log_p_z - _log(_offline_prior(p_out_z, a))
            # the paper's score with a dense n x z comparison (and the attack's tie-break, if on)
            dominated = (ratio_x[:, None] - np.log(attack.gamma) > ratio_z[None, :]).mean(axis=1)
            if attack.tie_break:
                dominated = dominated + (ratio_x[:, None] > ratio_x[None, :]).sum(axis=1) * 1e-9
            aucs[i] += _all_pairs_auc(member, dominated)
    return float(attack.a_grid[int(np.argmax(aucs))]), aucs / len(games)


CASES = [(seed, k, ties) for seed in range(4) for k in (1, 2, 3, 4) for ties in (False, True)]


@pytest.mark.parametrize("seed,k,ties", CASES)
@pytest.mark.parametrize("tie_break,gamma", [(True, 1.0), (True, 2.0), (False, 1.0)])
def test_fast_choice_of_a_is_the_previous_search_and_the_brute_force_one(seed, k, ties, tie_break, gamma):
    refs = _references(seed, k=k, ties=ties)
    attack = attacks.create("rmia-offline", tie_break=tie_break, gamma=gamma).fit(refs)
    old, old_auc = _old_choose_a(attack)
    brute, curve = _brute_force_choose_a(attack)
    assert attack.a_ == old == brute
    if k == 1:
        assert attack.a_ == FIXED_OFFLINE_A and attack.a_auc_ is None
        return
    # the exact mean AUCs it reports are the brute force's, and include the previous search's best
    assert old_auc is not None and attack.a_ in attack.a_auc_
    assert attack.a_auc_[attack.a_] == old_auc[old]
    for a, auc in attack.a_auc_.items():
        assert auc == pytest.approx(curve[list(attack.a_grid).index(a)], abs=1e-4)


def test_fast_choice_of_a_is_the_previous_search_at_the_benchmark_scale():
    """Thousands of candidates per game (many bins shared), the rmia_scaling benchmark's kind of input."""
    rng = np.random.default_rng(3)
    n, m, k, c = 6000, 4000, 4, 10
    labels = rng.integers(0, c, n)
    masks = paired_masks(n, k, seed=3)
    logits = rng.normal(size=(k, n, 1, c)).astype(np.float32)
    for j in range(k):
        logits[j, masks[j], :, labels[masks[j]]] += 0.5
    refs = ReferenceOutputs(
        logits=logits,
        masks=masks,
        labels=labels,
        population_logits=rng.normal(size=(k, m, 1, c)).astype(np.float32),
        population_labels=rng.integers(0, c, m),
    )
    attack = attacks.create("rmia-offline").fit(refs)
    old, old_auc = _old_choose_a(attack)
    assert attack.a_ == old
    assert attack.a_auc_ is not None and attack.a_auc_[old] == old_auc[old]


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("levels", [None, 7, 2])
def test_binned_auc_is_the_sorted_count_to_the_last_bit(seed, levels):
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=3000) + 0.4 * (member := rng.random(3000) < 0.3)
    if levels is not None:  # ties: few distinct values (2 levels: the sorting fallback)
        scores = np.round(scores * levels / 4)
    positives, negatives = scores[member], scores[~member]
    expected = _mann_whitney_auc(positives, negatives)
    assert _binned_auc(positives, negatives) == expected
    assert _binned_auc(positives, negatives, bins=16) == expected  # many pairs share a bin
    assert _binned_auc(positives, negatives, max_shared=1e9) == expected  # never the fallback
    assert expected == _all_pairs_auc(member, scores)
    lower, upper = _auc_bounds(positives, negatives)
    assert lower <= expected <= upper
    lower, upper = _auc_bounds(positives, negatives, bins=4)
    assert lower <= expected <= upper


@pytest.mark.parametrize("a", [0.0, 0.05, 0.33, 0.95, 1.0])
def test_offline_log_ratio_is_the_expression_to_the_last_bit(a):
    rng = np.random.default_rng(0)
    p_out = np.concatenate([rng.random(500), [0.0, 1e-320, 1e-300, 1.0]])
    log_p_x = _log(np.concatenate([rng.random(500), [0.0, 1.0, 1e-310, 0.5]]))
    expected = log_p_x - _log(_offline_prior(p_out, a))
    np.testing.assert_array_equal(_offline_log_ratio(log_p_x, p_out, a, np.empty(504)), expected)
    if a == 1.0:  # the floor binds only there
        assert (expected == log_p_x - LOG_FLOOR).any()


def test_binned_auc_with_scores_too_close_to_divide_by():
    tiny = np.array([0.0, 5e-324, 1e-323, 0.0, 5e-324, 1.5e-323] * 50)  # subnormal spacing: 1 / spread is inf
    member = np.tile([True, False, True, False, True, False], 50)
    expected = _mann_whitney_auc(tiny[member], tiny[~member])
    assert _binned_auc(tiny[member], tiny[~member], max_shared=1e9) == expected
    lower, upper = _auc_bounds(tiny[member], tiny[~member])
    assert lower <= expected <= upper
