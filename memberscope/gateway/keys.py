"""API keys: created once, stored hashed, compared in constant time, revocable.

A key reads ``msk_<key id>_<secret>``. The key id (48 random bits, hex) is public: it names the key in
the audit log, in alerts and in ``keys list``. The secret is 256 random bits. The database stores, per
key, a random 16-byte salt and ``HMAC-SHA256(salt, secret)``, never the secret.

Why a salted fast hash and not scrypt/argon2: slow hashes exist to make guessing *low-entropy* passwords
expensive. A 256-bit random secret cannot be guessed however fast the hash is (2^256 tries), so a slow
hash would add only its cost (tens of milliseconds per request with scrypt) to every request, against
the gateway's 2 ms budget. The salt keeps equal secrets (there are none in practice) from sharing a hash
and rules out precomputed tables. The comparison uses :func:`hmac.compare_digest`, and an unknown key id
is checked against a dummy record, so that timing does not tell a wrong secret from an unknown id.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from memberscope.exceptions import InvalidInputError
from memberscope.gateway._sqlite import open_wal_database

__all__ = ["KeyRecord", "KeyStore"]

PREFIX = "msk"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS keys (
    key_id TEXT PRIMARY KEY,
    tier TEXT NOT NULL,
    salt BLOB NOT NULL,
    digest BLOB NOT NULL,
    created REAL NOT NULL,
    revoked REAL,
    label TEXT,
    tenant TEXT
);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);
"""


@dataclass(frozen=True)
class KeyRecord:
    key_id: str
    tier: str
    created: float
    revoked: float | None
    label: str | None = None
    #: Keys of one tenant share a probing history (the same record probed from several of them adds up).
    tenant: str | None = None


def _digest(salt: bytes, secret: str) -> bytes:
    return hmac.digest(salt, secret.encode(), "sha256")


def _check_name(what: str, name: str) -> None:
    if not name or len(name) > 64 or not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise InvalidInputError(f"{what} {name!r} must be a name of 1-64 letters, digits, '-', '_' or '.'")


def split_key(token: str) -> tuple[str, str] | None:
    """``(key_id, secret)`` of a well-formed key, else None."""
    parts = token.split("_")
    if len(parts) != 3 or parts[0] != PREFIX or len(parts[1]) != 12 or not (20 <= len(parts[2]) <= 100):
        return None
    return parts[1], parts[2]


class KeyStore:
    """The key database (SQLite). ``verify`` caches records for ``cache_seconds`` (revocation delay)."""

    def __init__(self, path: str | Path, *, cache_seconds: float = 1.0):
        self.path = str(path)
        self._conn = open_wal_database(self.path, _SCHEMA)
        self._lock = threading.Lock()
        have = {row[1] for row in self._conn.execute("PRAGMA table_info(keys)")}
        if "tenant" not in have:  # a key database from before tenants
            self._conn.execute("ALTER TABLE keys ADD COLUMN tenant TEXT")
        self.cache_seconds = float(cache_seconds)
        self._cache: dict[str, tuple[float, tuple | None]] = {}
        self._dummy = (b"\0" * 16, _digest(b"\0" * 16, "x"), "", 0.0, None, None, None)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def create(self, tier: str, *, label: str | None = None, tenant: str | None = None) -> tuple[str, str]:
        """A new key for ``tier`` (of ``tenant``): ``(key_id, key)``. The key is shown only here; store it safely."""
        _check_name("tier", tier)
        if tenant is not None:
            _check_name("tenant", tenant)
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32).replace("_", "-")
        salt = secrets.token_bytes(16)
        with self._lock:
            self._conn.execute(
                "INSERT INTO keys (key_id, tier, salt, digest, created, label, tenant) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (key_id, tier, salt, _digest(salt, secret), time.time(), label, tenant),
            )
        return key_id, f"{PREFIX}_{key_id}_{secret}"

    def revoke(self, key_id: str) -> None:
        with self._lock:
            cur = self._conn.execute(
                "UPDATE keys SET revoked = ? WHERE key_id = ? AND revoked IS NULL", (time.time(), key_id)
            )
            if cur.rowcount == 0:
                exists = self._conn.execute("SELECT 1 FROM keys WHERE key_id = ?", (key_id,)).fetchone()
                if not exists:
                    raise InvalidInputError(f"no key with id {key_id!r}; `memberscope keys list` shows the ids")
        self._cache.pop(key_id, None)

    def list(self) -> list[KeyRecord]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT key_id, tier, created, revoked, label, tenant FROM keys ORDER BY created"
            ).fetchall()
        return [KeyRecord(*r) for r in rows]

    def _row(self, key_id: str) -> tuple | None:
        now = time.monotonic()
        hit = self._cache.get(key_id)
        if hit is not None and now - hit[0] < self.cache_seconds:
            return hit[1]
        with self._lock:
            row = self._conn.execute(
                "SELECT salt, digest, tier, created, revoked, label, tenant FROM keys WHERE key_id = ?", (key_id,)
            ).fetchone()
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key_id] = (now, row)
        return row

    def verify(self, token: str | None) -> KeyRecord | None:
        """The record of a valid, unrevoked key; None for anything else."""
        parts = split_key(token) if token else None
        key_id, secret = parts if parts else ("", "")
        row = self._row(key_id) if parts else None
        salt, digest, tier, created, revoked, label, tenant = row if row is not None else self._dummy
        ok = hmac.compare_digest(_digest(salt, secret), digest)
        if row is None or not ok or revoked is not None:
            return None
        return KeyRecord(key_id=key_id, tier=tier, created=created, revoked=revoked, label=label, tenant=tenant)

    def secret(self, name: str) -> bytes:
        """A random 32-byte secret stored under ``name``, created on first use (same for every worker)."""
        with self._lock:
            self._conn.execute(
                "INSERT OR IGNORE INTO meta (name, value) VALUES (?, ?)", (name, secrets.token_bytes(32))
            )
            return bytes(self._conn.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()[0])
