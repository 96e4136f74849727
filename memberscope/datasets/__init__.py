"""Datasets to audit: built-ins by name, or the user's own CSV/Parquet/R data/NPZ table by path.

``load("purchase-synthetic", n_records=5000)`` loads one; ``available()`` lists the built-ins and
whether they can be loaded here. Adding a dataset means adding one module that registers a
:class:`~memberscope.datasets._registry.BuiltinDataset` with ``@DATASETS.register("name")`` and
importing it below. Importing this package is light: loaders import scikit-learn and pandas only
when called.
"""

from __future__ import annotations

from memberscope.datasets import breast_cancer, digits, fashion_mnist, mlbench, purchase_synthetic  # noqa: F401
from memberscope.datasets._base import Dataset, DatasetInfo
from memberscope.datasets._loading import available, load
from memberscope.datasets._registry import DATASETS
from memberscope.datasets.mlbench import load_frame
from memberscope.datasets.tables import load_table, read_frame

__all__ = ["DATASETS", "Dataset", "DatasetInfo", "available", "load", "load_frame", "load_table", "read_frame"]
