"""Errors and warnings raised by memberscope.

The hierarchy, with the command line's exit code for each branch::

    MemberscopeError
     ├── InvalidInputError (ValueError)         you asked wrongly: bad value, file, name      exit 2
     │    ├── UnknownNameError (KeyError)        unknown dataset, attack, recipe, defense, ...
     │    ├── DataUnavailableError               a dataset's files are not on this machine
     │    └── ModelOutputError                   a model answered NaN or infinite values
     ├── MissingDependencyError (ImportError)    an optional extra is not installed           exit 2
     └── TargetError                             the model you query could not answer          exit 3
          ├── TargetUnreachableError             connection refused, DNS failure, timeout
          ├── TargetAuthError                    401 or 403: the API key is missing or refused
          ├── TargetResponseError                an HTTP error status, a non-JSON body, a JSON path that does
          │                                      not match, or predictions of an unexpected form
          ├── TargetRateLimitedError             429/503 still answered after every retry
          └── QueryBudgetExceededError           the client-side query budget would be exceeded

    MemberscopeWarning (UserWarning)
     ├── UnresolvableFPRWarning                  too few non-members to resolve a requested FPR
     └── LowFidelityWarning                      reference models unlike the target: leakage may be understated

Usage errors (exit 2) mean the same command will fail again until its input changes; a target error
(exit 3) means the endpoint or the network failed, and the same command may succeed later. Every
:class:`TargetError` keeps what the target did answer before it failed (``answered``), so no finished
work is lost. A failed privacy gate exits 1, and so does any other :class:`MemberscopeError`.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "EXIT_CODES",
    "DataUnavailableError",
    "InvalidInputError",
    "LowFidelityWarning",
    "MemberscopeError",
    "MemberscopeWarning",
    "MissingDependencyError",
    "ModelOutputError",
    "QueryBudgetExceededError",
    "TargetAuthError",
    "TargetError",
    "TargetRateLimitedError",
    "TargetResponseError",
    "TargetUnreachableError",
    "UnknownNameError",
    "UnresolvableFPRWarning",
    "exit_code",
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


class TargetError(MemberscopeError):
    """A target failed to answer.

    Attributes
    ----------
    answered : ndarray of shape (n_answered, n_classes) or None
        Observed outputs of the records of the failing call that were answered before the failure
        (the first ``n_answered`` records, in order); ``None`` when nothing was.
    """

    def __init__(self, message: str, *, answered: Any = None):
        super().__init__(message)
        self.answered = answered


class TargetUnreachableError(TargetError):
    """The endpoint could not be reached (connection refused, name not resolved, timeout)."""


class TargetAuthError(TargetError):
    """The endpoint answered 401 or 403."""


class TargetResponseError(TargetError):
    """The endpoint answered, but not with what was expected."""


class TargetRateLimitedError(TargetError):
    """The endpoint kept answering 429/503 after every retry."""


class QueryBudgetExceededError(TargetError):
    """A call would spend more queries than the client-side budget allows."""


EXIT_CODES: dict[type[BaseException], int] = {
    InvalidInputError: 2,
    MissingDependencyError: 2,
    TargetError: 3,
    MemberscopeError: 1,
}
"""The command line's exit code for each branch of the tree (the most specific class listed wins)."""


def exit_code(error: BaseException) -> int | None:
    """The exit code of ``error`` per :data:`EXIT_CODES`; None for an error memberscope did not raise on purpose."""
    for cls in type(error).__mro__:
        if cls in EXIT_CODES:
            return EXIT_CODES[cls]
    return None


class MemberscopeWarning(UserWarning):
    """Base class of memberscope's warnings."""


class UnresolvableFPRWarning(MemberscopeWarning):
    """There are too few non-members to resolve the requested false-positive rate."""


class LowFidelityWarning(MemberscopeWarning):
    """Reference or shadow models behave unlike the target: the measured leakage may be understated."""
