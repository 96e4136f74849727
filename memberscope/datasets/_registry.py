"""Registry of built-in datasets: a loader plus a cheap ``info()`` for listing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from memberscope.datasets._base import Dataset, DatasetInfo
from memberscope.registry import Registry

__all__ = ["DATASETS", "BuiltinDataset", "register"]


@dataclass(frozen=True)
class BuiltinDataset:
    load: Callable[..., Dataset]  # (*, data_dir, seed, n_records) -> Dataset
    info: Callable[[], DatasetInfo]


DATASETS: Registry = Registry("dataset")


def register(name: str, info: Callable[[], DatasetInfo]):
    def decorator(load: Callable[..., Dataset]) -> Callable[..., Dataset]:
        DATASETS.register(name)(BuiltinDataset(load=load, info=info))
        return load

    return decorator
