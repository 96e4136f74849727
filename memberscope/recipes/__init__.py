"""Training recipes: how reference (and demo target) models are trained.

``create("mlp", epochs=20)`` builds a recipe by name; adding a recipe means registering a factory.
"""

from __future__ import annotations

from typing import Any

from memberscope.exceptions import InvalidInputError
from memberscope.recipes._base import Recipe
from memberscope.recipes.sklearn_recipe import SklearnModel, SklearnRecipe
from memberscope.recipes.torch_nets import TorchModel, TorchRecipe
from memberscope.registry import Registry

__all__ = [
    "RECIPES",
    "Recipe",
    "SklearnModel",
    "SklearnRecipe",
    "TorchModel",
    "TorchRecipe",
    "create",
]

RECIPES: Registry = Registry("model recipe")


def _torch_factory(architecture: str):
    def factory(**params: Any) -> Recipe:
        try:
            return TorchRecipe(architecture=architecture, **params)
        except TypeError as exc:
            raise InvalidInputError(f"invalid parameters for the {architecture} recipe: {exc}") from None

    return factory


for _arch in ("mlp", "cnn", "logreg"):
    RECIPES.register(_arch)(_torch_factory(_arch))
RECIPES.register("sklearn")(SklearnRecipe)


def create(name: str, **params: Any) -> Recipe:
    """Recipe ``name`` (``mlp``, ``cnn``, ``logreg``, ``sklearn``) with hyperparameters ``params``."""
    return RECIPES.get(name)(**params)
