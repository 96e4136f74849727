"""The attack interface: ``fit`` on reference models' outputs, ``score`` the target's records.

``fit`` never receives the target's ground truth, so nothing an attack calibrates (a threshold,
RMIA's ``a``, LiRA's variances) can leak the answer it is scored against.

Every attack declares what access it needs (:class:`Needs`): how many reference models, whether it
needs population records, whether it queries the models itself (label-only attacks send perturbed
copies of each record) and whether the answers must carry scores or a label is enough. The engine
checks these before anything runs, so an attack runs wherever its needs are met: on a local model,
a saved one, or one behind HTTP (:mod:`memberscope.targets`).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from memberscope.exceptions import InvalidInputError
from memberscope.signals import check_logits

__all__ = ["Attack", "Needs", "ReferenceOutputs", "TargetOutputs"]


@dataclass(frozen=True)
class Needs:
    """What an attack needs to run.

    Attributes
    ----------
    reference_models : int
        Fewest reference (shadow) models.
    population : bool
        Whether outputs on population records (no model trained on them) are needed.
    queries : bool
        Whether the attack queries the models itself (``TargetOutputs.model``, ``ReferenceOutputs.models``)
        instead of reading precomputed outputs only.
    outputs : {"scores", "label"}
        ``scores``: the answers must carry per-class scores (logits, probabilities, top-k);
        ``label``: a predicted label is enough.
    """

    reference_models: int = 0
    population: bool = False
    queries: bool = False
    outputs: str = "scores"

    def describe(self) -> str:
        """A short phrase for listings: ``"K>=2, population, API probabilities"``."""
        parts = [f"K>={self.reference_models}"] if self.reference_models else ["target only"]
        if self.population:
            parts.append("population records")
        parts.append("queries of perturbed records" if self.queries else "one query per record")
        parts.append("labels only" if self.outputs == "label" else "scores (logits or probabilities)")
        return ", ".join(parts)


@dataclass(frozen=True)
class TargetOutputs:
    """The target model's outputs, which is all an attack sees of the target.

    Attributes
    ----------
    logits : ndarray of shape (n_records, n_queries, n_classes)
    labels : ndarray of shape (n_records,)
    population_logits : ndarray of shape (n_population, n_queries, n_classes) or None
        Outputs on population records, which no model trained on.
    population_labels : ndarray of shape (n_population,) or None
    model : Target or None
        The target itself, for attacks that query it (:attr:`Needs.queries`).
    records : array of shape (n_records, ...) or None
        The records the outputs are of (what a querying attack perturbs).
    population_records : array of shape (n_population, ...) or None
    """

    logits: np.ndarray
    labels: np.ndarray
    population_logits: np.ndarray | None = None
    population_labels: np.ndarray | None = None
    model: Any = None
    records: Any = None
    population_records: Any = None

    def __post_init__(self) -> None:
        _check_outputs("target", self.logits, self.labels, leading=())
        if self.population_logits is not None:
            _check_outputs("target population", self.population_logits, self.population_labels, leading=())

    @property
    def n_population(self) -> int:
        return 0 if self.population_logits is None else int(self.population_logits.shape[0])


@dataclass(frozen=True)
class ReferenceOutputs:
    """Outputs of ``K`` reference models on the same records, and which records each trained on.

    Attributes
    ----------
    logits : ndarray of shape (n_reference, n_records, n_queries, n_classes)
    masks : ndarray of shape (n_reference, n_records), bool — True where the model trained on the record.
    labels : ndarray of shape (n_records,)
    population_logits : ndarray of shape (n_reference, n_population, n_queries, n_classes) or None
    population_labels : ndarray of shape (n_population,) or None
    models : sequence of Target or None
        The reference models themselves, for attacks that query them (:attr:`Needs.queries`).
    """

    logits: np.ndarray
    masks: np.ndarray
    labels: np.ndarray
    population_logits: np.ndarray | None = None
    population_labels: np.ndarray | None = None
    models: Sequence[Any] | None = None

    def __post_init__(self) -> None:
        k = self.logits.shape[0] if self.logits.ndim == 4 else -1
        _check_outputs("reference", self.logits, self.labels, leading=(k,))
        if self.masks.shape != self.logits.shape[:2]:
            raise InvalidInputError(f"reference masks must have shape {self.logits.shape[:2]}; got {self.masks.shape}")
        if self.population_logits is not None:
            _check_outputs("reference population", self.population_logits, self.population_labels, leading=(k,))

    @property
    def n_models(self) -> int:
        return int(self.logits.shape[0])


def _check_outputs(what: str, logits: np.ndarray, labels: np.ndarray | None, *, leading: tuple[int, ...]) -> None:
    expected_ndim = 3 + len(leading)
    if logits.ndim != expected_ndim:
        raise InvalidInputError(
            f"{what} logits must have {expected_ndim} dimensions "
            f"({'n_models, ' * len(leading)}n_records, n_queries, n_classes); got shape {logits.shape}"
        )
    if labels is None or np.ndim(labels) != 1 or len(labels) != logits.shape[len(leading)]:
        raise InvalidInputError(
            f"{what} labels must have shape ({logits.shape[len(leading)]},) to match the logits; got "
            f"{None if labels is None else np.shape(labels)}"
        )
    check_logits(logits, labels[:, None])


class Attack(abc.ABC):
    """A membership-inference attack. ``score`` returns one value per record, higher = more likely member.

    Subclasses set :attr:`name`, :attr:`min_reference_models`, :attr:`needs_population`,
    :attr:`needs_queries` and :attr:`needs_outputs`; :meth:`needs` gathers them.
    """

    name: ClassVar[str]
    #: The paper the attack follows, as cited in listings (``memberscope attacks``).
    paper: ClassVar[str] = ""
    min_reference_models: ClassVar[int] = 0
    needs_population: ClassVar[bool] = False
    needs_queries: ClassVar[bool] = False
    needs_outputs: ClassVar[str] = "scores"

    def needs(self) -> Needs:
        """What this attack (with its parameters) needs to run."""
        return Needs(
            reference_models=self.min_reference_models,
            population=bool(self.needs_population),
            queries=self.needs_queries,
            outputs=self.needs_outputs,
        )

    def fit(self, references: ReferenceOutputs | None) -> Attack:
        """Learn whatever the attack needs from reference models; returns ``self``."""
        self.check_references(references)
        return self

    @abc.abstractmethod
    def score(self, target: TargetOutputs) -> np.ndarray:
        """Membership scores of shape ``(n_records,)``; higher = more likely member."""

    def params(self) -> dict[str, Any]:
        """Parameters (and values chosen during ``fit``) recorded in results.json."""
        return {}

    def check_references(self, references: ReferenceOutputs | None) -> None:
        k = 0 if references is None else references.n_models
        if k < self.min_reference_models:
            raise InvalidInputError(
                f"attack {self.name!r} needs at least {self.min_reference_models} reference models; got {k}"
            )

    def check_population(self, target: TargetOutputs) -> None:
        if self.needs_population and target.n_population == 0:
            raise InvalidInputError(
                f"attack {self.name!r} needs population records (outputs on records no model trained on); got none"
            )
