"""Stratified bootstrap of the ROC metrics: sort once, then weighted cumulative sums per replicate.

A bootstrap replicate is described by how many times it draws each record (multinomial counts).
Re-scoring a replicate never needs a new sort: walking the records in the fixed descending-score
order, the replicate's ROC is the cumulative sum of its member and non-member counts, tie groups
collapsed. Replicates are processed in chunks of rows, so memory stays at a few ``chunk × n``
arrays whatever the number of replicates.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from memberscope.exceptions import InvalidInputError
from memberscope.metrics._roc import RankedRecords, rank_records
from memberscope.metrics._validate import check_count, check_fprs, check_member, check_scores

__all__ = ["CHUNK", "ReplicateMetrics", "bootstrap_counts", "replicate_metrics"]

CHUNK = 64
"""Replicates processed together: memory is a few ``CHUNK × n`` arrays."""


@dataclass(frozen=True, eq=False)
class ReplicateMetrics:
    """Metrics of each bootstrap replicate (one row of counts each).

    Attributes
    ----------
    auc : ndarray of shape (b,)
    tpr_at_fpr : ndarray of shape (b, f)
        Column ``j`` is the TPR at ``fprs[j]`` (largest TPR among points with FPR <= ``fprs[j]``).
    balanced_accuracy : ndarray of shape (b,)
    advantage : ndarray of shape (b,)
    fprs : tuple of float, length f
    """

    auc: np.ndarray
    tpr_at_fpr: np.ndarray
    balanced_accuracy: np.ndarray
    advantage: np.ndarray
    fprs: tuple[float, ...]


def bootstrap_counts(
    member, n_replicates: int, *, rng: np.random.Generator, chunk: int = CHUNK
) -> Iterator[np.ndarray]:
    """Stratified bootstrap draws as multinomial counts, ``chunk`` replicates at a time.

    In each replicate the ``n1`` members are resampled with replacement ``n1`` times and the ``n0``
    non-members ``n0`` times, so both class sizes stay fixed. Each replicate draws its members
    then its non-members from ``rng`` in turn, so the counts do not depend on ``chunk``.

    Parameters
    ----------
    member : array-like of shape (n,)
        Ground truth, 0/1 or boolean.
    n_replicates : int
        Number of replicates ``b`` (>= 0).
    rng : numpy.random.Generator
        Source of randomness.
    chunk : int, default 64
        Replicates per yielded array.

    Yields
    ------
    counts : ndarray of shape (min(chunk, remaining), n), dtype int32
        ``counts[r, i]``: how many times replicate ``r`` draws record ``i``; the rows of all
        chunks together are the ``b`` replicates.
    """
    member = check_member(member)
    n_replicates = check_count(n_replicates, "n_replicates")
    if check_count(chunk, "chunk") == 0:
        raise InvalidInputError("chunk must be an integer >= 1; got 0")
    n = member.size
    classes = [idx for idx in (np.flatnonzero(member), np.flatnonzero(~member)) if idx.size]
    for start in range(0, n_replicates, chunk):
        rows = min(chunk, n_replicates - start)
        drawn = [np.empty((rows, idx.size), dtype=np.int64) for idx in classes]
        for r in range(rows):
            for idx, d in zip(classes, drawn, strict=True):
                d[r] = rng.integers(0, idx.size, size=idx.size)
        out = np.zeros((rows, n), dtype=np.int32)
        for idx, d in zip(classes, drawn, strict=True):
            d += (np.arange(rows, dtype=np.int64) * idx.size)[:, None]
            out[:, idx] = np.bincount(d.ravel(), minlength=rows * idx.size).reshape(rows, idx.size)
        yield out


def replicate_metrics(member, score, *, counts: np.ndarray | Iterable[np.ndarray], fprs) -> ReplicateMetrics:
    """AUC, TPR at each FPR, balanced accuracy and advantage of every bootstrap replicate.

    Replicate ``r`` is the data set holding record ``i`` ``counts[r, i]`` times. The result equals
    running :func:`roc_auc` and friends on ``np.repeat(score, counts[r])`` (and the same for
    ``member``), but the scores are sorted only once.

    Parameters
    ----------
    member : array-like of shape (n,)
        Ground truth, 0/1 or boolean.
    score : array-like of shape (n,)
        Finite attack scores; higher means more likely a member.
    counts : ndarray of shape (b, n), or an iterable of such arrays (chunks of rows)
        Non-negative integer counts per replicate and record, for instance from
        :func:`bootstrap_counts`; every row must draw at least one member and one non-member.
        Chunks are consumed one at a time, so a generator keeps memory bounded.
    fprs : sequence of float
        False-positive rates in (0, 1) at which to read the TPR.

    Returns
    -------
    ReplicateMetrics
        Arrays with one entry (row) per replicate, in the order given.
    """
    member, score = check_scores(member, score)
    fprs = check_fprs(fprs)
    ranked = rank_records(member, score)
    chunks = [counts] if isinstance(counts, np.ndarray) else counts
    parts = []
    seen = 0
    for block in chunks:
        block = _check_counts(block, member.size, first_row=seen)
        for start in range(0, block.shape[0], CHUNK):
            parts.append(_chunk_metrics(ranked, block[start : start + CHUNK], fprs, first_row=seen + start))
        seen += block.shape[0]
    if not parts:
        empty = np.empty(0)
        return ReplicateMetrics(empty, np.empty((0, len(fprs))), empty, empty, fprs)
    auc, tpr, adv = (np.concatenate(p) for p in zip(*parts, strict=True))
    return ReplicateMetrics(auc=auc, tpr_at_fpr=tpr, balanced_accuracy=(1.0 + adv) / 2.0, advantage=adv, fprs=fprs)


def _check_counts(block, n: int, *, first_row: int) -> np.ndarray:
    block = np.asarray(block)
    if block.ndim != 2 or block.shape[1] != n:
        raise InvalidInputError(f"counts must have shape (b, {n}) like score; got shape {block.shape}")
    if block.dtype.kind not in "iu":
        raise InvalidInputError(f"counts must be integers; got dtype {block.dtype}")
    if block.size and block.min() < 0:
        row = first_row + int(np.argwhere(block < 0)[0, 0])
        raise InvalidInputError(f"counts must be >= 0; row {row} has a negative count")
    return block


def _chunk_metrics(
    ranked: RankedRecords, counts: np.ndarray, fprs: tuple[float, ...], *, first_row: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(auc (c,), tpr (c, f), advantage (c,)) for a chunk of ``counts`` (c, n) in record order."""
    # 1. Counts in descending-score order, split by class and summed within tie groups. Sums are
    #    exact integers: int32 while they fit, float64 (exact below 2**53) for the arithmetic.
    acc = np.int32 if counts.sum(axis=1, dtype=np.int64).max(initial=0) < 2**31 else np.int64
    w = np.take(counts, ranked.order, axis=1)
    pos_w = w * ranked.member
    neg_w = w - pos_w
    if ranked.has_ties:
        pos_w = np.add.reduceat(pos_w, ranked.group_starts, axis=1)
        neg_w = np.add.reduceat(neg_w, ranked.group_starts, axis=1)
    # 2. One ROC point per group: members and non-members scoring at or above it.
    pos = np.cumsum(pos_w, axis=1, dtype=acc).astype(np.float64)
    neg = np.cumsum(neg_w, axis=1, dtype=acc).astype(np.float64)
    n_pos, n_neg = pos[:, -1], neg[:, -1]
    empty = np.flatnonzero((n_pos == 0) | (n_neg == 0))
    if empty.size:
        raise InvalidInputError(
            f"counts row {first_row + int(empty[0])} draws no members or no non-members; expected both"
        )
    # 3. AUC by the trapezoid rule: each group's non-members times the members above them plus
    #    half the tied members.
    auc = (np.einsum("ij,ij->i", neg_w, pos) - 0.5 * np.einsum("ij,ij->i", neg_w, pos_w)) / (n_pos * n_neg)
    # 4. Advantage max(TPR - FPR), including the (0, 0) point, as (pos * n0 - neg * n1) / (n1 * n0).
    adv = np.maximum((pos * n_neg[:, None] - neg * n_pos[:, None]).max(axis=1), 0.0) / (n_pos * n_neg)
    # 5. TPR at each FPR: the last point whose non-member count k satisfies k / n0 <= alpha. The rows
    #    are laid end to end with offsets so one searchsorted finds that point for every row.
    rows, groups = pos.shape
    alphas = np.asarray(fprs, dtype=np.float64)
    k = np.floor(alphas[None, :] * n_neg[:, None])
    k = np.where((k + 1) / n_neg[:, None] <= alphas, k + 1, k)
    k = np.where(k / n_neg[:, None] > alphas, k - 1, k)
    offset = (np.arange(rows) * (n_neg.max() + 1.0))[:, None]
    found = np.searchsorted((neg + offset).ravel(), (k + offset).ravel(), side="right").reshape(k.shape)
    found -= (np.arange(rows) * groups)[:, None]
    above = np.take_along_axis(pos, np.maximum(found - 1, 0), axis=1)
    tpr = np.where(found > 0, above, 0.0) / n_pos[:, None]
    return auc, tpr, adv
