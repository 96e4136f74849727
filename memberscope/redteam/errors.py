"""Errors raised while querying a deployed model.

The hierarchy (under :mod:`memberscope.exceptions`)::

    InvalidInputError                       the CLI exits with code 2
     └── TargetError                        a target could not answer; ``.answered`` keeps what it did answer
          ├── TargetUnreachableError         connection refused, DNS failure, timeout
          ├── TargetAuthError                401 or 403: the API key is missing or refused
          ├── TargetResponseError            an HTTP error status, a non-JSON body, a JSON path that does not
          │                                  match, or predictions of an unexpected form
          ├── TargetRateLimitedError         429/503 still answered after every retry
          └── QueryBudgetExceededError       the client-side query budget would be exceeded

Each message names the URL (or the value) at fault. They are input errors because each means the
URL, the key, the JSON path or the budget the user gave does not fit the endpoint.
"""

from __future__ import annotations

import numpy as np

from memberscope.exceptions import InvalidInputError

__all__ = [
    "QueryBudgetExceededError",
    "TargetAuthError",
    "TargetError",
    "TargetRateLimitedError",
    "TargetResponseError",
    "TargetUnreachableError",
]


class TargetError(InvalidInputError):
    """A target failed to answer.

    Attributes
    ----------
    answered : ndarray of shape (n_answered, n_classes) or None
        Observed outputs of the records of the failing call that were answered before the failure
        (the first ``n_answered`` records, in order); ``None`` when nothing was.
    """

    def __init__(self, message: str, *, answered: np.ndarray | None = None):
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
