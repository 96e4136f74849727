"""Run history: one SQLite row per attack of every audit, so leakage can be followed across runs."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

from memberscope.exceptions import InvalidInputError

__all__ = ["default_history_db", "list_runs", "record_run"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created TEXT, out_dir TEXT, dataset TEXT, model TEXT, seed INTEGER, reference_models INTEGER,
    attack TEXT, auc REAL, tpr_at_1pct REAL, tpr_at_1pct_low REAL, tpr_at_1pct_high REAL
)
"""


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
    except sqlite3.Error as exc:
        con.close()
        raise InvalidInputError(f"cannot open history database {str(db)!r}: {exc}") from None
    return con


def record_run(db: str | Path, results: dict[str, Any], *, out_dir: str | Path | None = None) -> int:
    """Append one row per attack of ``results`` to the history in ``db``; returns the number of rows."""
    config, game = results.get("config") or {}, results.get("game") or {}
    rows = []
    for name, entry in results["attacks"].items():
        ci = (entry.get("tpr_at_fpr_ci") or {}).get("0.01") or [None, None]
        rows.append(
            (
                results.get("created"),
                str(out_dir) if out_dir is not None else None,
                (results.get("dataset") or {}).get("name"),
                config.get("model"),
                config.get("seed"),
                game.get("n_reference_models"),
                name,
                entry.get("auc"),
                (entry.get("tpr_at_fpr") or {}).get("0.01"),
                ci[0],
                ci[1],
            )
        )
    con = _connect(db, create=True)
    with con:
        con.executemany(
            "INSERT INTO runs (created, out_dir, dataset, model, seed, reference_models, attack, auc, tpr_at_1pct,"
            " tpr_at_1pct_low, tpr_at_1pct_high) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
