"""Per-key rate limits with the ``limits`` library: several windows, memory or Redis storage.

Each record in a request costs one hit: a batch of 100 records spends 100 of the budget, and is
refused whole when it does not fit. The moving window is exact (Redis runs it as one Lua script,
so two gateway processes sharing a Redis enforce one limit exactly); the sliding-window counter is an
approximation that needs less memory per key.
"""

from __future__ import annotations

import math
import time

from memberscope.exceptions import InvalidInputError, MissingDependencyError

__all__ = ["RateLimiter"]

_INLINE_STORAGE = None


def _inline_memory_storage():
    """``limits``' memory storage, expiring old entries inline at most once a second.

    The stock storage starts a ``threading.Timer`` 10 ms after every hit to trim expired entries.
    Under load that is a new thread a hundred times a second, contending for the GIL with the event
    loop (profiling showed the loop waiting on it in ``socket.send``); the p99 latency doubled.
    Trimming only frees memory: the moving window compares timestamps on every hit, so trimming
    once a second, on the request path, changes no decision.
    """
    global _INLINE_STORAGE
    if _INLINE_STORAGE is None:
        from limits.storage import MemoryStorage

        class InlineExpiryMemoryStorage(MemoryStorage):
            STORAGE_SCHEME = ["memberscope-memory"]  # noqa: RUF012  (the limits library's registry convention)

            def __init__(self, uri: str | None = None, **options):
                self._last_expiry = 0.0
                super().__init__(uri, **options)
                self.timer.cancel()

            def _MemoryStorage__schedule_expiry(self) -> None:  # replaces the private timer scheduling
                now = time.monotonic()
                if now - self._last_expiry >= 1.0:
                    self._last_expiry = now
                    self._MemoryStorage__expire_events()

        _INLINE_STORAGE = InlineExpiryMemoryStorage
    return _INLINE_STORAGE()


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
                self.storage = _inline_memory_storage()
            else:
                self.storage = storage_from_string(storage_uri)
        except Exception as exc:  # the limits library raises ConfigurationError and friends
            raise InvalidInputError(f"rate-limit storage {storage_uri!r}: {exc}") from None
        self.limiter = STRATEGIES[strategy](self.storage)
        self.refused_by = None

    def hit(self, limits: list, *identifiers: str, cost: int = 1) -> float | None:
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
