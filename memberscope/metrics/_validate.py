"""Checks shared by the metrics: ground truth, scores, weights and false-positive rates."""

from __future__ import annotations

import math
from collections.abc import Iterable
from numbers import Integral, Real

import numpy as np

from memberscope.exceptions import InvalidInputError

__all__ = [
    "check_confidence",
    "check_count",
    "check_fpr",
    "check_fprs",
    "check_member",
    "check_scores",
    "check_weight",
    "needed_nonmembers",
]


def check_member(member) -> np.ndarray:
    """Validate ground truth ``member`` and return it as a boolean array.

    Parameters
    ----------
    member : array-like of shape (n,)
        1 / ``True`` for records in the target's training set, 0 / ``False`` otherwise.

    Returns
    -------
    member : ndarray of shape (n,), dtype bool

    Raises
    ------
    InvalidInputError
        If ``member`` is not 1-D or holds anything but 0/1/True/False.
    """
    member = np.asarray(member)
    if member.ndim != 1:
        raise InvalidInputError(f"member must be 1-D of shape (n,); got shape {member.shape}")
    if member.dtype == bool:
        return member
    if member.dtype.kind not in "iuf":
        raise InvalidInputError(f"member must hold only 0/1 or True/False; got dtype {member.dtype}")
    bad = ~((member == 0) | (member == 1))
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise InvalidInputError(
            f"member must hold only 0/1 or True/False; got {member[first].item()!r} at index {first} "
            f"({int(bad.sum())} such entries)"
        )
    return member.astype(bool)


def check_scores(member, score) -> tuple[np.ndarray, np.ndarray]:
    """Validate ground truth and attack scores together.

    Parameters
    ----------
    member : array-like of shape (n,)
        Ground truth, 0/1 or boolean.
    score : array-like of shape (n,)
        Attack score per record; higher means more likely a member. Must be finite.

    Returns
    -------
    member : ndarray of shape (n,), dtype bool
    score : ndarray of shape (n,), dtype float64

    Raises
    ------
    InvalidInputError
        If the shapes differ or are not 1-D, ``member`` is not 0/1, ``score`` is not numeric or
        holds NaN/±inf, or only one class is present.
    """
    member_arr, score = np.asarray(member), np.asarray(score)
    if member_arr.ndim != 1 or score.ndim != 1:
        raise InvalidInputError(
            f"member and score must be 1-D of shape (n,); got shapes {member_arr.shape} and {score.shape}"
        )
    if member_arr.shape != score.shape:
        raise InvalidInputError(f"member has {member_arr.size} entries but score has {score.size}")
    member = check_member(member_arr)
    score = _as_float(score, "score")
    bad = ~np.isfinite(score)
    if bad.any():
        raise InvalidInputError(
            f"score contains {int(bad.sum())} NaN or infinite value(s), the first at index "
            f"{int(np.flatnonzero(bad)[0])}; expected finite scores"
        )
    n_pos = int(member.sum())
    if n_pos == 0 or n_pos == member.size:
        raise InvalidInputError(
            f"need both members and non-members; got {n_pos} members and {member.size - n_pos} non-members"
        )
    return member, score


def check_weight(sample_weight, member: np.ndarray) -> np.ndarray:
    """Validate per-record weights against boolean ground truth ``member`` (n,).

    Returns
    -------
    weight : ndarray of shape (n,), dtype float64
        All ones when ``sample_weight`` is None.

    Raises
    ------
    InvalidInputError
        If the length differs, a weight is negative or not finite, or a class has zero total weight.
    """
    if sample_weight is None:
        return np.ones(member.size)
    weight = np.asarray(sample_weight)
    if weight.ndim != 1 or weight.size != member.size:
        raise InvalidInputError(f"sample_weight must have shape ({member.size},) like score; got shape {weight.shape}")
    weight = _as_float(weight, "sample_weight")
    bad = ~(np.isfinite(weight) & (weight >= 0))
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise InvalidInputError(f"sample_weight must be finite and >= 0; got {weight[first]} at index {first}")
    for name, mask in (("members", member), ("non-members", ~member)):
        if not weight[mask].sum() > 0:
            raise InvalidInputError(f"sample_weight gives the {name} zero total weight; expected a positive total")
    return weight


def check_fpr(alpha) -> float:
    """Validate one false-positive rate; it must lie in the open interval (0, 1)."""
    if isinstance(alpha, bool) or not isinstance(alpha, Real):
        raise InvalidInputError(f"fpr {alpha!r} is not a number; expected a float in (0, 1)")
    alpha = float(alpha)
    if not 0.0 < alpha < 1.0:
        raise InvalidInputError(f"fpr {alpha} is outside (0, 1)")
    return alpha


def check_fprs(fprs) -> tuple[float, ...]:
    """Validate a sequence of distinct false-positive rates, each in (0, 1)."""
    if isinstance(fprs, Real) or not isinstance(fprs, Iterable):
        fprs = (fprs,)
    out = tuple(check_fpr(a) for a in fprs)
    for i, alpha in enumerate(out):
        if alpha in out[:i]:
            raise InvalidInputError(f"fprs lists {alpha} more than once; expected distinct values")
    return out


def check_count(value, name: str) -> int:
    """Validate a non-negative integer parameter such as ``n_bootstrap``."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 0:
        raise InvalidInputError(f"{name} must be an integer >= 0; got {value!r}")
    return int(value)


def check_confidence(confidence) -> float:
    """Validate a confidence level; it must lie in the open interval (0, 1)."""
    if isinstance(confidence, bool) or not isinstance(confidence, Real) or not 0.0 < float(confidence) < 1.0:
        raise InvalidInputError(f"confidence {confidence!r} is outside (0, 1)")
    return float(confidence)


def needed_nonmembers(alpha: float) -> int:
    """Fewest non-members for which one false positive is allowed at FPR ``alpha``: ``ceil(1 / alpha)``."""
    return max(1, math.ceil(1.0 / alpha - 1e-9))


def _as_float(values: np.ndarray, name: str) -> np.ndarray:
    """``values`` as float64; object arrays are converted when every entry is a real number."""
    if values.dtype.kind == "O":
        try:
            values = values.astype(np.float64)
        except (TypeError, ValueError):
            raise InvalidInputError(f"{name} must be numeric; got non-numeric entries of dtype object") from None
    if values.dtype.kind not in "biuf":
        raise InvalidInputError(f"{name} must be real numbers; got dtype {values.dtype}")
    return values.astype(np.float64, copy=False)
