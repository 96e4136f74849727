"""Saved models as targets: ``load_target(path)`` and ``save_target(target, path)``.

Accepted files:

- a joblib/pickle file holding a fitted scikit-learn classifier or Pipeline;
- a TorchScript archive (``torch.jit.save``) or a ``torch.save``'d ``nn.Module``;
- a memberscope torch model: the state dict its recipe saves, with a JSON sidecar ``PATH.json`` naming the
  recipe (written by :func:`save_target`; a state dict alone does not say which network it belongs to);
- a Hugging Face text classifier: a ``save_pretrained`` folder of a ``…ForSequenceClassification`` model and its
  tokenizer (records are then texts; see :mod:`memberscope.targets.language`).

Pickle-based formats run code when loaded: load only files you trust.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from memberscope.exceptions import InvalidInputError
from memberscope.targets._base import Target

__all__ = ["load_target", "save_target"]


def save_target(target: Target, path: str | Path, *, recipe: Any = None, feature_shape: tuple[int, ...] | None = None):
    """Save ``target`` so that :func:`load_target` can load it; memberscope torch models get a recipe sidecar.

    Parameters
    ----------
    target : a target with a ``save`` method (scikit-learn targets, memberscope's trained models).
    recipe : the :class:`~memberscope.recipes.TorchRecipe` that trained a memberscope torch model.
    feature_shape : the shape of one record, for a memberscope torch model.

    Returns the path written.
    """
    from memberscope.recipes import TorchModel

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(target, TorchModel):
        if recipe is None or feature_shape is None:
            raise InvalidInputError(
                "saving a memberscope torch model needs the recipe that trained it and its feature_shape"
            )
        target.save(path)
        sidecar = {
            "format": "memberscope-torch",
            "architecture": recipe.architecture,
            "recipe": recipe.config(),
            "n_classes": int(target.n_classes),
            "feature_shape": [int(s) for s in feature_shape],
        }
        Path(str(path) + ".json").write_text(json.dumps(sidecar, indent=2))
        return path
    target.save(path)
    return path


def load_target(path: str | Path, *, n_classes: int | None = None) -> Target:
    """The model saved at ``path`` as a :class:`Target` (see the module docstring for the accepted formats).

    Raises InvalidInputError for a missing file, an unreadable one, or one holding something that is not a
    classifier with ``predict_proba`` or a torch module.
    """
    from memberscope.targets._wrap import wrap

    path = Path(path)
    if path.is_dir() and (path / "config.json").is_file():
        from memberscope.llm.loading import load_text_classifier

        return load_text_classifier(path)
    if not path.is_file():
        raise InvalidInputError(f"model file {str(path)!r} does not exist")
    sidecar = Path(str(path) + ".json")
    if sidecar.is_file():
        return _load_memberscope_torch(path, json.loads(sidecar.read_text()))
    if zipfile.is_zipfile(path):  # torch.save and torch.jit.save both write zip archives
        return wrap(_load_torch(path), n_classes=n_classes)
    import joblib

    try:
        obj = joblib.load(path)
    except Exception as exc:
        raise InvalidInputError(
            f"cannot load model {str(path)!r} ({type(exc).__name__}: {exc}); expected a joblib/pickle scikit-learn "
            "classifier or Pipeline, a TorchScript or torch.save'd module, or a memberscope torch model with its "
            ".json sidecar"
        ) from None
    if not hasattr(obj, "predict_proba"):
        if hasattr(obj, "fit"):
            wrap(obj)  # raises the message that names what is missing (a regressor, no predict_proba, ...)
        raise InvalidInputError(f"{str(path)!r} holds a {type(obj).__name__}, not a classifier with predict_proba")
    return wrap(obj, n_classes=n_classes)


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
            "save it with memberscope.targets.save_target"
        )
    if not isinstance(obj, torch.nn.Module):
        raise InvalidInputError(f"{str(path)!r} holds a {type(obj).__name__}, not a torch.nn.Module")
    return obj.eval()


def _load_memberscope_torch(path: Path, sidecar: dict) -> Target:
    from memberscope.recipes import TorchRecipe

    if sidecar.get("format") != "memberscope-torch":
        raise InvalidInputError(f"sidecar {path}.json is not a memberscope torch model description")
    params = {k: v for k, v in sidecar["recipe"].items() if k != "name"}
    recipe = TorchRecipe(**params)
    shape = tuple(int(s) for s in sidecar["feature_shape"])
    target = recipe.load(path, n_classes=int(sidecar["n_classes"]), feature_shape=shape)
    target.recipe = recipe  # reference models like it come from the same recipe
    return target
