"""Errors and warnings raised by memberscope.

The hierarchy::

    MemberscopeError
     ├── InvalidInputError (ValueError)      bad user input; the CLI exits with code 2
     │    ├── UnknownNameError (KeyError)     unknown dataset, attack, recipe, ...
     │    ├── DataUnavailableError            a dataset's files are missing
     │    └── ModelOutputError                NaN or infinite model outputs
     └── MissingDependencyError (ImportError) an optional extra is not installed

    MemberscopeWarning (UserWarning)
     └── UnresolvableFPRWarning               too few non-members to resolve a requested FPR
"""

from __future__ import annotations

__all__ = [
    "DataUnavailableError",
    "InvalidInputError",
    "MemberscopeError",
    "MemberscopeWarning",
    "MissingDependencyError",
    "ModelOutputError",
    "UnknownNameError",
    "UnresolvableFPRWarning",
]


class MemberscopeError(Exception):
    """Base class of every error memberscope raises on purpose."""


class InvalidInputError(MemberscopeError, ValueError):
    """User input is invalid; the message names the bad value and what was expected."""


class UnknownNameError(InvalidInputError, KeyError):
    """A name (dataset, attack, recipe, ...) is not registered."""

    def __init__(self, kind: str, name: str, known: list[str] | tuple[str, ...]):
        self.kind, self.name, self.known = kind, name, sorted(known)
        super().__init__(f"unknown {kind} {name!r}; expected one of: {', '.join(self.known)}")

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0])


class DataUnavailableError(InvalidInputError):
    """A dataset's files are not on this machine."""


class ModelOutputError(InvalidInputError):
    """A model produced NaN or infinite outputs."""


class MissingDependencyError(MemberscopeError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""


class MemberscopeWarning(UserWarning):
    """Base class of memberscope's warnings."""


class UnresolvableFPRWarning(MemberscopeWarning):
    """There are too few non-members to resolve the requested false-positive rate."""
