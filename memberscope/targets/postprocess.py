"""Output post-processors: what a deployment shows of a model's class probabilities at query time.

A post-processor maps probabilities of shape ``(n, n_classes)`` to what a caller *observes*, an
array of the same shape in which ``NaN`` marks an entry that is withheld (top-k). Label-only
outputs are one-hot rows. Post-processors compose left to right: ``"temperature:2,round:2"``
first scales, then rounds.

They are what a deployment shows (the gateway applies them), what a red team simulates on its
shadow models (:class:`~memberscope.targets.Postprocessed`), and the output-side defenses that
``memberscope defend`` evaluates.

Noise comes in two kinds. ``gaussian`` and ``laplace`` draw fresh noise for every answer, so an attacker who asks
the same record ``m`` times and averages shrinks it by ``sqrt(m)`` (:class:`Averaged` is that attacker's view).
``consistent-gaussian`` and ``consistent-laplace`` draw the noise from a keyed hash of the record (HMAC-SHA256
with a secret the deployment keeps): a repeated query gets the same answer, so averaging gains nothing, while
different records still get independent noise. Callers name the record each row answers with ``keys`` (bytes per
row); without them the row's probabilities stand for the record (a deterministic model answers a record the same
way every time).
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
    "Averaged",
    "Compose",
    "ConsistentGaussianNoise",
    "ConsistentLaplaceNoise",
    "GaussianNoise",
    "LabelOnly",
    "LaplaceNoise",
    "OutputPostprocessor",
    "Round",
    "Temperature",
    "TopK",
    "as_postprocessor",
    "needs_record_keys",
    "parse_postprocessors",
    "record_keys",
    "set_noise_secret",
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
    def __call__(
        self, probs: np.ndarray, *, rng: np.random.Generator | None = None, keys: Sequence[bytes] | None = None
    ) -> np.ndarray:
        """Observed outputs for ``probs`` ``(n, n_classes)``; ``rng`` draws per-call noise, ``keys`` (one bytes
        value per row, naming its record) seeds consistent noise."""

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

    def __call__(self, probs, *, rng=None, keys=None):
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

    def __call__(self, probs, *, rng=None, keys=None):
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

    def __call__(self, probs, *, rng=None, keys=None):
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

    def __call__(self, probs, *, rng=None, keys=None):
        probs = _check_probabilities(probs)
        out = np.zeros_like(probs)
        out[np.arange(len(probs)), np.argmax(probs, axis=1)] = 1.0
        return out


def _renormalized(probs: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """``probs + noise`` clipped at 0 and renormalized; a row whose noise zeroed every entry becomes uniform."""
    noisy = np.clip(probs + noise, 0.0, None)
    total = noisy.sum(axis=1, keepdims=True)
    uniform = np.full_like(probs, 1.0 / probs.shape[1])
    return np.where(total > 0, noisy / np.where(total > 0, total, 1.0), uniform)


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

    def __call__(self, probs, *, rng=None, keys=None):
        probs = _check_probabilities(probs)
        rng = rng if rng is not None else np.random.default_rng()
        return _renormalized(probs, self._sample(rng, probs.shape))

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


DEFAULT_NOISE_SECRET = b"memberscope consistent noise"
"""The secret of consistent noise when none is set: fine for simulations, never for a deployment (anyone who
knows it can recompute the noise); the gateway sets its own (:func:`set_noise_secret`)."""


def record_keys(records: Any, *, salt: bytes = b"") -> list[bytes]:
    """One bytes value per record of ``records`` (an array ``(n, ...)`` or a DataFrame), equal for equal records:
    what consistent noise is keyed by. ``salt`` separates deployments (two simulated models draw independent
    noise for the same record)."""
    if hasattr(records, "iloc"):
        import pandas as pd

        hashes = pd.util.hash_pandas_object(records, index=False).to_numpy()
        return [salt + int(h).to_bytes(8, "little") for h in hashes]
    flat = np.ascontiguousarray(np.asarray(records, dtype=np.float64).reshape(len(records), -1))
    return [salt + row.tobytes() for row in flat]


class _ConsistentNoise(_Noise):
    """Noise drawn from ``HMAC-SHA256(secret, key)`` of each row's record: a repeat gets the same answer."""

    stochastic = False

    def __init__(self, scale: float, *, secret: bytes = DEFAULT_NOISE_SECRET):
        super().__init__(scale)
        self.secret = bytes(secret)

    def __call__(self, probs, *, rng=None, keys=None):
        import hmac

        probs = _check_probabilities(probs)
        if keys is None:
            # The model's answer stands for the record; rounded so float noise of the model does not change it.
            keys = [row.tobytes() for row in np.ascontiguousarray(np.round(probs, 12))]
        elif len(keys) != len(probs):
            raise InvalidInputError(f"{self.name}: {len(keys)} record keys for {len(probs)} rows")
        noise = np.empty_like(probs)
        for i, key in enumerate(keys):
            seed = int.from_bytes(hmac.digest(self.secret, bytes(key), "sha256")[:16], "little")
            noise[i] = self._sample(np.random.default_rng(seed), probs.shape[1:])
        return _renormalized(probs, noise)


