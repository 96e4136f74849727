"""Output post-processors: what a deployment shows of a model's class probabilities at query time.

A post-processor maps probabilities of shape ``(n, n_classes)`` to what a caller *observes*, an
array of the same shape in which ``NaN`` marks an entry that is withheld (top-k). Label-only
outputs are one-hot rows. Post-processors compose left to right: ``"temperature:2,round:2"``
first scales, then rounds.

They are what a deployment shows (the gateway applies them), what a red team simulates on its
shadow models (:class:`~memberscope.targets.Postprocessed`), and the output-side defenses that
``memberscope defend`` evaluates.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from memberscope.exceptions import InvalidInputError
from memberscope.registry import Registry

__all__ = [
    "POSTPROCESSORS",
    "Compose",
    "GaussianNoise",
    "LabelOnly",
    "LaplaceNoise",
    "OutputPostprocessor",
    "Round",
    "Temperature",
    "TopK",
    "as_postprocessor",
    "parse_postprocessors",
]

#: Post-processor classes by name; a spec's argument (``"round:2"``) is passed to the class.
POSTPROCESSORS: Registry[Callable[..., OutputPostprocessor]] = Registry("output post-processor")


def _check_probabilities(probs: np.ndarray) -> np.ndarray:
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2:
        raise InvalidInputError(f"probabilities must have shape (n, n_classes); got shape {probs.shape}")
    return probs


class OutputPostprocessor(ABC):
    """Maps probabilities ``(n, n_classes)`` to observed outputs ``(n, n_classes)`` (NaN = withheld)."""

    #: How much of the vector survives: "probabilities", "top-k" or "label" (a target's output kind).
    granularity = "probabilities"
    #: Whether the same input can be shown differently on two calls (noise drawn per call).
    stochastic = False

    @abstractmethod
    def __call__(self, probs: np.ndarray, *, rng: np.random.Generator | None = None) -> np.ndarray: ...

    @property
    @abstractmethod
    def spec(self) -> str:
        """The string that :func:`parse_postprocessors` turns back into this post-processor."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec!r})"


@POSTPROCESSORS.register("identity")
class Identity(OutputPostprocessor):
    """The full probability vector, unchanged."""

    spec = "identity"

    def __call__(self, probs, *, rng=None):
        return _check_probabilities(probs).copy()


@POSTPROCESSORS.register("round")
class Round(OutputPostprocessor):
    """Probabilities rounded to ``decimals`` decimal places (not renormalized, as APIs do)."""

    def __init__(self, decimals: int = 2):
        if int(decimals) != decimals or decimals < 0:
            raise InvalidInputError(f"round: decimals must be an integer >= 0; got {decimals!r}")
        self.decimals = int(decimals)

    @property
    def spec(self) -> str:
        return f"round:{self.decimals}"

    def __call__(self, probs, *, rng=None):
        return np.round(_check_probabilities(probs), self.decimals)


@POSTPROCESSORS.register("top-k")
class TopK(OutputPostprocessor):
    """Only the ``k`` largest probabilities are shown; the others are withheld (NaN)."""

    granularity = "top-k"

    def __init__(self, k: int = 1):
        if int(k) != k or k < 1:
            raise InvalidInputError(f"top-k: k must be an integer >= 1; got {k!r}")
        self.k = int(k)

    @property
    def spec(self) -> str:
        return f"top-k:{self.k}"

    def __call__(self, probs, *, rng=None):
        probs = _check_probabilities(probs)
        if self.k >= probs.shape[1]:
            return probs.copy()
        order = np.argsort(-probs, axis=1, kind="stable")
        out = np.full_like(probs, np.nan)
        keep = order[:, : self.k]
        rows = np.arange(len(probs))[:, None]
        out[rows, keep] = probs[rows, keep]
        return out


@POSTPROCESSORS.register("label-only")
class LabelOnly(OutputPostprocessor):
    """Only the predicted label: a one-hot row (ties go to the lowest class index)."""

    granularity = "label"
    spec = "label-only"

    def __call__(self, probs, *, rng=None):
        probs = _check_probabilities(probs)
        out = np.zeros_like(probs)
        out[np.arange(len(probs)), np.argmax(probs, axis=1)] = 1.0
        return out


