"""Any scikit-learn classifier with ``predict_proba`` as a training recipe."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import numpy as np

from memberscope.exceptions import InvalidInputError
from memberscope.recipes._base import Recipe
from memberscope.targets import SklearnTarget

__all__ = ["SklearnModel", "SklearnRecipe"]


def _resolve_estimator(estimator: Any, params: dict[str, Any]):
    from sklearn.base import clone

    if isinstance(estimator, str):
        module_name, _, class_name = estimator.rpartition(".")
        try:
            cls = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError, ValueError):
            raise InvalidInputError(
                f"cannot import estimator {estimator!r}; expected a dotted path such as "
                "'sklearn.ensemble.RandomForestClassifier'"
            ) from None
        try:
            return cls(**params)
        except TypeError as exc:
            raise InvalidInputError(f"invalid parameters for {estimator}: {exc}") from None
    if not hasattr(estimator, "fit") or not hasattr(estimator, "predict_proba"):
        raise InvalidInputError(f"estimator {estimator!r} must be a scikit-learn classifier with fit and predict_proba")
    return clone(estimator).set_params(**params)


class SklearnRecipe(Recipe):
    """Train a clone of a scikit-learn classifier; ``random_state`` is set from the seed."""

    name = "sklearn"

    def __init__(
        self, estimator: Any = "sklearn.linear_model.LogisticRegression", params: dict[str, Any] | None = None
    ):
        self.params = dict(params or {})
        self.prototype = _resolve_estimator(estimator, self.params)

    def config(self) -> dict[str, Any]:
        cls = type(self.prototype)
        params = {
            k: (v if isinstance(v, (int, float, str, bool, type(None))) else repr(v))
            for k, v in sorted(self.prototype.get_params(deep=False).items())
        }
        return {"estimator": f"{cls.__module__}.{cls.__qualname__}", "params": params}

    def train(self, X: np.ndarray, y: np.ndarray, *, n_classes: int, seed: int, progress: Any = None) -> SklearnModel:
        from sklearn.base import clone

        est = clone(self.prototype)
        if "random_state" in est.get_params(deep=False):
            est.set_params(random_state=seed)
        est.fit(np.asarray(X).reshape(len(X), -1), y)
        if progress is not None:
            progress()
        return SklearnModel(est, n_classes=n_classes)

    def load(self, path: Path, *, n_classes: int, feature_shape: tuple[int, ...]) -> SklearnModel:
        import joblib

        return SklearnModel(joblib.load(path), n_classes=n_classes)


class SklearnModel(SklearnTarget):
    """A classifier trained by :class:`SklearnRecipe`: probabilities laid out over classes ``0 .. n_classes - 1``
    (a class missing from its training subset gets probability 0)."""

    def __init__(self, estimator: Any, *, n_classes: int):
        super().__init__(estimator, classes=np.arange(int(n_classes)))
