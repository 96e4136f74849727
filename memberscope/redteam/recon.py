"""Recon: what does an endpoint expose, and which attacks does that allow?

Probes a :class:`~memberscope.targets.Target` with a few records and reads its answers:

1. granularity: a one-hot row for every probe is a label-only API; withheld (NaN) entries mean
   top-k (k = most entries shown); values outside [0, 1] or rows not summing to 1 mean logits;
2. precision: the fewest decimals that reproduce every value shown (at most 6, else full precision), and
   whether the values lie on a model's *natural grid* instead: a random forest of ``n`` fully grown trees
   answers multiples of ``1/n`` whose rows sum exactly to 1, which rounding does not (rounded rows of more
   than two classes rarely sum to exactly 1);
3. determinism and noise: the same probes asked again must get the same answers; when they do not, the
   noise's standard deviation (from the differences between repeats) sets how many repeats an attacker
   averages (:func:`averaging_repeats`);
4. rate limiting: 429/503 answers seen by an :class:`HttpTarget` (and their Retry-After), optionally
   provoked by a burst of one-record requests;
5. a hint at the model family from the answer pattern (a grid of ``1/n``: a tree ensemble of ``n`` trees;
   raw logits: a network or linear model; smooth probabilities: a network, logistic regression or boosting),
   which orders the shadow-model families tried and keeps recommendations to what applies to that kind of model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from memberscope.exceptions import InvalidInputError
from memberscope.targets import Target

__all__ = [
    "FAMILY_HINTS",
    "MODES",
    "Exposure",
    "averaging_repeats",
    "detect_exposure",
    "family_hint",
    "gaussian_scale",
    "natural_grid",
    "noise_std",
    "recon",
]

MODES = ("probabilities", "logits", "top-k", "rounded", "label-only")
MAX_DECIMALS = 6
MAX_GRID = 1000
"""Largest ``n`` of a natural ``1/n`` grid looked for (a forest of up to 1,000 trees)."""
AVERAGING_PRECISION = 0.01
"""Standard deviation of the noise left after averaging that an attacker aims for (probability units)."""
MAX_REPEATS = 100
"""Most repeats of one record the attacks spend on averaging noise."""
FAMILY_HINTS = {
    "tree-ensemble": "a tree ensemble (random forest or extra trees): probabilities move in steps of 1/n_trees",
    "neighbours-or-trees": "k-nearest neighbours or a small tree ensemble: probabilities move in steps of 1/k",
    "trees": "a tree-based model: many probabilities are exactly 0",
    "smooth": "a smooth model (neural network, logistic regression or gradient boosting): no probability is "
    "exactly 0 and none lies on a grid",
    "logits": "a neural network or linear model: it answers raw logits",
    "unknown": "not told by the answers (labels or a single probability show too little)",
}
"""What each model-family hint of :func:`family_hint` means."""


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
    grid : int or None
        ``n`` when every value shown is a multiple of ``1/n`` and full rows sum exactly to 1: a model's natural
        grid (a forest of ``n`` trees), not rounding (``mode`` is then ``probabilities``).
    noise_std : float or None
        Standard deviation of the answers' noise (per probability, from repeated probes); 0 for deterministic
        answers, None when not measured (one ask per probe).
    noise_scale : float or None
        The ``gaussian:s`` post-processor that reproduces that noise on a model's probabilities
        (:func:`gaussian_scale`): what shadow models are shown.
    family_hint : str
        A key of :data:`FAMILY_HINTS`.
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
    grid: int | None = None
    noise_std: float | None = None
    noise_scale: float | None = None
    family_hint: str = "unknown"
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Exposure:
        known = {k: values[k] for k in cls.__dataclass_fields__ if k in values}
        return cls(**known)

    def postprocess_spec(self, *, noise: bool = True) -> str:
        """The post-processor that makes a local (shadow) model show what this target shows: Gaussian noise of
        the measured standard deviation (with ``noise``), top-k, rounding to the decimals seen (a decimal natural
        grid included: rounding a forest's own 1/100 steps to 2 decimals changes nothing), label only."""
        steps = []
        if noise and self.noise_std:
            steps.append(f"gaussian:{self.noise_scale or self.noise_std:.4g}")
        if self.mode == "label-only":
            return ",".join([*steps, "label-only"])
        if self.mode == "top-k" and self.top_k is not None:
            steps.append(f"top-k:{self.top_k}")
        if self.decimals is not None:
            steps.append(f"round:{self.decimals}")
        return ",".join(steps)

    def describe(self) -> str:
        """What the answers show, in words: ``"full probability vectors on a grid of 1/100"``."""
        shown = {
            "probabilities": "full probability vectors",
            "logits": "raw logits",
            "top-k": f"the top-{self.top_k} classes with their probabilities",
            "rounded": "probability vectors",
            "label-only": "the predicted label only",
        }[self.mode]
        if self.mode in ("label-only", "logits"):
            return shown
        if self.grid is not None:
            return f"{shown} on a grid of 1/{self.grid} (the model's own steps, not rounding)"
        if self.decimals is not None:
            return f"{shown}, rounded to {self.decimals} decimal" + ("" if self.decimals == 1 else "s")
        return f"{shown}, full precision"


def _decimals(values: np.ndarray) -> int | None:
    """Fewest decimals reproducing every value (to 1e-9), or None when more than MAX_DECIMALS are needed."""
    for d in range(MAX_DECIMALS + 1):
        if np.allclose(values, np.round(values, d), rtol=0.0, atol=1e-9):
            return d
    return None


def natural_grid(observed: np.ndarray) -> int | None:
    """The smallest ``n <= MAX_GRID`` such that every shown value of ``observed`` ``(n, n_classes)`` is a multiple of
    ``1/n`` and every full row sums to 1 (to 1e-9); None if there is none, or if the values are all 0 or 1.

    Rounded answers of more than two classes almost never sum to exactly 1, so a grid found here is the model's own
    (a forest of ``n`` fully grown trees averages ``n`` one-hot votes; k-nearest neighbours average ``k`` labels).
    """
    observed = np.asarray(observed, dtype=np.float64)
    shown = ~np.isnan(observed)
    values = observed[shown]
    if values.size == 0 or np.isin(values, (0.0, 1.0)).all() or values.min() < 0 or values.max() > 1:
        return None
    full = shown.all(axis=1)
    if full.any() and not np.allclose(observed[full].sum(axis=1), 1.0, rtol=0.0, atol=1e-9):
        return None
    for n in range(2, MAX_GRID + 1):
        scaled = values * n
        if np.allclose(scaled, np.round(scaled), rtol=0.0, atol=1e-6):
            return n
    return None


def noise_std(answers: list[np.ndarray]) -> float:
    """Standard deviation of the noise on each shown value, from ``answers`` ``(repeats, n, n_classes)`` to the same
    probes: the pooled spread of each value around its mean over repeats (0 for identical answers)."""
    stack = np.stack([np.asarray(a, dtype=np.float64) for a in answers])
    if len(stack) < 2:
        return 0.0
    shown = ~np.isnan(stack).any(axis=0)
    if not shown.any():
        return 0.0
    values = stack[:, shown]
    return float(np.sqrt(values.var(axis=0, ddof=1).mean()))


def gaussian_scale(answers: list[np.ndarray], *, seed: int = 0) -> float:
    """The standard deviation ``s`` of the ``gaussian:s`` post-processor (noise added, clipped at 0, renormalized)
    that reproduces the spread :func:`noise_std` of ``answers`` ``(repeats, n, n_classes)``: clipping and
    renormalizing shrink the spread seen (to about 0.4 s with 20 classes), so the spread alone understates the
    noise a shadow model must be shown. Found by bisection on simulated answers around the mean answer; the
    spread itself for answers with withheld entries."""
    from memberscope.targets.outputs import as_probabilities
    from memberscope.targets.postprocess import GaussianNoise

    seen = noise_std(answers)
    stack = np.stack([np.asarray(a, dtype=np.float64) for a in answers])
    if seen == 0 or np.isnan(stack).any():
        return seen
    probs = as_probabilities(stack.mean(axis=0), "probabilities")
    probs = probs / probs.sum(axis=1, keepdims=True)

    def simulated(scale: float) -> float:
        rng = np.random.default_rng(seed)
        return noise_std([GaussianNoise(scale)(probs, rng=rng) for _ in range(16)])

    lo, hi = seen, seen
    while simulated(hi) < seen and hi < 10.0:
        hi *= 2
    for _ in range(30):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if simulated(mid) < seen else (lo, mid)
    return float((lo + hi) / 2)


def averaging_repeats(std: float | None, *, precision: float = AVERAGING_PRECISION, cap: int = MAX_REPEATS) -> int:
    """Repeats of each query that bring noise of standard deviation ``std`` down to ``precision`` by averaging
    (``ceil((std / precision)^2)``, at least 1, at most ``cap``)."""
    if not std:
        return 1
    return int(min(cap, max(1, np.ceil((std / precision) ** 2))))


def family_hint(mode: str, observed: np.ndarray, grid: int | None) -> str:
    """A key of :data:`FAMILY_HINTS`: what the answer pattern says about the model family."""
    if mode == "logits":
        return "logits"
    if mode == "label-only":
        return "unknown"
    if grid is not None:
        return "tree-ensemble" if grid > 20 else "neighbours-or-trees"
    observed = np.asarray(observed, dtype=np.float64)
    full = ~np.isnan(observed).any(axis=1)
    if mode == "top-k" or not full.any():
        return "unknown"
    values = observed[full]
    if mode == "probabilities" and (values == 0).mean() > 0.3:
        return "trees"
    if mode == "probabilities":
        return "smooth"
    return "unknown"


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
    """Attacks that the exposure allows: per-record likelihood-ratio attacks and the shadow classifier on scores,
    the label-only attack on anything (``auto`` picks the one strongest on shadow models like the target)."""
    return ["label-only"] if mode == "label-only" else ["lira-offline", "rmia-offline", "shadow", "label-only"]


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
    std = noise_std(answers) if repeats >= 2 else None
    scale = gaussian_scale(answers) if std else std
    grid = None
    if mode in ("rounded", "probabilities", "top-k") and deterministic:
        grid = natural_grid(answers[0])
        if grid is not None and mode == "rounded":
            mode = "probabilities"  # the model's own steps: nothing was rounded
    hint = family_hint(mode, answers[0], grid)
    events = getattr(target, "rate_limit_events", [])
    waits = [e["retry_after"] for e in events if e.get("retry_after") is not None]
    notes = []
    if repeats < 2:
        notes.append("asked each probe once: determinism not tested")
    if not deterministic:
        n = averaging_repeats(std)
        notes.append(
            f"answers change between identical queries (noise of standard deviation {std:.3g}): an attacker "
            f"averages repeated queries; {n} repeats bring it to {std / np.sqrt(n):.3g}"
        )
    if grid is not None:
        notes.append(
            f"values lie on a grid of 1/{grid} and full rows sum exactly to 1: the model's own steps "
            f"({FAMILY_HINTS[hint]}), not rounding"
            + (
                f" (with two classes, rounding to {decimals} decimals would look the same)"
                if answers[0].shape[1] == 2 and decimals
                else ""
            )
        )
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
        grid=grid,
        noise_std=std,
        noise_scale=scale,
        family_hint=hint,
        notes=notes,
    )
