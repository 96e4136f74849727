"""What a training recipe looks like to the rest of memberscope."""

from __future__ import annotations

import abc
from pathlib import Path
from typing import Any

import numpy as np

from memberscope.targets import Target

__all__ = ["Recipe"]


class Recipe(abc.ABC):
    """How to train a model: architecture and hyperparameters, nothing about data or seeds.

    A trained model is a :class:`~memberscope.targets.Target` whose ``save`` writes what :meth:`load` reads.
    """

    name: str

    @abc.abstractmethod
    def train(self, X: np.ndarray, y: np.ndarray, *, n_classes: int, seed: int, progress: Any = None) -> Target:
        """Train on ``X`` of shape ``(n, ...)`` and labels ``y`` of shape ``(n,)``; deterministic in ``seed``."""

    @abc.abstractmethod
    def load(self, path: Path, *, n_classes: int, feature_shape: tuple[int, ...]) -> Target:
        """Load a model this recipe saved at ``path``."""

    @abc.abstractmethod
    def config(self) -> dict[str, Any]:
        """JSON-serialisable parameters; two recipes with equal configs train identical models."""
