"""The dataset registry: ``@DATASETS.register("name")`` on a :class:`BuiltinDataset` subclass.

Adding a dataset means adding one module that defines and registers such a class, and importing
that module in ``memberscope/datasets/__init__.py``.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod

from memberscope.datasets._base import Dataset, DatasetInfo, random_subset
from memberscope.registry import Registry

__all__ = ["DATASETS", "BuiltinDataset"]


class BuiltinDataset(ABC):
    """One built-in dataset: a cheap :meth:`info` for listing and a :meth:`load` for the records.

    Subclasses implement :meth:`info` (must not read the records) and :meth:`load_all`; a dataset
    that generates its records (so ``n_records`` chooses how many) overrides :meth:`load` instead.
    """

    @abstractmethod
    def info(self) -> DatasetInfo:
        """Name, size and shape, and whether it can be loaded here; without loading the records."""

    @abstractmethod
    def load_all(self, *, data_dir: str | os.PathLike | None = None, seed: int = 0) -> Dataset:
        """Every record of the dataset."""

    def load(
        self, *, data_dir: str | os.PathLike | None = None, seed: int = 0, n_records: int | None = None
    ) -> Dataset:
        """The dataset, or a seeded random subset of ``n_records`` records of it.

        Parameters
        ----------
        data_dir : path, optional
            Folder holding the dataset's files, for datasets that read files.
        seed : int
            Seed of the subset draw (and of generation, for generated datasets).
        n_records : int, optional
            How many records to keep; all when None.
        """
        return random_subset(self.load_all(data_dir=data_dir, seed=seed), n_records=n_records, seed=seed)


DATASETS: Registry[type[BuiltinDataset]] = Registry("dataset")
"""Built-in datasets by name; ``DATASETS.get(name)()`` is a :class:`BuiltinDataset`."""
