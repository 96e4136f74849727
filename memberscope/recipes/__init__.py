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
    "recipe_for",
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


def recipe_for(
    target: Any, recipe: Any = None, params: dict[str, Any] | None = None, *, required: bool = True
) -> Recipe:
    """How to build reference models like ``target``: the one way every audit of a user's model gets them.

    Parameters
    ----------
    target : Target — the user's model, wrapped.
    recipe : None, a recipe name, a :class:`Recipe`, or a training function ``train_fn(X, y, seed) -> model``
        (:class:`~memberscope.recipes.function.FunctionRecipe`). None builds models of the same kind: for a
        scikit-learn estimator or Pipeline a clone of it (same family, hyperparameters and preprocessing), for a
        memberscope model its own recipe.
    params : dict, optional — parameters of a named recipe (or set on the scikit-learn clone).
    required : bool — False when no reference model will be trained (an audit with K = 0): a model that cannot be
        cloned then gets :class:`~memberscope.recipes.function.NoReferences`, which trains nothing.

    Raises
    ------
    InvalidInputError
        With no recipe for a model memberscope cannot clone (a torch module, a callable, an HTTP endpoint): it never
        falls back to a default network unlike the target.
    """
    from memberscope.recipes.function import FunctionRecipe

    if isinstance(recipe, Recipe):
        return recipe
    if isinstance(recipe, str):
        return create(recipe, **(params or {}))
    if callable(recipe):
        return FunctionRecipe(recipe)
    if recipe is not None:
        raise InvalidInputError(
            f"recipe must be a recipe name, a Recipe or a training function; got {type(recipe).__name__}"
        )
    estimator = getattr(target, "estimator", None)
    if estimator is not None:
        return SklearnRecipe(estimator, params)
    own = getattr(target, "recipe", None)
    if isinstance(own, Recipe):
        return own
    if not required:
        from memberscope.recipes.function import NoReferences

        return NoReferences()
    raise InvalidInputError(
        f"memberscope cannot build reference models like {target.description} by itself; pass recipe= a memberscope "
        f"recipe ({', '.join(RECIPES.names())}) whose models are like the target, or a training function "
        "recipe=train_fn(X, y, seed) -> model (at the command line: --recipe NAME with --model-param KEY=VALUE). "
        "Reference models unlike the target understate leakage, so there is no default."
    )
