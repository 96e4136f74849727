"""The gateway's policy file: tiers (output policy + rate limits), probing detection, HTTP limits, audit log.

Example ``policy.yaml``::

    max_batch: 256                 # records per request
    max_abs_value: 1.0e6           # inputs outside [-1e6, 1e6] are refused
    keys_db: keys.sqlite           # paths are relative to the policy file
    storage: memory://             # or redis://127.0.0.1:6379 for several workers (limits and probing state)
    strategy: moving-window        # or sliding-window-counter, fixed-window
    tiers:
      full:  {output: identity, limits: "600/minute"}
      label: {output: label-only, limits: "60/minute;2000/day", probing_action: throttle}
      ops:   {admin: true}         # may read /metrics and /admin/alerts, may not predict
    probing:
      reference: reference.npy     # typical records the thresholds are calibrated on
      action: log                  # default action: log, throttle or block
      throttle_limits: "5/minute"
      cooldown_seconds: 600
      alpha: 0.01                  # false-evidence rate per test
      scan_window: 32              # perturbation-burst: scan_threshold evidence queries among
      scan_threshold: 10           #   a subject's last scan_window distinct ones
    http:
      max_body_bytes: null         # default 4096 + max_batch × n_features × 40
      max_header_bytes: 8192
      request_timeout_seconds: 10
      unauthenticated_limits: "30/minute"   # per source address
      trusted_proxies: []          # whose X-Forwarded-For is believed
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

__all__ = ["AuditConfig", "HttpLimits", "Policy", "ProbingConfig", "Tier", "load_policy"]

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


#: Settings of the SimHash detector this one replaced, with what to use instead.
_REMOVED_PROBING = {
    "bits": "components",
    "near_bits": "alpha",
    "burst_threshold": "scan_threshold",
}


@dataclass
class ProbingConfig:
    """Probing detection (see :mod:`memberscope.gateway.probing` for what each setting means)."""

    enabled: bool = True
    action: str = "log"
    window_seconds: float = 600.0
    #: Queries kept per subject (key, tenant, address).
    history: int = 512
    #: perturbation-burst: this many evidence queries among the last scan_window distinct ones.
    scan_window: int = 32
    scan_threshold: int = 10
    #: Per-test false-evidence rate, calibrated on the reference's held-out half.
    alpha: float = 0.01
    components: int = 48
    near_variance: float = 0.9
    repeat_threshold: int = 20
    margin: float = 0.1
    boundary_fraction: float = 0.5
    boundary_min: int = 50
    throttle_limits: str = "5/minute"
    cooldown_seconds: float = 600.0
    reference: str | None = None
    #: Without a reference: distinct records served before the profile is fitted on them.
    bootstrap: int = 200
    #: Whose histories queries join.
    subjects: tuple[str, ...] = ("key", "tenant", "address")
    max_subjects: int = 50_000
    seed: int = 0

    def __post_init__(self) -> None:
        problems = []
        if self.action not in ACTIONS:
            problems.append(f"probing.action {self.action!r} is not one of {ACTIONS}")
        for name in ("history", "scan_window", "scan_threshold", "components", "repeat_threshold", "boundary_min"):
            if int(getattr(self, name)) < 1:
                problems.append(f"probing.{name} must be >= 1; got {getattr(self, name)}")
        if int(self.scan_threshold) > int(self.scan_window):
            problems.append(
                f"probing.scan_threshold ({self.scan_threshold}) must be at most scan_window ({self.scan_window})"
            )
        if int(self.bootstrap) < 0 or 0 < int(self.bootstrap) < 40:
            problems.append(f"probing.bootstrap must be 0 (off) or >= 40 records; got {self.bootstrap}")
        for name, lo, hi in (("alpha", 0.0, 0.5), ("near_variance", 0.0, 1.0), ("boundary_fraction", 0.0, 1.0)):
            value = float(getattr(self, name))
            if not lo < value <= hi:
                problems.append(f"probing.{name} must be in ({lo}, {hi}]; got {value}")
        for name in ("window_seconds", "cooldown_seconds"):
            if not float(getattr(self, name)) > 0:
                problems.append(f"probing.{name} must be > 0; got {getattr(self, name)}")
        self.subjects = tuple(self.subjects)
        unknown = sorted(set(self.subjects) - {"key", "tenant", "address"})
        if unknown or "key" not in self.subjects:
            problems.append(f"probing.subjects must include 'key' and name only key, tenant, address; got {unknown}")
        if problems:
            raise InvalidInputError("invalid policy: " + "; ".join(problems))
        self.throttle_rate_limits = _parse_limits(self.throttle_limits, "probing.throttle_limits")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProbingConfig:
        removed = sorted(set(data) & set(_REMOVED_PROBING))
        if removed:
            hints = ", ".join(f"{name} (now: {_REMOVED_PROBING[name]})" for name in removed)
            raise InvalidInputError(
                f"probing settings {removed} belonged to the SimHash detector, which a calibrated one replaced; "
                f"remove them: {hints}"
            )
        return cls(**data)


@dataclass
class HttpLimits:
    """Limits on what a client may send, enforced before a request reaches the model."""

    #: Bytes of request body actually received (chunked or not); default 4096 + max_batch × n_features × 40.
    max_body_bytes: int | None = None
    #: Request line plus headers.
    max_header_bytes: int = 8192
    #: The whole request (headers and body) must arrive within this many seconds (408 otherwise).
    request_timeout_seconds: float = 10.0
    #: Idle keep-alive connections are closed after this many seconds.
    keepalive_seconds: float = 5.0
    #: Open connections per process; more get 503.
    max_connections: int = 1024
    #: Requests without a valid key, per source address; beyond it 429 without checking keys.
    unauthenticated_limits: str = "30/minute"
    #: Keyless requests are counted per source address and bucket of this many seconds (no row each).
    keyless_bucket_seconds: float = 60.0
    #: Longest path written to the audit log (longer ones are cut and marked).
    max_logged_path: int = 256
    #: Reverse proxies whose X-Forwarded-For names the client (empty: trust none).
    trusted_proxies: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        problems = []
        if self.max_body_bytes is not None and int(self.max_body_bytes) < 64:
            problems.append(f"http.max_body_bytes must be >= 64; got {self.max_body_bytes}")
        if int(self.max_header_bytes) < 1024:
            problems.append(f"http.max_header_bytes must be >= 1024; got {self.max_header_bytes}")
        for name in ("request_timeout_seconds", "keepalive_seconds", "keyless_bucket_seconds"):
            if not float(getattr(self, name)) > 0:
                problems.append(f"http.{name} must be > 0; got {getattr(self, name)}")
        for name in ("max_connections", "max_logged_path"):
            if int(getattr(self, name)) < 16:
                problems.append(f"http.{name} must be >= 16; got {getattr(self, name)}")
        if problems:
            raise InvalidInputError("invalid policy: " + "; ".join(problems))
        self.trusted_proxies = tuple(str(p) for p in self.trusted_proxies)
        self.unauthenticated_rate_limits = _parse_limits(self.unauthenticated_limits, "http.unauthenticated_limits")


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
    http: HttpLimits = field(default_factory=HttpLimits)
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
            "http",
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
            probing = ProbingConfig.from_dict(data.pop("probing", None) or {})
            audit = AuditConfig(**(data.pop("audit", None) or {}))
            http = HttpLimits(**(data.pop("http", None) or {}))
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
        return cls(tiers=tiers, probing=probing, audit=audit, http=http, **data)


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
