"""A user's own table: CSV, Parquet or NPZ, with a label column and an optional group column."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from memberscope.datasets._base import Dataset
from memberscope.exceptions import InvalidInputError, MissingDependencyError

__all__ = ["TABLE_FORMATS", "load_table"]

TABLE_FORMATS = (".csv", ".parquet", ".npz")
_EXPECTED = "expected a .csv, .parquet or .npz file"
_READ_ERRORS = (OSError, ValueError, TypeError, EOFError, zipfile.BadZipFile)


def load_table(
    path: str | os.PathLike,
    *,
    label_column: str = "label",
    group_column: str | None = None,
    feature_columns: list[str] | None = None,
) -> Dataset:
    """Load a user's table as a :class:`Dataset` named after the file's stem.

    Parameters
    ----------
    path : path
        A ``.csv`` (read with pandas), ``.parquet`` (pandas with pyarrow: ``pip install
        'memberscope[parquet]'``) or ``.npz`` file. An NPZ holds arrays ``X`` of shape (n, ...),
        ``y`` of shape (n,) and optionally ``groups`` of shape (n,); the column arguments do not apply to it.
    label_column : str
        The column of labels: strings or numbers, mapped to ``0..C-1`` in sorted order;
        ``class_names`` are the sorted original values as strings.
    group_column : str, optional
        A column of user groups (kept as strings) for per-group risk; not a feature.
    feature_columns : list of str, optional
        The feature columns; by default every column except the label and group columns.
        Features must be numeric (booleans count as 0/1).

    Returns
    -------
    Dataset
        ``X`` of shape (n, d) float32 for CSV/Parquet.

    Raises
    ------
    InvalidInputError
        If the file is missing, unreadable or of another format; a named column is absent; a
        feature column is not numeric; or features or labels have missing or infinite values.
    MissingDependencyError
        If a Parquet file is given and pyarrow is not installed.
    """
    path = Path(path)
    if path.suffix.lower() not in TABLE_FORMATS:
        raise InvalidInputError(f"cannot load table {str(path)!r}: unknown extension {path.suffix!r}; {_EXPECTED}")
    if not path.is_file():
        problem = "is not a file" if path.exists() else "does not exist"
        raise InvalidInputError(f"table file {str(path)!r} {problem}; {_EXPECTED}")
    try:
        if path.suffix.lower() == ".npz":
            X, raw_y, groups, names = (*_read_npz(path), None)
        else:
            X, raw_y, groups, names = _read_frame(path, label_column, group_column, feature_columns)
    except _READ_ERRORS as exc:
        if isinstance(exc, InvalidInputError):
            raise
        raise InvalidInputError(f"cannot read table {str(path)!r} ({type(exc).__name__}: {exc}); {_EXPECTED}") from None
    if len(raw_y) == 0:
        raise InvalidInputError(f"table {str(path)!r} has no records; expected at least one row")
    _check_finite(X, path, names)
    y, class_names = _encode_labels(raw_y, path)
    return Dataset(
        name=path.stem,
        X=X,
        y=y,
        n_classes=len(class_names),
        class_names=class_names,
        groups=groups,
        description=f"user table {path.name}",
        source=str(path.resolve()),
    )


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    data = np.load(path, allow_pickle=False)
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise InvalidInputError(
            f"{str(path)!r} holds a single .npy array; expected an .npz archive with arrays 'X' and 'y' "
            "(numpy.savez(path, X=..., y=...))"
        )
    with data:
        missing = [key for key in ("X", "y") if key not in data.files]
        if missing:
            raise InvalidInputError(
                f"{str(path)!r} lacks arrays {missing}; expected 'X', 'y' and optionally 'groups' (found {data.files})"
            )
        X, y = data["X"], data["y"]
        groups = data["groups"] if "groups" in data.files else None
    if X.dtype != bool and not np.issubdtype(X.dtype, np.number):
        raise InvalidInputError(f"array 'X' of {str(path)!r} has dtype {X.dtype}; expected numbers")
    if X.ndim < 2 or y.ndim != 1 or len(X) != len(y):
        raise InvalidInputError(
            f"{str(path)!r}: expected X of shape (n, ...) and y of shape (n,); got X {X.shape} and y {y.shape}"
        )
    return X.astype(np.float32), y, groups


def _read_frame(
    path: Path, label_column: str, group_column: str | None, feature_columns: list[str] | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, list[str]]:
    import pandas as pd
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    if path.suffix.lower() == ".csv":
        frame = pd.read_csv(path)
    else:
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise MissingDependencyError(
                f"reading the Parquet file {str(path)!r} needs pyarrow; "
                "install it with: pip install 'memberscope[parquet]'"
            ) from None
        frame = pd.read_parquet(path)
    columns = list(frame.columns)
    listing = ", ".join(map(str, columns))
    if len(frame) == 0:
        raise InvalidInputError(f"table {str(path)!r} has no records; expected at least one row (columns: {listing})")
    for role, column in (("label", label_column), ("group", group_column)):
        if column is not None and column not in columns:
            raise InvalidInputError(f"{role} column {column!r} is not in {str(path)!r}; its columns are: {listing}")
    if feature_columns is None:
        features = [c for c in columns if c not in (label_column, group_column)]
    else:
        features = list(feature_columns)
        unknown = [c for c in features if c not in columns]
        if unknown:
            raise InvalidInputError(f"feature columns {unknown} are not in {str(path)!r}; its columns are: {listing}")
        reused = [c for c in features if c in (label_column, group_column)]
        if reused:
            raise InvalidInputError(
                f"feature_columns {reused} of {str(path)!r} are the label or group column; expected other columns"
            )
    if not features:
        raise InvalidInputError(
            f"{str(path)!r} has no feature columns besides the label and group; its columns are: {listing}"
        )
    non_numeric = [c for c in features if not (is_numeric_dtype(frame[c]) or is_bool_dtype(frame[c]))]
    if non_numeric:
        raise InvalidInputError(
            f"feature columns {non_numeric} of {str(path)!r} are not numeric; encode them as numbers "
            "(e.g. one-hot) or pass feature_columns naming only numeric columns"
        )
    labels = frame[label_column]
    if labels.isna().any():
        first = int(np.flatnonzero(labels.isna().to_numpy())[0])
        raise InvalidInputError(
            f"label column {label_column!r} of {str(path)!r} has {int(labels.isna().sum())} missing values "
            f"(first at row {first}); expected a label on every row"
        )
    groups = None
    if group_column is not None:
        group_values = frame[group_column]
        if group_values.isna().any():
            raise InvalidInputError(
                f"group column {group_column!r} of {str(path)!r} has {int(group_values.isna().sum())} missing values; "
                "expected a group on every row"
            )
        groups = group_values.astype(str).to_numpy(dtype=str)
    X = frame[features].astype(float).to_numpy(dtype=np.float64, na_value=np.nan).astype(np.float32)
    return X, labels.to_numpy(), groups, [str(c) for c in features]


def _check_finite(X: np.ndarray, path: Path, names: list[str] | None) -> None:
    finite = np.isfinite(X.reshape(len(X), -1))
    if finite.all():
        return
    bad_rows = np.flatnonzero(~finite.all(axis=1))
    columns = "" if names is None else f" in columns {[names[j] for j in np.flatnonzero(~finite.all(axis=0))]}"
    raise InvalidInputError(
        f"table {str(path)!r} has missing (NaN) or infinite feature values in {len(bad_rows)} rows{columns} "
        f"(first at row {int(bad_rows[0])}); expected finite numbers: fill or drop those rows"
    )


def _encode_labels(raw: np.ndarray, path: Path) -> tuple[np.ndarray, list[str]]:
    """Labels mapped to ``0..C-1`` by sorted unique value, and those values as strings."""
    raw = np.asarray(raw)
    if raw.dtype.kind == "f":
        if not np.isfinite(raw).all():
            first = int(np.flatnonzero(~np.isfinite(raw))[0])
            raise InvalidInputError(f"labels of {str(path)!r} have missing or infinite values (first at row {first})")
        if np.array_equal(raw, np.round(raw)):
            raw = raw.astype(np.int64)
    try:
        classes, y = np.unique(raw, return_inverse=True)
    except TypeError:  # mixed types in an object column: compare as strings
        classes, y = np.unique(raw.astype(str), return_inverse=True)
    return y.reshape(-1).astype(np.int64), [str(c) for c in classes]
