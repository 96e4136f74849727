"""The torch side of the per-epoch audit, shared by the framework callbacks: held-out record sets, a torch model's
logits on them, and :class:`TrainingMonitor`, which audits every N epochs and keeps the curve.

A record set is ``(inputs, labels)``: ``inputs`` a tensor or array of shape (n, ...) fed as ``model(inputs)``, or a
mapping of them (``{"input_ids": ..., "attention_mask": ...}``) fed as ``model(**inputs)`` as Hugging Face models
take them; ``labels`` class indices of shape (n,). The model's output may be the logits, a tuple whose first item
they are, or an object or mapping with ``logits`` (a Hugging Face ``ModelOutput``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

import numpy as np

from memberscope.exceptions import InvalidInputError

__all__ = ["RecordSet", "TrainingMonitor", "model_logits"]


@dataclass(frozen=True)
class RecordSet:
    """Inputs (a tensor, or a mapping of tensors) and class labels of shape (n,) of one audited record set."""

    inputs: Any
    labels: np.ndarray

    @classmethod
    def of(cls, value: Any, what: str) -> RecordSet:
        """From ``(inputs, labels)``; checks that every input has ``n`` rows.

        Raises
        ------
        InvalidInputError
            When ``value`` is not a pair, or the row counts differ.
        """
        import torch

        if isinstance(value, RecordSet):
            return value
        if not isinstance(value, tuple | list) or len(value) != 2:
            raise InvalidInputError(f"{what} must be a pair (inputs, labels); got {type(value).__name__}")
        inputs, labels = value
        labels = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels)
        if labels.ndim != 1:
            raise InvalidInputError(f"{what} labels must have shape (n,); got shape {labels.shape}")

        def tensor(x: Any) -> torch.Tensor:
            t = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
            if t.shape[0] != labels.size:
                raise InvalidInputError(f"{what} has {labels.size} labels but inputs with {t.shape[0]} rows")
            return t

        inputs = {k: tensor(v) for k, v in inputs.items()} if isinstance(inputs, Mapping) else tensor(inputs)
        return cls(inputs, labels)

    def __len__(self) -> int:
        return int(self.labels.size)


def _logits_of(output: Any):
    if isinstance(output, Mapping) and "logits" in output:
        return output["logits"]
    if hasattr(output, "logits"):
        return output.logits
    if isinstance(output, tuple | list):
        return output[0]
    return output


def model_logits(model, records: RecordSet, *, batch_size: int = 1024) -> np.ndarray:
    """Logits of shape (n, n_classes) of a torch ``model`` on ``records``, in eval mode without gradients, in
    batches, on the model's device; the model's train/eval mode is restored afterwards."""
    import torch

    try:
        device = next(model.parameters()).device
    except StopIteration:
        device = torch.device("cpu")
    was_training = model.training
    model.eval()
    out = []
    try:
        with torch.no_grad():
            for start in range(0, len(records), batch_size):
                part = slice(start, start + batch_size)
                if isinstance(records.inputs, Mapping):
                    output = model(**{k: v[part].to(device) for k, v in records.inputs.items()})
                else:
                    output = model(records.inputs[part].to(device))
                out.append(_logits_of(output).detach().float().cpu().numpy())
    finally:
        model.train(was_training)
    return np.concatenate(out).astype(np.float64)


class _StopRule(TypedDict):
    """:meth:`PrivacyCurve.suggest_stop`'s options, as the monitor was given them."""

    max_tpr_rise: float
    min_accuracy_gain: float | None


