"""Shadow-model families: the kinds of model a red team trains to stand in for a target it sees only through an API.

Shadow models unlike the target understate its leakage (a random forest's members get confidences no neural
network's do), so the red team tries several families and keeps the one whose answers agree most with the target's
(:mod:`memberscope.redteam.fit`). Each family is registered in :data:`SHADOW_FAMILIES` as a factory
``(context) -> Recipe``; adding one is one registration. ``--shadow-model`` may also name a scikit-learn class
(``sklearn.ensemble.ExtraTreesClassifier``), a saved scikit-learn estimator or Pipeline to clone (``model.joblib``),
or a memberscope recipe (:func:`memberscope.recipes.create`), all through :func:`memberscope.recipes.recipe_for`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from memberscope.exceptions import InvalidInputError
from memberscope.registry import Registry

__all__ = ["CANDIDATES", "SHADOW_FAMILIES", "FamilyContext", "candidate_families", "resolve_shadow_model"]


@dataclass(frozen=True)
class FamilyContext:
    """What a family factory may adapt to: the recon's natural probability grid (a forest's ``1/n_trees``), the
    records' shape, the number of classes, the records each shadow trains on, and parameters set on the family's
    model."""

    grid: int | None = None
    feature_shape: tuple[int, ...] = ()
    params: dict[str, Any] | None = None
    n_classes: int = 2
    n_records: int | None = None
    """Records each shadow trains on (sets the ``mlp`` family's epochs)."""


SHADOW_FAMILIES: Registry[Callable[[FamilyContext], Any]] = Registry("shadow-model family")

CANDIDATES = ("mlp", "logreg", "random-forest", "gradient-boosting")
"""The families ``--shadow-model auto`` tries on tables (with ``cnn`` first for images)."""

MLP_PARAMS: dict[str, Any] = {"hidden": (64,), "epochs": 40, "batch_size": 64, "standardize": True}
"""The ``mlp`` family: a torch network with one hidden layer of 64 units, trained to fit its data as deployed
models do: at least :data:`MLP_STEPS` gradient steps (more epochs than 40 on small shadow sets)."""
MLP_STEPS = 2000
"""Fewest gradient steps of an ``mlp`` shadow: a network trained to convergence (scikit-learn's ``MLPClassifier``
runs up to 200 epochs of small batches) answers unseen records far more confidently than one given 40 epochs of a
few hundred records (3 steps each), and shadows must answer like the target."""


def mlp_epochs(n_records: int | None, batch_size: int = 64) -> int:
    """Epochs giving at least :data:`MLP_STEPS` steps of ``batch_size`` on ``n_records`` (at least 40)."""
    if not n_records:
        return int(MLP_PARAMS["epochs"])
    return int(max(MLP_PARAMS["epochs"], np.ceil(MLP_STEPS / np.ceil(n_records / batch_size))))


def _sklearn(estimator: Any, params: dict[str, Any] | None):
    from memberscope.recipes import SklearnRecipe

    return SklearnRecipe(estimator, params)


@SHADOW_FAMILIES.register("mlp")
def _mlp(context: FamilyContext):
    from memberscope.recipes import TorchRecipe

    try:
        params = {**MLP_PARAMS, "epochs": mlp_epochs(context.n_records), **(context.params or {})}
        return TorchRecipe(architecture="mlp", **params)
    except TypeError as exc:
        raise InvalidInputError(f"invalid parameters for the mlp shadow family: {exc}") from None


@SHADOW_FAMILIES.register("cnn")
def _cnn(context: FamilyContext):
    from memberscope.recipes import create

    return create("cnn", **(context.params or {}))


@SHADOW_FAMILIES.register("logreg")
def _logreg(context: FamilyContext):
    from sklearn.linear_model import LogisticRegression

    return _sklearn(LogisticRegression(max_iter=1000), context.params)


@SHADOW_FAMILIES.register("random-forest")
def _forest(context: FamilyContext):
    from sklearn.ensemble import RandomForestClassifier

    # A natural grid of 1/n says the target averages n trees: shadows with as many trees answer on the same grid.
    trees = context.grid if context.grid is not None and context.grid > 20 else 100
    return _sklearn(RandomForestClassifier(n_estimators=trees, n_jobs=1), context.params)


@SHADOW_FAMILIES.register("gradient-boosting")
def _boosting(context: FamilyContext):
    from sklearn.ensemble import HistGradientBoostingClassifier

    # One tree per class and iteration: at most ~1,000 trees, so 100 classes on 600 features train in seconds.
    iterations = int(np.clip(1000 // max(context.n_classes, 1), 10, 100))
    return _sklearn(HistGradientBoostingClassifier(max_iter=iterations, early_stopping=False), context.params)


def candidate_families(context: FamilyContext, hint: str = "unknown") -> list[str]:
    """The families ``auto`` tries, the one the recon's family hint names first."""
    names = (["cnn"] if len(context.feature_shape) == 3 else []) + list(CANDIDATES)
    first = {"tree-ensemble": "random-forest", "neighbours-or-trees": "random-forest", "trees": "random-forest"}
    if hint in first:
        names.remove(first[hint])
        names.insert(0, first[hint])
    return names


def resolve_shadow_model(spec: Any, context: FamilyContext) -> tuple[str, Any]:
    """``(name, Recipe)`` of a ``--shadow-model`` that is not ``auto``.

    Parameters
    ----------
    spec : str, Recipe or estimator
        A family of :data:`SHADOW_FAMILIES`; a memberscope recipe name; a dotted scikit-learn class path; a file
        holding a saved scikit-learn estimator or Pipeline (``.joblib``, ``.pkl``, ``.pickle``), cloned with its
        preprocessing; a :class:`~memberscope.recipes.Recipe`; or an estimator object (cloned).
    context : FamilyContext
        ``params`` are set on the family, recipe or clone.

    Raises
    ------
    InvalidInputError
        Naming the spec when it is none of these, or when a file does not hold a scikit-learn classifier.
    """
    from memberscope.recipes import RECIPES, Recipe, SklearnRecipe, recipe_for

    params = context.params or None
    if isinstance(spec, Recipe):
        return getattr(spec, "name", type(spec).__name__), spec
    if not isinstance(spec, str | Path):
        return type(spec).__name__, SklearnRecipe(spec, params)
    text = str(spec)
    if text in SHADOW_FAMILIES:
        return text, SHADOW_FAMILIES.get(text)(context)
    if text in RECIPES:
        return text, recipe_for(None, text, params)
    path = Path(text)
    if path.suffix in (".joblib", ".pkl", ".pickle"):
        if not path.is_file():
            raise InvalidInputError(f"--shadow-model file {text!r} does not exist")
        import joblib

        estimator = joblib.load(path)
        if not (hasattr(estimator, "fit") and hasattr(estimator, "predict_proba")):
            raise InvalidInputError(
                f"--shadow-model file {text!r} holds a {type(estimator).__name__}; expected a scikit-learn "
                "classifier or Pipeline with predict_proba"
            )
        return path.name, SklearnRecipe(estimator, params)
    if "." in text and not path.exists():
        return text.rsplit(".", 1)[-1], SklearnRecipe(text, params)
    raise InvalidInputError(
        f"--shadow-model {text!r} is not 'auto', a shadow family ({', '.join(SHADOW_FAMILIES.names())}), a recipe "
        f"({', '.join(RECIPES.names())}), a scikit-learn class such as 'sklearn.ensemble.ExtraTreesClassifier', or a "
        "saved scikit-learn estimator or Pipeline (.joblib, .pkl)"
    )
