"""What the gateway serves: any :class:`~memberscope.targets.Target`, plus the shape it validates requests against.

Models are loaded with :func:`memberscope.targets.load_target` (scikit-learn, TorchScript, ``torch.save``'d
modules, memberscope's own models) or wrapped with :func:`memberscope.targets.wrap`; this module only reads off
how many features a record has and, for memberscope's standardizing networks, their per-feature mean and std
(used by probing detection).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from memberscope.exceptions import InvalidInputError
from memberscope.targets import Target, as_probabilities, load_target, wrap

__all__ = ["ServedModel", "as_served_model", "load_model"]


@dataclass
class ServedModel:
    """A target plus what the gateway validates requests against."""

    target: Target
    n_features: int
    n_classes: int
    #: Per-feature mean/std the model standardizes with, when known (used by probing detection).
    mean: np.ndarray | None = None
    std: np.ndarray | None = None

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities ``(n, n_classes)`` for flat records ``X`` of shape ``(n, n_features)``."""
        return as_probabilities(self.target.query(X), self.target.output_kind)


def _torch_n_features(net) -> int | None:
    from torch import nn

    for module in net.modules():
        # TorchScript submodules are RecursiveScriptModules that keep the original class name.
        kind = getattr(module, "original_name", type(module).__name__)
        if isinstance(module, nn.Linear) or (kind == "Linear" and hasattr(module, "weight")):
            return int(module.weight.shape[1])
        if kind in ("Conv1d", "Conv2d", "Conv3d"):
            return None  # image networks need the shape from the caller
    return None


def as_served_model(model: Any, *, n_features: int | None = None, n_classes: int | None = None) -> ServedModel:
    """A :class:`ServedModel` for anything :func:`memberscope.targets.wrap` accepts.

    ``n_features`` is read off the model when not given (scikit-learn's ``n_features_in_``, a torch network's
    first linear layer); ``n_classes`` from its answers. Raises InvalidInputError when the feature count cannot
    be told.
    """
    if isinstance(model, ServedModel):
        return model
    target = wrap(model, n_classes=n_classes)
    estimator = getattr(target, "estimator", None)
    if n_features is None and estimator is not None and hasattr(estimator, "n_features_in_"):
        n_features = int(estimator.n_features_in_)
    net = getattr(target, "net", None)
    if n_features is None and hasattr(net, "modules"):
        n_features = _torch_n_features(net)
    if n_features is None:
        raise InvalidInputError(
            f"cannot tell how many features {target.description} takes; give n_features (policy: model.n_features)"
        )
    if target.n_classes is None:
        target.query(np.zeros((1, n_features)))  # the first answer shows the number of classes
        target.queries_spent = 0
    n_classes = target.n_classes
    if n_classes is None:
        raise InvalidInputError(f"cannot tell how many classes {target.description} answers; give n_classes")
    mean = std = None
    m, s = getattr(target, "mean", None), getattr(target, "std", None)
    if m is not None and s is not None:
        m, s = np.asarray(m, dtype=np.float64), np.asarray(s, dtype=np.float64)
        if m.shape == (n_features,):
            mean, std = m, s
    return ServedModel(target, n_features=int(n_features), n_classes=int(n_classes), mean=mean, std=std)


def load_model(path: str | Path, *, n_features: int | None = None, n_classes: int | None = None) -> ServedModel:
    """The model saved at ``path`` (see :func:`memberscope.targets.load_target`), ready to serve."""
    return as_served_model(load_target(path, n_classes=n_classes), n_features=n_features, n_classes=n_classes)
