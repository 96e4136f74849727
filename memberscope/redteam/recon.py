"""Recon: what does an endpoint expose, and which attacks does that allow?

Probes a :class:`~memberscope.targets.Target` with a few records and reads its answers:

1. granularity: a one-hot row for every probe is a label-only API; withheld (NaN) entries mean
   top-k (k = most entries shown); values outside [0, 1] or rows not summing to 1 mean logits;
2. precision: the fewest decimals that reproduce every value shown (at most 6, else full precision);
3. determinism: the same probes asked again must get the same answers;
4. rate limiting: 429/503 answers seen by an :class:`HttpTarget` (and their Retry-After), optionally
   provoked by a burst of one-record requests.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from memberscope.exceptions import InvalidInputError
from memberscope.targets import Target

__all__ = ["MODES", "Exposure", "detect_exposure", "recon"]

MODES = ("probabilities", "logits", "top-k", "rounded", "label-only")
MAX_DECIMALS = 6


@dataclass
class Exposure:
    """What a target shows of its model's output (the ``exposure`` block of a red-team results.json).

    Attributes
    ----------
    mode : {"probabilities", "logits", "top-k", "rounded", "label-only"}
    top_k : int or None
        Classes shown per answer in top-k mode.
    decimals : int or None
        Rounding precision of the values shown (top-k values may be rounded too); None = full precision.
    deterministic : bool
        Whether repeated queries got identical answers.
    rate_limited : bool
        Whether a 429/503 was seen.
    retry_after : float or None
        Largest Retry-After seen, in seconds.
    n_classes : int
    attacks_possible : list of str
    queries_spent : int
        Queries recon spent.
    notes : list of str
    """

    mode: str
    top_k: int | None
    decimals: int | None
    deterministic: bool
    rate_limited: bool
    n_classes: int
    attacks_possible: list[str]
    retry_after: float | None = None
    queries_spent: int = 0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Exposure:
        known = {k: values[k] for k in cls.__dataclass_fields__ if k in values}
        return cls(**known)

    def postprocess_spec(self) -> str:
        """The post-processor that makes a local (shadow) model show what this target shows."""
        if self.mode == "label-only":
            return "label-only"
        steps = []
        if self.mode == "top-k" and self.top_k is not None:
            steps.append(f"top-k:{self.top_k}")
        if self.decimals is not None:
            steps.append(f"round:{self.decimals}")
        return ",".join(steps)


def _decimals(values: np.ndarray) -> int | None:
    """Fewest decimals reproducing every value (to 1e-9), or None when more than MAX_DECIMALS are needed."""
    for d in range(MAX_DECIMALS + 1):
        if np.allclose(values, np.round(values, d), rtol=0.0, atol=1e-9):
            return d
    return None


def detect_exposure(observed: np.ndarray) -> tuple[str, int | None, int | None]:
    """``(mode, top_k, decimals)`` read from observed answers ``(n, n_classes)`` (see the module docstring)."""
    observed = np.asarray(observed, dtype=np.float64)
    if observed.ndim != 2 or len(observed) == 0:
        raise InvalidInputError(f"recon needs observed answers of shape (n >= 1, n_classes); got {observed.shape}")
    shown = ~np.isnan(observed)
    values = observed[shown]
    one_hot = shown.all() and np.isin(observed, (0.0, 1.0)).all() and (observed.sum(axis=1) == 1).all()
    if one_hot:
        return "label-only", None, None
    decimals = _decimals(values)
    k = int(shown.sum(axis=1).max())
    if k < observed.shape[1]:
        return "top-k", k, decimals
    if (
        values.min() < 0
        or values.max() > 1
        or (decimals is None and not np.allclose(observed.sum(axis=1), 1, atol=1e-3))
    ):
        return "logits", None, None
    if decimals is not None:
        return "rounded", None, decimals
    return "probabilities", None, None


def attacks_for(mode: str) -> list[str]:
    """Attacks that the exposure allows, strongest first."""
    return ["label-only"] if mode == "label-only" else ["shadow", "label-only"]


def recon(target: Target, probes: np.ndarray, *, repeats: int = 2, burst: int = 0) -> Exposure:
    """Probe ``target`` with records ``probes`` (asked ``repeats`` times) and report its :class:`Exposure`.

    ``burst`` extra one-record queries are sent as fast as the client allows, to see whether the
    endpoint rate-limits; they count against the query budget like any other.
    """
    probes = np.asarray(probes)
    if len(probes) == 0:
        raise InvalidInputError("recon needs at least one probe record")
    if repeats < 1:
        raise InvalidInputError(f"repeats must be >= 1; got {repeats}")
    start = target.queries_spent
    answers = [target.query(probes) for _ in range(repeats)]
    for i in range(burst):
        target.query(probes[i % len(probes)][None])
    mode, top_k, decimals = detect_exposure(answers[0])
    deterministic = all(np.array_equal(a, answers[0], equal_nan=True) for a in answers[1:])
    events = getattr(target, "rate_limit_events", [])
    waits = [e["retry_after"] for e in events if e.get("retry_after") is not None]
    notes = []
    if repeats < 2:
        notes.append("asked each probe once: determinism not tested")
    if not deterministic:
        notes.append("answers change between identical queries (noise or sampling): average repeated queries")
    if mode == "logits":
        notes.append("raw logits are exposed: they carry the most membership signal of any output")
    return Exposure(
        mode=mode,
        top_k=top_k,
        decimals=decimals,
        deterministic=deterministic,
        rate_limited=bool(events),
        retry_after=max(waits) if waits else None,
        n_classes=int(answers[0].shape[1]),
        attacks_possible=attacks_for(mode),
        queries_spent=target.queries_spent - start,
        notes=notes,
    )
