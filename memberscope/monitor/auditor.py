"""Audit a model while it trains: membership leakage on held-out members and non-members, one epoch at a time.

:class:`EpochAuditor` takes the model's outputs (logits) on a fixed set of its training records (members), records
it never trains on (non-members) and, optionally, population records, and scores them with attacks that need no
reference models trained per epoch:

- ``loss`` — the target's loss on each record (Yeom et al. 2018), a population-free threshold;
- ``loss-calibrated`` — the loss standardized per class on population records, so one threshold acts per class
  (a calibrated threshold; needs population records);
- ``rmia-offline`` — RMIA (Zarifzadeh et al. 2024) against a fixed set of reference models trained once, before
  training, on none of the audited records (all OUT): their outputs on the audited and population records are
  computed once and reused every epoch (needs population records and at least two reference models).

Each epoch's :class:`~memberscope.monitor.curve.EpochRecord` holds every attack's AUC and TPR at the reported FPRs
with bootstrap CIs (:func:`memberscope.metrics.evaluate`), the accuracy and mean loss on members and non-members,
and their gap. Everything here is numpy: the framework callbacks (:mod:`memberscope.integrations`) compute the
logits.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from memberscope.exceptions import InvalidInputError

__all__ = ["DEFAULT_FPRS", "AttackSpec", "EpochAuditor", "default_attacks"]

DEFAULT_FPRS = (0.1, 0.01)
"""FPRs at which each epoch's TPR is reported; the headline (the curve's leakage) is the one at 1%."""


@dataclass(frozen=True)
class AttackSpec:
    """One attack of the per-epoch audit: ``label`` in the records, the registered attack ``name`` and its
    ``params``."""

    label: str
    name: str
    params: dict[str, Any] = field(default_factory=dict)


def default_attacks(*, population: bool, references: int) -> list[AttackSpec]:
    """``loss``; ``loss-calibrated`` with population records; ``rmia-offline`` with population records and at least
    two reference models."""
    out = [AttackSpec("loss", "loss")]
    if population:
        out.append(AttackSpec("loss-calibrated", "loss", {"calibration": "class"}))
        if references >= 2:
            out.append(AttackSpec("rmia-offline", "rmia-offline"))
    return out


def _as_spec(item: Any) -> AttackSpec:
    if isinstance(item, AttackSpec):
        return item
    if isinstance(item, str):
        return AttackSpec(item, item)
    if isinstance(item, tuple | list) and len(item) in (2, 3):
        return AttackSpec(str(item[0]), str(item[1]), dict(item[2]) if len(item) == 3 else {})
    raise InvalidInputError(f"attack {item!r} must be a name, an AttackSpec or a (label, name[, params]) tuple")


def _labels(values: Any, what: str) -> np.ndarray:
    labels = np.asarray(values)
    if labels.ndim != 1 or labels.size == 0:
        raise InvalidInputError(f"{what} labels must have shape (n,) with n >= 1; got shape {labels.shape}")
    if labels.dtype.kind not in "iu" and not (labels.dtype.kind == "f" and np.all(labels == np.round(labels))):
        raise InvalidInputError(f"{what} labels must be class indices (integers); got dtype {labels.dtype}")
    return labels.astype(np.int64)


def _logits(values: Any, n: int, what: str) -> np.ndarray:
    logits = np.asarray(values, dtype=np.float64)
    if logits.ndim != 2 or logits.shape[0] != n:
        raise InvalidInputError(f"{what} logits must have shape ({n}, n_classes); got shape {logits.shape}")
    return logits


def _accuracy_and_loss(logits: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    from memberscope.signals import loss

    return float((logits.argmax(axis=1) == labels).mean()), float(loss(logits, labels).mean())


class EpochAuditor:
    """Membership leakage of a model during training, from its logits on fixed held-out records.

    Parameters
    ----------
    member_labels : array-like of shape (n_members,)
        Class indices of the audited training records (records the model trains on).
    nonmember_labels : array-like of shape (n_nonmembers,)
        Class indices of records the model never trains on.
    population_labels : array-like of shape (n_population,), optional
        Class indices of further records no model trains on (calibration, RMIA's comparison records).
    reference_logits : tuple of two arrays, optional
        Outputs of reference models trained once on none of the audited records: shape (K, n_members +
        n_nonmembers, n_classes) on the members then the non-members, and (K, n_population, n_classes).
    attacks : sequence, optional
        Attack names, :class:`AttackSpec` or ``(label, name, params)`` tuples; default :func:`default_attacks`.
        Only attacks that need no reference models, or RMIA with the fixed ``reference_logits``, fit here.
    fprs : sequence of float, default :data:`DEFAULT_FPRS`
    headline_fpr : float, default 0.01
        The FPR of the curve's leakage (TPR at this FPR of the strongest attack); must be one of ``fprs`` and
        resolvable: at least ``1 / headline_fpr`` non-members.
    n_bootstrap : int, default 200
        Bootstrap replicates of each epoch's CIs (fewer than an audit's: an epoch's audit must be quick).
    seed : int, default 0

    Raises
    ------
    InvalidInputError
        For labels that are not class indices, too few non-members to resolve the headline FPR, or an attack whose
        needs (reference models, population records) are not met.
    """

    def __init__(
        self,
        member_labels: Any,
        nonmember_labels: Any,
        population_labels: Any = None,
        *,
        reference_logits: tuple[Any, Any] | None = None,
        attacks: Sequence[Any] | None = None,
        fprs: Sequence[float] = DEFAULT_FPRS,
        headline_fpr: float = 0.01,
        n_bootstrap: int = 200,
        seed: int = 0,
    ):
        from memberscope.metrics import fpr_key

        self.member_labels = _labels(member_labels, "member")
        self.nonmember_labels = _labels(nonmember_labels, "non-member")
        self.population_labels = None if population_labels is None else _labels(population_labels, "population")
        self.fprs = tuple(float(f) for f in fprs)
        if headline_fpr not in self.fprs:
            self.fprs = (*self.fprs, float(headline_fpr))
        self.headline = fpr_key(headline_fpr)
        if self.n_nonmembers * headline_fpr < 1:
            raise InvalidInputError(
                f"{self.n_nonmembers} non-members cannot resolve TPR at FPR {headline_fpr:g}: give at least "
                f"{int(np.ceil(1 / headline_fpr))} non-members, or a larger headline_fpr"
            )
        self.n_bootstrap, self.seed = int(n_bootstrap), int(seed)
        self.references = self._references(reference_logits)
        n_refs = 0 if self.references is None else self.references.n_models
        specs = (
            default_attacks(population=self.population_labels is not None, references=n_refs)
            if attacks is None
            else [_as_spec(a) for a in attacks]
        )
        self._check(specs, n_refs)
        self.attacks = specs
        self._fitted: dict[str, Any] = {}

    @property
    def n_members(self) -> int:
        return int(self.member_labels.size)

    @property
    def n_nonmembers(self) -> int:
        return int(self.nonmember_labels.size)

    @property
    def labels(self) -> np.ndarray:
        """Class indices of the audited records: members, then non-members."""
        return np.concatenate([self.member_labels, self.nonmember_labels])

    @property
    def member(self) -> np.ndarray:
        return np.r_[np.ones(self.n_members, bool), np.zeros(self.n_nonmembers, bool)]

    def _references(self, reference_logits):
        if reference_logits is None:
            return None
        from memberscope.attacks import ReferenceOutputs

        if self.population_labels is None:
            raise InvalidInputError("reference_logits need population records (RMIA compares against them)")
        audited, population = reference_logits
        audited = np.asarray(audited, dtype=np.float64)
        population = np.asarray(population, dtype=np.float64)
        n = self.n_members + self.n_nonmembers
        if audited.ndim != 3 or audited.shape[1] != n or population.ndim != 3:
            raise InvalidInputError(
                f"reference logits must have shapes (K, {n}, n_classes) and (K, {self.population_labels.size}, "
                f"n_classes); got {audited.shape} and {population.shape}"
            )
        return ReferenceOutputs(
            logits=audited[:, :, None, :],
            masks=np.zeros(audited.shape[:2], dtype=bool),  # trained on none of the audited records
            labels=self.labels,
            population_logits=population[:, :, None, :],
            population_labels=self.population_labels,
        )

    def _check(self, specs: list[AttackSpec], n_refs: int) -> None:
        from memberscope.attacks import needs

        problems = []
        for spec in specs:
            need = needs(spec.name, **spec.params)
            if need.queries or need.outputs != "scores":
                problems.append(f"attack {spec.label!r} ({spec.name}) queries the model itself; use a scoring attack")
            if need.reference_models > n_refs:
                problems.append(
                    f"attack {spec.label!r} ({spec.name}) needs at least {need.reference_models} reference models; "
                    f"got {n_refs} (give reference_logits of models trained once, or leave it out)"
                )
            if need.population and self.population_labels is None:
                problems.append(f"attack {spec.label!r} ({spec.name}) needs population records; got none")
        labels = [s.label for s in specs]
        problems += [f"attack label {x!r} is used twice" for x in sorted({x for x in labels if labels.count(x) > 1})]
        if problems:
            raise InvalidInputError("the per-epoch audit cannot run:\n  - " + "\n  - ".join(problems))

    def _attack(self, spec: AttackSpec):
        """Attacks are fitted once: their only fitted state comes from the fixed reference models."""
        if spec.label not in self._fitted:
            from memberscope.attacks import create

            attack = create(spec.name, **spec.params)
            attack.fit(self.references)
            self._fitted[spec.label] = attack
        return self._fitted[spec.label]

    def audit(
        self,
        epoch: int,
        member_logits: Any,
        nonmember_logits: Any,
        population_logits: Any = None,
        *,
        step: int | None = None,
        seconds: float | None = None,
    ):
        """The :class:`~memberscope.monitor.curve.EpochRecord` of one epoch.

        Parameters
        ----------
        epoch : int — epochs completed (1 after the first).
        member_logits : array-like of shape (n_members, n_classes)
        nonmember_logits : array-like of shape (n_nonmembers, n_classes)
        population_logits : array-like of shape (n_population, n_classes), when the auditor has population records.
        step : int, optional — the optimizer step, for logging.
        seconds : float, optional — time already spent on this epoch's audit (computing the logits); the
            record's ``seconds`` adds the scoring time.
        """
        from memberscope.attacks import TargetOutputs
        from memberscope.exceptions import UnresolvableFPRWarning
        from memberscope.metrics import evaluate
        from memberscope.monitor.curve import EpochRecord

        started = time.perf_counter()
        mem = _logits(member_logits, self.n_members, "member")
        non = _logits(nonmember_logits, self.n_nonmembers, "non-member")
        pop = None
        if self.population_labels is not None:
            if population_logits is None:
                raise InvalidInputError("the auditor has population records: pass their logits too")
            pop = _logits(population_logits, self.population_labels.size, "population")
        target = TargetOutputs(
            logits=np.concatenate([mem, non])[:, None, :],
            labels=self.labels,
            population_logits=None if pop is None else pop[:, None, :],
            population_labels=self.population_labels,
        )
        member = self.member
        attacks, notes = {}, []
        for spec in self.attacks:
            scores = np.asarray(self._attack(spec).score(target), dtype=np.float64)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", UnresolvableFPRWarning)
                metrics = evaluate(member, scores, fprs=self.fprs, n_bootstrap=self.n_bootstrap, seed=self.seed)
            notes += [str(w.message) for w in caught if str(w.message) not in notes]
            attacks[spec.label] = metrics
        train_acc, train_loss = _accuracy_and_loss(mem, self.member_labels)
        test_acc, test_loss = _accuracy_and_loss(non, self.nonmember_labels)
        return EpochRecord.from_metrics(
            epoch=int(epoch),
            step=step,
            attacks=attacks,
            headline=self.headline,
            train_accuracy=train_acc,
            test_accuracy=test_acc,
            train_loss=train_loss,
            test_loss=test_loss,
            seconds=(seconds or 0.0) + time.perf_counter() - started,
            warnings=notes,
        )
