"""Augmented queries: each record is queried as several views and the signals combined (LiRA).

``model_outputs`` returns logits of shape ``(n_records, n_queries, n_classes)``; the first view
is always the record itself.
"""

from __future__ import annotations

import numpy as np

from memberscope.exceptions import InvalidInputError

__all__ = ["QUERY_SETS", "augmented_views", "model_outputs", "n_views"]

QUERY_SETS = ("none", "flip", "flip-shift")
_SHIFTS = ((1, 0), (-1, 0), (0, 1), (0, -1))


def _shift(images: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Shift images of shape (n, c, h, w) by (dy, dx) pixels, filling with zeros."""
    out = np.zeros_like(images)
    h, w = images.shape[-2:]
    out[..., max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = images[
        ..., max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


def augmented_views(X: np.ndarray, queries: str) -> list[np.ndarray]:
    """The views of ``X`` that are sent to the model for query set ``queries``."""
    if queries not in QUERY_SETS:
        raise InvalidInputError(f"unknown query set {queries!r}; expected one of {QUERY_SETS}")
    if queries == "none":
        return [X]
    if X.ndim != 4:
        raise InvalidInputError(
            f"query set {queries!r} augments images of shape (n, channels, height, width); got "
            f"records of shape {X.shape[1:]}; use queries='none' for tables"
        )
    flipped = X[..., ::-1]
    views = [X, flipped]
    if queries == "flip-shift":
        views += [_shift(v, dy, dx) for v in (X, flipped) for dy, dx in _SHIFTS]
    return views


def n_views(queries: str) -> int:
    """How many views of each record :func:`augmented_views` sends for query set ``queries`` (its queries per
    record)."""
    if queries not in QUERY_SETS:
        raise InvalidInputError(f"unknown query set {queries!r}; expected one of {QUERY_SETS}")
    return {"none": 1, "flip": 2, "flip-shift": 2 + 2 * len(_SHIFTS)}[queries]


def model_outputs(target, X: np.ndarray, queries: str = "none") -> np.ndarray:
    """Logits of shape ``(n_records, n_queries, n_classes)`` of ``target`` (a :class:`~memberscope.targets.Target`)
    on the views of ``X`` (whatever the target answers, as :func:`~memberscope.targets.as_logits` reads it)."""
    from memberscope.targets.outputs import query_logits

    views = augmented_views(X, queries)
    return np.stack([query_logits(target, v) for v in views], axis=1)
