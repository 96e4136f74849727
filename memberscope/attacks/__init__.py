"""Membership-inference attacks. Each returns a score per record, higher = more likely member.

``create("rmia-online", gamma=2)`` builds one by name; ``names()`` lists them. Adding an attack
means adding one module that registers an :class:`Attack` subclass.
"""

from __future__ import annotations

from typing import Any

from memberscope.attacks import lira, rmia, threshold  # noqa: F401  (registers the attacks)
from memberscope.attacks._base import Attack, ReferenceOutputs, TargetOutputs
from memberscope.attacks.registry import ATTACKS

__all__ = ["ATTACKS", "Attack", "ReferenceOutputs", "TargetOutputs", "create", "names"]


def create(name: str, **params: Any) -> Attack:
    """The attack registered as ``name``, built with ``params``."""
    cls = ATTACKS.get(name)
    try:
        return cls(**params)
    except TypeError as exc:
        from memberscope.exceptions import InvalidInputError

        raise InvalidInputError(f"invalid parameters for attack {name!r}: {exc}") from None


def names() -> list[str]:
    return ATTACKS.names()
