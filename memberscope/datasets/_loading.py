"""``load`` a dataset by name or path, and list the built-ins with ``available``."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from memberscope.datasets._base import Dataset, DatasetInfo, random_subset
from memberscope.datasets._registry import DATASETS
from memberscope.datasets.tables import load_table
from memberscope.exceptions import InvalidInputError

__all__ = ["available", "load"]


def load(
    name_or_path: str | os.PathLike,
    *,
    data_dir: str | os.PathLike | None = None,
    seed: int = 0,
    n_records: int | None = None,
    label_column: str = "label",
    group_column: str | None = None,
    feature_columns: list[str] | None = None,
    id_column: str | None = None,
) -> Dataset:
    """A built-in dataset by name, or the user's own table by path.

    Parameters
    ----------
    name_or_path : str or path
        A registered name (see :func:`available`), or a path to a ``.csv``, ``.parquet``, ``.rda``/``.rds`` or
        ``.npz`` file (anything with a suffix or a folder separator, or that exists, counts as a path).
    data_dir : path, optional
        Folder of a built-in dataset's files (``fashion-mnist``).
    seed : int
        Non-negative seed of the ``n_records`` subset, and of generation for ``purchase-synthetic``.
    n_records : int, optional
        Keep a seeded random subset of this many records (kept in file order); for
        ``purchase-synthetic``, how many records to generate. All records when None.
    label_column, group_column, feature_columns, id_column
        For tables: see :func:`~memberscope.datasets.load_table`.

    Returns
    -------
    Dataset

    Raises
    ------
    UnknownNameError
        If ``name_or_path`` is neither a registered name nor a path; the message lists the names.
    InvalidInputError
        If ``n_records`` exceeds the records available or is not positive, ``seed`` is negative, or the table is bad.
    DataUnavailableError
        If a built-in dataset's files are not on this machine.
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise InvalidInputError(f"seed must be a non-negative integer; got {seed!r}")
    if n_records is not None and (
        isinstance(n_records, bool) or not isinstance(n_records, int | np.integer) or n_records < 1
    ):
        raise InvalidInputError(f"n_records must be a positive integer or None; got {n_records!r}")
    if isinstance(name_or_path, str) and name_or_path in DATASETS:
        builtin = DATASETS.get(name_or_path)()
        return builtin.load(data_dir=data_dir, seed=int(seed), n_records=None if n_records is None else int(n_records))
    if not isinstance(name_or_path, str | os.PathLike):
        raise InvalidInputError(
            f"expected a dataset name or a path; got {type(name_or_path).__name__} {name_or_path!r}"
        )
    if _looks_like_path(name_or_path):
        table = load_table(
            name_or_path,
            label_column=label_column,
            group_column=group_column,
            feature_columns=feature_columns,
            id_column=id_column,
        )
        return random_subset(table, n_records=n_records, seed=int(seed))
    DATASETS.get(str(name_or_path))  # raises UnknownNameError listing the registered names
    raise AssertionError("unreachable")  # pragma: no cover


def available() -> list[DatasetInfo]:
    """Every built-in dataset (in registration order) and whether it can be loaded here; loads no records."""
    return [DATASETS.get(name)().info() for name in DATASETS.names()]


def _looks_like_path(name_or_path: str | os.PathLike) -> bool:
    if isinstance(name_or_path, os.PathLike):
        return True
    path = Path(name_or_path)
    return bool(path.suffix) or os.sep in name_or_path or "/" in name_or_path or path.exists()
