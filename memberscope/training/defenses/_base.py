"""What a training-time defense is: declared options plus hooks into the one training loop.

A defense is a :class:`TrainingDefense` subclass registered with :func:`register`. Its class attributes declare
everything the rest of memberscope needs to know: the recipe options it adds (with defaults and constraints, which
produce the error messages), the option that switches it on, how ``memberscope defend`` spells it (``name`` and
``preset``: ``dp-sgd`` means ``dp_epsilon=8``), the options it cannot be combined with and why, and whether
vectorized training can apply it. Its methods are the loop's hooks (:mod:`memberscope.training.loop`); one
instance is made per model trained, so a defense keeps its per-model state on ``self``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from memberscope.registry import Registry
from memberscope.training.options import CORE_OPTIONS, Option

if TYPE_CHECKING:
    from memberscope.training.loop import TrainingRun

__all__ = [
    "DEFENSES",
    "TrainingDefense",
    "active_defenses",
    "option_defaults",
    "recipe_options",
    "recipe_problems",
    "register",
]


class TrainingDefense:
    """A training-time defense (subclass it, set the class attributes, override the hooks it needs).

    Class attributes
    ----------------
    name : how ``memberscope defend`` names it (``"dp-sgd"``); also its registry key.
    title : how error messages name it (``"DP-SGD"``); defaults to ``name``.
    options : the recipe options it adds (none when it only uses a core option, as ``l2`` uses ``weight_decay``).
    option : the option that switches it on: the defense is active when that option is not at its default.
    preset : the value ``memberscope defend NAME`` gives ``option`` when no value is written (``l2`` -> ``5e-4``).
    aliases : short keys accepted in ``memberscope defend`` specs (``{"eps": "dp_epsilon"}``).
    excludes : ``{option: reason}``: options that must stay at their defaults while this defense is on.
    vectorized : whether :func:`memberscope.training.vectorized.train_vectorized` can train with it on.
    wraps : whether it replaces the whole training of a model (:meth:`around`), as an ensemble does.
    needs_torch_optimizer : whether ``wrap(run)`` needs ``run.optimizer`` to be a ``torch.optim.Optimizer`` (Opacus's
        DP-SGD does); otherwise the loop uses :mod:`memberscope.training.optimizers` (the same update).

    Hooks, in the order the loop calls them (each defaults to doing nothing)
    -------------------------------------------------------------------------
    ``context()`` around the whole training of a model; ``prepare_data(run)`` on the training records before
    anything is fitted on them; ``wrap(run)`` may replace the network, optimizer and batches; ``start(run)``
    last set-up before the first step; per step ``transform_batch(run, inputs)`` and ``penalty(run)``;
    ``end_epoch(run)`` returns True to stop; ``finish(run)`` after the last epoch.
    """

    name: ClassVar[str]
    title: ClassVar[str | None] = None
    options: ClassVar[tuple[Option, ...]] = ()
    option: ClassVar[str]
    preset: ClassVar[Any]
    aliases: ClassVar[Mapping[str, str]] = {}
    excludes: ClassVar[Mapping[str, str]] = {}
    vectorized: ClassVar[bool] = False
    wraps: ClassVar[bool] = False
    needs_torch_optimizer: ClassVar[bool] = False

    def __init__(self, recipe: Any):
        self.recipe = recipe

    @classmethod
    def is_active(cls, recipe: Any) -> bool:
        """Whether ``recipe`` switches this defense on (its :attr:`option` is not at its default)."""
        return getattr(recipe, cls.option) != option_defaults()[cls.option]

    @classmethod
    def check_available(cls) -> None:
        """Raise :class:`~memberscope.exceptions.MissingDependencyError` when an optional dependency is missing."""

    def context(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()

    def around(self, train_one: Callable[..., Any], X, y, *, n_classes: int, seed: int, progress) -> Any:
        """Train the model another way (only when :attr:`wraps`); ``train_one(recipe, X, y, ...)`` is the loop."""
        raise NotImplementedError

    def prepare_data(self, run: TrainingRun) -> None:
        pass

    def wrap(self, run: TrainingRun) -> None:
        pass

    def start(self, run: TrainingRun) -> None:
        pass

    def transform_batch(self, run: TrainingRun, inputs):
        return inputs

    def penalty(self, run: TrainingRun):
        return None

    def end_epoch(self, run: TrainingRun) -> bool:
        return False

    def finish(self, run: TrainingRun) -> None:
        pass


class _DefenseRegistry(Registry):
    def unregister(self, name: str) -> None:
        """Remove ``name`` (for tests that register a defense of their own)."""
        self._factories.pop(name, None)


DEFENSES: _DefenseRegistry = _DefenseRegistry("training-time defense")


def register(cls: type[TrainingDefense]) -> type[TrainingDefense]:
    """Class decorator: register ``cls`` under ``cls.name`` after checking its declarations.

    Raises
    ------
    ValueError
        When the name is taken, an option is already declared (by the recipe or another defense), or
        ``option`` names an option nobody declares. (``excludes`` may name options of defenses registered later.)
    """
    declared = {o.name for o in recipe_options()}
    clashes = sorted(declared & {o.name for o in cls.options})
    if clashes:
        raise ValueError(f"defense {cls.name!r} declares options that already exist: {clashes}")
    known = declared | {o.name for o in cls.options}
    if cls.option not in known:
        raise ValueError(f"defense {cls.name!r} is switched on by {cls.option!r}, which no one declares")
    DEFENSES.register(cls.name)(cls)
    return cls


def _classes() -> Iterator[type[TrainingDefense]]:
    for name in DEFENSES.names():
        yield DEFENSES.get(name)


def recipe_options() -> tuple[Option, ...]:
    """Every option of the torch recipes: :data:`~memberscope.training.options.CORE_OPTIONS`, then each
    registered defense's, in registry order."""
    return CORE_OPTIONS + tuple(o for cls in _classes() for o in cls.options)


def option_defaults() -> dict[str, Any]:
    return {o.name: o.default for o in recipe_options()}


def active_defenses(recipe: Any) -> list[type[TrainingDefense]]:
    """The registered defenses ``recipe`` switches on, in registry order (the order their hooks run in)."""
    return [cls for cls in _classes() if cls.is_active(recipe)]


def recipe_problems(values: Mapping[str, Any]) -> list[str]:
    """Every problem of a torch recipe's option ``values`` (all options given): bad values, then combinations a
    defense refuses (``"l1 cannot be combined with DP-SGD (the penalty's gradient is not clipped per record)"``)."""
    from memberscope.training.options import problems

    found = problems(recipe_options(), values)
    defaults = option_defaults()
    for cls in _classes():
        if values[cls.option] == defaults[cls.option]:
            continue
        for other, reason in cls.excludes.items():
            if other in values and values[other] != defaults[other]:
                found.append(f"{other} cannot be combined with {cls.title or cls.name} ({reason})")
    return found
