"""``breast-cancer``: scikit-learn's bundled Wisconsin diagnostic data, 569 tumours × 30 features, 2 classes."""

from __future__ import annotations

import os

from memberscope.datasets._base import Dataset, DatasetInfo
from memberscope.datasets._registry import DATASETS, BuiltinDataset

__all__ = ["BreastCancer"]

_DESCRIPTION = "Wisconsin breast-cancer diagnosis, 30 z-scored features (bundled with scikit-learn)"


@DATASETS.register("breast-cancer")
class BreastCancer(BuiltinDataset):
    """Features ``X`` of shape (569, 30), each z-scored with the whole dataset's mean and std.

    Scaling with statistics of all 569 records (rather than of a target model's training set) is
    acceptable for membership audits: one mean and one std per feature, pooled over members and
    non-members alike, carry no information about which records any model trained on, so members
    and non-members are transformed identically. Labels: 0 = malignant, 1 = benign.
    """

    def info(self) -> DatasetInfo:
        return DatasetInfo("breast-cancer", _DESCRIPTION, 569, (30,), 2, "scikit-learn load_breast_cancer", True)

    def load_all(self, *, data_dir: str | os.PathLike | None = None, seed: int = 0) -> Dataset:
        from sklearn.datasets import load_breast_cancer

        raw = load_breast_cancer()
        X = (raw.data - raw.data.mean(axis=0)) / raw.data.std(axis=0)
        return Dataset(
            name="breast-cancer",
            X=X,
            y=raw.target,
            n_classes=2,
            class_names=[str(c) for c in raw.target_names],
            description=_DESCRIPTION,
            source="scikit-learn load_breast_cancer",
        )
