"""Query histories of the probing detector: one per subject (a key, a tenant, a source address).

Each gateway process keeps a local mirror of every active subject's recent queries, as numpy ring
buffers of fixed-size entries (time, keyed fingerprint, evidence flags, off-manifold residual, principal
coordinates). A :class:`HistoryStore` keeps the mirrors of several processes in step:

- :class:`MemoryHistoryStore` (``memory://``): one process, nothing to share;
- :class:`RedisHistoryStore` (``redis://``): one Redis stream per subject. A request first reads the
  entries other workers appended since this worker last looked (``XRANGE``), then appends its own
  (``XADD ... MAXLEN ~ history``): two round trips, whatever the batch size. Alerts are claimed with
  ``SET NX EX`` so that one worker, not each, records an alert per cooldown.

Stores are chosen by the scheme of the policy's ``storage`` URI (:data:`HISTORY_STORES`), like the
rate limiter's.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from typing import overload

import numpy as np

from memberscope.exceptions import InvalidInputError, MissingDependencyError

__all__ = [
    "EVIDENCE",
    "FLAG_LOW_MARGIN",
    "FLAG_NEAR",
    "FLAG_OFF",
    "FLAG_RANDOMIZED",
    "FLAG_REPEAT",
    "FLAG_WHITE",
    "HISTORY_STORES",
    "Columns",
    "HistoryStore",
    "HistoryView",
    "MemoryHistoryStore",
    "RedisHistoryStore",
    "SubjectHistory",
    "entry_dtype",
    "history_store",
]

#: Flag bits of an entry: an exact repeat of a live entry; a low top-2 margin; the three kinds of
#: perturbation evidence (see :mod:`memberscope.gateway.probing`); (32: no coordinates, see there);
#: answered with noise (a randomized tier), where repeats can be averaged.
FLAG_REPEAT, FLAG_LOW_MARGIN, FLAG_NEAR, FLAG_WHITE, FLAG_OFF, FLAG_RANDOMIZED = 1, 2, 4, 8, 16, 64
EVIDENCE = FLAG_NEAR | FLAG_WHITE | FLAG_OFF


def entry_dtype(n_coords: int) -> np.dtype:
    """One query in a history, as stored in Redis: 63 bytes plus 4 per principal coordinate (``norm2``: the
    squared norm of the coordinates the distances use, kept so that each search skips recomputing it)."""
    return np.dtype(
        [
            ("time", "<f8"),
            ("fp", "<u8", (2,)),
            ("flags", "u1"),
            ("residual", "<f4"),
            ("profile", "<u2"),
            ("key", "S16"),
            ("norm2", "<f4"),
            ("coords", "<f4", (n_coords,)),
        ]
    )


def _field_names(dtype: np.dtype) -> tuple[str, ...]:
    """The fields of an entry dtype (:func:`entry_dtype`); a dtype without fields is a bug."""
    if dtype.names is None:
        raise TypeError(f"history entries need a structured dtype with named fields; got {dtype}")
    return dtype.names


class Columns:
    """Entries as one numpy array per field (a struct of arrays): masks and slices without the overhead of
    structured arrays. ``cols["fp"]`` is ``(n, 2)`` uint64 (the 128-bit keyed fingerprint), ``cols["coords"]``
    ``(n, k)`` float32."""

    __slots__ = ("cols",)

    def __init__(self, cols: dict[str, np.ndarray]):
        self.cols = cols

    @classmethod
    def zeros(cls, n: int, dtype: np.dtype) -> Columns:
        return cls({name: np.zeros((n, *dtype[name].shape), dtype=dtype[name].base) for name in _field_names(dtype)})

    @overload
    def __getitem__(self, key: str) -> np.ndarray: ...

    @overload
    def __getitem__(self, key: slice | np.ndarray) -> Columns: ...

    def __getitem__(self, key: str | slice | np.ndarray) -> np.ndarray | Columns:
        if isinstance(key, str):
            return self.cols[key]
        return Columns({name: col[key] for name, col in self.cols.items()})

    def __len__(self) -> int:
        return len(self.cols["time"])

    def to_records(self, dtype: np.dtype) -> np.ndarray:
        out = np.zeros(len(self), dtype=dtype)
        for name in _field_names(dtype):
            out[name] = self.cols[name]
        return out

    @classmethod
    def from_records(cls, records: np.ndarray) -> Columns:
        return cls({name: np.ascontiguousarray(records[name]) for name in _field_names(records.dtype)})


class HistoryView:
    """Rows ``start:end`` of a history's buffers, each column sliced when first read."""

    __slots__ = ("_cols", "_end", "_got", "_start")

    def __init__(self, cols: dict[str, np.ndarray], start: int, end: int):
        self._cols, self._start, self._end = cols, start, end
        self._got: dict[str, np.ndarray] = {}

    def __getitem__(self, name: str) -> np.ndarray:
        got = self._got.get(name)
        if got is None:
            got = self._got[name] = self._cols[name][self._start : self._end]
        return got

    def __len__(self) -> int:
        return self._end - self._start


