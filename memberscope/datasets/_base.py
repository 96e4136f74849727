"""The Dataset every loader returns, and what `memberscope datasets` lists."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace

import numpy as np

from memberscope.exceptions import InvalidInputError

__all__ = ["Dataset", "DatasetInfo"]


@dataclass
class Dataset:
    """Records and labels.

    Attributes
    ----------
    X : ndarray of shape (n, ...), float32 — images as (n, channels, height, width) in [0, 1], tables as (n, d).
    y : ndarray of shape (n,), int64 — labels in ``0..n_classes-1``.
    groups : ndarray of shape (n,) of str, or None — user groups for per-group risk.
    """

    name: str
    X: np.ndarray
    y: np.ndarray
    n_classes: int
    class_names: list[str]
    groups: np.ndarray | None = None
    description: str = ""
    source: str = ""
    _fingerprint: str | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.X = np.ascontiguousarray(self.X, dtype=np.float32)
        self.y = np.asarray(self.y, dtype=np.int64)
        if self.X.ndim < 2 or self.y.ndim != 1 or len(self.X) != len(self.y):
            raise InvalidInputError(
                f"dataset {self.name!r}: X must be (n, ...) and y (n,); got X {self.X.shape} and y {self.y.shape}"
            )
        if self.y.size and (self.y.min() < 0 or self.y.max() >= self.n_classes):
            raise InvalidInputError(
                f"dataset {self.name!r}: labels must lie in [0, {self.n_classes - 1}]; got {self.y.min()}..{self.y.max()}"
            )
        if self.groups is not None:
            self.groups = np.asarray(self.groups).astype(str)
            if self.groups.shape != self.y.shape:
                raise InvalidInputError(f"dataset {self.name!r}: groups must have shape {self.y.shape}")
        bad = ~np.isfinite(self.X.reshape(len(self.X), -1)).all(axis=1)
        if bad.any():
            raise InvalidInputError(
                f"dataset {self.name!r}: {int(bad.sum())} records have NaN or infinite features "
                f"(first at row {int(np.flatnonzero(bad)[0])}); expected finite numbers"
            )

    @property
    def n_records(self) -> int:
        return int(len(self.y))

    @property
    def feature_shape(self) -> tuple[int, ...]:
        return tuple(self.X.shape[1:])

    @property
    def is_image(self) -> bool:
        return self.X.ndim == 4

    def subset(self, indices) -> "Dataset":
        indices = np.asarray(indices)
        return replace(self, X=self.X[indices], y=self.y[indices],
                       groups=None if self.groups is None else self.groups[indices], _fingerprint=None)

    def fingerprint(self) -> str:
        """SHA-256 of the records, labels, groups and name: the data part of cache keys."""
        if self._fingerprint is None:
            h = hashlib.sha256(self.name.encode())
            for array in (self.X, self.y) + (() if self.groups is None else (self.groups.astype("U"),)):
                h.update(str((array.dtype.str, array.shape)).encode())
                h.update(np.ascontiguousarray(array).tobytes())
            self._fingerprint = h.hexdigest()
        return self._fingerprint


@dataclass
class DatasetInfo:
    """A line of ``memberscope datasets``."""

    name: str
    description: str
    n_records: int | None
    feature_shape: tuple[int, ...] | None
    n_classes: int | None
    source: str
    available: bool
    hint: str = ""
