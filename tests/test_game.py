import numpy as np
import pytest

from memberscope.exceptions import InvalidInputError
from memberscope.game import derive_seed, make_game, paired_masks, split_pool


@pytest.mark.parametrize("k", [2, 3, 8, 16, 17])
def test_paired_masks_put_every_record_in_half_the_models(k):
    masks = paired_masks(1001, k, seed=0)
    per_record = masks.sum(axis=0)
    assert set(np.unique(per_record)) <= {k // 2, k // 2 + (k % 2)}
    # each model trains on about half of the records
    assert np.all(np.abs(masks.sum(axis=1) - 500.5) < 80)


def test_zero_models_give_an_empty_mask_and_negative_counts_are_rejected():
    assert paired_masks(7, 0, seed=0).shape == (0, 7)
    assert make_game(10, 0, seed=0).n_reference == 0
    with pytest.raises(InvalidInputError, match="n_models must be >= 0; got -1"):
        paired_masks(7, -1, seed=0)


def test_masks_are_seeded():
    a, b, c = paired_masks(100, 4, seed=1), paired_masks(100, 4, seed=1), paired_masks(100, 4, seed=2)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_game_target_has_half_members_and_is_reproducible():
    g1, g2 = make_game(1000, 8, seed=3), make_game(1000, 8, seed=3)
    assert g1.target_mask.sum() == 500
    assert np.array_equal(g1.target_mask, g2.target_mask)
    assert np.array_equal(g1.reference_masks, g2.reference_masks)
    # the target's mask is independent of the reference masks (not one of them)
    assert not any(np.array_equal(g1.target_mask, m) for m in g1.reference_masks)


def test_split_pool_is_disjoint_and_errors_name_the_sizes():
    pool, pop = split_pool(100, pool_size=60, population_size=30, seed=0)
    assert len(set(pool) & set(pop)) == 0 and len(pool) == 60 and len(pop) == 30
    with pytest.raises(InvalidInputError, match=r"pool_size \(90\) \+ population_size \(30\) exceeds the 100"):
        split_pool(100, pool_size=90, population_size=30, seed=0)


def test_derive_seed_separates_roles():
    assert derive_seed(0, "reference", 1) != derive_seed(0, "reference", 2) != derive_seed(0, "target")
    assert derive_seed(5, "x") == derive_seed(5, "x")
