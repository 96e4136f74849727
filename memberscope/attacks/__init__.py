"""Membership-inference attacks. Each returns a score per record, higher = more likely member.

``create("rmia-online", gamma=2)`` builds one by name; ``names()`` lists them. Adding an attack
means adding one module that registers an :class:`Attack` subclass.
"""

from __future__ import annotations

from typing import Any

# Importing a module registers its attacks; `names()` lists them in this order.
from memberscope.attacks import lira, rmia, threshold  # noqa: F401

# isort: split
from memberscope.attacks import label_only, shadow  # noqa: F401
from memberscope.attacks._base import Attack, Needs, ReferenceOutputs, TargetOutputs
from memberscope.attacks.registry import ATTACKS

__all__ = ["ATTACKS", "Attack", "Needs", "ReferenceOutputs", "TargetOutputs", "create", "names", "needs"]


def create(name: str, **params: Any) -> Attack:
    """The attack registered as ``name``, built with ``params``."""
    cls = ATTACKS.get(name)
    try:
        return cls(**params)
    except TypeError as exc:
        from memberscope.exceptions import InvalidInputError

        raise InvalidInputError(f"invalid parameters for attack {name!r}: {exc}") from None


def names() -> list[str]:
    """Every registered attack's name, in registration order."""
    return ATTACKS.names()


def needs(name: str, **params: Any) -> Needs:
    """What attack ``name`` (with ``params``) needs to run."""
    return create(name, **params).needs()