class SubjectHistory:
    """The last ``capacity`` queries of one subject, oldest first.

    Columns live in buffers of up to twice the capacity: appending writes at the end, and only when the
    end is reached are the newest ``capacity`` entries moved to the front, so :meth:`entries` is a view
    and appending costs O(1) amortized.
    """

    def __init__(self, name: str, dtype: np.dtype, capacity: int):
        self.name, self.dtype, self.capacity = name, dtype, int(capacity)
        self._buf = Columns.zeros(min(32, 2 * self.capacity), dtype)
        self._start = self._end = 0
        self.last_id: bytes | None = None  # the newest store entry seen (Redis stream id)
        self.own_ids: set[bytes] = set()  # entries this process appended and will read back (Redis stream ids)
        self.touched = 0.0  # last time a request of this subject was seen
        #: A key's history that stands for this (tenant's or address's) one, and the reverse.
        self.twin_of: SubjectHistory | None = None
        self.twins: set[SubjectHistory] = set()

    @property
    def size(self) -> int:
        return self._end - self._start if self.twin_of is None else self.twin_of.size

    def entries(self) -> Columns:
        """All entries, oldest first (views into the buffers; a twin's are its key's)."""
        if self.twin_of is not None:
            return self.twin_of.entries()
        return self._buf[self._start : self._end]

    def since(self, horizon: float) -> HistoryView:
        """The entries at or after ``horizon`` (arrival order is time order, up to the small reordering of
        merging several workers' queries), as views made on first use of each column."""
        if self.twin_of is not None:
            return self.twin_of.since(horizon)
        start, end = self._start, self._end
        times = self._buf.cols["time"]
        if end > start and times[start] < horizon:
            start += int(np.searchsorted(times[start:end], horizon))
        return HistoryView(self._buf.cols, start, end)

    def append(self, new: Columns) -> None:
        """Append entries (oldest first), dropping the oldest beyond ``capacity``."""
        n = len(new)
        if n == 0:
            return
        if n == 1 and self._end < len(self._buf):  # one query with room left: row writes, no slicing
            end = self._end
            for name, col in self._buf.cols.items():
                col[end] = new.cols[name][0]
            self._end = end + 1
            if self._end - self._start > self.capacity:
                self._start += 1
            return
        if n >= self.capacity:
            new, n = new[n - self.capacity :], self.capacity
        buf_len = len(self._buf)
        if self._end + n > buf_len:
            keep = min(self.size, self.capacity - n)
            if keep + n > buf_len:  # grow, up to twice the capacity
                grown = Columns.zeros(min(2 * self.capacity, max(2 * buf_len, keep + n)), self.dtype)
                for name, col in grown.cols.items():
                    col[:keep] = self._buf.cols[name][self._end - keep : self._end]
                self._buf = grown
            else:
                for col in self._buf.cols.values():
                    col[:keep] = col[self._end - keep : self._end]
            self._start, self._end = 0, keep
        for name, col in self._buf.cols.items():
            col[self._end : self._end + n] = new.cols[name]
        self._end += n
        if self.size > self.capacity:
            self._start = self._end - self.capacity


class HistoryStore(ABC):
    """Keeps the local mirrors of subjects' histories in step across gateway processes."""

    #: Whether other processes add to the histories (then no shortcut may assume this process saw everything).
    shared = False

    @abstractmethod
    def __init__(self, uri: str, *, namespace: str, window_seconds: float) -> None:
        """Open the store at ``uri`` (its scheme chose the class, see :data:`HISTORY_STORES`); ``namespace``
        keeps the histories of gateway deployments sharing it apart; entries older than ``window_seconds``
        may be dropped."""

    @abstractmethod
    def sync(self, histories: list[SubjectHistory]) -> None:
        """Append to each mirror the entries other processes added since it last looked."""

    @abstractmethod
    def publish(self, items: list[tuple[SubjectHistory, Columns]]) -> None:
        """Share new entries (already appended to the local mirrors) with the other processes."""

    @abstractmethod
    def claim_alert(self, name: str, *, cooldown: float, now: float) -> bool:
        """True for the first claim of ``name`` per ``cooldown`` seconds, over every process."""


