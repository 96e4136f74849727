"""The audit log: one SQLite row per request, committed before the response leaves.

SQLite in WAL mode with ``synchronous=NORMAL``: a committed row is in the WAL file, so it survives a
crash (even SIGKILL) of the server process; ``synchronous: full`` in the policy also survives a power
loss, at the cost of an fsync per request. Rows name the key by its public id, never the key; records
appear as a keyed fingerprint (HMAC-SHA256 under a secret of the gateway, truncated to 128 bits), which
links repeated queries of one record without storing it, unless the policy asks for raw records.
Probing alerts live in the same database, so every worker sees them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from memberscope.gateway._sqlite import open_wal_database

__all__ = ["DECISIONS", "AuditLog"]

DECISIONS = ("allowed", "throttled", "blocked", "rejected")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    id INTEGER PRIMARY KEY,
    time REAL NOT NULL,
    key_id TEXT,
    path TEXT NOT NULL,
    status INTEGER NOT NULL,
    decision TEXT NOT NULL,
    granularity TEXT,
    n_records INTEGER NOT NULL DEFAULT 0,
    fingerprints TEXT,
    records TEXT,
    detail TEXT
);
CREATE INDEX IF NOT EXISTS requests_time ON requests (time);
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY,
    time REAL NOT NULL,
    key_id TEXT NOT NULL,
    detector TEXT NOT NULL,
    action TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_key ON alerts (key_id, time);
"""


class AuditLog:
    """Append-only request log and alert list in one SQLite database (WAL)."""

    def __init__(
        self,
        path: str | Path,
        *,
        fingerprint_key: bytes,
        raw_records: bool = False,
        retention_days: float | None = None,
        synchronous: str = "normal",
    ):
        self.path = str(path)
        self._conn = open_wal_database(self.path, _SCHEMA, synchronous=synchronous)
        self._lock = threading.Lock()
        self._key = fingerprint_key
        self.raw_records = raw_records
        self.retention_days = retention_days
        self._last_prune = 0.0
        self.prune()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def fingerprint(self, record: np.ndarray) -> str:
        """Keyed fingerprint of one record (float64 bytes): equal records, equal fingerprints."""
        data = np.ascontiguousarray(record, dtype=np.float64).tobytes()
        return hmac.new(self._key, data, hashlib.sha256).hexdigest()[:32]

    def record(
        self,
        *,
        key_id: str | None,
        path: str,
        status: int,
        decision: str,
        granularity: str | None = None,
        X: np.ndarray | None = None,
        detail: str | None = None,
        now: float | None = None,
    ) -> None:
        """Append one request and commit it."""
        now = time.time() if now is None else now
        fps = raw = None
        n = 0
        if X is not None:
            n = len(X)
            fps = ",".join(self.fingerprint(x) for x in X)
            if self.raw_records:
                raw = json.dumps(np.asarray(X, dtype=np.float64).tolist())
        with self._lock:
            self._conn.execute(
                "INSERT INTO requests (time, key_id, path, status, decision, granularity, n_records, fingerprints, "
                "records, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (now, key_id, path, status, decision, granularity, n, fps, raw, detail),
            )
        if now - self._last_prune > 3600:
            self.prune(now=now)

    def add_alert(self, *, key_id: str, detector: str, action: str, detail: dict[str, Any], now: float) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT INTO alerts (time, key_id, detector, action, detail) VALUES (?, ?, ?, ?, ?)",
                (now, key_id, detector, action, json.dumps(detail, sort_keys=True)),
            )

    def alerts(self, *, since: float = 0.0, key_id: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        query = "SELECT id, time, key_id, detector, action, detail FROM alerts WHERE time >= ?"
        args: list[Any] = [since]
        if key_id is not None:
            query += " AND key_id = ?"
            args.append(key_id)
        query += " ORDER BY id DESC LIMIT ?"
        args.append(int(limit))
        with self._lock:
            rows = self._conn.execute(query, args).fetchall()
        return [
            {"id": r[0], "time": r[1], "key_id": r[2], "detector": r[3], "action": r[4], "detail": json.loads(r[5])}
            for r in rows
        ]

    def active_action(self, key_id: str, *, since: float) -> str | None:
        """The strictest action (block > throttle) of ``key_id``'s alerts raised after ``since``."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT DISTINCT action FROM alerts WHERE key_id = ? AND time >= ? AND action != 'log'",
                (key_id, since),
            ).fetchall()
        actions = {r[0] for r in rows}
        return "block" if "block" in actions else ("throttle" if "throttle" in actions else None)

    def requests(self, *, limit: int = 100_000) -> list[dict[str, Any]]:
        with self._lock:
            cur = self._conn.execute("SELECT * FROM requests ORDER BY id LIMIT ?", (int(limit),))
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def prune(self, *, now: float | None = None) -> int:
        """Delete requests and alerts older than the retention period; the number of rows deleted."""
        now = time.time() if now is None else now
        self._last_prune = now
        if self.retention_days is None:
            return 0
        cutoff = now - float(self.retention_days) * 86400.0
        with self._lock:
            n = self._conn.execute("DELETE FROM requests WHERE time < ?", (cutoff,)).rowcount
            n += self._conn.execute("DELETE FROM alerts WHERE time < ?", (cutoff,)).rowcount
        return n
