"""Settings declared once: a shared base for every command's configuration and a table of constraints.

Each configuration is a dataclass whose class attribute ``_parameter_constraints`` maps a field to what it
may hold (scikit-learn's ``_parameter_constraints`` idea): the error messages come from that table, and
every problem is listed at once (``invalid audit configuration: - n_bootstrap must be an integer >= 0; got
-1 - ...``). Cross-field rules live in each class's ``_check`` and add to the same list.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from memberscope.exceptions import InvalidInputError
from memberscope.training.precision import PRECISION_CHOICES

__all__ = [
    "DEFAULT_FPRS",
    "AuditConfig",
    "Interval",
    "Options",
    "RunConfig",
    "Satisfies",
    "load_config_file",
]

DEFAULT_FPRS = (0.1, 0.01, 0.001, 0.0001)
TRAIN_MODES = ("sequential", "vectorized")
QUERY_SETS = ("none", "flip", "flip-shift")


# --------------------------------------------------------------------------------------------- constraints


class Constraint:
    """What a value may be; :meth:`holds` tests it and :meth:`describe` says it in words."""

    def holds(self, value: Any) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass(frozen=True)
class Interval(Constraint):
    """A number of ``kind`` (``int`` or ``float``) in an interval; ``None`` bounds are open-ended."""

    kind: type
    low: float | None = None
    high: float | None = None
    closed: str = "both"  # "both", "left", "right", "neither"

    def holds(self, value: Any) -> bool:
        if isinstance(value, bool):
            return False
        if self.kind is int and not (isinstance(value, int) or (isinstance(value, float) and value.is_integer())):
            return False
        if not isinstance(value, int | float) or not math.isfinite(value):
            return False
        low_ok = self.low is None or (value >= self.low if self.closed in ("both", "left") else value > self.low)
        high_ok = self.high is None or (value <= self.high if self.closed in ("both", "right") else value < self.high)
        return low_ok and high_ok

    def describe(self) -> str:
        what = "an integer" if self.kind is int else "a number"
        if self.low is not None and self.high is not None:
            left = "[" if self.closed in ("both", "left") else "("
            right = "]" if self.closed in ("both", "right") else ")"
            return f"{what} in {left}{self.low:g}, {self.high:g}{right}"
        if self.low is not None:
            return f"{what} {'>=' if self.closed in ('both', 'left') else '>'} {self.low:g}"
        if self.high is not None:
            return f"{what} {'<=' if self.closed in ('both', 'right') else '<'} {self.high:g}"
        return what


@dataclass(frozen=True)
class Options(Constraint):
    """One of a fixed set of values (``options`` may be a callable returning them, e.g. a registry's names)."""

    options: Iterable[Any] | Callable[[], Iterable[Any]]

    def _values(self) -> list[Any]:
        return list(self.options() if callable(self.options) else self.options)

    def holds(self, value: Any) -> bool:
        return value in self._values()

    def describe(self) -> str:
        return "one of " + ", ".join(repr(v) for v in self._values())


@dataclass(frozen=True)
class Satisfies(Constraint):
    """A value ``test`` accepts, described by ``text``."""

    test: Callable[[Any], bool]
    text: str

    def holds(self, value: Any) -> bool:
        try:
            return bool(self.test(value))
        except (TypeError, ValueError):
            return False

    def describe(self) -> str:
        return self.text


def _is_none(value: Any) -> bool:
    return value is None


NONE = Satisfies(_is_none, "None")
STRING = Satisfies(lambda v: isinstance(v, str) and bool(v.strip()), "a non-empty string")
BOOLEAN = Satisfies(lambda v: isinstance(v, bool), "true or false")
MAPPING = Satisfies(lambda v: isinstance(v, dict), "a mapping")


def check_value(name: str, value: Any, allowed: list[Constraint]) -> str | None:
    """The sentence naming ``value`` and what ``name`` expects, or None when one of ``allowed`` holds."""
    if any(c.holds(value) for c in allowed):
        return None
    expected = " or ".join(c.describe() for c in allowed if c is not NONE)
    return f"{name} must be {expected}{' (or None)' if NONE in allowed else ''}; got {value!r}"


# --------------------------------------------------------------------------------------------- the base


@dataclass
class RunConfig:
    """Everything that determines the numbers of a run on a dataset (with ``seed``, the run is reproducible).

    Shared by ``audit`` and ``defend`` (and built on by each): the data, the training recipe, the reference
    models, the attacks, the metrics, how training runs (parallel, vectorized, memory) and the cache.
    ``pool_size``/``population_size`` of ``None`` choose sizes from the dataset: a quarter of the
    records (at most 10,000) as population, the rest (at most 20,000) as the audit pool.
    ``n_jobs``/``backend`` run training jobs on joblib workers (``None``: an enclosing
    ``joblib.parallel_config`` decides, else one job at a time); ``ray_address`` is the Ray cluster
    for ``backend="ray"``; ``memory_budget`` (e.g. ``"2GiB"``) sizes vectorized training batches.
    None of these four changes a number in the results, only how fast and in how much memory.
    ``precision`` is the arithmetic of vectorized reference models (default ``fp32``, the same numbers on
    every machine; ``auto``: the fastest reduced precision that passes a check against float32 on the run's
    first few models, else ``fp32``, so the numbers then depend on the CPU; see
    :mod:`memberscope.engine.precision`); the target is always float32.
    """

    kind: ClassVar[str] = "run"
    dataset: str = "digits"
    data_dir: str | None = None
    label_column: str = "label"
    group_column: str | None = None
    id_column: str | None = None
    n_records: int | None = None
    model: str = "mlp"
    model_params: dict[str, Any] = field(default_factory=dict)
    reference_models: int = 16
    attacks: list[str] = field(default_factory=lambda: ["all"])
    attack_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    seed: int = 0
    pool_size: int | None = None
    population_size: int | None = None
    queries: str = "none"
    fprs: tuple[float, ...] = DEFAULT_FPRS
    n_bootstrap: int = 1000
    confidence: float = 0.95
    cache_dir: str | None = None
    use_cache: bool = True
    train_mode: str = "sequential"
    n_jobs: int | None = None
    backend: str | None = None
    ray_address: str | None = None
    memory_budget: str | None = None
    precision: str = "fp32"

    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        "dataset": [STRING],
        "data_dir": [NONE, STRING],
        "label_column": [STRING],
        "group_column": [NONE, STRING],
        "id_column": [NONE, STRING],
        "n_records": [NONE, Interval(int, 1)],
        "model": [STRING],
        "model_params": [MAPPING],
        "reference_models": [Interval(int, 0)],
        "attack_params": [MAPPING],
        "seed": [Interval(int)],
        "pool_size": [NONE, Interval(int, 1)],
        "population_size": [NONE, Interval(int, 1)],
        "queries": [Options(QUERY_SETS)],
        "n_bootstrap": [Interval(int, 0)],
        "confidence": [Interval(float, 0, 1, "neither")],
        "cache_dir": [NONE, STRING],
        "use_cache": [BOOLEAN],
        "train_mode": [Options(TRAIN_MODES)],
        "n_jobs": [
            NONE,
            Satisfies(
                lambda v: isinstance(v, int) and not isinstance(v, bool) and (v >= 1 or v == -1),
                "a positive integer or -1 (all CPUs)",
            ),
        ],
        "backend": [NONE, Options(lambda: _backends())],
        "ray_address": [NONE, STRING],
        "memory_budget": [NONE, Satisfies(lambda v: _parse_bytes(v) > 0, "a size such as '2GiB' or 1000000")],
        "precision": [Options(PRECISION_CHOICES)],
    }

    def __post_init__(self) -> None:
        self._normalize()
        problems: list[str] = []
        for cls in reversed(type(self).__mro__):
            for name, allowed in vars(cls).get("_parameter_constraints", {}).items():
                message = check_value(name, getattr(self, name), allowed)
                if message:
                    problems.append(message)
        problems += self._check()
        if problems:
            raise InvalidInputError(f"invalid {self.kind} configuration:\n  - " + "\n  - ".join(problems))

    def _normalize(self) -> None:
        """Accept the spellings users write (a comma-separated string of attacks, a list of FPRs, ...)."""
        from memberscope import attacks as registry

        if isinstance(self.attacks, str):
            self.attacks = [a.strip() for a in self.attacks.split(",") if a.strip()]
        self.attacks = list(self.attacks)
        if self.attacks == ["all"]:
            self.attacks = registry.names()
        self.fprs = tuple(float(f) for f in self.fprs)
        for name in ("n_records", "pool_size", "population_size", "reference_models", "n_bootstrap", "seed"):
            value = getattr(self, name)
            if isinstance(value, float) and value.is_integer():
                setattr(self, name, int(value))

    def _check(self) -> list[str]:
        """Rules across fields; each problem is a sentence naming the values."""
        from memberscope import attacks as registry

        problems = []
        known = registry.names()
        for name in self.attacks:
            if name not in known:
                problems.append(f"unknown attack {name!r}; expected 'all' or one of: {', '.join(known)}")
        if not self.attacks:
            problems.append("no attack selected; expected 'all' or a comma-separated list")
        for name in self.attack_params:
            if name not in self.attacks:
                problems.append(f"attack_params names {name!r}, which is not among the selected attacks")
        if isinstance(self.reference_models, int) and self.reference_models >= 0:
            for name in self.attacks:
                if name in known:
                    need = registry.ATTACKS.get(name).min_reference_models
                    if self.reference_models < need:
                        problems.append(
                            f"attack {name!r} needs at least {need} reference models; got "
                            f"reference_models={self.reference_models}"
                        )
        for fpr in self.fprs:
            if not 0.0 < fpr < 1.0:
                problems.append(f"FPR {fpr} is outside (0, 1)")
        if self.ray_address is not None and self.backend != "ray":
            problems.append(f"ray_address {self.ray_address!r} needs backend 'ray'; got backend {self.backend!r}")
        return problems

    def to_dict(self) -> dict[str, Any]:
        """The settings as plain JSON values (an estimator given as a parameter is written as its repr)."""
        from memberscope.results.io import json_safe

        out = json_safe(dataclasses.asdict(self))
        out["fprs"] = list(self.fprs)
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any]):
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise InvalidInputError(
                f"unknown configuration keys {unknown}; expected keys among: {', '.join(sorted(names))}"
            )
        return cls(**values)


