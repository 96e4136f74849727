"""Probing detection as a measured classifier: scripted, seeded query streams and the detector's verdict.

A :class:`QueryStream` is what the gateway would see: records in arrival order, with the key, tenant and
source address of each and its arrival time. Attack streams come from memberscope's own attacks
(:func:`label_only_stream` perturbs with :class:`memberscope.redteam.LabelOnlyAttack` itself,
:func:`shadow_stream` replays the queries of the red-team shadow pipeline, :func:`boundary_stream` walks
to the decision boundary); benign streams are real records (:func:`benign_stream`) and legitimate
repeats (:func:`dashboard_stream`). :func:`run_stream` feeds a stream to a :class:`ProbeDetector` the way
the gateway does and reports the queries answered before its first alert::

    det = ProbeDetector(ProbingConfig(), d, reference=X_ref)
    result = run_stream(det, label_only_stream(X_targets, LabelOnlyAttack(noise_scale=1.0).fit(X_pop)),
                        model.predict_proba, secret=b"k" * 32)
    result.first_alert   # 1-based position of the query that raised the first alert, None if none

``benchmarks/gateway_probing.py`` runs every pattern on the bundled datasets (BENCHMARKS.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from memberscope.gateway.auditlog import record_fingerprints
from memberscope.gateway.probing import Alert, ProbeDetector, Subject

__all__ = [
    "QueryStream",
    "StreamResult",
    "benign_stream",
    "boundary_stream",
    "concat_streams",
    "dashboard_stream",
    "label_only_stream",
    "run_stream",
    "shadow_stream",
]


@dataclass
class QueryStream:
    """Records ``X (n, d)`` in arrival order with, per query, its key, source address and time (s).

    ``tenants`` maps key ids to tenants; ``first_perturbed`` is the position (0-based) of the first query
    that is not an unmodified real record (attack streams), so that a report can tell how many queries
    were indistinguishable from a benign stream by construction.
    """

    name: str
    X: np.ndarray
    keys: np.ndarray
    addresses: np.ndarray
    times: np.ndarray
    tenants: dict[str, str] = field(default_factory=dict)
    first_perturbed: int | None = None
    randomized: bool = False

    def __len__(self) -> int:
        return len(self.X)


@dataclass
class StreamResult:
    """``first_alert``: 1-based position of the query that raised the first alert (None: no alert)."""

    name: str
    n_queries: int
    first_alert: int | None
    alerts: list[tuple[int, Alert]]
    first_perturbed: int | None = None

    @property
    def detectors(self) -> list[str]:
        return sorted({a.detector for _, a in self.alerts})

    @property
    def scopes(self) -> list[str]:
        return sorted({a.subject.scope for _, a in self.alerts})


def _stream(
    name: str,
    X: np.ndarray,
    *,
    keys: Any = "k0",
    addresses: Any = "10.0.0.1",
    rate: float = 10.0,
    start: float = 0.0,
    **kw: Any,
) -> QueryStream:
    n = len(X)
    keys = np.asarray([keys] * n if isinstance(keys, str) else keys, dtype=object)
    addresses = np.asarray([addresses] * n if isinstance(addresses, str) else addresses, dtype=object)
    times = start + np.arange(n) / float(rate)
    return QueryStream(name, np.asarray(X, dtype=np.float64), keys, addresses, times, **kw)


def label_only_stream(
    X: np.ndarray,
    attack: Any,
    *,
    order: str = "record",
    name: str | None = None,
    image_shape: Sequence[int] | None = None,
    **kw: Any,
) -> QueryStream:
    """The queries of ``attack.score(target, X, y)`` (a fitted :class:`~memberscope.redteam.LabelOnlyAttack`):
    per record, the record then its ``n_queries`` perturbed copies.

    ``order="round-robin"`` sends the first query of every record, then the second of every record, ...;
    ``image_shape`` (c, h, w) reshapes flat records for the flip-shift noise and flattens the copies back.
    """
    X = np.asarray(X, dtype=np.float64)
    shaped = X.reshape(len(X), *image_shape) if image_shape is not None else X
    copies = attack.perturb(shaped).reshape(len(X), attack.n_queries, -1)
    Q = np.concatenate([X[:, None], copies], axis=1)  # (n_records, 1 + q, d)
    if order == "round-robin":
        Q = Q.transpose(1, 0, 2)
        first = len(X)
    elif order == "record":
        first = 1
    else:
        raise ValueError(f"order must be 'record' or 'round-robin'; got {order!r}")
    label = name or f"label-only {order}"
    return _stream(label, Q.reshape(-1, X.shape[1]), first_perturbed=first, **kw)


def shadow_stream(X_shadow: np.ndarray, X_targets: np.ndarray, **kw: Any) -> QueryStream:
    """The queries :func:`memberscope.redteam.pipeline.run_redteam` sends for the shadow attack: recon asks
    8 of the attacker's records twice, then every target record is asked once."""
    probes = np.asarray(X_shadow[:8], dtype=np.float64)
    Q = np.concatenate([probes, probes, np.asarray(X_targets, dtype=np.float64)])
    return _stream(kw.pop("name", "shadow (red-team pipeline)"), Q, first_perturbed=None, **kw)