class TrainingMonitor:
    """Audits a torch model every ``every_n_epochs`` epochs and keeps the :class:`~memberscope.monitor.PrivacyCurve`.

    Parameters
    ----------
    members : (inputs, labels)
        Records the model trains on (a subset of its training set is enough).
    nonmembers : (inputs, labels)
        Records it never trains on; at least ``1 / headline_fpr`` of them.
    population : (inputs, labels), optional
        Further records no model trains on; enables the class-calibrated loss attack and RMIA.
    reference_logits : tuple of two arrays, optional
        Outputs of reference models trained once on none of the audited records (see
        :class:`~memberscope.monitor.EpochAuditor`): enables RMIA.
    every_n_epochs : int, default 1
    stop_training : bool, default False
        Ask the framework to stop once the suggested stopping epoch is found (leakage rose with accuracy flat).
    max_tpr_rise, min_accuracy_gain : float
        The stopping rule's thresholds (:meth:`~memberscope.monitor.PrivacyCurve.suggest_stop`).
    out_dir : path, optional
        Where :meth:`finish` writes ``privacy_curve.json`` and ``privacy_curve.png``.
    batch_size : int, default 1024
        Records per forward pass when computing the logits.
    on_record : callable, optional
        Called with each :class:`~memberscope.monitor.EpochRecord`.
    **auditor : passed to :class:`~memberscope.monitor.EpochAuditor` (``attacks``, ``fprs``, ``headline_fpr``,
        ``n_bootstrap``, ``seed``).
    """

    def __init__(
        self,
        members: Any,
        nonmembers: Any,
        population: Any = None,
        *,
        reference_logits: tuple[Any, Any] | None = None,
        every_n_epochs: int = 1,
        stop_training: bool = False,
        max_tpr_rise: float = 0.02,
        min_accuracy_gain: float | None = None,
        out_dir: str | Path | None = None,
        batch_size: int = 1024,
        on_record: Callable[[Any], None] | None = None,
        **auditor: Any,
    ):
        from memberscope.monitor import EpochAuditor, PrivacyCurve

        if int(every_n_epochs) != every_n_epochs or every_n_epochs < 1:
            raise InvalidInputError(f"every_n_epochs must be an integer >= 1; got {every_n_epochs!r}")
        self.members = RecordSet.of(members, "members")
        self.nonmembers = RecordSet.of(nonmembers, "nonmembers")
        self.population = None if population is None else RecordSet.of(population, "population")
        self.auditor = EpochAuditor(
            self.members.labels,
            self.nonmembers.labels,
            None if self.population is None else self.population.labels,
            reference_logits=reference_logits,
            **auditor,
        )
        self.every_n_epochs = int(every_n_epochs)
        self.stop_training = bool(stop_training)
        rise, gain = float(max_tpr_rise), None if min_accuracy_gain is None else float(min_accuracy_gain)
        self.rule: _StopRule = {"max_tpr_rise": rise, "min_accuracy_gain": gain}
        for name, value in (("max_tpr_rise", rise), ("min_accuracy_gain", gain)):
            if value is not None and not 0 <= value < 1:
                raise InvalidInputError(f"{name} must be in [0, 1); got {value}")
        self.curve = PrivacyCurve()
        self.out_dir = None if out_dir is None else Path(out_dir)
        self.batch_size = int(batch_size)
        self.on_record = on_record

    def due(self, epoch: int, *, last: bool = False) -> bool:
        """Whether ``epoch`` (epochs completed) is audited: every N-th, and the last one."""
        audited = bool(self.curve.records) and self.curve.records[-1].epoch >= epoch
        return not audited and (epoch % self.every_n_epochs == 0 or last)

    def audit(self, model, epoch: int, *, step: int | None = None):
        """Audit ``model`` after ``epoch`` epochs; returns the :class:`~memberscope.monitor.EpochRecord`."""
        started = time.perf_counter()
        member = model_logits(model, self.members, batch_size=self.batch_size)
        nonmember = model_logits(model, self.nonmembers, batch_size=self.batch_size)
        population = None
        if self.population is not None:
            population = model_logits(model, self.population, batch_size=self.batch_size)
        record = self.auditor.audit(
            epoch, member, nonmember, population, step=step, seconds=time.perf_counter() - started
        )
        self.curve.append(record)
        if self.on_record is not None:
            self.on_record(record)
        return record

    def should_stop(self) -> bool:
        """With ``stop_training``: whether the curve already shows where to stop."""
        return self.stop_training and bool(self.curve.records) and self.curve.suggest_stop(**self.rule).triggered

    def suggest_stop(self):
        return self.curve.suggest_stop(**self.rule)

    def finish(self) -> dict[str, Path]:
        """Write ``privacy_curve.json`` and ``privacy_curve.png`` into ``out_dir`` (when given and something was
        audited); returns their paths."""
        if self.out_dir is None or not self.curve.records:
            return {}
        self.out_dir.mkdir(parents=True, exist_ok=True)
        return {
            "json": self.curve.write_json(self.out_dir / "privacy_curve.json", **self.rule),
            "plot": self.curve.plot(self.out_dir / "privacy_curve.png", **self.rule),
        }
