"""Stratified bootstrap of ROC metrics: sort once, then weighted cumulative sums per replicate."""

from __future__ import annotations

import numpy as np

from memberscope.metrics._roc import _sorted_order

__all__ = ["bootstrap_counts", "replicate_metrics"]

CHUNK = 64


def bootstrap_counts(member: np.ndarray, n_replicates: int, rng: np.random.Generator) -> np.ndarray:
    """Resampling counts of shape ``(n_replicates, n)``: members and non-members are each drawn
    with replacement, keeping their numbers fixed."""
    n = member.size
    rows = np.arange(n_replicates, dtype=np.int64)[:, None] * n
    flat = [
        (rows + idx[rng.integers(0, idx.size, size=(n_replicates, idx.size))]).ravel()
        for idx in (np.flatnonzero(member), np.flatnonzero(~member))
    ]
    return np.bincount(np.concatenate(flat), minlength=n_replicates * n).reshape(n_replicates, n).astype(np.int32)


def replicate_metrics(member: np.ndarray, score: np.ndarray, counts: np.ndarray, fprs: tuple[float, ...]) -> dict:
    """AUC, TPR at each FPR, balanced accuracy and advantage for each row of ``counts`` (B, n).

    Equivalent to recomputing the ROC on the resampled records, without re-sorting.
    """
    order, last = _sorted_order(score)
    m = member[order]
    out = {"auc": [], "tpr": [], "balanced_accuracy": [], "advantage": []}
    for start in range(0, counts.shape[0], CHUNK):
        w = counts[start : start + CHUNK][:, order].astype(np.float64)
        pos = np.cumsum(w * m, axis=1)[:, last]
        neg = np.cumsum(w * ~m, axis=1)[:, last]
        zeros = np.zeros((w.shape[0], 1))
        tpr = np.hstack([zeros, pos / pos[:, -1:]])
        fpr = np.hstack([zeros, neg / neg[:, -1:]])
        out["auc"].append(np.trapezoid(tpr, fpr, axis=1))
        out["tpr"].append(np.stack([np.where(fpr <= a, tpr, 0.0).max(axis=1) for a in fprs], axis=1))
        out["balanced_accuracy"].append(((tpr + 1.0 - fpr) / 2.0).max(axis=1))
        out["advantage"].append((tpr - fpr).max(axis=1))
    return {k: np.concatenate(v) for k, v in out.items()}