def boundary_stream(
    X: np.ndarray, X_pool: np.ndarray, predict: Callable[[np.ndarray], np.ndarray], *, steps: int = 16, **kw: Any
) -> QueryStream:
    """A boundary-distance walk per record: binary search on the segment from ``x`` to the nearest pool
    record of another predicted class, ``steps`` label queries per record (each answer steers the next)."""
    X, X_pool = np.asarray(X, dtype=np.float64), np.asarray(X_pool, dtype=np.float64)
    pool_labels = predict(X_pool)
    out = []
    for x in X:
        label = predict(x[None])[0]
        others = X_pool[pool_labels != label]
        if len(others) == 0:
            continue
        far = others[np.argmin(((others - x) ** 2).sum(axis=1))]
        lo, hi = 0.0, 1.0
        out.append(x)
        for _ in range(steps):
            mid = (lo + hi) / 2
            q = x + mid * (far - x)
            out.append(q)
            if predict(q[None])[0] == label:
                lo = mid
            else:
                hi = mid
    return _stream(kw.pop("name", "boundary walk"), np.asarray(out), first_perturbed=1, **kw)


def benign_stream(
    X: np.ndarray, n: int, rng: np.random.Generator, *, name: str = "distinct records", **kw: Any
) -> QueryStream:
    """``n`` real records: the table in a random order, then again in a new order (a client re-scoring
    its table), as many passes as ``n`` needs; a record recurs only in a later pass."""
    X = np.asarray(X, dtype=np.float64)
    idx = np.concatenate([rng.permutation(len(X)) for _ in range(int(np.ceil(n / len(X))))])[:n]
    return _stream(name, X[idx], first_perturbed=None, **kw)


def dashboard_stream(x: np.ndarray, n: int, *, period: float = 5.0, name: str = "dashboard", **kw: Any) -> QueryStream:
    """One record polled ``n`` times every ``period`` seconds."""
    return _stream(name, np.tile(np.asarray(x, dtype=np.float64), (n, 1)), rate=1.0 / period, **kw)


def concat_streams(
    name: str, streams: Sequence[QueryStream], *, interleave: bool = True, rng: np.random.Generator | None = None
) -> QueryStream:
    """Several clients at once: queries merged by arrival time (``interleave``) or one after another."""
    X = np.concatenate([s.X for s in streams])
    keys = np.concatenate([s.keys for s in streams])
    addresses = np.concatenate([s.addresses for s in streams])
    if interleave:
        times = np.concatenate([s.times for s in streams])
        jitter = rng.random(len(times)) * 1e-3 if rng is not None else 0.0
        order = np.argsort(times + jitter, kind="stable")
    else:
        offsets = np.cumsum([0.0] + [s.times[-1] - s.times[0] + 1.0 for s in streams[:-1]])
        times = np.concatenate([s.times - s.times[0] + o for s, o in zip(streams, offsets, strict=True)])
        order = np.arange(len(X))
    tenants: dict[str, str] = {}
    for s in streams:
        tenants.update(s.tenants)
    first = [s.first_perturbed for s in streams if s.first_perturbed is not None]
    return QueryStream(
        name,
        X[order],
        keys[order],
        addresses[order],
        times[order],
        tenants=tenants,
        first_perturbed=min(first) if first else None,
        randomized=any(s.randomized for s in streams),
    )


def run_stream(
    detector: ProbeDetector | Sequence[ProbeDetector],
    stream: QueryStream,
    predict_proba: Callable[[np.ndarray], np.ndarray],
    *,
    secret: bytes,
    batch_size: int = 1,
    stop_at_first: bool = True,
) -> StreamResult:
    """Feed ``stream`` to ``detector`` as the gateway does, in requests of up to ``batch_size`` consecutive
    queries of one key and address; several detectors (workers sharing a store) take requests in turn.

    Returns the position of the query that raised the first alert, counted over all queries answered.
    """
    detectors = list(detector) if isinstance(detector, Sequence) else [detector]
    subjects_of = detectors[0].config.subjects
    alerts: list[tuple[int, Alert]] = []
    first = None
    n = len(stream)
    i, turn = 0, 0
    while i < n:
        j = i + 1
        while (
            j < n
            and j - i < batch_size
            and stream.keys[j] == stream.keys[i]
            and stream.addresses[j] == stream.addresses[i]
        ):
            j += 1
        X = stream.X[i:j]
        key = str(stream.keys[i])
        subjects = [Subject("key", key)]
        tenant = stream.tenants.get(key)
        if tenant is not None and "tenant" in subjects_of:
            subjects.append(Subject("tenant", tenant))
        if "address" in subjects_of:
            subjects.append(Subject("address", str(stream.addresses[i])))
        det = detectors[turn % len(detectors)]
        turn += 1
        raised = det.observe(
            subjects,
            X,
            predict_proba(X),
            record_fingerprints(secret, X),
            now=float(stream.times[j - 1]),
            randomized=stream.randomized,
        )
        for alert in raised:
            alerts.append((i + alert.at + 1, alert))
        if raised and first is None:
            first = min(i + a.at + 1 for a in raised)
            if stop_at_first:
                break
        i = j
    return StreamResult(stream.name, n if first is None else first, first, alerts, stream.first_perturbed)
