"""Training options declared once: name, default, constraint, meaning; the error messages come from the declaration.

The torch recipes' hyperparameters (:data:`CORE_OPTIONS`) and every training-time defense's options
(:mod:`memberscope.training.defenses`) are :class:`Option` objects. :func:`problems` checks values against them and
writes each problem as ``"<name> (<meaning>) must be <constraint>; got <value>"``, e.g.
``"dp_epsilon must be > 0; got -1"`` (scikit-learn's ``_parameter_constraints`` idea).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["ARCHITECTURES", "CORE_OPTIONS", "OPTIMIZERS", "Interval", "OneOf", "Option", "problems"]

ARCHITECTURES = ("mlp", "cnn", "logreg")
OPTIMIZERS = ("adam", "sgd")


@dataclass(frozen=True)
class Interval:
    """Numbers between ``low`` and ``high`` (either may be None: unbounded); ``closed`` says which ends are in.

    ``integer=True`` also requires a whole number (``3`` or ``3.0``).
    """

    low: float | None = None
    high: float | None = None
    closed: str = "left"  # "left", "right", "both" or "neither"
    integer: bool = False

    def accepts(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            return False
        if self.integer and int(value) != value:
            return False
        if self.low is not None:
            if value < self.low or (value == self.low and self.closed not in ("left", "both")):
                return False
        if self.high is not None:
            if value > self.high or (value == self.high and self.closed not in ("right", "both")):
                return False
        return True

    def describe(self) -> str:
        prefix = "an integer " if self.integer else ""
        left_in, right_in = self.closed in ("left", "both"), self.closed in ("right", "both")
        if self.high is None:
            return f"{prefix}{'>=' if left_in else '>'} {self.low:g}"
        if self.low is None:
            return f"{prefix}{'<=' if right_in else '<'} {self.high:g}"
        return f"{prefix}in {'[' if left_in else '('}{self.low:g}, {self.high:g}{']' if right_in else ')'}"


@dataclass(frozen=True)
class OneOf:
    """One of a fixed tuple of values."""

    choices: tuple[Any, ...]

    def accepts(self, value: Any) -> bool:
        return value in self.choices

    def describe(self) -> str:
        return f"one of {self.choices}"


@dataclass(frozen=True)
class Option:
    """One training option.

    Parameters
    ----------
    name : the keyword of :class:`memberscope.recipes.TorchRecipe` (and of ``model_params`` / ``--model-param``).
    default : its value when not given; a defense is off while its options are at their defaults.
    constraint : an :class:`Interval` or :class:`OneOf` the value must satisfy; None: anything.
    meaning : a few words put after the name in error messages: ``"early_stopping (patience in epochs)"``.
    optional : None is also accepted (and means "off").
    convert : applied to a given value before it is checked (``hidden=[64, 32]`` -> ``(64, 32)``).
    """

    name: str
    default: Any
    constraint: Interval | OneOf | None = None
    meaning: str | None = None
    optional: bool = False
    convert: Callable[[Any], Any] | None = None

    def problem(self, value: Any) -> str | None:
        """The sentence saying why ``value`` is refused, or None when it is valid."""
        if self.constraint is None or (self.optional and value is None) or self.constraint.accepts(value):
            return None
        label = self.name if self.meaning is None else f"{self.name} ({self.meaning})"
        return f"{label} must be {self.constraint.describe()}; got {value!r}"


def _int_tuple(value: Any) -> tuple[int, ...]:
    return tuple(int(v) for v in value)


CORE_OPTIONS: tuple[Option, ...] = (
    Option("architecture", "mlp", OneOf(ARCHITECTURES)),
    Option("hidden", (256, 256), convert=_int_tuple),  # hidden layer widths (mlp), the dense layer's (cnn)
    Option("channels", (16, 32), convert=_int_tuple),  # convolution channels (cnn)
    Option("epochs", 30, Interval(1)),
    Option("batch_size", 128, Interval(1)),
    Option("lr", 1e-3, Interval(0, closed="neither")),
    Option("weight_decay", 0.0, Interval(0)),
    Option("momentum", 0.9, Interval(0)),
    Option("optimizer", "adam", OneOf(OPTIMIZERS)),
    Option("dropout", 0.0, Interval(0, 1)),
    Option("standardize", False, OneOf((False, True))),
)
"""The torch recipes' own hyperparameters; every one is part of every recipe config (hence of cache keys)."""


def problems(options: Iterable[Option], values: Mapping[str, Any]) -> list[str]:
    """Every value of ``values`` that its option in ``options`` refuses, as sentences (all of them, not the first)."""
    return [p for o in options if o.name in values and (p := o.problem(values[o.name])) is not None]
