"""Do the shadow models answer like the target? Agreement on records the attacker holds, and a poor-fit verdict.

The target and a shadow are compared on the attacker's held-out records, which neither trained on
(:class:`~memberscope.redteam.shadowset.AttackerSplit`), as the API shows them:

- **label agreement**: the share of records both give the same predicted class;
- **confidence agreement**: ``1 - D``, ``D`` the two-sample Kolmogorov–Smirnov distance between their top-1
  confidences (the largest probability shown). Families differ most here: a random forest answers a record it
  never saw with confidence 0.3–0.6 where a network says 0.95.

A family candidate's **agreement** is the mean of the two (labels alone when the API shows labels only); the
red team keeps the candidate agreeing most (:func:`select_family`). The kept family then **fits poorly**
(:func:`fit_check`) when the target is further from its shadows than the shadows are from one another by more than
:data:`KS_TOLERANCE` in confidence distance or :data:`LABEL_TOLERANCE` in label agreement. Shadows train on fewer
records than the target typically did, so some distance is expected even for the right family (about 0.15 in
confidence distance for a network trained on 1,000 records against shadows trained on 600); a wrong family is
far beyond it (0.5–0.8 for networks or logistic regression against a random forest).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "GRID_SHARE",
    "KS_TOLERANCE",
    "LABEL_TOLERANCE",
    "Agreement",
    "Fit",
    "agreement",
    "fit_check",
    "on_grid_share",
    "select_family",
]

KS_TOLERANCE = 0.2
"""Confidence distance beyond the shadows' own spread at which the fit is poor."""
LABEL_TOLERANCE = 0.1
"""Label agreement below the shadows' own at which the fit is poor."""
GRID_SHARE = 0.9
"""Share of a candidate's probabilities on the target's natural ``1/n`` grid for it to be eligible."""


def _probs(logits: np.ndarray) -> np.ndarray:
    """Probabilities ``(n, C)`` of the first view of logits ``(n, q, C)``."""
    from memberscope.targets import softmax

    return softmax(np.asarray(logits, dtype=np.float64)[:, 0, :])


def _ks(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import ks_2samp

    return float(ks_2samp(a, b).statistic)


@dataclass
class Agreement:
    """How a shadow family's answers agree with the target's on the attacker's held-out records."""

    family: str
    labels: float
    confidence: float | None
    score: float
    grid_share: float | None = None
    """Share of the shadow's probabilities on the target's natural grid (None: the target shows none)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            k: (None if v is None else (round(v, 4) if isinstance(v, float) else v)) for k, v in asdict(self).items()
        }


def agreement(family: str, target_logits: np.ndarray, shadow_logits: np.ndarray, *, labels_only: bool) -> Agreement:
    """Agreement of one shadow's logits ``(h, q, C)`` (or several, ``(K, h, q, C)``, pooled) with the target's."""
    target = _probs(target_logits)
    shadows = shadow_logits if shadow_logits.ndim == 4 else shadow_logits[None]
    probs = [_probs(s) for s in shadows]
    labels = float(np.mean([(p.argmax(1) == target.argmax(1)).mean() for p in probs]))
    if labels_only:
        return Agreement(family, labels, None, labels)
    confidence = 1.0 - _ks(target.max(1), np.concatenate([p.max(1) for p in probs]))
    return Agreement(family, labels, confidence, (labels + confidence) / 2)


def on_grid_share(probs: np.ndarray, grid: int) -> float:
    """Share of a model's own probabilities ``(h, C)`` (before any post-processing: rounding puts anything on a
    decimal grid) strictly between 0 and 1 (beyond 1e-4) that are multiples of ``1/grid`` (to 1e-6); 1.0 when there
    is none. Values near 0 or 1 lie on every grid, so they do not count."""
    probs = np.asarray(probs, dtype=np.float64)
    inner = probs[(probs > 1e-4) & (probs < 1 - 1e-4)]
    if inner.size == 0:
        return 1.0
    scaled = inner * grid
    return float(np.isclose(scaled, np.round(scaled), rtol=0.0, atol=1e-6).mean())


def select_family(agreements: list[Agreement]) -> Agreement:
    """The candidate agreeing most with the target (label agreement breaking ties)."""
    return max(agreements, key=lambda a: (a.score, a.labels))


@dataclass
class Fit:
    """Whether the kept shadows answer like the target (the ``fit`` block of results.json)."""

    family: str
    target_label_agreement: float
    shadow_label_agreement: float
    target_confidence_distance: float | None
    shadow_confidence_distance: float | None
    poor: bool
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for k, v in out.items():
            if isinstance(v, float):
                out[k] = round(v, 4)
        return out


def fit_check(family: str, target_logits: np.ndarray, reference_logits: np.ndarray, *, labels_only: bool) -> Fit:
    """Compare the target's logits ``(h, q, C)`` with the reference shadows' ``(K, h, q, C)`` against the
    shadows' spread among themselves (each against the others); poor beyond the tolerances of the module."""
    target = _probs(target_logits)
    probs = [_probs(r) for r in reference_logits]
    k = len(probs)
    t_labels = float(np.mean([(p.argmax(1) == target.argmax(1)).mean() for p in probs]))
    pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
    s_labels = float(np.mean([(probs[i].argmax(1) == probs[j].argmax(1)).mean() for i, j in pairs]))
    reasons = []
    if s_labels - t_labels > LABEL_TOLERANCE:
        reasons.append(
            f"the target agrees with the {family} shadows on {t_labels:.0%} of the held-out records' labels, the "
            f"shadows with one another on {s_labels:.0%}"
        )
    t_ks = s_ks = None
    if not labels_only:
        pooled = [np.concatenate([p.max(1) for j, p in enumerate(probs) if j != i]) for i in range(k)]
        t_ks = _ks(target.max(1), np.concatenate([p.max(1) for p in probs]))
        s_ks = float(max(_ks(probs[i].max(1), pooled[i]) for i in range(k)))
        if t_ks - s_ks > KS_TOLERANCE:
            reasons.append(
                f"the target's confidences differ from the {family} shadows' (Kolmogorov–Smirnov distance "
                f"{t_ks:.2f}; {s_ks:.2f} among the shadows)"
            )
    return Fit(family, t_labels, s_labels, t_ks, s_ks, bool(reasons), reasons)
