"""Models in this process behind the target interface: scikit-learn estimators and Pipelines, torch modules, callables.

A local target answers what its model computes: probabilities for scikit-learn, logits for torch,
and whichever of the two a callable's (or a user's torch module's) first answer shows when the
caller does not declare it: rows in [0, 1] summing to 1 are read as probabilities, with a note in
:attr:`~memberscope.targets.Target.notes` (reading probabilities as logits understates leakage).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from memberscope.exceptions import InvalidInputError, ModelOutputError
from memberscope.targets._base import OUTPUT_KINDS, Target, n_records

__all__ = ["CallableTarget", "SklearnTarget", "TorchTarget"]


def _finite(values: np.ndarray, what: str) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        first = np.argwhere(bad)[0].tolist()
        raise ModelOutputError(
            f"{what} answered {int(bad.sum())} NaN or infinite values (first at index {first}); "
            "expected finite logits or probabilities"
        )
    return values


class _DetectsKind(Target):
    """A target whose output kind may be read off its first answer (``output_kind="auto"``)."""

    def _set_kind(self, output_kind: str) -> None:
        if output_kind != "auto" and output_kind not in OUTPUT_KINDS:
            raise InvalidInputError(f"output_kind {output_kind!r} is not 'auto' or one of {OUTPUT_KINDS}")
        self._auto = output_kind == "auto"
        self.output_kind = "logits" if self._auto else output_kind

    def _settle_kind(self, values: np.ndarray) -> np.ndarray:
        from memberscope.targets.outputs import detect_output_kind

        if self._auto:
            self._auto = False
            self.output_kind = detect_output_kind(values)
            if self.output_kind == "probabilities":
                self.notes.append(
                    f"{self.description}'s outputs are probabilities (every row in [0, 1] summing to 1); "
                    "they are read as probabilities, not logits"
                )
        if self.n_classes is None:
            self.n_classes = int(values.shape[1])
        return values


class SklearnTarget(Target):
    """A fitted scikit-learn classifier or Pipeline with ``predict_proba``.

    Parameters
    ----------
    estimator : fitted classifier or Pipeline
        Its ``classes_`` name the columns of ``predict_proba``.
    classes : array-like of shape (n_classes,), optional
        The classes the answers are laid out in (default: the estimator's ``classes_``). A model
        trained on a subset that lacks a class (a reference model) gets probability 0 for it.
    query_budget : int, optional

    Records are passed as given: a DataFrame reaches a Pipeline with its column names, strings,
    categoricals and missing values intact; arrays of more than two dimensions are flattened.
    Raises InvalidInputError if the estimator has no ``predict_proba``, is not fitted, or knows a class
    outside ``classes``.
    """

    output_kind = "probabilities"
    #: Known from the estimator (or ``classes``) from the start.
    n_classes: int
    classes: np.ndarray

    def __init__(self, estimator: Any, *, classes: Any = None, query_budget: int | None = None):
        super().__init__(query_budget=query_budget)
        _check_classifier(estimator)
        own = np.asarray(estimator.classes_)
        self.estimator = estimator
        self.classes = own if classes is None else np.asarray(classes)
        self.n_classes = len(self.classes)
        index = {c: i for i, c in enumerate(self.classes.tolist())}
        unknown = [c for c in own.tolist() if c not in index]
        if unknown:
            raise InvalidInputError(
                f"{type(estimator).__name__} predicts classes {unknown[:10]} that are not among the expected "
                f"classes {self.classes.tolist()[:20]}"
            )
        self._columns = np.array([index[c] for c in own.tolist()], dtype=np.int64)
        self._identity = len(own) == self.n_classes and bool(np.all(self._columns == np.arange(self.n_classes)))

    @property
    def description(self) -> str:
        return type(self.estimator).__name__

    def _query(self, records: Any) -> np.ndarray:
        X = records
        if not hasattr(records, "iloc"):
            X = np.asarray(records)
            if X.ndim > 2:
                X = X.reshape(len(X), -1)
        proba = _finite(self.estimator.predict_proba(X), self.description)
        self.queries_spent += n_records(records)
        if self._identity:
            return proba
        full = np.zeros((len(proba), self.n_classes), dtype=np.float64)
        full[:, self._columns] = proba
        return full

    def save(self, path: Path) -> None:
        import joblib

        joblib.dump(self.estimator, path)


def _check_classifier(estimator: Any) -> None:
    """Raise InvalidInputError unless ``estimator`` is a fitted classifier with ``predict_proba``."""
    name = type(estimator).__name__
    try:
        from sklearn.base import is_regressor

        regressor = is_regressor(estimator)
    except ImportError:  # pragma: no cover - scikit-learn is a core dependency
        regressor = False
    if regressor:
        raise InvalidInputError(
            f"{name} is a regressor; a membership audit needs a classifier whose predict_proba gives class "
            "probabilities"
        )
    if not hasattr(estimator, "predict_proba"):
        raise InvalidInputError(
            f"{name} has no predict_proba; a membership audit needs class probabilities. Fit it with "
            "probabilities on (e.g. SVC(probability=True)), or wrap it in "
            "sklearn.calibration.CalibratedClassifierCV, or pass a callable returning scores"
        )
    if not hasattr(estimator, "classes_"):
        raise InvalidInputError(f"{name} is not fitted (it has no classes_); fit it before auditing it")


class TorchTarget(_DetectsKind):
    """A ``torch.nn.Module`` mapping a batch of records ``(b, ...)`` to ``(b, n_classes)`` scores.

    Parameters
    ----------
    module : torch.nn.Module
        Put in eval mode; called under ``torch.inference_mode`` on float32 batches.
    n_classes : int, optional
        Read off the first answer when not given.
    output_kind : {"auto", "logits", "probabilities"}
        ``auto`` reads it off the first answer (see the module docstring).
    batch_size : int
        Records per forward pass.
    """

    def __init__(
        self,
        module: Any,
        *,
        n_classes: int | None = None,
        output_kind: str = "auto",
        batch_size: int = 4096,
        query_budget: int | None = None,
    ):
        super().__init__(query_budget=query_budget)
        self._set_kind(output_kind)
        self.net = module
        module.eval()
        self.n_classes = None if n_classes is None else int(n_classes)
        self.batch_size = int(batch_size)

    @property
    def description(self) -> str:
        return f"torch module {type(self.net).__name__}"

    def _forward(self, batch):
        """The module's answer to one float32 batch (subclasses add input preprocessing)."""
        return self.net(batch)

    def _query(self, records: Any) -> np.ndarray:
        import torch

        X = np.asarray(records)
        out = []
        with torch.inference_mode():
            for start in range(0, len(X), self.batch_size):
                batch = torch.from_numpy(np.ascontiguousarray(X[start : start + self.batch_size], dtype=np.float32))
                out.append(self._forward(batch).double().numpy())
        self.queries_spent += len(X)
        return self._settle_kind(_finite(np.concatenate(out), self.description))


class CallableTarget(_DetectsKind):
    """A function ``records -> scores (n, n_classes)``: logits or probabilities (``output_kind``, default read off
    the first answer)."""

    def __init__(
        self,
        fn: Callable[[Any], Any],
        *,
        n_classes: int | None = None,
        output_kind: str = "auto",
        query_budget: int | None = None,
    ):
        super().__init__(query_budget=query_budget)
        self._set_kind(output_kind)
        self.fn = fn
        self.n_classes = None if n_classes is None else int(n_classes)

    @property
    def description(self) -> str:
        return f"callable {getattr(self.fn, '__name__', type(self.fn).__name__)}"

    def _query(self, records: Any) -> np.ndarray:
        out = _finite(np.asarray(self.fn(records)), self.description)
        self.queries_spent += n_records(records)
        return self._settle_kind(out)
