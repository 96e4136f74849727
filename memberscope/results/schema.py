"""The typed content of ``results.json``: one schema for every command.

``results.json`` is the source of truth of every run (audit, defend, red team, LLM audit, dataset
inference). Its layout is the :class:`Results` dataclass; :meth:`Results.to_dict` writes it and
:meth:`Results.from_dict` reads it back, upgrading files of schema 1.0 (written before typed results:
no ``kind`` for audits, ``kind: "defenses"`` in ``defenses.json``). Keys a reader does not know are
kept in ``extra`` and written back unchanged, so nothing a newer or older file holds is lost.

One rule decides which attack is "the strongest": :func:`strongest_attack`, used by the console, the
JSON (``headline``), the HTML and Markdown reports and the gate.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeGuard

from memberscope.exceptions import InvalidInputError

__all__ = [
    "KINDS",
    "SCHEMA_VERSION",
    "AttackResult",
    "DatasetInfo",
    "GameInfo",
    "Results",
    "TargetInfo",
    "headline_fpr",
    "strongest_attack",
]

SCHEMA_VERSION = "2.0"
"""The layout written by this version; 1.0 files are read and upgraded by :meth:`Results.from_dict`."""
READABLE_VERSIONS = ("1.0", "2.0")
KINDS = ("audit", "defend", "redteam", "llm", "dataset-inference")
HEADLINE_FPR = "0.01"
"""The false-positive rate a headline reports when it is recorded and resolvable (1%, as the field does)."""


# --------------------------------------------------------------------------------------------- the rule


def _finite(x: Any) -> TypeGuard[float]:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def headline_fpr(attacks: dict[str, Any]) -> str | None:
    """The FPR key a headline reports: ``"0.01"`` when every attack records it resolvably, else the smallest FPR
    that every attack resolves, else the largest recorded; None when no attack records a TPR.

    ``attacks`` maps names to :class:`AttackResult` or to their dictionaries.
    """
    entries = [_metrics_dict(a) for a in attacks.values()]
    keys = sorted({k for e in entries for k in e.get("tpr_at_fpr", {})}, key=float)
    if not keys:
        return None

    def resolvable(key: str) -> bool:
        return all(key in e.get("tpr_at_fpr", {}) and e.get("fpr_resolvable", {}).get(key, True) for e in entries)

    if HEADLINE_FPR in keys and resolvable(HEADLINE_FPR):
        return HEADLINE_FPR
    shared = [k for k in keys if resolvable(k)]
    return shared[0] if shared else keys[-1]


def headline_fpr_note(attacks: dict[str, Any], n_nonmembers: int | None = None) -> str | None:
    """Why the headline is not at FPR 1% (:data:`HEADLINE_FPR`), when it is not: the non-members cannot resolve
    1% (fewer than 100), or no attack recorded it; None when the headline is at 1% or there are no metrics."""
    key = headline_fpr(attacks)
    if key is None or key == HEADLINE_FPR:
        return None
    entries = [_metrics_dict(a) for a in attacks.values()]
    if not all(HEADLINE_FPR in e.get("tpr_at_fpr", {}) for e in entries):
        why = "not every attack recorded FPR 1% (--fpr)"
    else:
        have = f"{n_nonmembers} non-members" if n_nonmembers is not None else "the non-members"
        why = f"{have} cannot resolve FPR 1% (at least 100 are needed for one false positive)"
    return (
        f"the headline is at FPR {100 * float(key):g}%, not the usual 1%: {why}; figures at a larger FPR are not "
        "comparable with other runs' 1% headlines"
    )


def strongest_attack(attacks: dict[str, Any], fpr: str | float | None = None) -> str | None:
    """The strongest of ``attacks``: the highest TPR at ``fpr`` (default :func:`headline_fpr`), AUC breaking ties.

    Parameters
    ----------
    attacks : dict of str to AttackResult or dict
        Each with ``tpr_at_fpr`` (keyed by FPR) and ``auc``.
    fpr : str or float, optional
        The FPR to compare at (a key such as ``"0.01"`` or a rate).

    Returns
    -------
    str or None
        None when there is no attack.
    """
    if not attacks:
        return None
    from memberscope.metrics import fpr_key

    key = headline_fpr(attacks) if fpr is None else (fpr if isinstance(fpr, str) else fpr_key(fpr))

    def strength(name: str) -> tuple[float, float]:
        entry = _metrics_dict(attacks[name])
        tpr = entry.get("tpr_at_fpr", {}).get(key)
        auc = entry.get("auc")
        return (tpr if _finite(tpr) else -1.0, auc if _finite(auc) else -1.0)

    return max(attacks, key=strength)


def _metrics_dict(entry: Any) -> dict[str, Any]:
    if isinstance(entry, AttackResult):
        return {
            "tpr_at_fpr": entry.metrics.tpr_at_fpr,
            "fpr_resolvable": entry.metrics.fpr_resolvable,
            "auc": entry.metrics.auc,
        }
    return entry


# --------------------------------------------------------------------------------------------- records


class _Record:
    """Dataclass helpers: unknown keys kept in ``extra``; ``to_dict`` writes them back."""

    extra: dict[str, Any]

    @classmethod
    def _fields(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls) if f.name != "extra"]  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None):
        values = dict(values or {})
        names = cls._fields()
        known = {k: values.pop(k) for k in names if k in values}
        return cls(**known, extra=values)  # type: ignore[call-arg]

    def to_dict(self) -> dict[str, Any]:
        out = {k: _plain(getattr(self, k)) for k in self._fields()}
        out.update(self.extra)
        return out


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, tuple):
        return list(value)
    return value


@dataclass
class DatasetInfo(_Record):
    """The records of a run: where they came from and what they hold."""

    name: str = "?"
    source: str | None = None
    n_records: int | None = None
    n_classes: int | None = None
    feature_shape: list[int] | None = None
    fingerprint: str | None = None
    class_names: list[str] | None = None
    features: list[str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, dataset: Any) -> DatasetInfo:
        """The record of a loaded :class:`memberscope.datasets.Dataset` (name, source, size, classes, fingerprint)."""
        return cls(
            name=dataset.name,
            source=dataset.source,
            n_records=dataset.n_records,
            n_classes=dataset.n_classes,
            feature_shape=list(dataset.feature_shape),
            fingerprint=dataset.fingerprint(),
            class_names=list(dataset.class_names),
        )


@dataclass
class GameInfo(_Record):
    """The membership game: who trained on what."""

    pool_size: int | None = None
    population_size: int | None = None
    n_members: int | None = None
    n_nonmembers: int | None = None
    n_reference_models: int | None = None
    reference_design: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class TargetInfo(_Record):
    """The model attacked and how well it does its job."""

    recipe: dict[str, Any] | str | None = None
    description: str | None = None
    train_accuracy: float | None = None
    test_accuracy: float | None = None
    generalization_gap: float | None = None
    user_supplied: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class AttackResult:
    """One attack's metrics (:class:`~memberscope.metrics.AttackMetrics`), its slices, parameters and timings.

    ``per_class`` and ``per_group`` map a class or group to its metrics; ``per_slice`` maps a slicing (e.g.
    ``"loss_percentile"``, ``"prediction"``) to its slices' metrics. ``extra`` holds what a kind of run adds per
    attack (e.g. the red team's verdict FPR, the LLM passes used).
    """

    metrics: Any  # memberscope.metrics.AttackMetrics
    per_class: dict[str, Any] = field(default_factory=dict)
    per_group: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    per_slice: dict[str, dict[str, Any]] = field(default_factory=dict)

    SLICES: ClassVar[tuple[str, ...]] = ("per_class", "per_group")

    @property
    def auc(self) -> float:
        return float(self.metrics.auc)

    def tpr(self, fpr: str) -> float | None:
        return self.metrics.tpr_at_fpr.get(fpr)

    def to_dict(self) -> dict[str, Any]:
        out = self.metrics.to_dict()
        for name in self.SLICES:
            slices = getattr(self, name)
            if slices:
                out[name] = {k: m.to_dict() for k, m in slices.items()}
        if self.per_slice:
            out["per_slice"] = {
                slicing: {k: m.to_dict() for k, m in slices.items()} for slicing, slices in self.per_slice.items()
            }
        out["params"] = self.params
        out["timings"] = self.timings
        out.update(self.extra)
        return out

    @classmethod
    def from_dict(cls, entry: dict[str, Any]) -> AttackResult:
        entry = dict(entry)
        slices = {name: entry.pop(name, None) or {} for name in cls.SLICES}
        per_slice = entry.pop("per_slice", None) or {}
        params, timings = entry.pop("params", {}) or {}, entry.pop("timings", {}) or {}
        metrics, extra = _metrics_from_dict(entry)
        return cls(
            metrics=metrics,
            per_class={k: _metrics_from_dict(v)[0] for k, v in slices["per_class"].items()},
            per_group={k: _metrics_from_dict(v)[0] for k, v in slices["per_group"].items()},
            per_slice={
                slicing: {k: _metrics_from_dict(v)[0] for k, v in group.items()} for slicing, group in per_slice.items()
            },
            params=params,
            timings=timings,
            extra=extra,
        )


def _metrics_from_dict(entry: dict[str, Any]):
    """``(AttackMetrics, keys that are not its fields)`` from a metrics dictionary.

    A field the dictionary lacks (a hand-edited or truncated file, or one written before intervals named their
    method and PPV was recorded) reads as unknown: NaN for a number, a NaN interval, an empty mapping, 0 records,
    ``"unrecorded"`` for an interval's method; every consumer treats those as "not recorded".
    """
    from memberscope.metrics import AttackMetrics

    if not isinstance(entry.get("auc"), int | float) or isinstance(entry.get("auc"), bool):
        raise InvalidInputError(f"attack metrics must record a number 'auc'; got {entry.get('auc')!r}")
    fields_ = {f.name: f for f in dataclasses.fields(AttackMetrics)}
    values, extra = {}, {}
    for key, value in entry.items():
        if key in fields_:
            values[key] = _ci_tuples(key, value)
        else:
            extra[key] = value
    for name, f in fields_.items():
        if name in values:
            continue
        if name in ("auc_ci_method", "advantage_ci_method"):  # written before intervals named their method
            values[name] = "unrecorded"
            continue
        if name == "ppv_prior":
            values[name] = math.nan
            continue
        if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING:
            continue
        if name.endswith("_ci") and name.startswith("tpr"):
            values[name] = {}
        elif name.endswith("_ci"):
            values[name] = (math.nan, math.nan)
        elif name in ("tpr_at_fpr", "fpr_resolvable"):
            values[name] = {}
        elif name.startswith("n_"):
            values[name] = 0
        else:
            values[name] = math.nan
    return AttackMetrics(**values), extra


def _number(value: Any) -> Any:
    return math.nan if value is None else value


def _pair(value: Any) -> tuple[float, float]:
    if isinstance(value, list | tuple) and len(value) == 2:
        return (_number(value[0]), _number(value[1]))
    return (math.nan, math.nan)  # not recorded


def _ci_tuples(key: str, value: Any) -> Any:
    if key.endswith("_ci") and isinstance(value, dict):
        return {k: _pair(v) for k, v in value.items()}
    if key.endswith("_ci"):
        return _pair(value)
    if key in ("auc", "balanced_accuracy", "advantage", "ppv_prior"):
        return _number(value)
    if key in ("ppv_at_fpr", "operating_fpr") and isinstance(value, dict):
        return {k: _number(v) for k, v in value.items()}
    return value


# --------------------------------------------------------------------------------------------- results


class Sections(dict):
    """``Results.sections``: what a kind of run adds (``fidelity``, ``inputs``, ...). ``sections["headline"]``
    reads results.json's ``headline`` (computed from the results, never stored); another missing key that
    results.json holds at its top level says where to read it instead of a bare KeyError."""

    owner: Any = None  # the Results these belong to
    _TOP_LEVEL = ("attacks", "epsilon", "vulnerable_records", "game", "target", "dataset", "config", "warnings")

    def __missing__(self, key: Any) -> Any:
        if key == "headline" and self.owner is not None:
            return self.owner.headline
        if key in self._TOP_LEVEL:
            raise KeyError(
                f"{key!r} is not a section of the run: read it as results.{key} or results[{key!r}] (results.json "
                f"holds it at the top level); the sections are {sorted(self)}"
            )
        raise KeyError(key)


@dataclass
class Results:
    """Everything a run found, as written to ``results.json`` (see the module docstring).

    Attributes
    ----------
    kind : {"audit", "defend", "redteam", "llm", "dataset-inference"}
    config : dict — the settings that determine the numbers (with ``seed``).
    dataset, game, target : what was attacked, in which game, and how well the target does its job.
    attacks : dict of str to AttackResult — metrics per attack (empty when there is no ground truth).
    reference_models : dict — count and mean accuracies of the reference (or shadow) models.
    vulnerable_records : dict or None — the records the strongest attack singles out.
    epsilon : dict or None — empirical ε lower bounds.
    sections : dict — what a kind of run adds: ``fidelity``, ``defenses``, ``recommendation``, ``redteam``,
        ``llm``, ``dataset_inference``, ...
    timings : dict; warnings : list of str — everything that may make a figure understate leakage.
    """

    kind: str = "audit"
    config: dict[str, Any] = field(default_factory=dict)
    seeds: dict[str, Any] = field(default_factory=dict)
    dataset: DatasetInfo = field(default_factory=DatasetInfo)
    game: GameInfo = field(default_factory=GameInfo)
    target: TargetInfo = field(default_factory=TargetInfo)
    reference_models: dict[str, Any] = field(default_factory=lambda: {"count": 0})
    attacks: dict[str, AttackResult] = field(default_factory=dict)
    vulnerable_records: dict[str, Any] | None = None
    epsilon: dict[str, Any] | None = None
    sections: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    schema_version: str = SCHEMA_VERSION
    memberscope_version: str = ""
    created: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.sections, Sections):
            self.sections = Sections(self.sections)
        self.sections.owner = self
        if self.kind not in KINDS:
            raise InvalidInputError(f"results kind {self.kind!r} is not one of {KINDS}")
        if not self.memberscope_version:
            from memberscope import __version__

            self.memberscope_version = __version__
        if not self.created:
            self.created = time.strftime("%Y-%m-%dT%H:%M:%S%z")

    # -- the rule, applied ---------------------------------------------------------------------------

    def headline_fpr(self) -> str | None:
        return headline_fpr(self.attacks)

    def strongest_attack(self, fpr: str | float | None = None) -> str | None:
        return strongest_attack(self.attacks, fpr)

    def risk(self):
        """The run's :class:`~memberscope.results.risk.Risk` (:func:`memberscope.results.risk.assess`: every attack
        and recorded FPR against the documented thresholds; ``inconclusive`` without metrics)."""
        from memberscope.results.risk import assess, dataset_inference_risk

        if self.kind == "dataset-inference":
            shifted = bool((self.extra.get("validity") or {}).get("warning"))
            return dataset_inference_risk(self.extra.get("test") or {}, shifted=shifted)
        key = self.headline_fpr()
        conclusion = self._verdict_conclusion()
        if key is None and conclusion is not None:
            from memberscope.results.risk import verdict_risk

            return verdict_risk(conclusion[1], conclusion[0])
        return assess(
            self.attacks, key, self.strongest_attack(key) if key is not None else None, epsilon=self.epsilon_bounds()
        )

    def epsilon_bounds(self) -> dict[str, float]:
        """Per attack, the recorded empirical ε lower bound (``epsilon.clopper_pearson``); empty when none."""
        recorded = (self.epsilon or {}).get("clopper_pearson") or {}
        out = {}
        for name, bound in recorded.items():
            value = bound.get("epsilon") if isinstance(bound, dict) else None
            if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
                out[name] = float(value)
        return out

    @property
    def headline(self) -> dict[str, Any] | None:
        """results.json's ``headline`` (the FPR, the strongest attack, the finding and the risk level); None for a
        run without attack metrics. Also ``results["headline"]``."""
        return self._headline(self.headline_fpr())

    def _verdict_conclusion(self) -> tuple[float, dict[str, Any]] | None:
        """``(FPR, conclusion)`` of a red-team run's verdicts (None for other runs): without ground truth the risk
        level and the headline follow them."""
        red = self.sections.get("redteam") if self.kind == "redteam" else None
        conclusion = (red or {}).get("conclusion")
        fpr = ((red or {}).get("calibration") or {}).get("fpr_target")
        return (float(fpr), conclusion) if conclusion and fpr is not None else None

    def _headline(self, key: str | None) -> dict[str, Any] | None:
        """``results.json``'s headline: the FPR, the strongest attack, the one-sentence finding and the risk level
        that the console and the reports show (the same functions make them)."""
        from memberscope.report.model import headline_sentence

        if key is None:
            verdicts = self._verdict_conclusion()
            if verdicts is None:
                return None
            # A red team without ground truth: the verdicts' attack and FPR, and the risk their conclusion supports.
            return {
                "fpr": f"{verdicts[0]:g}",
                "strongest_attack": (self.sections.get("redteam") or {}).get("attack"),
                "finding": headline_sentence(self),
                "risk": self.risk().to_dict(),
            }
        out = {
            "fpr": key,
            "strongest_attack": self.strongest_attack(),
            "finding": headline_sentence(self),
            "risk": self.risk().to_dict(),
        }
        note = headline_fpr_note(self.attacks, self.game.n_nonmembers)
        if note is not None:
            out["fpr_note"] = note
        return out

    def warn(self, message: str) -> None:
        """Add ``message`` to the warnings once."""
        if message not in self.warnings:
            self.warnings.append(message)

    # -- JSON ----------------------------------------------------------------------------------------

    def __getitem__(self, key: str) -> Any:
        """Read access to the JSON view: ``results["attacks"]["loss"]["auc"]`` (a copy; edit the typed fields)."""
        return self.to_dict()[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.to_dict().get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self.to_dict()

    def to_dict(self) -> dict[str, Any]:
        key = self.headline_fpr()
        out: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "kind": self.kind,
            "memberscope_version": self.memberscope_version,
            "created": self.created,
            "config": self.config,
            "seeds": self.seeds,
            "dataset": self.dataset.to_dict(),
            "game": self.game.to_dict(),
            "target": self.target.to_dict(),
            "reference_models": self.reference_models,
            "attacks": {name: a.to_dict() for name, a in self.attacks.items()},
            "headline": self._headline(key),
            "vulnerable_records": self.vulnerable_records,
            "epsilon": self.epsilon,
            **self.sections,
            "timings": self.timings,
            "warnings": list(self.warnings),
        }
        out.update(self.extra)
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any], *, where: str = "results") -> Results:
        """Typed results from a ``results.json`` dictionary of schema 1.0 or 2.0.

        Raises InvalidInputError naming ``where`` for another schema version or a malformed entry.
        """
        if not isinstance(values, dict):
            raise InvalidInputError(f"{where} must hold a JSON object; got {type(values).__name__}")
        values = dict(values)
        version = values.pop("schema_version", "1.0")  # red-team and LLM files of 1.0 could omit it
        if version not in READABLE_VERSIONS:
            raise InvalidInputError(
                f"{where} has schema_version {version!r}; this memberscope reads {', '.join(READABLE_VERSIONS)}"
            )
        kind = values.pop("kind", None) or "audit"
        kind = {"defenses": "defend"}.get(kind, kind)
        if kind not in KINDS:
            raise InvalidInputError(f"{where} has kind {kind!r}; expected one of {KINDS}")
        attacks = values.pop("attacks", None) or {}
        if not isinstance(attacks, dict) or not all(isinstance(v, dict) for v in attacks.values()):
            raise InvalidInputError(f"{where}: 'attacks' must map attack names to metrics")
        try:
            typed_attacks = {name: AttackResult.from_dict(entry) for name, entry in attacks.items()}
        except (TypeError, KeyError) as exc:
            raise InvalidInputError(f"{where}: malformed attack metrics ({exc})") from None
        values.pop("headline", None)  # derived, recomputed on write
        known = {f.name for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {"kind": kind, "attacks": typed_attacks, "schema_version": SCHEMA_VERSION}
        for name, typ in (("dataset", DatasetInfo), ("game", GameInfo), ("target", TargetInfo)):
            kwargs[name] = typ.from_dict(values.pop(name, None))
        for name in known - {"kind", "attacks", "schema_version", "sections", "extra", "dataset", "game", "target"}:
            if name in values:
                kwargs[name] = values.pop(name)
        kwargs["sections"] = {k: values.pop(k) for k in list(values) if k in SECTION_KEYS}
        kwargs["extra"] = values
        return cls(**kwargs)


SECTION_KEYS = (
    "fidelity",
    "defenses",
    "recommendation",
    "plan",
    "undefended_test_accuracy",
    "notes",
    "redteam",
    "llm",
    "dataset_inference",
    "draws",
    "membership_probability",
    "ppv",
    "inputs",
)
"""Top-level keys that belong to one kind of run (kept in :attr:`Results.sections`)."""
