"""The :class:`Dataset` every loader returns, and the :class:`DatasetInfo` that ``available()`` lists."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, cast

import numpy as np

from memberscope.exceptions import InvalidInputError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Dataset", "DatasetInfo", "random_subset"]

_FINGERPRINT_VERSION = b"memberscope-dataset-v1"


@dataclass
class Dataset:
    """Labelled records to audit.

    Attributes
    ----------
    name : str
        Short name (``"digits"``, or the file stem of a user table).
    X : ndarray of shape (n_records, ...), float32, or pandas.DataFrame of n_records rows
        Images as ``(n_records, channels, height, width)`` scaled to [0, 1]; tables as ``(n_records, d)``; or the
        user's table as it is (strings, categoricals, missing values and column names intact) for a model that
        takes DataFrames (a scikit-learn Pipeline).
    y : ndarray of shape (n_records,), int64
        Labels in ``0 .. n_classes - 1``.
    n_classes : int
        Number of classes; some may have no records in a subset.
    class_names : list of str, length n_classes
        ``class_names[k]`` names label ``k``.
    groups : ndarray of shape (n_records,) of str, or None
        User groups (region, age band, ...) for per-group risk.
    description : str
        One line saying what the records are.
    source : str
        Where the records came from (a folder, a file, a generator and its seed).
    ids : ndarray of shape (n_records,), or None
        What ``record`` means in every output: the user's id column, the row number in their file, or the
        index in the built-in dataset. None means ``0 .. n_records - 1``; a subset keeps the ids of its rows.
    features : list of str, or None
        The feature columns used, in the order the model sees them (tables).
    exact : bool
        Keep an array ``X`` as given (a user's model gets its records in their own dtype) instead of float32.

    Raises
    ------
    InvalidInputError
        If ``X`` and ``y`` disagree in length, a label lies outside ``0 .. n_classes - 1``, ``class_names``
        does not have ``n_classes`` entries, or ``X`` holds NaN or infinite values.
    """

    name: str
    X: np.ndarray
    y: np.ndarray
    n_classes: int
    class_names: list[str]
    groups: np.ndarray | None = None
    description: str = ""
    source: str = ""
    ids: np.ndarray | None = None
    features: list[str] | None = None
    exact: bool = False

    def __post_init__(self) -> None:
        where = f"dataset {self.name!r}"
        frame = self.is_frame
        if not frame and self.exact:
            self.X = np.ascontiguousarray(self.X)
            if not np.issubdtype(self.X.dtype, np.number) and self.X.dtype != bool:
                raise InvalidInputError(f"{where}: X must hold numbers; got an array of dtype {self.X.dtype}")
        elif not frame:
            try:
                self.X = np.ascontiguousarray(self.X, dtype=np.float32)
            except (TypeError, ValueError):
                raise InvalidInputError(
                    f"{where}: X must hold numbers; got an array of dtype {np.asarray(self.X).dtype}"
                ) from None
        self.y = _as_labels(self.y, where)
        if self.ids is None:
            self.ids = np.arange(len(self.y))
        self.ids = np.asarray(self.ids)
        if self.ids.shape != self.y.shape:
            raise InvalidInputError(
                f"{where}: expected ids of shape {self.y.shape} (one per record); got {self.ids.shape}"
            )
        if (not frame and self.X.ndim < 2) or len(self.X) != len(self.y):
            raise InvalidInputError(
                f"{where}: expected X of shape (n, ...) and y of shape (n,); got X {self.X.shape} and y {self.y.shape}"
            )
        if int(self.n_classes) < 1:
            raise InvalidInputError(f"{where}: n_classes must be at least 1; got {self.n_classes}")
        self.n_classes = int(self.n_classes)
        self.class_names = [str(c) for c in self.class_names]
        if len(self.class_names) != self.n_classes:
            raise InvalidInputError(
                f"{where}: expected {self.n_classes} class_names (one per class); got {len(self.class_names)}"
            )
        outside = (self.y < 0) | (self.y >= self.n_classes)
        if outside.any():
            first = int(np.flatnonzero(outside)[0])
            raise InvalidInputError(
                f"{where}: labels must lie in 0..{self.n_classes - 1}; {int(outside.sum())} do not "
                f"(first at row {first}: {int(self.y[first])})"
            )
        if self.groups is not None:
            self.groups = np.asarray(self.groups).astype(str)
            if self.groups.shape != self.y.shape:
                raise InvalidInputError(
                    f"{where}: expected groups of shape {self.y.shape} (one per record); got {self.groups.shape}"
                )
        # A float64 sum is finite only if every value is (NaN and infinities propagate; finite values of any dtype
        # up to float32 cannot overflow it): one cheap pass, and the exact check only when it is not.
        with np.errstate(over="ignore", invalid="ignore"):  # an overflowing sum only means "check exactly"
            quick = not frame and self.X.dtype.kind in "fiub" and np.isfinite(self.X.sum(dtype=np.float64))
        if not frame and not quick and not np.isfinite(self.X).all():
            bad = ~np.isfinite(self.X.reshape(len(self.X), -1)).all(axis=1)
            raise InvalidInputError(
                f"{where}: {int(bad.sum())} records have NaN or infinite features "
                f"(first at row {int(np.flatnonzero(bad)[0])}); expected finite numbers"
            )

    @property
    def n_records(self) -> int:
        """Number of records."""
        return len(self.y)

    @property
    def is_frame(self) -> bool:
        """Whether the records are a pandas DataFrame kept as the user gave it."""
        return hasattr(self.X, "iloc")

    @property
    def feature_shape(self) -> tuple[int, ...]:
        """Shape of one record: ``(channels, height, width)`` for images, ``(d,)`` for tables."""
        return (int(self.X.shape[1]),) if self.is_frame else tuple(self.X.shape[1:])

    @property
    def is_image(self) -> bool:
        """Whether records are images of shape ``(channels, height, width)``."""
        return not self.is_frame and self.X.ndim == 4

    def subset(self, indices) -> Dataset:
        """The records at ``indices``, with the same name, classes and metadata.

        Parameters
        ----------
        indices : array-like of int of shape (k,), or of bool of shape (n_records,)
            Row numbers (in any order; repeats allowed) or a boolean mask.

        Returns
        -------
        Dataset
            A dataset of ``k`` records (copies, not views).
        """
        indices = np.asarray(indices)
        if indices.dtype != bool and not (indices.size == 0 or np.issubdtype(indices.dtype, np.integer)):
            raise InvalidInputError(
                f"dataset {self.name!r}: subset indices must be integers or a boolean mask; got dtype {indices.dtype}"
            )
        try:
            if self.is_frame:
                rows = np.flatnonzero(indices) if indices.dtype == bool else indices
                X = cast("pd.DataFrame", self.X).iloc[rows]
            else:
                X = self.X[indices]
            y = self.y[indices]
        except IndexError as exc:
            raise InvalidInputError(
                f"dataset {self.name!r}: bad subset indices ({exc}); expected rows in 0..{self.n_records - 1} "
                f"or a boolean mask of length {self.n_records}"
            ) from None
        groups = None if self.groups is None else self.groups[indices]
        ids = np.arange(self.n_records) if self.ids is None else self.ids  # None only before __post_init__
        return replace(self, X=X, y=y, groups=groups, ids=ids[indices])

    def fingerprint(self) -> str:
        """SHA-256 (hex) of the name, records, labels and groups: the data part of cache keys.

        Computed afresh on every call (about 0.15 s for 70,000 × 784 float32 records), so it always
        reflects the arrays as they are now.
        """
        h = hashlib.sha256(_FINGERPRINT_VERSION)
        h.update(json.dumps(self.name).encode())
        arrays = [self.y]
        if self.is_frame:
            import pandas as pd

            frame = cast("pd.DataFrame", self.X)
            h.update(json.dumps([str(c) for c in frame.columns]).encode())
            arrays.insert(0, pd.util.hash_pandas_object(frame, index=False).to_numpy())
        else:
            arrays.insert(0, self.X)
        for array in arrays:
            h.update(json.dumps([array.dtype.str, list(array.shape)]).encode())
            h.update(np.ascontiguousarray(array).data.cast("B"))
        h.update(b"no-groups" if self.groups is None else json.dumps(self.groups.tolist()).encode())
        return h.hexdigest()


@dataclass
class DatasetInfo:
    """What ``available()`` says about one built-in dataset, without loading its records.

    Attributes
    ----------
    name, description, source : str
    n_records : int or None
        Records loaded by default (None when unknown).
    feature_shape : tuple of int, or None
        Shape of one record.
    n_classes : int or None
    available : bool
        Whether it can be loaded on this machine now.
    hint : str
        What to do when it is not available (empty otherwise).
    """

    name: str
    description: str
    n_records: int | None
    feature_shape: tuple[int, ...] | None
    n_classes: int | None
    source: str
    available: bool
    hint: str = ""


def random_subset(dataset: Dataset, *, n_records: int | None, seed: int) -> Dataset:
    """``n_records`` records of ``dataset`` drawn at random (seeded, kept in their original order).

    ``None`` returns ``dataset`` itself. For one seed, a smaller subset is contained in a larger one.

    Raises
    ------
    InvalidInputError
        If ``n_records`` exceeds the records available.
    """
    if n_records is None:
        return dataset
    if n_records > dataset.n_records:
        raise InvalidInputError(
            f"n_records={n_records} exceeds the {dataset.n_records} records of {dataset.name!r}; "
            f"expected at most {dataset.n_records}"
        )
    order = np.random.default_rng([seed, 0x5B5E7]).permutation(dataset.n_records)
    return dataset.subset(np.sort(order[:n_records]))


def _as_labels(y, where: str) -> np.ndarray:
    """``y`` as int64 of shape (n,), refusing fractional or non-numeric labels."""
    raw = np.asarray(y)
    if raw.ndim != 1:
        raise InvalidInputError(f"{where}: expected y of shape (n,); got {raw.shape}")
    if raw.size == 0 or np.issubdtype(raw.dtype, np.integer):
        return raw.astype(np.int64)
    if np.issubdtype(raw.dtype, np.floating) or raw.dtype == bool:
        as_int = raw.astype(np.int64)
        if np.all(np.isfinite(raw)) and np.array_equal(as_int, raw):
            return as_int
        raise InvalidInputError(f"{where}: labels must be whole numbers 0..n_classes-1; got values such as {raw[:3]}")
    raise InvalidInputError(f"{where}: labels must be integers; got an array of dtype {raw.dtype}")
