"""A user's own table: CSV, Parquet, R data (``.rda``/``.rds``) or NPZ, with a label column and optional group and id
columns.

:func:`read_frame` reads the table as it is (strings, categoricals, missing values and column names intact: what a
scikit-learn Pipeline takes); :func:`load_table` turns it into a numeric :class:`~memberscope.datasets.Dataset` for
memberscope's own recipes. Records keep the user's ids (an id column, else the row number in the file, 0 being the
first row of data) through every subset, so every output names the user's rows.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from memberscope.datasets._base import Dataset
from memberscope.exceptions import InvalidInputError, MissingDependencyError

__all__ = ["TABLE_FORMATS", "check_numeric_cells", "load_table", "read_frame", "text_cells"]

TABLE_FORMATS = (".csv", ".parquet", ".rda", ".rdata", ".rds", ".npz")
R_FORMATS = (".rda", ".rdata", ".rds")
_EXPECTED = "expected a .csv, .parquet, .rda/.rds or .npz file"
_READ_ERRORS = (OSError, ValueError, TypeError, EOFError, zipfile.BadZipFile)


def load_table(
    path: str | os.PathLike,
    *,
    label_column: str = "label",
    group_column: str | None = None,
    feature_columns: list[str] | None = None,
    id_column: str | None = None,
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
        The feature columns; by default every column except the label, group and id columns.
        Features must be numeric (booleans count as 0/1).
    id_column : str, optional
        A column naming each record (kept as the record's id in every output; not a feature). Without it a
        record's id is its row number in the file (0 = the first row of data).

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
            ids = None
        else:
            X, raw_y, groups, names, ids = _numeric_table(path, label_column, group_column, feature_columns, id_column)
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
        ids=ids,
        features=names,
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


def read_frame(path: str | os.PathLike):
    """The table at ``path`` as a pandas DataFrame, as it is (strings, categoricals, missing values intact).

    ``.csv`` (pandas), ``.parquet`` (pyarrow: ``pip install 'memberscope[parquet]'``), ``.rda``/``.rdata``/``.rds``
    (R data, read with the ``rdata`` package; no R needed; an ``.rda`` must hold one data frame). The index is
    ``0 .. n - 1``: a record's row number in the file.

    Raises InvalidInputError for a missing or unreadable file, another format, or an ``.rda`` holding no or
    several data frames; MissingDependencyError when a reader is not installed.
    """
    import pandas as pd

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in TABLE_FORMATS or suffix == ".npz":
        raise InvalidInputError(f"cannot read table {str(path)!r}: unknown extension {path.suffix!r}; {_EXPECTED}")
    if not path.is_file():
        problem = "is not a file" if path.exists() else "does not exist"
        raise InvalidInputError(f"table file {str(path)!r} {problem}; {_EXPECTED}")
    try:
        if suffix == ".csv":
            frame = pd.read_csv(path)
        elif suffix == ".parquet":
            try:
                import pyarrow  # noqa: F401
            except ImportError:
                raise MissingDependencyError(
                    f"reading the Parquet file {str(path)!r} needs pyarrow; "
                    "install it with: pip install 'memberscope[parquet]'"
                ) from None
            frame = pd.read_parquet(path)
        else:
            frame = _read_r(path)
    except _READ_ERRORS as exc:
        if isinstance(exc, InvalidInputError):
            raise
        raise InvalidInputError(f"cannot read table {str(path)!r} ({type(exc).__name__}: {exc}); {_EXPECTED}") from None
    if len(frame) == 0:
        listing = ", ".join(map(str, frame.columns))
        raise InvalidInputError(f"table {str(path)!r} has no records; expected at least one row (columns: {listing})")
    return frame.reset_index(drop=True)


def _read_r(path: Path):
    """An R data frame from ``.rds`` or a one-data-frame ``.rda`` (the ``rdata`` package, pure Python)."""
    import warnings

    import pandas as pd

    try:
        import rdata
    except ImportError:
        raise MissingDependencyError(
            f"reading the R data file {str(path)!r} needs the rdata package; install the extra: "
            "pip install 'memberscope[rdata]'"
        ) from None
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Unknown encoding", category=UserWarning)
        if path.suffix.lower() == ".rds":
            value = rdata.read_rds(path)
            objects = {path.stem: value}
        else:
            objects = rdata.read_rda(path)
    frames = {name: v for name, v in objects.items() if isinstance(v, pd.DataFrame)}
    if len(frames) != 1:
        raise InvalidInputError(
            f"R data file {str(path)!r} holds {len(frames)} data frames ({sorted(frames)}) among its objects "
            f"{sorted(objects)}; expected exactly one"
        )
    return next(iter(frames.values()))


def _numeric_table(
    path: Path,
    label_column: str,
    group_column: str | None,
    feature_columns: list[str] | None,
    id_column: str | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, list[str], np.ndarray]:
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    frame = read_frame(path)
    columns = list(frame.columns)
    listing = ", ".join(map(str, columns))
    for role, column in (("label", label_column), ("group", group_column), ("id", id_column)):
        if column is not None and column not in columns:
            raise InvalidInputError(f"{role} column {column!r} is not in {str(path)!r}; its columns are: {listing}")
    roles = {c for c in (label_column, group_column, id_column) if c is not None}
    if feature_columns is None:
        features = [c for c in columns if c not in roles]
    else:
        features = list(feature_columns)
        unknown = [c for c in features if c not in columns]
        if unknown:
            raise InvalidInputError(f"feature columns {unknown} are not in {str(path)!r}; its columns are: {listing}")
        reused = [c for c in features if c in roles]
        if reused:
            raise InvalidInputError(
                f"feature_columns {reused} of {str(path)!r} are the label, group or id column; expected other columns"
            )
    if not features:
        raise InvalidInputError(
            f"{str(path)!r} has no feature columns besides the label and group; its columns are: {listing}"
        )
    non_numeric = [c for c in features if not (is_numeric_dtype(frame[c]) or is_bool_dtype(frame[c]))]
    ids = None if id_column is None else frame[id_column].to_numpy()
    # a numeric column with stray text ("high" among glucose values): name the values and their rows
    check_numeric_cells(frame, [c for c in non_numeric if holds_numbers(frame[c])], where=repr(str(path)), ids=ids)
    if non_numeric:
        raise InvalidInputError(
            f"feature columns {non_numeric} of {str(path)!r} are not numeric; encode them as numbers "
            "(e.g. one-hot) or pass feature_columns naming only numeric columns; to audit a model that encodes "
            "them itself (a scikit-learn Pipeline), use `memberscope audit-model`"
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
    ids = np.arange(len(frame)) if id_column is None else frame[id_column].to_numpy()
    X = frame[features].astype(float).to_numpy(dtype=np.float64, na_value=np.nan).astype(np.float32)
    return X, labels.to_numpy(), groups, [str(c) for c in features], ids


def text_cells(column) -> np.ndarray:
    """Positions (0-based rows) of the cells of ``column`` (a pandas Series) that hold something other than a number:
    text such as ``"high"``; missing values and numbers written as text (``"1.5"``) do not count."""
    import pandas as pd
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    if is_numeric_dtype(column) or is_bool_dtype(column):
        return np.zeros(0, dtype=np.int64)
    parsed = pd.to_numeric(column, errors="coerce")
    return np.flatnonzero((parsed.isna() & column.notna()).to_numpy())


def holds_numbers(column) -> bool:
    """Whether ``column`` (a pandas Series) holds at least one number (numeric dtype, or a cell that parses as one)."""
    import pandas as pd
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    if is_numeric_dtype(column) or is_bool_dtype(column):
        return len(column) > 0
    return bool(pd.to_numeric(column, errors="coerce").notna().any())


def check_numeric_cells(frame, columns: list[str], *, where: str, ids=None) -> None:
    """Refuse text in ``columns`` of ``frame`` (columns that must hold numbers), naming the column, the values and
    their rows (or ``ids``, the records' ids, when given).

    Raises
    ------
    InvalidInputError
        For the first column with a cell that is not a number (a missing value is not refused here).
    """
    for column in columns:
        bad = text_cells(frame[column])
        if bad.size == 0:
            continue
        values = list(dict.fromkeys(str(v) for v in frame[column].iloc[bad]))
        shown = ", ".join(repr(v) for v in values[:5]) + (f" and {len(values) - 5} more" if len(values) > 5 else "")
        if ids is not None:
            where_rows = f"records {[str(v) for v in np.asarray(ids)[bad][:10]]}"
        else:
            where_rows = f"rows {bad[:10].tolist()} (0-based, header excluded)"
        more = f" (first 10 of {bad.size})" if bad.size > 10 else ""
        raise InvalidInputError(
            f"column {column!r} of {where} holds text where numbers are expected: {shown} in {bad.size} row(s), "
            f"{where_rows}{more}; expected numbers: fix or drop those rows, or drop the column"
        )


def _check_finite(X: np.ndarray, path: Path, names: list[str] | None, *, ids: list[str] | None = None) -> None:
    """Refuse missing or infinite feature values, naming their columns and first rows (by ``ids`` when given)."""
    finite = np.isfinite(X.reshape(len(X), -1))
    if finite.all():
        return
    bad_rows = np.flatnonzero(~finite.all(axis=1))
    columns = "" if names is None else f" in columns {[names[j] for j in np.flatnonzero(~finite.all(axis=0))]}"
    first = f"first at row {int(bad_rows[0])}"
    if ids is not None:
        first = f"first at rows {[int(r) for r in bad_rows[:5]]}, ids {[ids[r] for r in bad_rows[:5]]}"
    raise InvalidInputError(
        f"table {str(path)!r} has missing (NaN) or infinite feature values in {len(bad_rows)} rows{columns} "
        f"({first}); expected finite numbers: fill or drop those rows"
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
