"""Stratified bootstrap of the ROC metrics: sort once, then weighted cumulative sums per replicate.

A bootstrap replicate is described by how many times it draws each record (multinomial counts).
Re-scoring a replicate never needs a new sort: walking the records in the fixed descending-score
order, the replicate's ROC is the cumulative sum of its member and non-member counts, tie groups
collapsed. Replicates are processed in chunks of rows, so memory stays at a few ``chunk × n``
arrays whatever the number of replicates.

:func:`bootstrap_replicates` is the streaming form :func:`memberscope.metrics.evaluate` uses: it
draws the same replicates as :func:`bootstrap_counts` but keeps each class's counts apart, in
descending-score order, so a replicate costs a few passes over its records (AUC from the members
drawn above each non-member, TPR from one binary search per FPR) and the chunk size bounds memory
(one replicate of n = 10^7 records works in about 0.5 GiB).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from memberscope.exceptions import InvalidInputError
from memberscope.metrics._roc import RankedRecords, rank_records
from memberscope.metrics._validate import check_count, check_fprs, check_member, check_scores

__all__ = [
    "CHUNK",
    "CHUNK_RECORDS",
    "ReplicateMetrics",
    "bootstrap_counts",
    "bootstrap_replicates",
    "replicate_metrics",
]

CHUNK = 64
"""Replicates processed together by :func:`replicate_metrics`: memory is a few ``CHUNK × n`` arrays."""

CHUNK_RECORDS = 2**17
"""Records (replicates × n) :func:`bootstrap_replicates` scores together by default: small enough to
stay in cache (one replicate at a time from n = 131,072 up), large enough to amortise Python's
overhead on small games. Memory is about 50 bytes per record and replicate of a chunk."""


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
    non-members ``n0`` times, so both class sizes stay fixed. Replicate after replicate, ``rng``
    gives ``n1 + n0`` uniforms (``rng.random``): the first ``n1`` pick members (``floor(u * n1)``
    into the members in record order), the rest non-members; so the counts do not depend on
    ``chunk``.

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
        drawn = _draw(rng, rows, [idx.size for idx in classes])
        out = np.zeros((rows, n), dtype=np.int32)
        for idx, d in zip(classes, drawn, strict=True):
            d += (np.arange(rows, dtype=np.int64) * idx.size)[:, None]
            out[:, idx] = np.bincount(d.ravel(), minlength=rows * idx.size).reshape(rows, idx.size)
        yield out


def _draw(rng: np.random.Generator, rows: int, sizes: list[int]) -> list[np.ndarray]:
    """Resampled positions (rows, size) per class: each replicate's ``sum(sizes)`` uniforms, split by class."""
    uniform = rng.random((rows, sum(sizes)))
    drawn, start = [], 0
    for size in sizes:
        positions = (uniform[:, start : start + size] * size).astype(np.int64)
        np.minimum(positions, size - 1, out=positions)  # u * size can round up to size
        drawn.append(positions)
        start += size
    return drawn


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


@dataclass(frozen=True, eq=False)
class _ClassLayout:
    """Each class's records by descending score, and where each non-member sits among the members."""

    to_desc_members: np.ndarray  # (n1,) record-order member position of the k-th highest member
    to_desc_nonmembers: np.ndarray  # (n0,) the same for non-members
    members_above: np.ndarray  # (n0,) members scoring strictly above each non-member (descending order)
    members_tied: np.ndarray | None  # (n0,) members tied with it, or None without member/non-member ties
    nonmembers_above: np.ndarray  # (n0,) non-members scoring strictly above it
    nonmember_ties: bool  # whether two non-members share a score

    @property
    def sizes(self) -> tuple[int, int]:
        return self.to_desc_members.size, self.to_desc_nonmembers.size


