"""The audit log: one SQLite row per answered request with a valid key, committed before the response leaves.

SQLite in WAL mode with ``synchronous=NORMAL``: a committed row is in the WAL file, so it survives a
crash (even SIGKILL) of the server process; ``synchronous: full`` in the policy also survives a power
loss, at the cost of an fsync per request. Rows name the key by its public id, never the key; records
appear as a keyed fingerprint (HMAC-SHA256 under a secret of the gateway, truncated to 128 bits), which
links repeated queries of one record without storing it, unless the policy asks for raw records. Paths
are cut to ``max_path`` characters; query strings are never stored.

Requests **without** a valid key get no row: they are counted per source address, status and time
bucket in the ``keyless`` table (:class:`KeylessCounter`), so that a flood of them costs a bounded amount
of storage. Probing alerts live in the same database, so every worker sees them.
"""

from __future__ import annotations

import hmac
import json
import threading
import time
from pathlib import Path
from typing import Any, NotRequired, TypedDict, Unpack

import numpy as np

from memberscope.gateway._sqlite import open_wal_database

__all__ = ["DECISIONS", "AuditLog", "KeylessCounter", "decision_for", "record_fingerprints"]

DECISIONS = ("allowed", "throttled", "blocked", "rejected", "redirected", "failed")

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
CREATE TABLE IF NOT EXISTS keyless (
    bucket REAL NOT NULL,
    address TEXT NOT NULL,
    status INTEGER NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (bucket, address, status)
);
"""

_INSERT = (
    "INSERT INTO requests (time, key_id, path, status, decision, granularity, n_records, fingerprints, records, "
    "detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


class Request(TypedDict):
    """One request as the audit log stores it (the keyword arguments of :meth:`AuditLog.record`).

    ``X (n, d)`` are the records queried (their keyed fingerprints are stored, and the raw records when the log
    keeps them; ``fingerprints`` when already computed); ``decision`` defaults to the one ``status`` implies;
    ``now`` is a Unix time in seconds (default: the current time).
    """

    key_id: str | None
    path: str
    status: int
    decision: NotRequired[str | None]
    granularity: NotRequired[str | None]
    X: NotRequired[np.ndarray | None]
    fingerprints: NotRequired[list[str] | None]
    detail: NotRequired[str | None]
    now: NotRequired[float | None]


#: Columns added since the first release, with their SQL types (added to older databases on open).
_ADDED_COLUMNS = {"alerts": {"scope": "TEXT", "subject": "TEXT"}}


def record_fingerprints(secret: bytes, X: np.ndarray) -> list[str]:
    """Keyed fingerprints (32 hex digits: HMAC-SHA256 of the float64 bytes, truncated) of records ``X (n, d)``.

    Equal records get equal fingerprints; without ``secret`` nobody can confirm a guessed record.
    """
    X = np.ascontiguousarray(X, dtype=np.float64)
    return [hmac.digest(secret, row.tobytes(), "sha256")[:16].hex() for row in X]


def decision_for(status: int) -> str:
    """The audit decision of an answer with this status when nothing more specific is known."""
    if status < 300:
        return "allowed"
    if status < 400:
        return "redirected"
    if status == 429:
        return "throttled"
    return "rejected" if status < 500 else "failed"


def cut_path(path: str, limit: int) -> str:
    """``path`` cut to ``limit`` characters, the cut marked with '…'."""
    return path if len(path) <= limit else path[: limit - 1] + "…"


class KeylessCounter:
    """Counts requests without a valid key per (time bucket, source address, status), in memory, and adds
    the counts to the ``keyless`` table at most once a second (so that a flood costs one upsert per
    address and second, not one row per request) and at shutdown; a crash loses at most the last second's
    counts. At most ``max_addresses`` addresses are told apart per flush; the others are counted under ``*``."""

    def __init__(self, log: AuditLog, *, bucket_seconds: float = 60.0, max_addresses: int = 10_000):
        self.log, self.bucket_seconds, self.max_addresses = log, float(bucket_seconds), int(max_addresses)
        self._counts: dict[tuple[float, str, int], int] = {}
        self._addresses: set[str] = set()
        self._last_flush = time.monotonic()
        self._lock = threading.Lock()

    def add(self, address: str, status: int, *, now: float | None = None) -> None:
        now = time.time() if now is None else now
        bucket = now - now % self.bucket_seconds
        with self._lock:
            if address not in self._addresses:
                if len(self._addresses) >= self.max_addresses:
                    address = "*"
                else:
                    self._addresses.add(address)
            key = (bucket, address, int(status))
            self._counts[key] = self._counts.get(key, 0) + 1
        self.maybe_flush()

    def maybe_flush(self) -> None:
        """Flush when the counts are a second old (called on every request, keyed or not)."""
        if self._counts and time.monotonic() - self._last_flush >= 1.0:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            counts, self._counts, self._addresses = self._counts, {}, set()
            self._last_flush = time.monotonic()
        if counts:
            self.log.add_keyless([(b, a, s, c) for (b, a, s), c in counts.items()])


class AuditLog:
    """Append-only request log, keyless counters and alert list in one SQLite database (WAL)."""

    def __init__(
        self,
        path: str | Path,
        *,
        fingerprint_key: bytes,
        raw_records: bool = False,
        retention_days: float | None = None,
        synchronous: str = "normal",
        max_path: int = 256,
    ):
        self.path = str(path)
        self._conn = open_wal_database(self.path, _SCHEMA, synchronous=synchronous)
        self._lock = threading.Lock()
        self._migrate()
        self._key = fingerprint_key
        self.raw_records = raw_records
        self.retention_days = retention_days
        self.max_path = int(max_path)
        self._last_prune = 0.0
        self.prune()

    def _migrate(self) -> None:
        with self._lock:
            for table, columns in _ADDED_COLUMNS.items():
                have = {row[1] for row in self._conn.execute(f"PRAGMA table_info({table})")}
                for name, kind in columns.items():
                    if name not in have:
                        self._conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
            self._conn.execute("UPDATE alerts SET scope = 'key', subject = key_id WHERE scope IS NULL")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def fingerprint(self, record: np.ndarray) -> str:
        """Keyed fingerprint of one record (float64 bytes): equal records, equal fingerprints."""
        return record_fingerprints(self._key, np.asarray(record, dtype=np.float64).reshape(1, -1))[0]

    def fingerprints(self, X: np.ndarray) -> list[str]:
        """Keyed fingerprints of records ``X (n, d)``, as the log and the probing alerts write them."""
        return record_fingerprints(self._key, X)

    def record(self, **request: Unpack[Request]) -> None:
        """Append one request (the fields of :class:`Request`) and commit it."""
        row = self._row(request)
        with self._lock:
            self._conn.execute(_INSERT, row)
        if row[0] - self._last_prune > 3600:
            self.prune(now=row[0])

    def _row(self, request: Request) -> tuple:
        now = request.get("now")
        now = time.time() if now is None else now
        X = request.get("X")
        fingerprints = request.get("fingerprints")
        status = request["status"]
        fps = raw = None
        n = 0
        if X is not None:
            n = len(X)
            fps = ",".join(fingerprints if fingerprints is not None else self.fingerprints(X))
            if self.raw_records:
                raw = json.dumps(np.asarray(X, dtype=np.float64).tolist())
        decision = request.get("decision") or decision_for(status)
        path = cut_path(request["path"], self.max_path)
        return (
            now,
            request["key_id"],
            path,
            status,
            decision,
            request.get("granularity"),
            n,
            fps,
            raw,
            request.get("detail"),
        )

    def record_many(self, rows: list[Request]) -> None:
        """Append several requests (the fields of :class:`Request` each) in one transaction."""
        if len(rows) == 1:
            return self.record(**rows[0])
        values = [self._row(row) for row in rows]
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                self._conn.executemany(_INSERT, values)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        if values[-1][0] - self._last_prune > 3600:
            self.prune(now=values[-1][0])

    def add_keyless(self, rows: list[tuple[float, str, int, int]]) -> None:
        """Add ``(bucket, address, status, count)`` counts to the keyless table."""
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                self._conn.executemany(
                    "INSERT INTO keyless (bucket, address, status, count) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (bucket, address, status) DO UPDATE SET count = count + excluded.count",
                    rows,
                )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def keyless(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT bucket, address, status, count FROM keyless ORDER BY bucket, address, status"
            ).fetchall()
        return [{"bucket": r[0], "address": r[1], "status": r[2], "count": r[3]} for r in rows]

    def add_alert(
        self,
        *,
        key_id: str,
        detector: str,
        action: str,
        detail: dict[str, Any],
        now: float,
        scope: str = "key",
        subject: str | None = None,
    ) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT INTO alerts (time, key_id, detector, action, detail, scope, subject) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (now, key_id, detector, action, json.dumps(detail, sort_keys=True), scope, subject or key_id),
            )

    def alerts(self, *, since: float = 0.0, key_id: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        query = "SELECT id, time, key_id, detector, action, detail, scope, subject FROM alerts WHERE time >= ?"
        args: list[Any] = [since]
        if key_id is not None:
            query += " AND key_id = ?"
            args.append(key_id)
        query += " ORDER BY id DESC LIMIT ?"
        args.append(int(limit))
        with self._lock:
            rows = self._conn.execute(query, args).fetchall()
        return [
            {
                "id": r[0],
                "time": r[1],
                "key_id": r[2],
                "detector": r[3],
                "action": r[4],
                "detail": json.loads(r[5]),
                "scope": r[6],
                "subject": r[7],
            }
            for r in rows
        ]

    def version(self) -> int:
        """SQLite's ``data_version``: changes whenever another connection (another gateway process) commits
        to this log, never for this connection's own writes; a cheap check that a cached read is still
        current."""
        with self._lock:
            return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

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
        """Delete requests, keyless counts and alerts older than the retention period; the rows deleted."""
        now = time.time() if now is None else now
        self._last_prune = now
        if self.retention_days is None:
            return 0
        cutoff = now - float(self.retention_days) * 86400.0
        with self._lock:
            n = self._conn.execute("DELETE FROM requests WHERE time < ?", (cutoff,)).rowcount
            n += self._conn.execute("DELETE FROM keyless WHERE bucket < ?", (cutoff,)).rowcount
            n += self._conn.execute("DELETE FROM alerts WHERE time < ?", (cutoff,)).rowcount
        return n
