"""Run history: one SQLite row per attack of every audit, so leakage can be followed across runs.

Runs that name their model (``model_name``/``model_version`` in the audit config) can be compared across
versions: :func:`compare_versions` flags a version whose leakage is *significantly* higher than the version
recorded before it (see :data:`REGRESSION_RULES`).
"""

from __future__ import annotations

import itertools
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memberscope.exceptions import InvalidInputError
from memberscope.results import Results

__all__ = [
    "REGRESSION_RULES",
    "MetricChange",
    "VersionComparison",
    "compare_versions",
    "default_history_db",
    "list_runs",
    "record_run",
]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created TEXT, out_dir TEXT, dataset TEXT, model TEXT, seed INTEGER, reference_models INTEGER,
    attack TEXT, auc REAL, tpr_at_1pct REAL, tpr_at_1pct_low REAL, tpr_at_1pct_high REAL
)
"""
# Columns added after the first release, in order; databases written before them are migrated on open.
_ADDED_COLUMNS = (("model_name", "TEXT"), ("model_version", "TEXT"), ("auc_low", "REAL"), ("auc_high", "REAL"))

# How a newer version's metric is judged significantly higher than the previous version's.
REGRESSION_RULES = {
    "ci": "the newer version's 95% CI lies entirely above the previous version's 95% CI (lower bound > upper bound)",
    "point": "the newer version's point estimate lies above the previous version's 95% CI upper bound",
}


def default_history_db() -> Path:
    """``$MEMBERSCOPE_HISTORY_DB``, else ``$XDG_DATA_HOME/memberscope/history.sqlite`` (``~/.local/share``)."""
    if os.environ.get("MEMBERSCOPE_HISTORY_DB"):
        return Path(os.environ["MEMBERSCOPE_HISTORY_DB"])
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "memberscope" / "history.sqlite"


def _connect(db: str | Path, *, create: bool) -> sqlite3.Connection:
    db = Path(db)
    if not create and not db.exists():
        raise InvalidInputError(f"history database {str(db)!r} does not exist; audits with --db PATH create it")
    try:
        if create:
            db.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(db)
    except (OSError, sqlite3.Error) as exc:
        raise InvalidInputError(f"cannot open history database {str(db)!r}: {exc}") from None
    try:
        con.execute(_SCHEMA)
        present = {row[1] for row in con.execute("PRAGMA table_info(runs)")}
        with con:
            for column, kind in _ADDED_COLUMNS:
                if column not in present:
                    con.execute(f"ALTER TABLE runs ADD COLUMN {column} {kind}")
    except sqlite3.Error as exc:
        con.close()
        raise InvalidInputError(f"cannot open history database {str(db)!r}: {exc}") from None
    return con


def record_run(db: str | Path, results: Results, *, out_dir: str | Path | None = None) -> int:
    """Append one row per attack of ``results`` to the history in ``db``; returns the number of rows."""
    config = results.config
    rows = []
    for name, attack in results.attacks.items():
        m = attack.metrics
        ci = m.tpr_at_fpr_ci.get("0.01") or (None, None)
        rows.append(
            (
                results.created,
                str(out_dir) if out_dir is not None else None,
                results.dataset.name,
                config.get("model"),
                config.get("seed"),
                results.game.n_reference_models,
                name,
                float(m.auc),
                m.tpr_at_fpr.get("0.01"),
                ci[0],
                ci[1],
                config.get("model_name"),
                None if config.get("model_version") is None else str(config["model_version"]),
                m.auc_ci[0],
                m.auc_ci[1],
            )
        )
    con = _connect(db, create=True)
    with con:
        con.executemany(
            "INSERT INTO runs (created, out_dir, dataset, model, seed, reference_models, attack, auc, tpr_at_1pct,"
            " tpr_at_1pct_low, tpr_at_1pct_high, model_name, model_version, auc_low, auc_high)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    con.close()
    return len(rows)


def list_runs(db: str | Path, *, limit: int = 50) -> list[dict[str, Any]]:
    """The latest ``limit`` rows, newest first."""
    if limit < 1:
        raise InvalidInputError(f"limit {limit!r} must be at least 1")
    con = _connect(db, create=False)
    con.row_factory = sqlite3.Row
    rows = [dict(r) for r in con.execute("SELECT * FROM runs ORDER BY id DESC LIMIT ?", (limit,))]
    con.close()
    return rows


@dataclass(frozen=True)
class MetricChange:
    """One metric of one attack in one version, compared with the version recorded before it."""

    metric: str  # "tpr_at_1pct" or "auc"
    value: float | None
    ci: tuple[float, float] | None
    previous_value: float | None
    previous_ci: tuple[float, float] | None
    regression: bool

    def describe(self) -> str:
        what = "TPR at 1% FPR" if self.metric == "tpr_at_1pct" else "AUC"
        return f"{what} {_fmt(self.value, self.ci)} vs {_fmt(self.previous_value, self.previous_ci)} before"


@dataclass
class VersionComparison:
    """The versions of one model in the order they were first recorded, each attack's metrics and regressions.

    ``versions`` holds one dict per version: ``version``, ``created``, ``out_dir``, ``dataset`` and
    ``attacks`` (attack → ``{"auc", "auc_ci", "tpr_at_1pct", "tpr_at_1pct_ci", "changes": [MetricChange]}``).
    The latest recorded run of a version stands for it.
    """

    model_name: str
    rule: str
    versions: list[dict[str, Any]] = field(default_factory=list)

    def regressions(self, version: str | None = None) -> list[tuple[str, str, MetricChange]]:
        """``(version, attack, change)`` for every flagged change (of ``version`` only, when given)."""
        return [
            (v["version"], attack, change)
            for v in self.versions
            if version is None or v["version"] == version
            for attack, entry in v["attacks"].items()
            for change in entry["changes"]
            if change.regression
        ]

    @property
    def latest_regressed(self) -> bool:
        """True when the newest version is flagged against the one before it (what a CI job gates on)."""
        return bool(self.versions) and bool(self.regressions(self.versions[-1]["version"]))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "model_name": self.model_name,
            "rule": self.rule,
            "rule_text": REGRESSION_RULES[self.rule],
        }
        out["versions"] = [
            {
                **{k: v for k, v in version.items() if k != "attacks"},
                "attacks": {
                    name: {
                        **{k: v for k, v in entry.items() if k != "changes"},
                        "regression": any(c.regression for c in entry["changes"]),
                        "changes": [vars(c) for c in entry["changes"]],
                    }
                    for name, entry in version["attacks"].items()
                },
            }
            for version in self.versions
        ]
        out["latest_regressed"] = self.latest_regressed
        return out


def _fmt(value: float | None, ci: tuple[float, float] | None) -> str:
    if value is None:
        return "–"
    return f"{value:.4g}" + (f" ({ci[0]:.4g}–{ci[1]:.4g})" if ci is not None else "")


def _pair(low: Any, high: Any) -> tuple[float, float] | None:
    return (float(low), float(high)) if low is not None and high is not None else None


def _is_regression(value, ci, previous_ci, rule: str) -> bool:
    if previous_ci is None:
        return False
    if rule == "ci":
        return ci is not None and ci[0] > previous_ci[1]
    return value is not None and value > previous_ci[1]


def compare_versions(db: str | Path, model_name: str, *, rule: str = "ci") -> VersionComparison:
    """Compare every recorded version of ``model_name`` with the version recorded before it.

    A metric (TPR at 1% FPR, AUC) of an attack regresses when it is significantly higher than the previous
    version's by ``rule`` (:data:`REGRESSION_RULES`): ``"ci"`` (default) asks the two 95% CIs to be disjoint,
    ``"point"`` only the new point estimate to exceed the old CI. Versions are ordered by when they were first
    recorded (version strings such as git hashes need not sort); re-auditing a version replaces its figures.
    """
    if rule not in REGRESSION_RULES:
        raise InvalidInputError(f"regression rule {rule!r} is not one of: {', '.join(REGRESSION_RULES)}")
    con = _connect(db, create=False)
    con.row_factory = sqlite3.Row
    rows = [dict(r) for r in con.execute("SELECT * FROM runs WHERE model_name = ? ORDER BY id", (model_name,))]
    if not rows:
        known = [r[0] for r in con.execute("SELECT DISTINCT model_name FROM runs WHERE model_name IS NOT NULL")]
        con.close()
        raise InvalidInputError(
            f"no runs of model {model_name!r} in history {str(db)!r}; recorded model names: "
            + (", ".join(sorted(known)) if known else "none (audit with --model-name NAME --model-version V)")
        )
    con.close()
    versions: dict[str, dict[str, Any]] = {}
    for r in rows:  # ascending id: later runs of a version overwrite earlier ones, first appearance fixes order
        version = versions.setdefault(r["model_version"] or "", {"version": r["model_version"] or "", "attacks": {}})
        version.update(created=r["created"], out_dir=r["out_dir"], dataset=r["dataset"])
        version["attacks"][r["attack"]] = {
            "auc": r["auc"],
            "auc_ci": _pair(r["auc_low"], r["auc_high"]),
            "tpr_at_1pct": r["tpr_at_1pct"],
            "tpr_at_1pct_ci": _pair(r["tpr_at_1pct_low"], r["tpr_at_1pct_high"]),
            "changes": [],
        }
    ordered = list(versions.values())
    for before, after in itertools.pairwise(ordered):
        for attack, entry in after["attacks"].items():
            old = before["attacks"].get(attack)
            if old is None:
                continue
            for metric in ("tpr_at_1pct", "auc"):
                value, ci = entry[metric], entry[f"{metric}_ci"]
                old_value, old_ci = old[metric], old[f"{metric}_ci"]
                entry["changes"].append(
                    MetricChange(metric, value, ci, old_value, old_ci, _is_regression(value, ci, old_ci, rule))
                )
    return VersionComparison(model_name=model_name, rule=rule, versions=ordered)
