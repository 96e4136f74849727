"""Load the model a gateway serves: memberscope's saved models or a user's own.

Accepted files (``load_model(path)``):

- a joblib/pickle file holding a fitted scikit-learn classifier (what ``SklearnModel.save`` writes);
- a TorchScript archive (``torch.jit.save``) or a ``torch.save``'d ``nn.Module``;
- the state dict ``TorchModel.save`` writes, with a JSON sidecar ``PATH.json`` naming the recipe, written
  by :func:`save_model` (a state dict alone does not say which network it belongs to).

Pickle-based formats run code when loaded: serve only files you trust.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from memberscope.exceptions import InvalidInputError
from memberscope.recipes import TrainedModel

__all__ = ["ServedModel", "as_served_model", "load_model", "save_model"]


@dataclass
class ServedModel:
    """A model plus what the gateway validates requests against."""

    model: TrainedModel
    n_features: int
    n_classes: int
    #: Per-feature mean/std the model standardizes with, when known (used by probing detection).
    mean: np.ndarray | None = None
    std: np.ndarray | None = None

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities ``(n, n_classes)`` for flat records ``X`` of shape ``(n, n_features)``."""
        from memberscope.recipes import SklearnModel

        if isinstance(self.model, SklearnModel):  # straight from predict_proba: no log/softmax round trip
            est = self.model.estimator
            proba = est.predict_proba(X)
            if proba.shape[1] == self.n_classes and np.array_equal(est.classes_, np.arange(self.n_classes)):
                return np.asarray(proba, dtype=np.float64)
            full = np.zeros((len(X), self.n_classes))
            full[:, np.asarray(est.classes_, dtype=np.int64)] = proba
            return full
        logits = np.asarray(self.model.predict_logits(X), dtype=np.float64)
        z = np.exp(logits - logits.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)


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
    """A :class:`ServedModel` for a TrainedModel, a fitted scikit-learn classifier or a torch module."""
    from memberscope.recipes import SklearnModel, TorchModel
    from memberscope.targets import as_trained_model

    if isinstance(model, ServedModel):
        return model
    estimator = model.estimator if isinstance(model, SklearnModel) else model
    if n_features is None and hasattr(estimator, "n_features_in_"):
        n_features = int(estimator.n_features_in_)
    if n_classes is None and hasattr(estimator, "classes_"):
        n_classes = int(np.max(np.asarray(estimator.classes_, dtype=np.int64))) + 1
    net = model.net if isinstance(model, TorchModel) else model
    if n_features is None and hasattr(net, "modules"):
        n_features = _torch_n_features(net)
    if n_features is None:
        raise InvalidInputError(
            f"cannot tell how many features {type(model).__name__} takes; give n_features (policy: model.n_features)"
        )
    if n_classes is None and not isinstance(model, TrainedModel):
        if hasattr(net, "modules") or callable(net):
            import torch

            with torch.inference_mode():
                out = net(torch.zeros((1, n_features), dtype=torch.float32))
            n_classes = int(out.shape[1])
    if n_classes is None:
        n_classes = int(model.n_classes)
    trained = as_trained_model(model, n_classes=n_classes)
    mean = std = None
    if isinstance(trained, TorchModel):
        m, s = np.asarray(trained.mean, dtype=np.float64), np.asarray(trained.std, dtype=np.float64)
        if m.shape == (n_features,):
            mean, std = m, s
    return ServedModel(trained, n_features=int(n_features), n_classes=int(n_classes), mean=mean, std=std)


def save_model(model: TrainedModel, path: str | Path, *, recipe: Any = None, n_features: int) -> Path:
    """Save ``model`` so that :func:`load_model` can serve it; torch models get a recipe sidecar ``PATH.json``."""
    from memberscope.recipes import SklearnModel, TorchModel

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(model, SklearnModel):
        model.save(path)
        return path
    if isinstance(model, TorchModel):
        if recipe is None:
            raise InvalidInputError("saving a TorchModel for serving needs the recipe that trained it")
        model.save(path)
        sidecar = {
            "format": "memberscope-torch",
            "architecture": recipe.architecture,
            "recipe": recipe.config(),
            "n_classes": int(model.n_classes),
            "feature_shape": [int(n_features)],
        }
        Path(str(path) + ".json").write_text(json.dumps(sidecar, indent=2))
        return path
    raise InvalidInputError(f"save_model saves SklearnModel or TorchModel; got {type(model).__name__}")


def load_model(path: str | Path, *, n_features: int | None = None, n_classes: int | None = None) -> ServedModel:
    """The model saved at ``path`` (see the module docstring for the accepted formats)."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"model file {str(path)!r} does not exist")
    sidecar = Path(str(path) + ".json")
    if sidecar.is_file():
        return _load_memberscope_torch(path, json.loads(sidecar.read_text()), n_features=n_features)
    if zipfile.is_zipfile(path):  # torch.save and torch.jit.save both write zip archives
        return as_served_model(_load_torch(path), n_features=n_features, n_classes=n_classes)
    import joblib

    try:
        obj = joblib.load(path)
    except Exception as exc:
        raise InvalidInputError(
            f"cannot load model {str(path)!r} ({type(exc).__name__}: {exc}); expected a joblib/pickle scikit-learn "
            "classifier, a TorchScript or torch.save'd module, or a memberscope torch model with its .json sidecar"
        ) from None
    if not hasattr(obj, "predict_proba"):
        raise InvalidInputError(f"{str(path)!r} holds a {type(obj).__name__}, not a classifier with predict_proba")
    return as_served_model(obj, n_features=n_features, n_classes=n_classes)


def _load_torch(path: Path):
    import torch

    try:
        return torch.jit.load(str(path), map_location="cpu").eval()
    except RuntimeError:
        pass
    obj = torch.load(path, map_location="cpu", weights_only=False)
    if isinstance(obj, dict) and "net" in obj:
        raise InvalidInputError(
            f"{str(path)!r} is a memberscope torch state dict without its sidecar {path.name}.json; "
            "save it with memberscope.gateway.save_model"
        )
    if not isinstance(obj, torch.nn.Module):
        raise InvalidInputError(f"{str(path)!r} holds a {type(obj).__name__}, not a torch.nn.Module")
    return obj.eval()


def _load_memberscope_torch(path: Path, sidecar: dict, *, n_features: int | None) -> ServedModel:
    from memberscope.recipes import TorchRecipe

    if sidecar.get("format") != "memberscope-torch":
        raise InvalidInputError(f"sidecar {path}.json is not a memberscope torch model description")
    params = {k: v for k, v in sidecar["recipe"].items() if k != "name"}
    recipe = TorchRecipe(**params)
    shape = tuple(int(s) for s in sidecar["feature_shape"])
    model = recipe.load(path, n_classes=int(sidecar["n_classes"]), feature_shape=shape)
    return as_served_model(model, n_features=int(np.prod(shape)), n_classes=int(sidecar["n_classes"]))
