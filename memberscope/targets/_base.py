"""The one interface every queried model implements: :class:`Target`.

``Target.query(records) -> outputs`` is all an attack, the engine, recon or the gateway ever calls,
the way code above httpx's ``BaseTransport`` never knows which transport it talks to. What the
answer holds is declared by :attr:`Target.output_kind`:

=================  ===============================================================================
``logits``         ``(n, n_classes)`` real scores whose softmax gives the class probabilities
``probabilities``  ``(n, n_classes)`` probabilities (possibly rounded or noisy)
``top-k``          ``(n, n_classes)`` probabilities with ``NaN`` where a class is withheld
``label``          ``(n, n_classes)`` one-hot rows: only the predicted label is shown
=================  ===============================================================================

Column ``j`` of an answer is the class :attr:`Target.classes` ``[j]`` (the model's own labels, e.g.
a scikit-learn estimator's ``classes_``; ``0 .. n_classes - 1`` when the target does not say).
Each record sent counts as one query (:attr:`queries_spent`); an optional :attr:`query_budget`
stops a call before it would exceed the budget.
"""

from __future__ import annotations

import abc
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from memberscope.exceptions import InvalidInputError, QueryBudgetExceededError

if TYPE_CHECKING:
    from memberscope.recipes import Recipe

__all__ = ["OUTPUT_KINDS", "Target", "n_records"]

OUTPUT_KINDS = ("logits", "probabilities", "top-k", "label")
"""What a target's answers can expose, from most to least informative."""


def n_records(records: Any) -> int:
    """Number of records in an array of shape ``(n, ...)``, a pandas DataFrame or a list of texts."""
    return len(records)


def _check_records(records: Any) -> Any:
    if hasattr(records, "iloc") or isinstance(records, list):  # a DataFrame, or texts
        return records
    records = np.asarray(records)
    if records.ndim < 2:
        raise InvalidInputError(f"records must have shape (n, ...features); got shape {records.shape}")
    return records


class Target(abc.ABC):
    """A model that can be queried. Subclasses implement :meth:`_query`; :meth:`query` keeps the books.

    Attributes
    ----------
    output_kind : {"logits", "probabilities", "top-k", "label"}
        What :meth:`query` returns (see the module docstring).
    n_classes : int or None
        Columns of an answer (None for an HTTP target until an answer shows it).
    classes : ndarray of shape (n_classes,) or None
        The class of each column, in the model's own labels; None means ``0 .. n_classes - 1``.
    queries_spent : int
        Records answered so far, over all calls (one record = one query).
    query_budget : int or None
        Most records this target may be sent; None = unlimited.
    notes : list of str
        What was noticed about the target's answers (e.g. outputs read as probabilities), for results.json.
    """

    output_kind: str = "logits"
    n_classes: int | None = None
    classes: np.ndarray | None = None
    #: Whether repeated queries of one record can get different answers (noise drawn per query).
    stochastic: ClassVar[bool] = False
    #: The recipe that trained the model, when known (a memberscope torch model read by
    #: :func:`~memberscope.targets.load_target`): reference models like it come from the same recipe.
    recipe: Recipe | None = None

    def __init__(self, *, query_budget: int | None = None):
        if query_budget is not None and (int(query_budget) != query_budget or query_budget < 0):
            raise InvalidInputError(f"query_budget must be an integer >= 0 or None; got {query_budget!r}")
        self.query_budget = None if query_budget is None else int(query_budget)
        self.queries_spent = 0
        self.notes: list[str] = []

    @property
    def description(self) -> str:
        """A short name for results and messages (the URL of an HTTP target)."""
        return type(self).__name__

    @property
    def queries_left(self) -> int | None:
        return None if self.query_budget is None else self.query_budget - self.queries_spent

    def query(self, records: Any) -> np.ndarray:
        """Observed outputs of shape ``(n, n_classes)`` for ``records`` (shape ``(n, ...)``, a DataFrame, or texts).

        Raises
        ------
        QueryBudgetExceededError
            Before sending anything, if ``len(records)`` exceeds the queries left.
        TargetError
            If the target fails; its ``answered`` holds the outputs of the records answered first.
        ModelOutputError
            If a local model answers NaN or infinite values.
        """
        records = _check_records(records)
        n = n_records(records)
        left = self.queries_left
        if left is not None and n > left:
            raise QueryBudgetExceededError(
                f"{self.description}: querying {n} records would exceed the query budget of "
                f"{self.query_budget} ({self.queries_spent} spent, {left} left); raise --query-budget or query fewer"
            )
        if n == 0:
            return np.zeros((0, self.n_classes or 0))
        out = np.asarray(self._query(records), dtype=np.float64)
        if out.ndim != 2 or len(out) != n:
            raise InvalidInputError(
                f"{self.description} answered an array of shape {out.shape} for {n} records; expected (n, n_classes)"
            )
        return out

    @abc.abstractmethod
    def _query(self, records: Any) -> np.ndarray:
        """Answer every record (within budget); add to ``queries_spent`` as records are answered."""

    def save(self, path: Path) -> None:
        """Write the model to ``path`` (a file) so :func:`memberscope.targets.load_target` or a recipe can load it."""
        raise InvalidInputError(f"{self.description} cannot be saved; save the underlying model instead")

    def close(self) -> None:  # noqa: B027  (a hook: most targets hold nothing to release)
        """Release what the target holds (an HTTP client); a no-op for local models."""

    def __enter__(self):
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def column_of(self, labels: np.ndarray) -> np.ndarray:
        """Output column of each label of ``labels`` (model labels), shape ``(n,)``.

        Raises InvalidInputError naming labels the target has no column for.
        """
        labels = np.asarray(labels)
        if self.classes is None:
            codes = labels.astype(np.int64)
            if self.n_classes is not None and len(codes) and (codes.min() < 0 or codes.max() >= self.n_classes):
                raise InvalidInputError(
                    f"labels must lie in [0, {self.n_classes - 1}] for {self.description}; "
                    f"got values from {codes.min()} to {codes.max()}"
                )
            return codes
        index = {c: i for i, c in enumerate(self.classes.tolist())}
        missing = sorted({str(v) for v in labels.tolist() if v not in index})
        if missing:
            raise InvalidInputError(
                f"labels {missing[:10]} are not classes of {self.description}; its classes are "
                f"{[str(c) for c in self.classes.tolist()][:20]}"
            )
        return np.array([index[v] for v in labels.tolist()], dtype=np.int64)
