"""Prometheus metrics of one gateway process: ``prometheus_client`` when installed, else a small
stand-in that writes the same text exposition format (counters and one histogram)."""

from __future__ import annotations

import math
import threading
from collections import defaultdict
from collections.abc import Callable
from typing import Protocol

__all__ = ["GatewayMetrics"]

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class CounterChild(Protocol):
    """One labelled series of a counter (``prometheus_client``'s or :class:`_Counter`'s)."""

    def inc(self, amount: float = 1.0, /) -> None: ...


class LabelledCounter(Protocol):
    """A counter with labels: ``counter.labels(path=..., status=...).inc()``."""

    def labels(self, **labels: str) -> CounterChild: ...


class LatencyHistogram(Protocol):
    """A histogram of seconds: ``histogram.observe(seconds)``."""

    def observe(self, value: float, /) -> None: ...


class _Counter:
    def __init__(self, name: str, doc: str, labelnames: tuple[str, ...]):
        self.name, self.doc, self.labelnames = name, doc, labelnames
        self.values: dict[tuple[str, ...], float] = defaultdict(float)
        self._lock = threading.Lock()

    def labels(self, **labels: str) -> _Counter._Child:
        return _Counter._Child(self, tuple(str(labels[n]) for n in self.labelnames))

    class _Child:
        def __init__(self, parent: _Counter, key: tuple[str, ...]):
            self.parent, self.key = parent, key

        def inc(self, amount: float = 1.0) -> None:
            with self.parent._lock:
                self.parent.values[self.key] += amount

    def expose(self) -> list[str]:
        lines = [f"# HELP {self.name}_total {self.doc}", f"# TYPE {self.name}_total counter"]
        for key, value in sorted(self.values.items()):
            labels = ",".join(f'{n}="{_escape(v)}"' for n, v in zip(self.labelnames, key, strict=True))
            lines.append(f"{self.name}_total{{{labels}}} {value!r}")
        return lines


class _Histogram:
    def __init__(self, name: str, doc: str, buckets: tuple[float, ...]):
        self.name, self.doc, self.buckets = name, doc, buckets
        self.counts = [0] * (len(buckets) + 1)
        self.sum = 0.0
        self._lock = threading.Lock()

    def observe(self, value: float) -> None:
        with self._lock:
            self.sum += value
            for i, bound in enumerate((*self.buckets, math.inf)):
                if value <= bound:
                    self.counts[i] += 1
                    break

    def expose(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.doc}", f"# TYPE {self.name} histogram"]
        running = 0
        for bound, count in zip((*self.buckets, math.inf), self.counts, strict=True):
            running += count
            le = "+Inf" if bound == math.inf else repr(float(bound))
            lines.append(f'{self.name}_bucket{{le="{le}"}} {float(running)!r}')
        lines += [f"{self.name}_count {float(running)!r}", f"{self.name}_sum {self.sum!r}"]
        return lines


class GatewayMetrics:
    """Request, record, alert and keyless counters plus a latency histogram; ``expose()`` gives the text."""

    def __init__(self, *, use_prometheus_client: bool = True):
        docs = {
            "requests": ("Requests by path and status", ("path", "status")),
            "records": ("Records answered, by tier", ("tier",)),
            "alerts": ("Probing alerts raised", ("detector",)),
            "keyless": ("Requests without a valid key, by status", ("status",)),
        }
        hist = ("gateway_predict_seconds", "Time from a predict request's arrival to its answer")
        self._all: dict[str, LabelledCounter]
        self.latency: LatencyHistogram
        self.expose: Callable[[], bytes]
        try:
            if not use_prometheus_client:
                raise ImportError
            from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
        except ImportError:
            self.content_type = "text/plain; version=0.0.4; charset=utf-8"
            counters = {k: _Counter(f"gateway_{k}", d, ln) for k, (d, ln) in docs.items()}
            latency = _Histogram(*hist, LATENCY_BUCKETS)
            self._all, self.latency = dict(counters), latency
            shown: list[_Counter | _Histogram] = [*counters.values(), latency]
            self.expose = lambda: ("\n".join(line for m in shown for line in m.expose()) + "\n").encode()
        else:
            self.content_type = CONTENT_TYPE_LATEST
            registry = CollectorRegistry()
            self._all = {k: Counter(f"gateway_{k}", d, list(ln), registry=registry) for k, (d, ln) in docs.items()}
            self.latency = Histogram(*hist, buckets=LATENCY_BUCKETS, registry=registry)
            self.expose = lambda: generate_latest(registry)
        self.requests, self.records, self.alerts = self._all["requests"], self._all["records"], self._all["alerts"]
        self.keyless = self._all["keyless"]
