"""The attack interface: ``fit`` on reference models' outputs, ``score`` the target's records.

``fit`` never receives the target's ground truth, so nothing an attack calibrates (a threshold,
RMIA's ``a``, LiRA's variances) can leak the answer it is scored against.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from memberscope.exceptions import InvalidInputError
from memberscope.signals import check_logits

__all__ = ["Attack", "ReferenceOutputs", "TargetOutputs"]


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
    """

    logits: np.ndarray
    labels: np.ndarray
    population_logits: np.ndarray | None = None
    population_labels: np.ndarray | None = None

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
    """

    logits: np.ndarray
    masks: np.ndarray
    labels: np.ndarray
    population_logits: np.ndarray | None = None
    population_labels: np.ndarray | None = None

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
    """A membership-inference attack. ``score`` returns one value per record, higher = more likely member."""

    name: ClassVar[str]
    min_reference_models: ClassVar[int] = 0
    needs_population: ClassVar[bool] = False

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
