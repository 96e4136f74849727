"""Per-record membership signals computed from a model's logits, in float64.

Every function takes ``logits`` of shape ``(..., n_classes)`` and integer ``labels`` broadcastable
to ``logits.shape[:-1]`` and returns an array of shape ``logits.shape[:-1]``. With augmented
queries the logits are ``(n_records, n_queries, n_classes)`` and ``labels`` is ``(n_records, 1)``.

Signals are computed from logits rather than from probabilities: ``log p`` of a very confident
prediction underflows to ``-inf`` (or rounds to 0) in probability space but stays exact here.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from memberscope.exceptions import InvalidInputError, ModelOutputError

__all__ = [
    "SIGNALS",
    "check_logits",
    "confidence",
    "entropy",
    "log_probabilities",
    "logit_confidence",
    "loss",
    "modified_entropy",
    "true_class_log_probability",
]


def check_logits(logits: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
    """Validate model outputs and return them as float64.

    Raises :class:`ModelOutputError` for NaN or infinite values and :class:`InvalidInputError`
    for labels that do not index a class.
    """
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim < 2:
        raise InvalidInputError(f"logits must have shape (..., n_classes); got shape {logits.shape}")
    bad = ~np.isfinite(logits)
    if bad.any():
        first = np.argwhere(bad)[0].tolist()
        raise ModelOutputError(
            f"model outputs contain {int(bad.sum())} NaN or infinite values (first at index "
            f"{first}); expected finite logits or log-probabilities"
        )
    if labels is not None:
        labels = np.asarray(labels)
        n_classes = logits.shape[-1]
        if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
            raise InvalidInputError(
                f"labels must lie in [0, {n_classes - 1}] for a model with {n_classes} classes; "
                f"got values from {labels.min()} to {labels.max()}"
            )
    return logits


def log_probabilities(logits: np.ndarray) -> np.ndarray:
    """``log softmax(logits)`` in float64, shape unchanged, accurate for confident predictions.

    ``z - logsumexp(z)`` loses the true-class log-probability of a confident prediction:
    ``log(1 + 1e-17)`` rounds to 0, so every record with a margin above ~37 gets loss exactly 0
    and they all tie. Written as ``-log1p(sum_{j != argmax} exp(z_j - z_max))`` around the arg-max,
    it keeps full relative precision (loss 1e-30 stays 1e-30).
    """
    z = np.asarray(logits, dtype=np.float64)
    top = z.argmax(axis=-1)[..., None]
    z_max = np.take_along_axis(z, top, axis=-1)
    shifted = np.exp(z - z_max)
    np.put_along_axis(shifted, top, 0.0, axis=-1)
    return z - z_max - np.log1p(shifted.sum(axis=-1, keepdims=True))


def _take_label(values: np.ndarray, labels: np.ndarray) -> np.ndarray:
    labels = np.broadcast_to(np.asarray(labels), values.shape[:-1])
    return np.take_along_axis(values, labels[..., None].astype(np.intp), axis=-1)[..., 0]


def _label_mask(shape: tuple[int, ...], labels: np.ndarray) -> np.ndarray:
    labels = np.broadcast_to(np.asarray(labels), shape[:-1])
    return np.arange(shape[-1]) == labels[..., None]


def true_class_log_probability(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``log p_y``."""
    return _take_label(log_probabilities(logits), labels)


def loss(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Cross-entropy loss ``-log p_y`` (lower for members)."""
    return -true_class_log_probability(logits, labels)


def confidence(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """True-class probability ``p_y`` (higher for members)."""
    return np.exp(true_class_log_probability(logits, labels))


def entropy(logits: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
    """Shannon entropy of the predicted distribution, in nats (lower for members)."""
    logp = log_probabilities(logits)
    return -(np.exp(logp) * logp).sum(axis=-1)


def _log1m_exp(logp: np.ndarray) -> np.ndarray:
    """``log(1 - exp(logp))`` for ``logp <= 0``, accurate when ``p`` is close to 0 or 1."""
    with np.errstate(divide="ignore"):
        out = np.where(logp > -0.6931471805599453, np.log(-np.expm1(logp)), np.log1p(-np.exp(logp)))
    return np.maximum(out, np.log(np.finfo(np.float64).tiny))


def modified_entropy(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Song & Mittal (2021) modified entropy (lower for members).

    ``Mentr = -(1 - p_y) log p_y - sum_{i != y} p_i log(1 - p_i)``
    """
    logp = log_probabilities(logits)
    p = np.exp(logp)
    is_label = _label_mask(logp.shape, labels)
    log_1mp = _log1m_exp(logp)
    true_term = -(1.0 - _take_label(p, labels)) * _take_label(logp, labels)
    other_terms = -np.where(is_label, 0.0, p * log_1mp).sum(axis=-1)
    return true_term + other_terms


def logit_confidence(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """LiRA's logit-scaled confidence ``phi = log p_y - log sum_{y' != y} p_{y'}``.

    Computed as ``z_y - logsumexp_{y' != y} z_{y'}`` so it stays exact when ``p_y`` is within
    float64 rounding of 0 or 1 (where ``log(p / (1 - p))`` would give ``±inf``).
    """
    logits = np.asarray(logits, dtype=np.float64)
    is_label = _label_mask(logits.shape, labels)
    others = logsumexp(np.where(is_label, -np.inf, logits), axis=-1)
    return _take_label(logits, labels) - others


# Signals by name, each oriented so that *higher means more likely member*.
SIGNALS = {
    "loss": lambda logits, labels: -loss(logits, labels),
    # p_y rounds to exactly 1.0 for confident members; log p_y ranks identically without ties.
    "confidence": true_class_log_probability,
    "entropy": lambda logits, labels: -entropy(logits),
    "modified-entropy": lambda logits, labels: -modified_entropy(logits, labels),
    "logit-confidence": logit_confidence,
}
