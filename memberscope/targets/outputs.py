"""Conversions between what targets answer: one softmax, one floor, one way to fill withheld entries.

The signals and attacks work on logits (anything whose softmax is the predicted distribution);
targets answer logits, probabilities, top-k probabilities or labels (:data:`~memberscope.targets.OUTPUT_KINDS`).
:func:`as_logits` turns any answer into such logits and :func:`as_probabilities` into probabilities,
so every consumer reads every kind of target the same way.
"""

from __future__ import annotations

import numpy as np

from memberscope.exceptions import InvalidInputError

__all__ = [
    "PROBABILITY_FLOOR",
    "as_logits",
    "as_probabilities",
    "detect_output_kind",
    "fill_withheld",
    "query_logits",
    "softmax",
]

PROBABILITY_FLOOR = 1e-30
"""Smallest probability kept when going to log space: trees answer exact zeros and APIs round to zero,
whose log would be ``-inf``; the floor keeps signals finite without reordering records."""


def softmax(logits: np.ndarray) -> np.ndarray:
    """``softmax(logits)`` over the last axis, in float64 (the accurate log-softmax of :mod:`memberscope.signals`)."""
    from memberscope.signals import log_probabilities

    return np.exp(log_probabilities(logits))


def fill_withheld(observed: np.ndarray) -> np.ndarray:
    """Observed outputs ``(n, n_classes)`` with each row's withheld (NaN) entries sharing its unshown mass equally.

    The attacker's best uniform guess for a top-k answer; rows without NaN are returned unchanged.
    """
    observed = np.asarray(observed, dtype=np.float64)
    if observed.ndim != 2:
        raise InvalidInputError(f"probabilities must have shape (n, n_classes); got shape {observed.shape}")
    withheld = np.isnan(observed)
    if not withheld.any():
        return observed
    shown_mass = np.where(withheld, 0.0, observed).sum(axis=1, keepdims=True)
    n_withheld = withheld.sum(axis=1, keepdims=True)
    share = np.clip(1.0 - shown_mass, 0.0, None) / np.maximum(n_withheld, 1)
    return np.where(withheld, share, observed)


def as_probabilities(observed: np.ndarray, kind: str) -> np.ndarray:
    """Probabilities ``(..., n_classes)`` from answers of ``kind`` (softmax of logits, withheld entries filled)."""
    _check_kind(kind)
    observed = np.asarray(observed, dtype=np.float64)
    if kind == "logits":
        return softmax(observed)
    shape = observed.shape
    return fill_withheld(observed.reshape(-1, shape[-1])).reshape(shape)


def as_logits(observed: np.ndarray, kind: str) -> np.ndarray:
    """Logits ``(..., n_classes)`` (float64) whose softmax is what answers of ``kind`` show.

    Logits are returned as they are; probabilities (rounded, top-k with withheld entries filled, or
    one-hot labels) become ``log(max(p, PROBABILITY_FLOOR))``.
    """
    if kind == "logits":
        return np.array(observed, dtype=np.float64)
    probs = as_probabilities(observed, kind)
    return np.log(np.maximum(np.nan_to_num(probs, nan=0.0), PROBABILITY_FLOOR))


def detect_output_kind(values: np.ndarray, *, atol: float = 1e-4) -> str:
    """``"probabilities"`` when every value of ``values`` ``(n, n_classes)`` lies in [0, 1] and either every row
    sums to 1 (within ``atol``) or the values are rounded (6 decimals or fewer, as APIs round probabilities);
    else ``"logits"``.

    Used for answers whose kind is not declared (a user's callable or torch module, an HTTP endpoint).
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.size == 0 or not np.isfinite(values).all():
        return "logits"
    if values.min() < 0.0 or values.max() > 1.0:
        return "logits"
    if np.allclose(values.sum(axis=1), 1.0, atol=atol):
        return "probabilities"
    rounded = np.allclose(values, np.round(values, 6), rtol=0.0, atol=1e-9)
    return "probabilities" if rounded else "logits"


def _check_kind(kind: str) -> None:
    from memberscope.targets._base import OUTPUT_KINDS

    if kind not in OUTPUT_KINDS:
        raise InvalidInputError(f"output kind {kind!r} is not one of {OUTPUT_KINDS}")


def query_logits(target, records) -> np.ndarray:
    """``as_logits(target.query(records), target.output_kind)``: any target's answers as logits ``(n, n_classes)``."""
    observed = target.query(records)
    return as_logits(observed, target.output_kind)
