"""A user's own training function as a recipe: ``train_fn(X, y, seed) -> model``.

For a model memberscope cannot clone (a torch module trained by the user's code), the user's training function
builds the reference models: it gets the records of one model (``X`` of shape ``(n, ...)`` or a DataFrame), their
labels (class codes ``0 .. n_classes - 1``) and a seed, and returns anything :func:`memberscope.targets.wrap`
accepts. Its models are cached with joblib (pickle) when they can be.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from memberscope.exceptions import InvalidInputError
from memberscope.recipes._base import Recipe
from memberscope.targets import Target, wrap

__all__ = ["FunctionRecipe", "NoReferences"]


class _Pickled(Target):
    """A wrapped model that can be saved with joblib (what the cache stores)."""

    def __init__(self, model: Any, *, n_classes: int):
        super().__init__()
        self.model = model
        self._target = wrap(model, n_classes=n_classes)
        self.output_kind, self.n_classes, self.classes = "logits", n_classes, None

    @property
    def description(self) -> str:
        return self._target.description

    def _query(self, records: Any) -> np.ndarray:
        from memberscope.targets.outputs import query_logits

        self.queries_spent += len(records)
        return query_logits(self._target, records)

    def save(self, path: Path) -> None:
        import joblib

        try:
            joblib.dump(self.model, path)
        except Exception as exc:  # an unpicklable model is retrained on the next run, never lost mid-run
            raise InvalidInputError(f"{self.description} cannot be pickled for the cache: {exc}") from None


class FunctionRecipe(Recipe):
    """Reference models trained by ``train_fn(X, y, seed=seed)`` (see the module docstring)."""

    name = "function"

    def __init__(self, train_fn: Callable[..., Any]):
        if not callable(train_fn):
            raise InvalidInputError(f"a training function must be callable; got {type(train_fn).__name__}")
        self.train_fn = train_fn

    def config(self) -> dict[str, Any]:
        fn = self.train_fn
        return {"function": f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"}

    def train(self, X: Any, y: np.ndarray, *, n_classes: int, seed: int, progress: Any = None) -> Target:
        model = self.train_fn(X, y, seed=seed)
        if progress is not None:
            progress()
        return _Pickled(model, n_classes=n_classes)

    def load(self, path: Path, *, n_classes: int, feature_shape: tuple[int, ...]) -> Target:
        import joblib

        return _Pickled(joblib.load(path), n_classes=n_classes)


class NoReferences(Recipe):
    """The recipe of an audit that trains no reference model (K = 0, attacks on the target alone)."""

    name = "none"

    def config(self) -> dict[str, Any]:
        return {"reference_models": "none"}

    def train(self, X: Any, y: np.ndarray, *, n_classes: int, seed: int, progress: Any = None) -> Target:
        raise InvalidInputError("this audit trains no reference models; give a recipe to train some")

    def load(self, path: Path, *, n_classes: int, feature_shape: tuple[int, ...]) -> Target:
        raise InvalidInputError("this audit trains no reference models; nothing was saved")
