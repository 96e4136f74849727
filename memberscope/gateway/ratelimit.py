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
            self.storage = storage_from_string(storage_uri)
        except Exception as exc:  # the limits library raises ConfigurationError and friends
            raise InvalidInputError(f"rate-limit storage {storage_uri!r}: {exc}") from None
        self.limiter = STRATEGIES[strategy](self.storage)

    def hit(self, limits: list, *identifiers: str, cost: int = 1) -> float | None:
        """Spend ``cost`` in every window; None if allowed, else the seconds to wait (Retry-After).

        Windows are tried in order; when one refuses, the earlier ones keep the spent hits (as
        flask-limiter does): a client hammering a daily limit also burns its minute budget.
        """
        for item in limits:
            if cost > item.amount:
                return float(item.get_expiry())  # can never fit: ask to retry after a full window
            if not self.limiter.hit(item, *identifiers, cost=cost):
                reset, _ = self.limiter.get_window_stats(item, *identifiers)
                return max(1.0, math.ceil(reset - time.time()))
        return None

    def reset(self) -> None:
        self.storage.reset()
