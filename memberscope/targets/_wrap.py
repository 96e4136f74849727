"""``wrap(obj)``: the one way to turn anything queryable into a :class:`~memberscope.targets.Target`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from memberscope.exceptions import InvalidInputError
from memberscope.targets._base import Target, n_records
from memberscope.targets.postprocess import OutputPostprocessor, as_postprocessor

__all__ = ["Postprocessed", "wrap"]


class Postprocessed(Target):
    """Another target seen through an output post-processor: what a deployment with that policy shows.

    Parameters
    ----------
    target : Target
        Queried for its outputs, which are turned into probabilities and post-processed.
    postprocess : str, list of str or OutputPostprocessor
        E.g. ``"top-k:1"``, ``"round:2"``, ``"label-only"``, ``"gaussian:0.05"``
        (see :func:`~memberscope.targets.postprocess.parse_postprocessors`).
    seed : int
        Seed of noise post-processors (each call draws fresh noise from one stream); consistent noise is keyed by
        the record and this seed, so two targets with different seeds draw independent noise.
    query_budget : int, optional
    """

    def __init__(
        self,
        target: Target,
        postprocess: str | Sequence[str] | OutputPostprocessor,
        *,
        seed: int = 0,
        query_budget: int | None = None,
    ):
        super().__init__(query_budget=query_budget)
        self.target = target
        self.postprocess = as_postprocessor(postprocess)
        self.output_kind = self.postprocess.granularity
        self.n_classes, self.classes = target.n_classes, target.classes
        self._rng = np.random.default_rng(seed)
        self._salt = int(seed).to_bytes(8, "little", signed=True)

    @property
    def description(self) -> str:
        return f"{self.target.description} ({self.postprocess.spec})"

    @property
    def stochastic(self) -> bool:  # type: ignore[override]
        return self.postprocess.stochastic or self.target.stochastic

    def _query(self, records: Any) -> np.ndarray:
        from memberscope.targets.outputs import as_probabilities
        from memberscope.targets.postprocess import needs_record_keys, record_keys

        observed = self.target.query(records)
        self.n_classes, self.classes = self.target.n_classes, self.target.classes
        self.queries_spent += n_records(records)
        keys = record_keys(records, salt=self._salt) if needs_record_keys(self.postprocess) else None
        return self.postprocess(as_probabilities(observed, self.target.output_kind), rng=self._rng, keys=keys)


def _is_torch_module(obj: Any) -> bool:
    import sys

    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.nn.Module)


def wrap(
    obj: Any,
    *,
    classes: Any = None,
    n_classes: int | None = None,
    output_kind: str = "auto",
    postprocess: str | Sequence[str] | OutputPostprocessor | None = None,
    query_budget: int | None = None,
    seed: int = 0,
    **http_options: Any,
) -> Target:
    """A :class:`Target` for ``obj``.

    Parameters
    ----------
    obj : Target, fitted scikit-learn classifier or Pipeline, torch.nn.Module, callable, URL or file path
        A URL (``http://``, ``https://``) becomes an :class:`~memberscope.targets.HttpTarget`
        (``http_options`` are its keyword arguments); a file path is loaded with
        :func:`~memberscope.targets.load_target`.
    classes : array-like, optional
        Classes the answers are laid out in (scikit-learn estimators; default their ``classes_``).
    n_classes : int, optional
        Number of classes; for a scikit-learn estimator with integer classes, lays the answers out over
        ``0 .. n_classes - 1`` (a class missing from its training data gets probability 0).
    output_kind : {"auto", "logits", "probabilities"}
        What a torch module or callable returns; ``auto`` reads it off the first answer.
    postprocess : optional
        An output policy to see the target through (:class:`Postprocessed`).
    query_budget : int, optional
    seed : int
        Seed of noise post-processors.

    Raises
    ------
    InvalidInputError
        For an object that cannot be queried: an estimator without ``predict_proba``, a regressor, an
        unfitted estimator, or anything else (the message names it and what is expected).
    """
    from memberscope.targets.local import CallableTarget, SklearnTarget, TorchTarget

    if isinstance(obj, Target):
        target = obj
    elif isinstance(obj, str | Path) and str(obj).startswith(("http://", "https://")):
        from memberscope.targets.http import HttpTarget

        target = HttpTarget(str(obj), n_classes=n_classes, **http_options)
    elif isinstance(obj, str | Path):
        from memberscope.targets.files import load_target

        target = load_target(obj, n_classes=n_classes)
    elif hasattr(obj, "fit") and (hasattr(obj, "predict") or hasattr(obj, "predict_proba")):
        if classes is None and n_classes is not None and hasattr(obj, "classes_"):
            own = np.asarray(obj.classes_)
            if np.issubdtype(own.dtype, np.integer):
                classes = np.arange(int(n_classes))
        target = SklearnTarget(obj, classes=classes)
    elif _is_torch_module(obj):
        target = TorchTarget(obj, n_classes=n_classes, output_kind=output_kind)
    elif callable(obj):
        target = CallableTarget(obj, n_classes=n_classes, output_kind=output_kind)
    else:
        raise InvalidInputError(
            f"cannot query a {type(obj).__name__}; expected a fitted scikit-learn classifier or Pipeline with "
            "predict_proba, a torch.nn.Module, a callable records -> scores, a model file or an http(s) URL"
        )
    if postprocess is not None:
        return Postprocessed(target, postprocess, seed=seed, query_budget=query_budget)
    if query_budget is not None:
        target.query_budget = int(query_budget)
    return target