@POSTPROCESSORS.register("consistent-gaussian")
class ConsistentGaussianNoise(_ConsistentNoise):
    """Gaussian noise of standard deviation ``scale``, the same for every query of one record (keyed hash)."""

    name = "consistent-gaussian"

    def _sample(self, rng, shape):
        return rng.normal(0.0, self.scale, size=shape)


@POSTPROCESSORS.register("consistent-laplace")
class ConsistentLaplaceNoise(_ConsistentNoise):
    """Laplace noise of scale ``scale``, the same for every query of one record (keyed hash)."""

    name = "consistent-laplace"

    def _sample(self, rng, shape):
        return rng.laplace(0.0, self.scale, size=shape)


def _steps(post: OutputPostprocessor) -> list[OutputPostprocessor]:
    inner = getattr(post, "inner", None)
    if inner is not None:
        return _steps(inner)
    return [s for step in getattr(post, "steps", [post]) for s in (_steps(step) if step is not post else [step])]


def needs_record_keys(post: OutputPostprocessor) -> bool:
    """Whether ``post`` draws consistent noise, keyed by the record each row answers."""
    return any(isinstance(step, _ConsistentNoise) for step in _steps(post))


def set_noise_secret(post: OutputPostprocessor, secret: bytes) -> OutputPostprocessor:
    """Give every consistent-noise step of ``post`` the deployment's ``secret``; returns ``post``."""
    for step in _steps(post):
        if isinstance(step, _ConsistentNoise):
            step.secret = bytes(secret)
    return post


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

    def __call__(self, probs, *, rng=None, keys=None):
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

    def __call__(self, probs, *, rng=None, keys=None):
        out = _check_probabilities(probs)
        for step in self.steps:
            # Withheld entries stay withheld: a later step works on the shown ones only.
            withheld = np.isnan(out)
            out = step(np.where(withheld, 0.0, out), rng=rng, keys=keys)
            if step.granularity != "label":
                out[withheld] = np.nan
        return out


class Averaged(OutputPostprocessor):
    """What an attacker sees who asks every record ``repeats`` times and averages the answers.

    For a post-processor that draws fresh noise per answer (``stochastic``), the mean of ``repeats`` draws of
    its answers read as probabilities (withheld entries sharing the unshown mass, labels as one-hot votes): the
    granularity becomes ``probabilities`` (averaged labels are vote shares). A deterministic post-processor (no
    noise, or consistent noise) answers every repeat the same, so averaging changes nothing and it is applied
    once. Simulating the repeats on one model answer is exact for a deterministic model.

    Not a policy a server applies, so :func:`parse_postprocessors` does not build it; its ``spec`` reads
    ``"<inner spec> averaged over <repeats>"``.
    """

    def __init__(self, inner: OutputPostprocessor, repeats: int):
        if int(repeats) != repeats or repeats < 1:
            raise InvalidInputError(f"repeats must be an integer >= 1; got {repeats!r}")
        self.inner, self.repeats = as_postprocessor(inner), int(repeats)

    @property
    def averages(self) -> bool:
        """Whether averaging changes what is seen (a stochastic post-processor asked more than once)."""
        return self.inner.stochastic and self.repeats > 1

    @property
    def spec(self) -> str:
        return f"{self.inner.spec} averaged over {self.repeats}" if self.averages else self.inner.spec

    @property
    def granularity(self) -> str:  # type: ignore[override]
        return "probabilities" if self.averages else self.inner.granularity

    @property
    def stochastic(self) -> bool:  # type: ignore[override]
        return self.inner.stochastic

    def __call__(self, probs, *, rng=None, keys=None):
        from memberscope.targets.outputs import as_probabilities

        if not self.averages:
            return self.inner(probs, rng=rng, keys=keys)
        rng = rng if rng is not None else np.random.default_rng()
        total = np.zeros_like(_check_probabilities(probs))
        for _ in range(self.repeats):
            total += as_probabilities(self.inner(probs, rng=rng, keys=keys), self.inner.granularity)
        return total / self.repeats


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
