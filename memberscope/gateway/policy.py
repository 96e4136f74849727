"""The gateway's policy file: tiers (output policy + rate limits), probing detection, audit log.

Example ``policy.yaml``::

    max_batch: 256                 # records per request
    max_abs_value: 1.0e6           # inputs outside [-1e6, 1e6] are refused
    keys_db: keys.sqlite           # paths are relative to the policy file
    storage: memory://             # or redis://127.0.0.1:6379 for several workers
    strategy: moving-window        # or sliding-window-counter, fixed-window
    tiers:
      full:  {output: identity, limits: "600/minute"}
      label: {output: label-only, limits: "60/minute;2000/day", probing_action: throttle}
      ops:   {admin: true}         # may read /metrics and /admin/alerts, may not predict
    probing:
      action: log                  # default action: log, throttle or block
      throttle_limits: "5/minute"
      cooldown_seconds: 600
    audit:
      path: audit.sqlite
      retention_days: 30
      raw_records: false
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memberscope.exceptions import InvalidInputError

__all__ = ["AuditConfig", "Policy", "ProbingConfig", "Tier", "load_policy"]

ACTIONS = ("log", "throttle", "block")
STRATEGIES = ("moving-window", "sliding-window-counter", "fixed-window")


def _parse_limits(spec: str | None, where: str) -> list:
    from limits import parse_many

    if not spec:
        return []
    try:
        return list(parse_many(str(spec)))
    except ValueError:
        raise InvalidInputError(
            f"{where}: rate limit {spec!r} is not valid; expected e.g. '60/minute;2000/day'"
        ) from None


@dataclass
class Tier:
    """What a key of this tier may see and how often."""

    name: str
    output: str = "identity"
    limits: str = ""
    admin: bool = False
    probing_action: str | None = None

    def __post_init__(self) -> None:
        from memberscope.targets.postprocess import parse_postprocessors

        if self.probing_action is not None and self.probing_action not in ACTIONS:
            raise InvalidInputError(
                f"tier {self.name!r}: probing_action {self.probing_action!r} is not one of {ACTIONS}"
            )
        self.postprocessor = parse_postprocessors(self.output)
        self.rate_limits = _parse_limits(self.limits, f"tier {self.name!r}")


@dataclass
class ProbingConfig:
    """Thresholds of the three probing detectors (see :mod:`memberscope.gateway.probing`)."""

    enabled: bool = True
    action: str = "log"
    window_seconds: float = 600.0
    history: int = 1000
    bits: int = 64
    near_bits: int = 10
    repeat_threshold: int = 20
    burst_threshold: int = 25
    margin: float = 0.1
    boundary_fraction: float = 0.5
    boundary_min: int = 50
    throttle_limits: str = "5/minute"
    cooldown_seconds: float = 600.0
    reference: str | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise InvalidInputError(f"probing.action {self.action!r} is not one of {ACTIONS}")
        if not 1 <= self.bits <= 64:
            raise InvalidInputError(f"probing.bits must be in [1, 64]; got {self.bits}")
        for name in ("history", "repeat_threshold", "burst_threshold", "boundary_min"):
            if int(getattr(self, name)) < 1:
                raise InvalidInputError(f"probing.{name} must be >= 1; got {getattr(self, name)}")
        if not 0 < self.boundary_fraction <= 1:
            raise InvalidInputError(f"probing.boundary_fraction must be in (0, 1]; got {self.boundary_fraction}")
        self.throttle_rate_limits = _parse_limits(self.throttle_limits, "probing.throttle_limits")


@dataclass
class AuditConfig:
    path: str | None = None
    retention_days: float | None = 30.0
    raw_records: bool = False
    #: "normal" survives a crash of the server process (WAL); "full" also a power loss, at an fsync per request.
    synchronous: str = "normal"

    def __post_init__(self) -> None:
        if self.synchronous not in ("normal", "full"):
            raise InvalidInputError(f"audit.synchronous must be 'normal' or 'full'; got {self.synchronous!r}")


@dataclass
class Policy:
    tiers: dict[str, Tier]
    max_batch: int = 256
    #: Largest absolute input value accepted (huge finite inputs overflow many models).
    max_abs_value: float = 1e6
    keys_db: str | None = None
    storage: str = "memory://"
    strategy: str = "moving-window"
    probing: ProbingConfig = field(default_factory=ProbingConfig)
    audit: AuditConfig = field(default_factory=AuditConfig)
    public_docs: bool = False
    key_cache_seconds: float = 1.0
    seed: int | None = None
    #: Model metadata the file cannot tell (torch modules without a Linear first layer).
    model: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if int(self.max_batch) < 1:
            raise InvalidInputError(f"max_batch must be >= 1; got {self.max_batch}")
        if not 0 < float(self.max_abs_value) < float("inf"):
            raise InvalidInputError(f"max_abs_value must be a finite number > 0; got {self.max_abs_value}")
        if self.strategy not in STRATEGIES:
            raise InvalidInputError(f"strategy {self.strategy!r} is not one of {STRATEGIES}")
        if not str(self.storage).startswith(("memory://", "redis://", "rediss://", "redis+unix://")):
            raise InvalidInputError(f"storage {self.storage!r}: expected memory:// or redis://HOST:PORT")
        if not self.tiers:
            raise InvalidInputError("the policy defines no tiers; add e.g. tiers: {full: {output: identity}}")

    def probing_action(self, tier: Tier) -> str:
        return tier.probing_action or self.probing.action

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, base_dir: Path | None = None) -> Policy:
        """A policy from a parsed YAML mapping; relative paths are resolved against ``base_dir``."""
        if not isinstance(data, dict):
            raise InvalidInputError(f"a policy must be a mapping; got {type(data).__name__}")
        data = dict(data)
        known = {
            "tiers",
            "max_batch",
            "max_abs_value",
            "keys_db",
            "storage",
            "strategy",
            "probing",
            "audit",
            "public_docs",
        }
        known |= {"key_cache_seconds", "seed", "model"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidInputError(f"unknown policy setting(s) {unknown}; expected some of {sorted(known)}")
        tiers_raw = data.pop("tiers", None) or {}
        if not isinstance(tiers_raw, dict):
            raise InvalidInputError("policy 'tiers' must be a mapping of tier name to settings")
        try:
            tiers = {str(n): Tier(name=str(n), **(t or {})) for n, t in tiers_raw.items()}
            probing = ProbingConfig(**(data.pop("probing", None) or {}))
            audit = AuditConfig(**(data.pop("audit", None) or {}))
        except TypeError as exc:
            raise InvalidInputError(f"invalid policy: {exc}") from None

        def resolve(p: str | None) -> str | None:
            if p is None or base_dir is None or str(p) == ":memory:":
                return p
            return str((base_dir / p).resolve()) if not Path(p).is_absolute() else str(p)

        audit.path = resolve(audit.path)
        probing.reference = resolve(probing.reference)
        if "keys_db" in data:
            data["keys_db"] = resolve(data["keys_db"])
        return cls(tiers=tiers, probing=probing, audit=audit, **data)


def load_policy(path: str | Path) -> Policy:
    """Read a policy YAML file (see the module docstring)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"policy file {str(path)!r} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise InvalidInputError(f"policy file {str(path)!r} is not valid YAML: {exc}") from None
    return Policy.from_dict(data or {}, base_dir=path.parent.resolve())
