"""Turn a user's own trained model into something memberscope can query."""

from __future__ import annotations

from typing import Any

import numpy as np

from memberscope.exceptions import InvalidInputError
from memberscope.recipes import SklearnModel, TorchModel, TrainedModel

__all__ = ["CallableModel", "as_trained_model"]


class CallableModel(TrainedModel):
    """Wraps ``fn(X) -> logits of shape (n, n_classes)``."""

    def __init__(self, fn, *, n_classes: int):
        self.fn, self.n_classes = fn, n_classes

    def predict_logits(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.fn(X))

    def save(self, path) -> None:  # pragma: no cover - a user's function is theirs to save
        raise NotImplementedError("a CallableModel cannot be saved; save the underlying model instead")


def as_trained_model(model: Any, *, n_classes: int) -> TrainedModel:
    """A :class:`TrainedModel` for a scikit-learn classifier, a ``torch.nn.Module`` or a callable."""
    if isinstance(model, TrainedModel):
        return model
    if hasattr(model, "predict_proba") and hasattr(model, "classes_"):
        return SklearnModel(model, n_classes=n_classes)
    try:
        import torch

        if isinstance(model, torch.nn.Module):
            model.eval()
            return TorchModel(model, n_classes=n_classes, mean=torch.zeros(()), std=torch.ones(()))
    except ImportError:  # pragma: no cover - torch is a core dependency
        pass
    if callable(model):
        return CallableModel(model, n_classes=n_classes)
    raise InvalidInputError(
        f"cannot query {type(model).__name__}; expected a fitted scikit-learn classifier with "
        "predict_proba, a torch.nn.Module returning logits, or a callable X -> logits"
    )
