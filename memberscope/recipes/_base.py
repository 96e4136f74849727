"""What a training recipe and a trained model look like to the rest of memberscope."""

from __future__ import annotations

import abc
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Recipe", "TrainedModel"]


class TrainedModel(abc.ABC):
    """A model that maps records to logits (or log-probabilities)."""

    n_classes: int

    @abc.abstractmethod
    def predict_logits(self, X: np.ndarray) -> np.ndarray:
        """Logits of shape ``(n_records, n_classes)`` for records ``X`` of shape ``(n_records, ...)``."""

    @abc.abstractmethod
    def save(self, path: Path) -> None:
        """Write the model to ``path`` (a file)."""


class Recipe(abc.ABC):
    """How to train a model: architecture and hyperparameters, nothing about data or seeds."""

    name: str

    @abc.abstractmethod
    def train(self, X: np.ndarray, y: np.ndarray, *, n_classes: int, seed: int, progress: Any = None) -> TrainedModel:
        """Train on ``X`` of shape ``(n, ...)`` and labels ``y`` of shape ``(n,)``; deterministic in ``seed``."""

    @abc.abstractmethod
    def load(self, path: Path, *, n_classes: int, feature_shape: tuple[int, ...]) -> TrainedModel:
        """Load a model this recipe saved at ``path``."""

    @abc.abstractmethod
    def config(self) -> dict[str, Any]:
        """JSON-serialisable parameters; two recipes with equal configs train identical models."""
