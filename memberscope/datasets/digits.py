"""``digits``: scikit-learn's bundled handwritten digits, 1,797 grey 8×8 images in 10 classes."""

from __future__ import annotations

import os

from memberscope.datasets._base import Dataset, DatasetInfo
from memberscope.datasets._registry import DATASETS, BuiltinDataset

__all__ = ["Digits"]

_DESCRIPTION = "handwritten digits 0-9, 8×8 grey images (UCI, bundled with scikit-learn)"


@DATASETS.register("digits")
class Digits(BuiltinDataset):
    """Images ``X`` of shape (1797, 1, 8, 8): the 0..16 pixel counts divided by 16, so in [0, 1]."""

    def info(self) -> DatasetInfo:
        return DatasetInfo("digits", _DESCRIPTION, 1797, (1, 8, 8), 10, "scikit-learn load_digits", True)

    def load_all(self, *, data_dir: str | os.PathLike | None = None, seed: int = 0) -> Dataset:
        from sklearn.datasets import load_digits

        raw = load_digits()
        return Dataset(
            name="digits",
            X=(raw.images / 16.0)[:, None],
            y=raw.target,
            n_classes=10,
            class_names=[str(k) for k in range(10)],
            description=_DESCRIPTION,
            source="scikit-learn load_digits",
        )