class MemoryHistoryStore(HistoryStore):
    """One process: the mirrors are the histories."""

    def __init__(self, uri: str = "memory://", *, namespace: str = "", window_seconds: float = 600.0):
        self._claims: dict[str, float] = {}

    def sync(self, histories: list[SubjectHistory]) -> None:
        return None

    def publish(self, items: list[tuple[SubjectHistory, Columns]]) -> None:
        return None

    def claim_alert(self, name: str, *, cooldown: float, now: float) -> bool:
        last = self._claims.get(name)
        if last is not None and now - last < cooldown:
            return False
        if len(self._claims) > 100_000:
            self._claims = {k: t for k, t in self._claims.items() if now - t < cooldown}
        self._claims[name] = now
        return True


class RedisHistoryStore(HistoryStore):
    """One Redis stream per subject (``XADD``/``XRANGE``), trimmed to the history length, expiring
    ``2 × window_seconds`` after its last entry."""

    shared = True

    def __init__(self, uri: str, *, namespace: str, window_seconds: float = 600.0):
        try:
            import redis
        except ImportError:
            raise MissingDependencyError(
                "probing state in Redis needs the 'redis' package: pip install 'memberscope[serve]'"
            ) from None
        self._redis = redis.Redis.from_url(uri)
        self._prefix = f"memberscope:probing:{namespace}:"
        self._ttl = max(1, int(2 * window_seconds))

    def _key(self, history: SubjectHistory) -> str:
        return self._prefix + "h:" + history.name

    def sync(self, histories: list[SubjectHistory]) -> None:
        pipe = self._redis.pipeline(transaction=False)
        for h in histories:
            if h.last_id is None:
                pipe.xrevrange(self._key(h), count=h.capacity)
            else:
                pipe.xrange(self._key(h), min=b"(" + h.last_id)
        for h, rows in zip(histories, pipe.execute(), strict=True):
            if h.last_id is None:
                rows = rows[::-1]
            if not rows:
                continue
            h.last_id = rows[-1][0]
            blobs = []
            for entry_id, fields in rows:
                if entry_id in h.own_ids:
                    h.own_ids.discard(entry_id)
                else:
                    blobs.append(fields[b"e"])
            if blobs:
                h.append(Columns.from_records(np.frombuffer(b"".join(blobs), dtype=h.dtype)))

    def publish(self, items: list[tuple[SubjectHistory, Columns]]) -> None:
        pipe = self._redis.pipeline(transaction=False)
        counts = []
        for h, new in items:
            for row in new.to_records(h.dtype):
                pipe.xadd(self._key(h), {"e": row.tobytes()}, maxlen=h.capacity, approximate=True)
            pipe.expire(self._key(h), self._ttl)
            counts.append(len(new))
        results = pipe.execute()
        i = 0
        for (h, _), n in zip(items, counts, strict=True):
            h.own_ids.update(results[i : i + n])
            if len(h.own_ids) > 4 * h.capacity and h.last_id is not None:  # trimmed before read back
                newest = _stream_id(h.last_id)
                h.own_ids = {e for e in h.own_ids if _stream_id(e) > newest}
            i += n + 1

    def claim_alert(self, name: str, *, cooldown: float, now: float) -> bool:
        key = self._prefix + "a:" + name
        return bool(self._redis.set(key, b"1", nx=True, ex=max(1, int(np.ceil(cooldown)))))


#: Scheme of the policy's ``storage`` URI → history store class.
HISTORY_STORES: dict[str, type[HistoryStore]] = {
    "memory": MemoryHistoryStore,
    "redis": RedisHistoryStore,
    "rediss": RedisHistoryStore,
    "redis+unix": RedisHistoryStore,
}


def history_store(uri: str, *, namespace: str, window_seconds: float) -> HistoryStore:
    """The :class:`HistoryStore` for a storage URI (``memory://`` or ``redis://HOST:PORT``)."""
    scheme = uri.split("://", 1)[0]
    cls = HISTORY_STORES.get(scheme)
    if cls is None:
        raise InvalidInputError(f"probing history storage {uri!r}: expected one of {sorted(HISTORY_STORES)}://")
    return cls(uri, namespace=namespace, window_seconds=window_seconds)


def namespace_of(secret: bytes) -> str:
    """A short public name for one gateway deployment (its key database), so that gateways sharing a
    Redis keep apart."""
    return hashlib.blake2b(secret, digest_size=6, person=b"ms-probing").hexdigest()


def _stream_id(entry_id: bytes) -> tuple[int, int]:
    ms, _, seq = entry_id.partition(b"-")
    return int(ms), int(seq or 0)
