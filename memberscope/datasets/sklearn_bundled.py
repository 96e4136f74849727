"""Datasets bundled with scikit-learn: digits (8×8 images) and breast cancer (30 features)."""

from __future__ import annotations

import numpy as np

from memberscope.datasets._base import Dataset, DatasetInfo
from memberscope.datasets._registry import register


def _digits_info() -> DatasetInfo:
    return DatasetInfo("digits", "handwritten digits, 8×8 grey images", 1797, (1, 8, 8), 10, "scikit-learn", True)


@register("digits", _digits_info)
def load_digits(*, data_dir=None, seed: int = 0, n_records=None) -> Dataset:
    from sklearn.datasets import load_digits as sk_load

    raw = sk_load()
    return Dataset(name="digits", X=(raw.images / 16.0)[:, None], y=raw.target, n_classes=10,
                   class_names=[str(i) for i in range(10)], description=_digits_info().description,
                   source="scikit-learn load_digits")


def _cancer_info() -> DatasetInfo:
    return DatasetInfo("breast-cancer", "Wisconsin breast cancer diagnosis, 30 features", 569, (30,), 2,
                       "scikit-learn", True)


@register("breast-cancer", _cancer_info)
def load_breast_cancer(*, data_dir=None, seed: int = 0, n_records=None) -> Dataset:
    """Features z-scored with the whole dataset's mean and std.

    The scaling uses statistics of all 569 records together, which carry no information about
    which of them a model trained on, so it does not bias the membership game.
    """
    from sklearn.datasets import load_breast_cancer as sk_load

    raw = sk_load()
    X = (raw.data - raw.data.mean(axis=0)) / raw.data.std(axis=0)
    return Dataset(name="breast-cancer", X=X, y=raw.target, n_classes=2, class_names=list(raw.target_names),
                   description=_cancer_info().description, source="scikit-learn load_breast_cancer")


__all__ = ["load_digits", "load_breast_cancer", "np"]