def _class_layout(member: np.ndarray, ranked: RankedRecords) -> _ClassLayout:
    n = member.size
    member_records = ranked.order[ranked.member]  # members by descending score
    nonmember_records = ranked.order[~ranked.member]
    s1_ascending = ranked.score[ranked.member][::-1]
    s0_ascending = ranked.score[~ranked.member][::-1]
    n1 = s1_ascending.size
    # ascending queries keep the binary searches cache-friendly; reversed back to descending order
    right = np.searchsorted(s1_ascending, s0_ascending, side="right")[::-1]
    left = np.searchsorted(s1_ascending, s0_ascending, side="left")[::-1]
    # a draw picks a class's records in record order; its position there is its rank among them
    position = np.empty(n, dtype=np.int64)
    position[member] = np.arange(n1)
    position[~member] = np.arange(n - n1)
    s0_descending = s0_ascending[::-1]
    new_score = np.r_[True, s0_descending[1:] != s0_descending[:-1]]
    first_of_tie = np.maximum.accumulate(np.where(new_score, np.arange(n - n1), 0))
    return _ClassLayout(
        to_desc_members=position[member_records],
        to_desc_nonmembers=position[nonmember_records],
        members_above=n1 - right,
        members_tied=(right - left) if np.any(right != left) else None,
        nonmembers_above=first_of_tie,
        nonmember_ties=not bool(new_score.all()),
    )


def _allowed_false_positives(fprs: tuple[float, ...], n_neg: int) -> np.ndarray:
    """(f,) the most non-members a threshold may flag at each FPR: the largest k with k / n0 <= alpha."""
    alphas = np.asarray(fprs, dtype=np.float64)
    k = np.floor(alphas * n_neg)
    k = np.where((k + 1) / n_neg <= alphas, k + 1, k)
    return np.where(k / n_neg > alphas, k - 1, k)


def bootstrap_replicates(
    member, score, n_replicates: int, *, rng: np.random.Generator, fprs, chunk: int | None = None
) -> ReplicateMetrics:
    """Metrics of ``n_replicates`` stratified bootstrap replicates, drawn and scored chunk by chunk.

    Equal to ``replicate_metrics(member, score, counts=bootstrap_counts(member, n_replicates,
    rng=rng), fprs=fprs)`` (the same draws from ``rng``, whatever ``chunk``), but each replicate
    costs ``O(n)`` without a sort or an ``n``-wide matrix per class: walking each class in
    descending-score order, the members drawn above a non-member are a cumulative sum, the AUC
    sums them over the non-members drawn (exactly, in integers), and the TPR at an FPR is read
    where the non-members' cumulative count passes the allowed number of false positives.

    Parameters
    ----------
    member : array-like of shape (n,)
        Ground truth, 0/1 or boolean, with both classes present.
    score : array-like of shape (n,)
        Finite attack scores; higher means more likely a member.
    n_replicates : int
        Number of replicates ``b`` (>= 0).
    rng : numpy.random.Generator
        Source of randomness.
    fprs : sequence of float
        False-positive rates in (0, 1) at which to read the TPR.
    chunk : int or None, default None
        Replicates scored together; memory grows as about ``50 * chunk * n`` bytes. None picks
        ``max(1, CHUNK_RECORDS // n)``.

    Returns
    -------
    ReplicateMetrics
        Arrays with one entry (row) per replicate.

    Raises
    ------
    InvalidInputError
        On malformed input, or ``chunk`` not an integer >= 1.
    """
    member, score = check_scores(member, score)
    fprs = check_fprs(fprs)
    n_replicates = check_count(n_replicates, "n_replicates")
    chunk = check_chunk(chunk)
    return replicates_from_ranked(member, rank_records(member, score), n_replicates, rng=rng, fprs=fprs, chunk=chunk)


def check_chunk(chunk) -> int | None:
    """Validate a chunk size: None or an integer >= 1."""
    if chunk is not None and check_count(chunk, "chunk") == 0:
        raise InvalidInputError("chunk must be an integer >= 1; got 0")
    return chunk


