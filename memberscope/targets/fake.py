"""An in-process fake target for tests, the way httpx's ``MockTransport`` stands in for a network."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from memberscope.exceptions import TargetUnreachableError
from memberscope.targets._base import Target
from memberscope.targets.postprocess import OutputPostprocessor, as_postprocessor, needs_record_keys, record_keys

__all__ = ["FakeTarget"]


class FakeTarget(Target):
    """``fn(X) -> probabilities`` plus a post-processor, failing on demand.

    Parameters
    ----------
    fn : callable
        ``X (n, ...) -> probabilities (n, n_classes)``.
    n_classes : int
    postprocess : str, list of str or OutputPostprocessor, optional
        What the fake deployment shows (see :func:`~memberscope.targets.postprocess.parse_postprocessors`).
    fail_after : int, optional
        Records answered before every later one fails with :class:`~memberscope.exceptions.TargetUnreachableError`
        (the failing call's ``answered`` holds the records it did answer).
    batch_size : int
        Records answered per internal step (failures happen at step boundaries).
    query_budget : int, optional
    seed : int
        Seed of noise post-processors.
    """

    def __init__(
        self,
        fn: Callable[[np.ndarray], np.ndarray],
        *,
        n_classes: int,
        postprocess: str | Sequence[str] | OutputPostprocessor | None = None,
        fail_after: int | None = None,
        batch_size: int = 64,
        query_budget: int | None = None,
        seed: int = 0,
    ):
        super().__init__(query_budget=query_budget)
        self.fn, self.n_classes = fn, int(n_classes)
        self.postprocess = as_postprocessor(postprocess)
        self.output_kind = self.postprocess.granularity
        self.fail_after, self.batch_size = fail_after, int(batch_size)
        self._rng = np.random.default_rng(seed)

    @property
    def stochastic(self) -> bool:  # type: ignore[override]
        return self.postprocess.stochastic

    def _query(self, X: Any) -> np.ndarray:
        out: list[np.ndarray] = []
        for start in range(0, len(X), self.batch_size):
            batch = X[start : start + self.batch_size]
            if self.fail_after is not None and self.queries_spent + len(batch) > self.fail_after:
                answered = np.concatenate(out) if out else None
                raise TargetUnreachableError("fake target: failing as configured", answered=answered)
            keys = record_keys(batch) if needs_record_keys(self.postprocess) else None
            out.append(self.postprocess(np.asarray(self.fn(batch), dtype=np.float64), rng=self._rng, keys=keys))
            self.queries_spent += len(batch)
        return np.concatenate(out)