@dataclass
class AuditConfig(RunConfig):
    """Everything that determines an audit's numbers (see :class:`~memberscope.config.RunConfig`), and:

    ``out`` — where the outputs go; ``model_name``/``model_version`` — name the audited model across versions,
    so ``memberscope history --model NAME`` can flag regressions; ``one_run_canaries`` — one-run auditing
    (Steinke et al. 2023): this many pool records become canaries whose inclusion in the target is re-drawn
    independently with probability 1/2, and each attack's guesses on them bound ε; ``epsilon_delta`` — δ of the
    empirical ε lower bounds (None: the target recipe's claimed δ when it declares one, else 0); ``targets`` — how
    many training draws the figures cover: besides the target, ``targets - 1`` reference models play the target in
    turn, each attacked with the other reference models only (leave-one-out, as Carlini et al. 2022 evaluate LiRA),
    so ``results.json`` records the mean and spread of every metric over draws (1: the target alone);
    ``member_prior`` — the share of members among the people the model could be asked about ("if 1% of the
    population were members": 0.01); results then give each attack's precision (PPV) at that prior besides the
    game's, and the per-record membership probability uses it (None: the game's member share).
    """

    kind: ClassVar[str] = "audit"
    out: str | None = None
    targets: int = 1
    model_name: str | None = None
    model_version: str | None = None
    one_run_canaries: int | None = None
    epsilon_delta: float | None = None
    member_prior: float | None = None

    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        "out": [NONE, STRING],
        "model_name": [NONE, STRING],
        "model_version": [
            NONE,
            Satisfies(
                lambda v: isinstance(v, str) and bool(v.strip()),
                "a non-empty string (quote versions like '1.10' in YAML)",
            ),
        ],
        "one_run_canaries": [NONE, Interval(int, 2)],
        "targets": [Interval(int, 1)],
        "epsilon_delta": [NONE, Interval(float, 0, 1, "left")],
        "member_prior": [NONE, Interval(float, 0, 1, "neither")],
    }

    def _normalize(self) -> None:
        super()._normalize()
        targets: object = self.targets  # declared int, but YAML or a caller may give 3.0
        if isinstance(targets, float) and targets.is_integer():
            self.targets = int(targets)
        if isinstance(self.model_version, int) and not isinstance(self.model_version, bool):
            self.model_version = str(self.model_version)

    def _check(self) -> list[str]:
        problems = super()._check()
        if self.model_version is not None and self.model_name is None:
            problems.append("model_version is set without model_name; name the model too (--model-name)")
        problems += self._check_targets()
        return problems

    def _check_targets(self) -> list[str]:
        from memberscope import attacks as registry

        if not isinstance(self.targets, int) or self.targets <= 1 or not isinstance(self.reference_models, int):
            return []
        problems = []
        if self.targets - 1 > self.reference_models:
            problems.append(
                f"targets={self.targets} needs at least {self.targets - 1} reference models to play the target; "
                f"got reference_models={self.reference_models}"
            )
        for name in self.attacks:
            if name in registry.names():
                need = registry.ATTACKS.get(name).min_reference_models
                if need and self.reference_models - 1 < need:
                    problems.append(
                        f"targets={self.targets}: attack {name!r} needs {need} reference models besides the one "
                        f"playing the target; got reference_models={self.reference_models} (use at least {need + 1})"
                    )
        return problems


def _backends() -> tuple[str, ...]:
    from memberscope.parallel import BACKENDS

    return BACKENDS


def _parse_bytes(value: Any) -> int:
    from memberscope.parallel import parse_bytes

    try:
        return parse_bytes(value)
    except InvalidInputError:
        return 0


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML (or JSON) config file into a dict of configuration fields."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise InvalidInputError(f"cannot read config file {str(path)!r}: {exc.strerror or exc}") from None
    try:
        values = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise InvalidInputError(f"config file {str(path)!r} is not valid YAML: {exc}") from None
    if not isinstance(values, dict):
        raise InvalidInputError(
            f"config file {str(path)!r} must hold a mapping of settings; got {type(values).__name__}"
        )
    return {k.replace("-", "_"): v for k, v in values.items()}