def replicates_from_ranked(
    member: np.ndarray,
    ranked: RankedRecords,
    n_replicates: int,
    *,
    rng: np.random.Generator,
    fprs: tuple[float, ...],
    chunk: int | None,
    advantage: bool = True,
) -> ReplicateMetrics:
    """:func:`bootstrap_replicates` on validated ``member`` (n,) bool already ranked by :func:`rank_records`.

    ``advantage=False`` skips the advantage (and balanced accuracy), left as NaN, for callers that
    do not use them.
    """
    if chunk is None:
        chunk = max(1, CHUNK_RECORDS // member.size)
    layout = _class_layout(member, ranked)
    n0 = layout.sizes[1]
    allowed = _allowed_false_positives(fprs, n0).astype(np.int64)
    auc, tpr, adv = np.empty(n_replicates), np.empty((n_replicates, len(fprs))), np.empty(n_replicates)
    for start in range(0, n_replicates, chunk):
        rows = min(chunk, n_replicates - start)
        done = slice(start, start + rows)
        auc[done], tpr[done], adv[done] = _stratified_chunk(rng, rows, layout, allowed, advantage)
    return ReplicateMetrics(auc=auc, tpr_at_fpr=tpr, balanced_accuracy=(1.0 + adv) / 2.0, advantage=adv, fprs=fprs)


def _stratified_chunk(
    rng: np.random.Generator, rows: int, layout: _ClassLayout, allowed: np.ndarray, advantage: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(auc (rows,), tpr (rows, f), advantage (rows,)) of ``rows`` replicates drawn from ``rng``."""
    n1, n0 = layout.sizes
    # 1. Draws as in bootstrap_counts (members then non-members, replicate by replicate), counted per
    #    record and put in descending-score order; cum1[r, m]: members drawn among the top m members.
    drawn1, drawn0 = _draw(rng, rows, [n1, n0])
    weight1 = _per_record(drawn1, layout.to_desc_members)
    weight0 = _per_record(drawn0, layout.to_desc_nonmembers)
    del drawn1, drawn0
    cum1 = np.zeros((rows, n1 + 1), dtype=np.int64)
    np.cumsum(weight1, axis=1, out=cum1[:, 1:])
    del weight1
    cum0 = np.zeros((rows, n0 + 1), dtype=np.int64)
    np.cumsum(weight0, axis=1, out=cum0[:, 1:])
    # 2. AUC: each drawn non-member counts the members drawn above it, plus half those tied (integers).
    above = np.take(cum1, layout.members_above, axis=1)  # (rows, n0)
    twice = 2 * np.einsum("ij,ij->i", weight0, above)
    if layout.members_tied is not None:
        tied = np.take(cum1, layout.members_above + layout.members_tied, axis=1)
        tied -= above
        twice += np.einsum("ij,ij->i", weight0, tied)
        del tied
    del weight0
    auc = twice / (2.0 * n1 * n0)
    # 3. Advantage: the best threshold sits just above some non-member's score (or flags nothing).
    adv = np.full(rows, np.nan)
    if advantage:
        flagged = (  # non-members drawn strictly above each non-member
            cum0[:, :-1] if not layout.nonmember_ties else np.take(cum0, layout.nonmembers_above, axis=1)
        )
        gap = above * n0
        gap -= flagged * n1
        adv = np.maximum(gap.max(axis=1), 0) / (n1 * n0)
        del gap, flagged
    # 4. TPR at each FPR: the first non-member (descending) whose inclusion passes the allowed false
    #    positives; the threshold sits just above it. Rows laid end to end for one binary search.
    offset = np.arange(rows, dtype=np.int64)[:, None] * (n0 + 1)
    cum0[:, 1:] += offset
    first = np.searchsorted(cum0[:, 1:].ravel(), (allowed[None, :] + offset).ravel(), side="right")
    first = first.reshape(rows, allowed.size) - np.arange(rows, dtype=np.int64)[:, None] * n0
    tpr = np.take_along_axis(above, first, axis=1) / n1
    return auc, tpr, adv


def _per_record(drawn: np.ndarray, to_desc: np.ndarray) -> np.ndarray:
    """(rows, m) draws of record-order positions -> (rows, m) counts per record in descending-score order."""
    rows, m = drawn.shape
    flat = (drawn + np.arange(rows, dtype=np.int64)[:, None] * m).ravel() if rows > 1 else drawn[0]
    counts = np.bincount(flat, minlength=rows * m).reshape(rows, m)
    return np.take(counts, to_desc, axis=1)