class _Noise(OutputPostprocessor):
    #: The registered name, in the spec and in error messages (set by each kind of noise).
    name: str
    stochastic = True

    def __init__(self, scale: float):
        if not np.isfinite(scale) or scale < 0:
            raise InvalidInputError(f"{self.name}: scale must be a finite number >= 0; got {scale!r}")
        self.scale = float(scale)

    @property
    def spec(self) -> str:
        return f"{self.name}:{self.scale:g}"

    def __call__(self, probs, *, rng=None):
        probs = _check_probabilities(probs)
        rng = rng if rng is not None else np.random.default_rng()
        noisy = np.clip(probs + self._sample(rng, probs.shape), 0.0, None)
        total = noisy.sum(axis=1, keepdims=True)
        # A row whose noise zeroed every entry falls back to the uniform vector, not 0/0.
        uniform = np.full_like(probs, 1.0 / probs.shape[1])
        return np.where(total > 0, noisy / np.where(total > 0, total, 1.0), uniform)

    @abstractmethod
    def _sample(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        """Noise of shape ``shape`` at ``self.scale``, drawn from ``rng``."""


@POSTPROCESSORS.register("gaussian")
class GaussianNoise(_Noise):
    """Gaussian noise of standard deviation ``scale`` on each probability, clipped at 0, renormalized."""

    name = "gaussian"

    def _sample(self, rng, shape):
        return rng.normal(0.0, self.scale, size=shape)


@POSTPROCESSORS.register("laplace")
class LaplaceNoise(_Noise):
    """Laplace noise of scale ``scale`` on each probability, clipped at 0, renormalized."""

    name = "laplace"

    def _sample(self, rng, shape):
        return rng.laplace(0.0, self.scale, size=shape)


@POSTPROCESSORS.register("temperature")
class Temperature(OutputPostprocessor):
    """``softmax(log p / T)``: the same as dividing the logits by ``T`` (T > 1 flattens)."""

    def __init__(self, temperature: float = 2.0):
        if not np.isfinite(temperature) or temperature <= 0:
            raise InvalidInputError(f"temperature: T must be a finite number > 0; got {temperature!r}")
        self.temperature = float(temperature)

    @property
    def spec(self) -> str:
        return f"temperature:{self.temperature:g}"

    def __call__(self, probs, *, rng=None):
        from scipy.special import softmax

        probs = _check_probabilities(probs)
        with np.errstate(divide="ignore"):
            logp = np.log(probs)
        return softmax(logp / self.temperature, axis=1)


class Compose(OutputPostprocessor):
    """Applies post-processors left to right; the coarsest granularity wins.

    Put value-changing steps (temperature, noise) before the ones that hide values (top-k, round,
    label-only), as a server would: a step after top-k sees the withheld entries as zeros.
    """

    def __init__(self, steps: Sequence[OutputPostprocessor]):
        self.steps = list(steps)

    @property
    def spec(self) -> str:
        return ",".join(s.spec for s in self.steps) or "identity"

    @property
    def granularity(self) -> str:  # type: ignore[override]
        order = ["probabilities", "top-k", "label"]
        return max((s.granularity for s in self.steps), key=order.index, default="probabilities")

    @property
    def stochastic(self) -> bool:  # type: ignore[override]
        return any(s.stochastic for s in self.steps)

    def __call__(self, probs, *, rng=None):
        out = _check_probabilities(probs)
        for step in self.steps:
            # Withheld entries stay withheld: a later step works on the shown ones only.
            withheld = np.isnan(out)
            out = step(np.where(withheld, 0.0, out), rng=rng)
            if step.granularity != "label":
                out[withheld] = np.nan
        return out


def parse_postprocessors(spec: str | Sequence[str] | None) -> Compose:
    """``"round:2,top-k:1"`` (or a list of such items) → a :class:`Compose`; ``None``/``""`` → identity."""
    if spec is None:
        items: list[str] = []
    elif isinstance(spec, str):
        items = [s.strip() for s in spec.split(",") if s.strip()]
    else:
        items = [s.strip() for s in spec if s.strip()]
    steps: list[OutputPostprocessor] = []
    for item in items:
        name, _, arg = item.partition(":")
        cls = POSTPROCESSORS.get(name.strip())
        if not arg:
            steps.append(cls())
            continue
        try:
            value: Any = float(arg)
        except ValueError:
            raise InvalidInputError(f"output post-processor {item!r}: argument {arg!r} is not a number") from None
        steps.append(cls(int(value) if cls in (Round, TopK) and value == int(value) else value))
    return Compose([s for s in steps if not isinstance(s, Identity)])


def as_postprocessor(post: str | Sequence[str] | OutputPostprocessor | None) -> OutputPostprocessor:
    """``post`` if it is a post-processor already, else :func:`parse_postprocessors` of it."""
    if isinstance(post, OutputPostprocessor):
        return post
    return parse_postprocessors(post)
