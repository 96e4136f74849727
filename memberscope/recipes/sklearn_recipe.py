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
    """Train a clone of a scikit-learn classifier or Pipeline (``sklearn.base.clone``: same family, same
    hyperparameters, same preprocessing); every ``random_state`` in it, nested steps included, is set from the seed.

    Records reach it as given: a DataFrame (strings, categoricals, missing values) for a Pipeline that encodes
    them, arrays otherwise (flattened to two dimensions).

    Parameters
    ----------
    estimator : str or estimator
        A dotted path (``"sklearn.ensemble.RandomForestClassifier"``), or an estimator or Pipeline, fitted or
        not (the user's own model: reference models are clones of it).
    params : dict, optional
        Parameters set on the clone (``set_params``; ``step__param`` for a Pipeline's steps).
    """

    name = "sklearn"

    def __init__(
        self, estimator: Any = "sklearn.linear_model.LogisticRegression", params: dict[str, Any] | None = None
    ):
        self.params = dict(params or {})
        self.prototype = _resolve_estimator(estimator, self.params)

    def config(self) -> dict[str, Any]:
        """The estimator's class and every parameter (steps and their parameters written out in full)."""
        from sklearn import config_context

        cls = type(self.prototype)
        with config_context(print_changed_only=False):
            params = {
                k: (v if isinstance(v, (int, float, str, bool, type(None))) else repr(v))
                for k, v in sorted(self.prototype.get_params(deep=False).items())
            }
        return {"estimator": f"{cls.__module__}.{cls.__qualname__}", "params": params}

    def train(self, X: Any, y: np.ndarray, *, n_classes: int, seed: int, progress: Any = None) -> SklearnModel:
        from sklearn.base import clone

        est = clone(self.prototype)
        seeds = {k: seed for k in est.get_params(deep=True) if k == "random_state" or k.endswith("__random_state")}
        if seeds:
            est.set_params(**seeds)
        est.fit(X if hasattr(X, "iloc") else np.asarray(X).reshape(len(X), -1), y)
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
