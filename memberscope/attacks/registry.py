"""The attack registry: ``@ATTACKS.register("name")`` on an :class:`Attack` subclass."""

from memberscope.registry import Registry

ATTACKS: Registry = Registry("attack")
