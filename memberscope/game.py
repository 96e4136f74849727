"""The membership game: who trains on what.

An *audit pool* of ``n`` records is split by seeded boolean masks between the target model and
``K`` reference models. The target's mask is the ground truth the attacks are scored against.
Reference masks follow LiRA's paired design: every record is IN for half of the reference
models (``K // 2`` or ``K // 2 + 1`` when ``K`` is odd), so every record has both IN and OUT
models to compare against. *Population* records are never trained on by anyone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from memberscope.exceptions import InvalidInputError

__all__ = ["MembershipGame", "derive_seed", "make_game", "paired_masks", "split_pool"]


def derive_seed(seed: int, *keys: int | str) -> int:
    """A 32-bit seed derived from ``seed`` and ``keys``; independent streams for each role."""
    words = [int(seed) & 0xFFFFFFFF]
    for key in keys:
        if isinstance(key, str):
            words.extend(key.encode())
        else:
            words.append(int(key) & 0xFFFFFFFF)
    return int(np.random.SeedSequence(words).generate_state(1)[0])


def paired_masks(n_records: int, n_models: int, *, seed: int) -> np.ndarray:
    """Masks of shape ``(n_models, n_records)`` with every record IN for half of the models.

    With odd ``n_models``, half of the records (chosen at random) are IN one extra model, so
    each model still trains on about ``n_records / 2`` records. ``n_models=0`` (an audit with
    threshold attacks only) gives an empty ``(0, n_records)`` array.
    """
    if n_models < 0:
        raise InvalidInputError(f"n_models must be >= 0; got {n_models}")
    rng = np.random.default_rng(seed)
    n_in = np.full(n_records, n_models // 2)
    if n_models % 2:
        extra = rng.permutation(n_records) < n_records // 2
        n_in = n_in + extra
    # Rank the models in a random order per record; a record is IN for its first n_in models.
    rank = rng.random((n_models, n_records)).argsort(axis=0).argsort(axis=0)
    return rank < n_in[None, :]


def split_pool(n_total: int, *, pool_size: int, population_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint random indices ``(pool, population)`` into a dataset of ``n_total`` records."""
    if pool_size < 2:
        raise InvalidInputError(f"pool_size must be at least 2; got {pool_size}")
    if population_size < 0:
        raise InvalidInputError(f"population_size must be >= 0; got {population_size}")
    if pool_size + population_size > n_total:
        raise InvalidInputError(
            f"pool_size ({pool_size}) + population_size ({population_size}) exceeds the {n_total} records available"
        )
    order = np.random.default_rng(seed).permutation(n_total)
    return np.sort(order[:pool_size]), np.sort(order[pool_size : pool_size + population_size])


@dataclass(frozen=True)
class MembershipGame:
    """Masks of one audit.

    Attributes
    ----------
    target_mask : ndarray of shape (n_pool,), bool
        Ground truth: which pool records the target trained on.
    reference_masks : ndarray of shape (n_reference, n_pool), bool
        Which pool records each reference model trains on.
    """

    target_mask: np.ndarray
    reference_masks: np.ndarray

    def __post_init__(self) -> None:
        if self.reference_masks.ndim != 2 or self.reference_masks.shape[1] != self.target_mask.shape[0]:
            raise InvalidInputError(
                f"reference_masks must have shape (n_reference, {self.target_mask.shape[0]}); "
                f"got {self.reference_masks.shape}"
            )
        n_members = int(self.target_mask.sum())
        if n_members == 0 or n_members == self.target_mask.size:
            raise InvalidInputError(
                f"the target must have both members and non-members in the pool; got {n_members} "
                f"members out of {self.target_mask.size} records"
            )

    @property
    def n_pool(self) -> int:
        return int(self.target_mask.shape[0])

    @property
    def n_reference(self) -> int:
        return int(self.reference_masks.shape[0])


def make_game(n_pool: int, n_reference: int, *, seed: int, target_fraction: float = 0.5) -> MembershipGame:
    """Seeded target and paired reference masks over a pool of ``n_pool`` records."""
    if not 0.0 < target_fraction < 1.0:
        raise InvalidInputError(f"target_fraction {target_fraction} is outside (0, 1)")
    rng = np.random.default_rng(derive_seed(seed, "target-mask"))
    n_members = int(round(target_fraction * n_pool))
    target_mask = np.zeros(n_pool, dtype=bool)
    target_mask[rng.permutation(n_pool)[:n_members]] = True
    reference_masks = paired_masks(n_pool, n_reference, seed=derive_seed(seed, "reference-masks"))
    return MembershipGame(target_mask=target_mask, reference_masks=reference_masks)
