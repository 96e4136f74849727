"""The configuration of one audit: every choice in one validated, serialisable object."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memberscope.exceptions import InvalidInputError
from memberscope.parallel import BACKENDS, parse_bytes

__all__ = ["DEFAULT_FPRS", "AuditConfig", "load_config_file"]

DEFAULT_FPRS = (0.1, 0.01, 0.001, 0.0001)
# "vectorized" trains the reference models as one batched computation (torch MLP/logreg recipes).
TRAIN_MODES = ("sequential", "vectorized")


@dataclass
class AuditConfig:
    """Everything that determines an audit's numbers (with ``seed``, the run is reproducible).

    ``pool_size``/``population_size`` of ``None`` choose sizes from the dataset: a quarter of the
    records (at most 10,000) as population, the rest (at most 20,000) as the audit pool.
    ``n_jobs``/``backend`` run training jobs on joblib workers (``None``: an enclosing
    ``joblib.parallel_config`` decides, else one job at a time); ``ray_address`` is the Ray cluster
    for ``backend="ray"``; ``memory_budget`` (e.g. ``"2GiB"``) sizes vectorized training batches.
    None of these four changes a number in the results, only how fast and in how much memory.
    """

    dataset: str = "digits"
    data_dir: str | None = None
    label_column: str = "label"
    group_column: str | None = None
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
    out: str | None = None
    cache_dir: str | None = None
    use_cache: bool = True
    train_mode: str = "sequential"
    # Names the audited model across versions, so `memberscope history --model NAME` can flag regressions.
    model_name: str | None = None
    model_version: str | None = None
    # One-run auditing (Steinke et al. 2023): this many pool records become canaries whose inclusion in the
    # target is re-drawn independently with probability 1/2; each attack's guesses on them bound ε.
    one_run_canaries: int | None = None
    # δ of the empirical ε lower bounds; None: the target recipe's claimed δ when it declares one, else 0.
    epsilon_delta: float | None = None
    n_jobs: int | None = None
    backend: str | None = None
    ray_address: str | None = None
    memory_budget: str | None = None

    def __post_init__(self) -> None:
        from memberscope import attacks as attack_registry

        if isinstance(self.attacks, str):
            self.attacks = [a.strip() for a in self.attacks.split(",") if a.strip()]
        self.fprs = tuple(float(f) for f in self.fprs)
        problems: list[str] = []
        known = attack_registry.names()
        if self.attacks == ["all"]:
            self.attacks = list(known)
        for name in self.attacks:
            if name not in known:
                problems.append(f"unknown attack {name!r}; expected 'all' or one of: {', '.join(known)}")
        if not self.attacks:
            problems.append("no attack selected; expected 'all' or a comma-separated list")
        for name in self.attack_params:
            if name not in self.attacks:
                problems.append(f"attack_params names {name!r}, which is not among the selected attacks")
        if self.reference_models < 0:
            problems.append(f"reference_models must be >= 0; got {self.reference_models}")
        else:
            for name in self.attacks:
                if name in known:
                    need = attack_registry.ATTACKS.get(name).min_reference_models
                    if self.reference_models < need:
                        problems.append(
                            f"attack {name!r} needs at least {need} reference models; got "
                            f"reference_models={self.reference_models}"
                        )
        for fpr in self.fprs:
            if not 0.0 < fpr < 1.0:
                problems.append(f"FPR {fpr} is outside (0, 1)")
        if self.n_bootstrap < 0:
            problems.append(f"n_bootstrap must be >= 0; got {self.n_bootstrap}")
        if self.train_mode not in TRAIN_MODES:
            problems.append(f"train_mode {self.train_mode!r} is not one of {TRAIN_MODES}")
        if self.n_jobs is not None and (not isinstance(self.n_jobs, int) or self.n_jobs == 0 or self.n_jobs < -1):
            problems.append(f"n_jobs must be a positive integer or -1 (all CPUs); got {self.n_jobs!r}")
        if self.backend is not None and self.backend not in BACKENDS:
            problems.append(f"backend {self.backend!r} is not one of {BACKENDS}")
        if self.ray_address is not None and self.backend != "ray":
            problems.append(f"ray_address {self.ray_address!r} needs backend 'ray'; got backend {self.backend!r}")
        if self.memory_budget is not None:
            try:
                parse_bytes(self.memory_budget)
            except InvalidInputError as exc:
                problems.append(f"memory_budget: {exc}")
        if not 0.0 < self.confidence < 1.0:
            problems.append(f"confidence {self.confidence} is outside (0, 1)")
        for name in ("pool_size", "population_size", "n_records"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                problems.append(f"{name} must be a positive integer; got {value!r}")
        if isinstance(self.model_version, int) and not isinstance(self.model_version, bool):
            self.model_version = str(self.model_version)
        for name in ("model_name", "model_version"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                problems.append(
                    f"{name} must be a non-empty string (quote versions like '1.10' in YAML); got {value!r}"
                )
        if self.model_version is not None and self.model_name is None:
            problems.append("model_version is set without model_name; name the model too (--model-name)")
        if self.one_run_canaries is not None and (
            not isinstance(self.one_run_canaries, int)
            or isinstance(self.one_run_canaries, bool)
            or self.one_run_canaries < 2
        ):
            problems.append(f"one_run_canaries must be an integer >= 2; got {self.one_run_canaries!r}")
        if self.epsilon_delta is not None and not (
            isinstance(self.epsilon_delta, int | float) and 0 <= self.epsilon_delta < 1
        ):
            problems.append(f"epsilon_delta must be a number in [0, 1); got {self.epsilon_delta!r}")
        if not isinstance(self.seed, int):
            problems.append(f"seed must be an integer; got {self.seed!r}")
        if problems:
            raise InvalidInputError("invalid audit configuration:\n  - " + "\n  - ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["fprs"] = list(self.fprs)
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> AuditConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise InvalidInputError(
                f"unknown configuration keys {unknown}; expected keys among: {', '.join(sorted(names))}"
            )
        return cls(**values)


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML (or JSON) config file into a dict of :class:`AuditConfig` fields."""
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
