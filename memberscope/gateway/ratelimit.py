"""Per-key rate limits with the ``limits`` library: several windows, memory or Redis storage.

Each record in a request costs one hit: a batch of 100 records spends 100 of the budget, and is
refused whole when it does not fit. The moving window is exact (Redis runs it as one Lua script,
so two gateway processes sharing a Redis enforce one limit exactly); the sliding-window counter is an
approximation that needs less memory per key.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

from memberscope.exceptions import InvalidInputError, MissingDependencyError

if TYPE_CHECKING:
    from limits import RateLimitItem

__all__ = ["RateLimiter"]

_MEMORY_STORAGE = None


def _memory_storage():
    """``limits``' memory storage with a moving window in O(cost) per hit and O(limit) memory per key.

    The stock storage keeps each key's hits in a list, newest first, inserted at the front (a copy of the
    whole list per hit) and trimmed only by time: at a high limit (600,000/day) and a steady rate, every
    hit copies hundreds of thousands of entries and memory grows with the rate. Here each key's hit times
    live in a deque, newest at the left: a hit is allowed when the ``(limit - cost)``-th newest is older
    than the window (the same test as the stock storage, so the same decisions), and entries beyond the
    ``limit``-th newest, which no decision reads, are dropped. Expired entries are trimmed inline at most
    once a second: the stock storage starts a ``threading.Timer`` 10 ms after every hit for that, a new
    thread a hundred times a second contending for the GIL with the event loop.
    """
    global _MEMORY_STORAGE
    if _MEMORY_STORAGE is None:
        from collections import deque

        from limits.storage import MemoryStorage

        class MovingWindowMemoryStorage(MemoryStorage):
            STORAGE_SCHEME = ["memberscope-memory"]  # noqa: RUF012  (the limits library's registry convention)

            def __init__(self, uri: str | None = None, **options):
                self._last_expiry = 0.0
                self.windows: dict[str, deque] = {}  # key -> hit times, newest first
                self.window_expiry: dict[str, float] = {}  # key -> its window's length (s)
                super().__init__(uri, **options)
                self.timer.cancel()

            def _MemoryStorage__schedule_expiry(self) -> None:  # replaces the private timer scheduling
                now = time.monotonic()
                if now - self._last_expiry >= 1.0:
                    self._last_expiry = now
                    # MemoryStorage's private ``__expire_events``, by its mangled name (which mypy does not resolve)
                    self._MemoryStorage__expire_events()  # type: ignore[attr-defined]
                    self._expire_windows()

            def _expire_windows(self) -> None:
                now = time.time()
                for key in list(self.windows):
                    with self.locks[key]:
                        q = self.windows.get(key)
                        expiry = self.window_expiry.get(key, 0.0)
                        while q and q[-1] < now - expiry:
                            q.pop()
                        if not q:
                            self.windows.pop(key, None)
                            self.window_expiry.pop(key, None)

            def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
                if amount > limit:
                    return False
                self._MemoryStorage__schedule_expiry()
                now = time.time()
                with self.locks[key]:
                    q = self.windows.get(key)
                    if q is None:
                        q = self.windows[key] = deque()
                        self.window_expiry[key] = float(expiry)
                    if len(q) > limit - amount and q[limit - amount] >= now - expiry:
                        return False
                    q.extendleft([now] * amount)
                    while len(q) > limit:
                        q.pop()
                    return True

            def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
                now = time.time()
                with self.locks[key]:
                    q = self.windows.get(key)
                    while q and q[-1] < now - expiry:
                        q.pop()
                    if not q:
                        return now, 0
                    return q[-1], len(q)

            def clear(self, key: str) -> None:
                self.windows.pop(key, None)
                self.window_expiry.pop(key, None)
                super().clear(key)

            def reset(self) -> int | None:
                n = len(self.windows)
                self.windows.clear()
                self.window_expiry.clear()
                return max(n, super().reset() or 0)

        _MEMORY_STORAGE = MovingWindowMemoryStorage
    return _MEMORY_STORAGE()


class RateLimiter:
    """Checks and spends a key's budget in every window of its tier."""

    def __init__(self, storage_uri: str = "memory://", strategy: str = "moving-window"):
        try:
            from limits.storage import storage_from_string
            from limits.strategies import STRATEGIES
        except ImportError:
            raise MissingDependencyError(
                "rate limits need the 'limits' package: pip install 'memberscope[serve]'"
            ) from None
        try:
            if storage_uri.startswith("memory://"):
                self.storage = _memory_storage()
            else:
                self.storage = storage_from_string(storage_uri)
        except Exception as exc:  # the limits library raises ConfigurationError and friends
            raise InvalidInputError(f"rate-limit storage {storage_uri!r}: {exc}") from None
        self.limiter = STRATEGIES[strategy](self.storage)
        self.refused_by: RateLimitItem | None = None

    def hit(self, limits: list[RateLimitItem], *identifiers: str, cost: int = 1) -> float | None:
        """Spend ``cost`` in every window; None if allowed, else the seconds to wait (Retry-After).

        ``self.refused_by`` is then the window that refused (for the error message).

        Windows are tried in order; when one refuses, the earlier ones keep the spent hits (as
        flask-limiter does): a client hammering a daily limit also burns its minute budget.
        """
        self.refused_by = None
        for item in limits:
            self.refused_by = item
            if cost > item.amount:
                return float(item.get_expiry())  # can never fit: ask to retry after a full window
            if not self.limiter.hit(item, *identifiers, cost=cost):
                reset, _ = self.limiter.get_window_stats(item, *identifiers)
                return max(1.0, math.ceil(reset - time.time()))
        self.refused_by = None
        return None

    def reset(self) -> None:
        self.storage.reset()
