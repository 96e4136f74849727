"""A user's own table: CSV, Parquet or NPZ with a label column and an optional group column."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from memberscope.datasets._base import Dataset
from memberscope.exceptions import InvalidInputError, MissingDependencyError

__all__ = ["load_table", "TABLE_SUFFIXES"]

TABLE_SUFFIXES = (".csv", ".parquet", ".npz")


def _read_frame(path: Path):
    import pandas as pd

    if path.suffix == ".csv":
        return pd.read_csv(path)
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise MissingDependencyError(
            f"reading {str(path)!r} needs pyarrow: pip install 'memberscope[parquet]'"
        ) from None
    return pd.read_parquet(path)


def _labels(values: np.ndarray) -> tuple[np.ndarray, list[str]]:
    classes, y = np.unique(values, return_inverse=True)
    return y.astype(np.int64), [str(c) for c in classes]


def load_table(path, *, label_column: str = "label", group_column: str | None = None,
               feature_columns: list[str] | None = None) -> Dataset:
    """Load ``path`` (.csv, .parquet or .npz) as a :class:`Dataset`.

    CSV/Parquet: every column except the label and group columns is a feature unless
    ``feature_columns`` names them; features must be numeric. NPZ: arrays ``X`` and ``y`` (and
    optionally ``groups``). Labels may be strings or numbers; they map to ``0..C-1`` in sorted order.
    """
    path = Path(path)
    if path.suffix not in TABLE_SUFFIXES:
        raise InvalidInputError(f"cannot read {str(path)!r}: expected a {', '.join(TABLE_SUFFIXES)} file")
    if not path.is_file():
        raise InvalidInputError(f"table file {str(path)!r} does not exist")
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                missing = [k for k in ("X", "y") if k not in data.files]
                if missing:
                    raise InvalidInputError(f"{str(path)!r} lacks arrays {missing}; expected 'X', 'y' and optionally "
                                            f"'groups' (found {data.files})")
                X, raw_y = data["X"], data["y"]
                groups = data["groups"] if "groups" in data.files else None
        else:
            frame = _read_frame(path)
            columns = list(frame.columns)
            for role, col in (("label", label_column), ("group", group_column)):
                if col is not None and col not in columns:
                    raise InvalidInputError(
                        f"{role} column {col!r} is not in {str(path)!r}; its columns are: {', '.join(map(str, columns))}"
                    )
            features = feature_columns or [c for c in columns if c not in (label_column, group_column)]
            unknown = [c for c in features if c not in columns]
            if unknown:
                raise InvalidInputError(f"feature columns {unknown} are not in {str(path)!r}")
            from pandas.api.types import is_numeric_dtype

            non_numeric = [c for c in features if not is_numeric_dtype(frame[c])]
            if non_numeric:
                raise InvalidInputError(
                    f"feature columns {non_numeric} of {str(path)!r} are not numeric; encode them as numbers or "
                    "pass feature_columns"
                )
            X = frame[features].to_numpy(dtype=np.float64)
            raw_y = frame[label_column].to_numpy()
            groups = frame[group_column].to_numpy() if group_column else None
    except (OSError, ValueError) as exc:
        if isinstance(exc, InvalidInputError):
            raise
        raise InvalidInputError(f"cannot read table {str(path)!r}: {exc}") from None
    if np.asarray(X).ndim < 2 or len(X) != len(raw_y):
        raise InvalidInputError(f"{str(path)!r}: X must be (n, d) with one label per row; got X {np.shape(X)} "
                                f"and y {np.shape(raw_y)}")
    if len(raw_y) and np.asarray(raw_y).dtype.kind in "fc" and np.isnan(np.asarray(raw_y, dtype=float)).any():
        raise InvalidInputError(f"{str(path)!r}: the label column has missing values")
    y, class_names = _labels(np.asarray(raw_y))
    return Dataset(name=path.stem, X=np.asarray(X, dtype=np.float32), y=y, n_classes=len(class_names),
                   class_names=class_names, groups=groups, description=f"user table {path.name}",
                   source=str(path.resolve()))
