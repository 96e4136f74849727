"""Datasets: ``load(name)`` for built-ins or a path to the user's own table; ``available()`` lists them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from memberscope.datasets import fashion_mnist, purchase_synthetic, sklearn_bundled  # noqa: F401  (register)
from memberscope.datasets._base import Dataset, DatasetInfo
from memberscope.datasets._registry import DATASETS
from memberscope.datasets.tables import TABLE_SUFFIXES, load_table
from memberscope.exceptions import InvalidInputError

__all__ = ["DATASETS", "Dataset", "DatasetInfo", "available", "load", "load_table"]


def load(name_or_path: str, *, data_dir=None, seed: int = 0, n_records: int | None = None,
         label_column: str = "label", group_column: str | None = None) -> Dataset:
    """A built-in dataset by name, or a user table (.csv/.parquet/.npz) by path.

    ``n_records`` takes a seeded random subset (for ``purchase-synthetic`` it sets how many to generate).
    """
    if name_or_path not in DATASETS and Path(name_or_path).suffix in TABLE_SUFFIXES:
        dataset = load_table(name_or_path, label_column=label_column, group_column=group_column)
    else:
        builtin = DATASETS.get(name_or_path)
        dataset = builtin.load(data_dir=data_dir, seed=seed, n_records=n_records)
        if name_or_path == "purchase-synthetic":
            return dataset
    if n_records is not None:
        if n_records > dataset.n_records:
            raise InvalidInputError(f"n_records={n_records} exceeds the {dataset.n_records} records of "
                                    f"{dataset.name!r}")
        dataset = dataset.subset(np.sort(np.random.default_rng(seed).permutation(dataset.n_records)[:n_records]))
    return dataset


def available() -> list[DatasetInfo]:
    """Every built-in dataset, with whether its files are present."""
    return [DATASETS.get(name).info() for name in DATASETS.names()]
