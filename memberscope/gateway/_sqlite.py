"""The gateway's SQLite files (keys, audit log): one connection per process, WAL, shared by threads."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def open_wal_database(path: str | Path, schema: str, *, synchronous: str | None = None) -> sqlite3.Connection:
    """A connection to ``path`` (created with its folder) in WAL mode with ``schema`` applied.

    Autocommit (``isolation_level=None``) and ``check_same_thread=False``: callers serialize use with a lock.
    """
    path = str(path)
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, check_same_thread=False, timeout=10.0, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    if synchronous is not None:
        conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
    conn.executescript(schema)
    return conn
