"""The gateway's ASGI app: HTTP limits, authentication, rate limits, output policy, probing detection, audit log.

Every HTTP request meets the front door (:class:`_FrontDoor`, pure ASGI) before any routing:

1. request line and headers over ``http.max_header_bytes`` → 431 (the HTTP server refuses larger heads
   with 400 before they reach the app); the whole request must arrive within ``http.request_timeout_seconds``
   (408);
2. the key, ``Authorization: Bearer KEY`` or ``X-API-Key: KEY``, exactly once: two key headers → 400, a
   key in the query string → 400. No valid key → 401, or 429 once the source address has spent
   ``http.unauthenticated_limits``. Requests without a valid key get no audit row: they are counted per
   source address, status and time bucket (:class:`~memberscope.gateway.auditlog.KeylessCounter`);
3. ``POST /v1/predict`` (:class:`_Predict`): the body is read with a cap on the bytes actually received,
   chunked or not (413 as soon as it is exceeded, 411 without a length, 408 when too slow), pydantic
   validates it (422); a key blocked by a probing alert gets 403; the tier's rate limits (and a probing
   throttle) are spent, one hit per record (429 with ``Retry-After``); the model answers; probing detection
   judges the records before the answer leaves, so the request that raises a ``block`` alert is itself
   refused (403) and one that raises a ``throttle`` alert spends the throttle budget; the tier's output
   post-processors and the KServe v1 wire format of :func:`memberscope.targets.wire.to_predictions`;
4. every answered request with a valid key, whatever its status (404, 405, 307, 411, ... included), is one
   audit-log row, committed before the answer leaves.

The requests whose records reach the model in one turn of the event loop are finished together
(:class:`_Batch`): probing detection judges each key's records in one call and their audit rows are
committed in one transaction, before any of their answers leaves. At one request per turn this is the
sequential path; under load it shares the per-call costs (measured in BENCHMARKS.md).
"""

# No `from __future__ import annotations`: FastAPI reads the handlers' annotations at definition time.

import asyncio
import contextlib
import json
import logging
import math
import time
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qsl, unquote_to_bytes

import numpy as np

from memberscope.exceptions import InvalidInputError, MissingDependencyError
from memberscope.gateway.auditlog import AuditLog, KeylessCounter, Request, decision_for
from memberscope.gateway.keys import KeyRecord, KeyStore
from memberscope.gateway.loading import ServedModel, as_served_model
from memberscope.gateway.policy import Policy, Tier
from memberscope.gateway.probing import ProbeDetector, Subject
from memberscope.gateway.ratelimit import RateLimiter

__all__ = ["Gateway", "create_app"]

log = logging.getLogger("memberscope.gateway")

PREDICT_PATH = "/v1/predict"
PUBLIC_PATHS = {"/healthz"}
DOC_PATHS = {"/docs", "/openapi.json", "/docs/oauth2-redirect", "/redoc"}
ADMIN_PREFIXES = ("/admin/", "/metrics")
METRIC_PATHS = {PREDICT_PATH, "/healthz", "/metrics", "/admin/alerts"}
#: Query parameters that carry credentials in other APIs; a gateway key sent in them is refused.
KEY_PARAMETERS = {"api_key", "apikey", "api-key", "key", "token", "access_token", "auth", "authorization", "x-api-key"}
#: A refused request's unread body up to this size is read and dropped by the server (keeping the
#: connection); a larger or chunked one closes the connection instead.
DRAIN_BYTES = 1 << 20


def _require_fastapi():
    try:
        import fastapi  # noqa: F401
    except ImportError:
        raise MissingDependencyError("the gateway needs FastAPI: pip install 'memberscope[serve]'") from None


def _is_randomized(tier: Tier) -> bool:
    """Whether the tier's output post-processors answer one input differently twice (noise)."""
    probs = np.array([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3]])
    first = tier.postprocessor(probs, rng=np.random.default_rng(1))
    return not np.array_equal(first, tier.postprocessor(probs, rng=np.random.default_rng(2)), equal_nan=True)


class Gateway:
    """Everything one gateway process holds: model, policy, keys, limiter, detector, logs, metrics."""

    def __init__(self, model: ServedModel, policy: Policy, *, keys: KeyStore, audit: AuditLog):
        from memberscope.gateway.history import history_store, namespace_of
        from memberscope.gateway.metrics import GatewayMetrics

        self.model, self.policy, self.keys, self.audit = model, policy, keys, audit
        self.limiter = RateLimiter(policy.storage, policy.strategy)
        self.keyless = KeylessCounter(audit, bucket_seconds=policy.http.keyless_bucket_seconds)
        self.detector = None
        if policy.probing.enabled:
            reference = None
            if policy.probing.reference:
                reference = np.load(policy.probing.reference, allow_pickle=False).reshape(-1, model.n_features)
            store = history_store(
                policy.storage,
                namespace=namespace_of(keys.secret("probing-namespace")),
                window_seconds=policy.probing.window_seconds,
            )
            self.detector = ProbeDetector(
                policy.probing,
                model.n_features,
                reference=reference,
                store=store,
                reference_probs=None if reference is None else model.predict_proba(reference),
            )
            if reference is None:
                log.warning(
                    "probing.reference is not set: probing detection learns what typical records look like from "
                    "the first %d distinct records served, and sees no perturbation evidence before",
                    policy.probing.bootstrap,
                )
        from memberscope.targets.postprocess import needs_record_keys, set_noise_secret

        for tier in policy.tiers.values():  # consistent noise keyed by this deployment's own secret
            set_noise_secret(tier.postprocessor, keys.secret("consistent-noise"))
        self.keyed = {name: needs_record_keys(tier.postprocessor) for name, tier in policy.tiers.items()}
        self.randomized = {name: _is_randomized(tier) for name, tier in policy.tiers.items()}
        self.rng = np.random.default_rng(policy.seed)
        self.max_body = int(policy.http.max_body_bytes or 4096 + policy.max_batch * model.n_features * 40)
        self._action_cache: dict[str, tuple[float, str | None, int]] = {}
        self.metrics = GatewayMetrics()
        self._counters: dict[tuple[str, int], Any] = {}
        self.m_records, self.m_alerts, self.m_latency = self.metrics.records, self.metrics.alerts, self.metrics.latency
        self.m_keyless = self.metrics.keyless
        self.m_records_by_tier = {name: self.m_records.labels(tier=name) for name in policy.tiers}
        #: The ``POST /v1/predict`` endpoint (set by :func:`create_app`); the front door calls it directly.
        self.predict: _Predict | None = None
        self.batch = _Batch(self)

    def count(self, path: str, status: int) -> None:
        """One request in the ``gateway_requests_total`` counter (unknown paths as ``other``)."""
        key = (path if path in METRIC_PATHS else "other", status)
        child = self._counters.get(key)
        if child is None:
            child = self._counters[key] = self.metrics.requests.labels(path=key[0], status=str(status))
        child.inc()

    def probing_action(self, key_id: str, now: float) -> str | None:
        """block / throttle while an alert of that action is younger than the cooldown.

        The answer is cached for ``key_cache_seconds`` only while no other process has written to the
        audit log (its ``data_version``), and this process drops a key's entry when it raises an alert
        for it: an alert raised by any gateway process sharing the log applies to the very next request."""
        version = self.audit.version()
        hit = self._action_cache.get(key_id)
        if hit is not None and now - hit[0] < self.policy.key_cache_seconds and hit[2] == version:
            return hit[1]
        action = self.audit.active_action(key_id, since=now - self.policy.probing.cooldown_seconds)
        if len(self._action_cache) > 100_000:
            self._action_cache.clear()
        self._action_cache[key_id] = (now, action, version)
        return action


def _predict_models(n_features: int, max_batch: int, max_abs: float):
    from pydantic import BaseModel, ConfigDict, Field, Strict, model_validator

    Number = Annotated[float, Strict(), Field(allow_inf_nan=False, ge=-max_abs, le=max_abs)]
    Record = Annotated[list[Number], Field(min_length=n_features, max_length=n_features)]

    class PredictRequest(BaseModel):
        """One record (``instance``) or a batch (``instances``) of flat records of ``n_features`` numbers."""

        model_config = ConfigDict(extra="forbid")
        instances: Annotated[list[Record], Field(min_length=1, max_length=max_batch)] | None = None
        instance: Record | None = None

        @model_validator(mode="after")
        def _exactly_one(self):
            if (self.instances is None) == (self.instance is None):
                raise ValueError("give exactly one of 'instances' (a batch of records) or 'instance' (one record)")
            return self

    class PredictResponse(BaseModel):
        predictions: list[Any]

    return PredictRequest, PredictResponse


async def _respond(send, status: int, body: Any, headers: dict[str, str] | None = None, *, close: bool = False):
    """Send a complete JSON answer; ``close`` asks the server to close the connection after it (a body we
    did not read, or a client we will not serve again soon)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    for name, value in (headers or {}).items():
        raw.append((name.lower().encode("latin-1"), value.encode("latin-1")))
    if close:
        raw.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": data})


class _Context:
    """A request with a valid key: who, which tier, from where, and whether its audit row is written."""

    __slots__ = ("address", "audited", "chunked", "content_type", "deadline", "has_length", "key", "start", "tier")

    def __init__(self, key: KeyRecord, tier: Tier, address: str, start: float, deadline: float):
        self.key, self.tier, self.address, self.start, self.deadline = key, tier, address, start, deadline
        self.audited = False
        self.content_type, self.has_length, self.chunked = b"", False, False


BLOCKED = "this key is blocked after probing alerts"


class _Job:
    """A request whose records the model answered, waiting for its turn's probing verdict and audit commit."""

    __slots__ = ("X", "action", "ctx", "fps", "future", "now", "probs")

    def __init__(self, ctx: _Context, X: np.ndarray, probs: np.ndarray, fps: list[str], now: float, action):
        self.ctx, self.X, self.probs, self.fps, self.now, self.action = ctx, X, probs, fps, now, action
        #: ``(status, payload, headers)`` once the request's turn is finished (made in the running event loop).
        self.future: asyncio.Future[tuple[int, Any, dict[str, str] | None]] = asyncio.get_running_loop().create_future()


class _Batch:
    """The requests that reach the model in one turn of the event loop, finished together: probing
    detection judges each key's records in one call, and their audit rows are committed in one
    transaction, before any of their answers leaves. At one request per turn this is one request; under
    load the per-call costs are shared by every request of the turn."""

    def __init__(self, gateway: Gateway):
        self.gw = gateway
        self.jobs: list[_Job] = []

    def submit(self, job: _Job) -> asyncio.Future[tuple[int, Any, dict[str, str] | None]]:
        self.jobs.append(job)
        if len(self.jobs) == 1:
            asyncio.get_running_loop().call_soon(self.flush)
        return job.future

    def flush(self) -> None:
        jobs, self.jobs = self.jobs, []
        gw = self.gw
        predict = gw.predict
        try:
            if predict is None:
                raise RuntimeError("the predict endpoint is set by create_app before any request is batched")
            acts = predict.detect(jobs)
            answers = [predict.finish(job, act) for job, act in zip(jobs, acts, strict=True)]
            gw.audit.record_many([row for *_, row in answers])
        except BaseException as exc:
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(exc)
            return
        for job, (status, payload, headers, _) in zip(jobs, answers, strict=True):
            job.ctx.audited = True
            gw.count(PREDICT_PATH, status)
            if not job.future.done():
                job.future.set_result((status, payload, headers))


class _FrontDoor:
    """Pure ASGI, before routing: HTTP limits, the key, keyless accounting, one audit row per keyed answer."""

    def __init__(self, app, gateway: Gateway):
        self.app, self.gw = app, gateway

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        gw = self.gw
        limits = gw.policy.http
        loop = asyncio.get_running_loop()
        start = loop.time()
        path, query = scope["path"], scope.get("query_string", b"")
        client = scope.get("client")
        address = client[0] if client else "-"
        credentials = []
        size = len(scope.get("raw_path") or path) + len(query) + 16
        declared, chunked, content_type = None, False, b""
        for name, value in scope["headers"]:
            size += len(name) + len(value) + 4
            if name == b"authorization" or name == b"x-api-key":
                credentials.append((name, value))
            elif name == b"content-length":
                declared = value
            elif name == b"transfer-encoding":
                chunked = chunked or b"chunked" in value.lower()
            elif name == b"content-type":
                content_type = value
        # An answer that leaves the body unread closes the connection when that body may be large (chunked,
        # or declared over DRAIN_BYTES); a small one the server reads and drops, keeping the connection.
        close = chunked or (declared is not None and (not declared.isdigit() or int(declared) > DRAIN_BYTES))
        if size > limits.max_header_bytes:
            why = f"request line and headers over {limits.max_header_bytes} bytes"
            return await self._keyless(send, address, 431, why, close=close)
        if len(credentials) > 1:
            why = "send the API key once, in one Authorization or X-API-Key header"
            return await self._keyless(send, address, 400, why, close=close)
        if query and _key_in_query(query):
            why = "never put the API key in the URL (it ends up in logs); send it in a header"
            return await self._keyless(send, address, 400, why, close=close)
        if path in PUBLIC_PATHS or (gw.policy.public_docs and path in DOC_PATHS):
            return await self.app(scope, receive, self._counting_send(send, address))
        token = None
        if credentials:
            name, value = credentials[0]
            text = value.decode("latin-1")
            if name == b"x-api-key":
                token = text.strip()
            elif text[:7].lower() == "bearer ":
                token = text[7:].strip()
        record = gw.keys.verify(token)
        if record is None:
            windows = limits.unauthenticated_rate_limits
            retry = gw.limiter.hit(windows, "unauthenticated", address) if windows else None
            if retry is not None:
                why = "too many requests without a valid key from this address"
                return await self._keyless(send, address, 429, why, {"Retry-After": str(int(retry))}, close=close)
            why = "missing or invalid API key"
            return await self._keyless(send, address, 401, why, {"WWW-Authenticate": "Bearer"}, close=close)
        gw.keyless.maybe_flush()
        ctx = _Context(record, gw.policy.tiers.get(record.tier), address, start, start + limits.request_timeout_seconds)
        ctx.content_type = content_type.split(b";", 1)[0].strip().lower()
        ctx.has_length, ctx.chunked = declared is not None, chunked
        tier = ctx.tier
        if tier is None or (path.startswith(ADMIN_PREFIXES) and not tier.admin):
            why = "unknown tier" if tier is None else "not an admin key"
            gw.audit.record(key_id=record.key_id, path=path, status=403, decision="rejected", detail=why)
            gw.count(path, 403)
            return await _respond(send, 403, {"detail": f"this key may not use {path} ({why})"})
        if scope["method"] == "POST" and declared is not None and declared.isdigit() and int(declared) > gw.max_body:
            detail = f"request body over {gw.max_body} bytes; send at most {gw.policy.max_batch} records"
            gw.audit.record(key_id=record.key_id, path=path, status=413, decision="rejected", detail="body too large")
            gw.count(path, 413)
            return await _respond(send, 413, {"detail": detail}, close=close)
        scope.setdefault("state", {})["gateway"] = ctx
        if path == PREDICT_PATH and scope["method"] == "POST" and gw.predict is not None:
            try:  # the hot path: straight to the endpoint, no routing
                return await gw.predict(scope, receive, send)
            except Exception:
                if not ctx.audited:  # a bug: the 500 that follows gets its row too
                    gw.audit.record(key_id=record.key_id, path=path, status=500, detail="internal error")
                raise
        await self.app(scope, receive, self._audited_send(send, ctx, path))

    async def _keyless(self, send, address: str, status: int, detail: str, headers: dict | None = None, *, close: bool):
        self.gw.keyless.add(address, status)
        self.gw.m_keyless.labels(status=str(status)).inc()
        await _respond(send, status, {"detail": detail}, headers, close=close)

    def _counting_send(self, send, address: str):
        async def counted(message):
            if message["type"] == "http.response.start":
                self.gw.keyless.add(address, message["status"])
            await send(message)

        return counted

    def _audited_send(self, send, ctx: _Context, path: str):
        gw = self.gw

        async def audited(message):
            if message["type"] == "http.response.start" and not ctx.audited:
                ctx.audited = True
                status = message["status"]
                gw.audit.record(key_id=ctx.key.key_id, path=path, status=status, decision=decision_for(status))
                gw.count(path, status)
            await send(message)

        return audited


def _key_in_query(query: bytes) -> bool:
    """Whether a query string carries what looks like a credential."""
    if b"msk_" in unquote_to_bytes(query):
        return True
    return any(name.lower() in KEY_PARAMETERS for name, _ in parse_qsl(query.decode("latin-1"), keep_blank_values=True))


class _BodyError(Exception):
    def __init__(self, status: int, detail: str):
        self.status, self.detail = status, detail


async def _read_body(receive, limit: int, deadline: float) -> bytes | None:
    """The request body, counting the bytes actually received; None when the client went away.

    Raises ``_BodyError`` 413 as soon as more than ``limit`` bytes arrived, 408 past ``deadline`` (loop time).
    """
    chunks, size = [], 0
    try:
        async with asyncio.timeout_at(deadline):
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return None
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    raise _BodyError(413, f"request body over {limit} bytes")
                chunks.append(chunk)
                if not message.get("more_body", False):
                    return chunks[0] if len(chunks) == 1 else b"".join(chunks)
    except TimeoutError:
        raise _BodyError(408, "request body not received in time") from None


class _Predict:
    """``POST /v1/predict`` as a raw ASGI endpoint (no FastAPI request machinery on the hot path)."""

    def __init__(self, gateway: Gateway, request_model):
        self.gw, self.validate = gateway, request_model.model_validate
        self.validate_json = request_model.model_validate_json

    async def __call__(self, scope, receive, send):
        from pydantic import ValidationError

        gw, ctx = self.gw, scope["state"]["gateway"]
        key_id = ctx.key.key_id

        async def refuse(status: int, detail: Any, *, why: str | None = None, close: bool = False, headers=None):
            gw.audit.record(key_id=key_id, path=PREDICT_PATH, status=status, decision="rejected", detail=why)
            ctx.audited = True
            gw.count(PREDICT_PATH, status)
            await _respond(send, status, {"detail": detail}, headers, close=close)

        content_type = ctx.content_type
        if not ctx.has_length and not ctx.chunked:
            return await refuse(411, "a Content-Length header (or a chunked body) is required", why="no length")
        try:
            body = await _read_body(receive, gw.max_body, ctx.deadline)
        except _BodyError as exc:
            detail = exc.detail + (f"; send at most {gw.policy.max_batch} records" if exc.status == 413 else "")
            return await refuse(exc.status, detail, why=exc.detail, close=True)
        if body is None:  # the client went away: nothing is answered
            return
        if content_type and content_type != b"application/json" and not content_type.endswith(b"+json"):
            return await refuse(415, "send the body as application/json", why="media type")
        if not body:
            return await refuse(422, [{"loc": ["body"], "msg": "Field required", "type": "missing"}], why="no body")
        try:
            # pydantic parses and checks valid bodies in one pass; an invalid one is parsed again the way
            # FastAPI would, so that errors read as FastAPI's (``JSON decode error``, ``valid number``, ...).
            parsed = self.validate_json(body)
        except ValidationError:
            parsed = None
        try:
            if parsed is None:
                parsed = self.validate(json.loads(body))
        except json.JSONDecodeError as exc:
            errors = [{"loc": ["body", exc.pos], "msg": "JSON decode error", "type": "json_invalid"}]
            return await refuse(422, errors, why=json.dumps(errors))
        except (UnicodeDecodeError, RecursionError):
            return await refuse(400, "There was an error parsing the body", why="undecodable body")
        except ValidationError as exc:
            errors = [
                {
                    "loc": ["body", *(str(p) for p in e.get("loc", ()))],
                    "msg": e.get("msg", "invalid"),
                    "type": e.get("type", ""),
                }
                for e in exc.errors()[:20]
            ]
            return await refuse(422, errors, why=json.dumps(errors)[:2000])
        rows = parsed.instances if parsed.instances is not None else [parsed.instance]
        status, payload, headers = await self.answer(ctx, np.asarray(rows, dtype=np.float64))
        await _respond(send, status, payload, headers)

    async def answer(self, ctx: _Context, X: np.ndarray) -> tuple[int, Any, dict[str, str] | None]:
        """Limits, model, probing detection and output policy for validated records ``X (n, d)``; the
        status, body and headers of the answer, its audit row committed."""
        gw, policy, tier = self.gw, self.gw.policy, ctx.tier
        key_id = ctx.key.key_id
        now = time.time()

        def refused(status, payload, decision, *, headers=None, detail=None):
            gw.audit.record(
                key_id=key_id, path=PREDICT_PATH, status=status, decision=decision, X=X, detail=detail, now=now
            )
            ctx.audited = True
            gw.count(PREDICT_PATH, status)
            return status, payload, headers

        if tier.admin:  # operators' keys read alerts and metrics; they get no predictions to leak
            why = "admin keys may not query the model; use a key of a serving tier"
            return refused(403, {"detail": why}, "rejected", detail="admin key")
        action = gw.probing_action(key_id, now) if gw.detector is not None else None
        if action == "block":
            retry = str(int(policy.probing.cooldown_seconds))
            return refused(403, {"detail": BLOCKED}, "blocked", headers={"Retry-After": retry})
        limited = self._limit(ctx, len(X), action == "throttle")
        if limited is not None:
            message, retry, why = limited
            return refused(429, {"detail": message}, "throttled", headers={"Retry-After": retry}, detail=why)
        with np.errstate(all="ignore"):
            probs = gw.model.predict_proba(X)
        bad = np.flatnonzero(~np.isfinite(probs).all(axis=1))
        if len(bad):
            detail = f"the model gives no finite output for record(s) {bad[:10].tolist()}; check their values"
            return refused(422, {"detail": detail}, "rejected", detail="model output")
        job = _Job(ctx, X, probs, gw.audit.fingerprints(X), now, action)
        return await gw.batch.submit(job)

    def finish(self, job: _Job, act: str | None) -> tuple[int, Any, dict[str, str] | None, Request]:
        """The answer to a request whose records probing detection has judged (``act``: the action of the
        alerts they raised for this key, if any), and its audit row."""
        gw, ctx, tier = self.gw, job.ctx, job.ctx.tier

        def row(status: int, decision: str, *, detail: str | None = None, granularity: str | None = None) -> Request:
            return Request(
                key_id=ctx.key.key_id, path=PREDICT_PATH, status=status, decision=decision, detail=detail,
                granularity=granularity, X=job.X, fingerprints=job.fps, now=job.now,
            )  # fmt: skip

        if act == "block":
            retry = str(int(gw.policy.probing.cooldown_seconds))
            return 403, {"detail": BLOCKED}, {"Retry-After": retry}, row(403, "blocked", detail="probing alert")
        if act == "throttle" and job.action != "throttle":
            limited = self._limit(ctx, len(job.X), True, tier_spent=True)
            if limited is not None:
                answer = {"detail": limited[0]}
                return 429, answer, {"Retry-After": limited[1]}, row(429, "throttled", detail="probing alert")
        # Consistent noise is keyed by the record's keyed fingerprint: a repeated query gets the same answer.
        keys = [bytes.fromhex(f) for f in job.fps] if gw.keyed[tier.name] else None
        observed = tier.postprocessor(job.probs, rng=gw.rng, keys=keys)
        granularity = tier.postprocessor.granularity
        from memberscope.targets.wire import to_predictions

        predictions = to_predictions(observed, granularity=granularity)
        gw.m_records_by_tier[tier.name].inc(len(job.X))
        gw.m_latency.observe(asyncio.get_running_loop().time() - ctx.start)
        body = json.dumps({"predictions": predictions}).encode()
        return 200, body, None, row(200, "allowed", granularity=granularity)

    def _limit(self, ctx: _Context, cost: int, throttled: bool, *, tier_spent: bool = False):
        """Spend the tier's windows (unless already spent) and, when throttled, the probing budget;
        ``(message, retry_after, audit detail)`` when refused, else None."""
        gw, tier = self.gw, ctx.tier
        retry, by_probing = None, False
        if not tier_spent and tier.rate_limits:
            retry = gw.limiter.hit(tier.rate_limits, ctx.key.key_id, cost=cost)
        if retry is None and throttled:  # a separate budget, not shared with the tier's windows
            retry = gw.limiter.hit(gw.policy.probing.throttle_rate_limits, "probing", ctx.key.key_id, cost=cost)
            by_probing = retry is not None
        if retry is None:
            return None
        window = gw.limiter.refused_by
        if window is None:  # hit() names the refusing window whenever it refuses
            raise RuntimeError("the rate limiter refused without naming the window")
        why = "throttled after probing alerts: " if by_probing else ""
        message = f"rate limit exceeded ({why}{window.amount} records per {window.get_expiry()} s)"
        return message, str(int(retry)), why or None

    def detect(self, jobs: list[_Job]) -> list[str | None]:
        """Probing detection on the records about to be answered, the requests of one key, tenant and
        address judged together; per request, the action of the alerts that implicate its key at or before
        its records (None when none do)."""
        gw, policy = self.gw, self.gw.policy
        acts: list[str | None] = [None] * len(jobs)
        if gw.detector is None:
            return acts
        groups: dict[tuple, list[int]] = {}
        for i, job in enumerate(jobs):
            key = job.ctx.key
            groups.setdefault((key.key_id, key.tenant, job.ctx.address, job.ctx.tier.name), []).append(i)
        for (key_id, tenant, address, tier_name), members in groups.items():
            subjects = [Subject("key", key_id)]
            if tenant and "tenant" in policy.probing.subjects:
                subjects.append(Subject("tenant", tenant))
            if "address" in policy.probing.subjects:
                subjects.append(Subject("address", address))
            part = [jobs[i] for i in members]
            X = part[0].X if len(part) == 1 else np.concatenate([j.X for j in part])
            probs = part[0].probs if len(part) == 1 else np.concatenate([j.probs for j in part])
            fps = [f for j in part for f in j.fps]
            now = part[-1].now
            alerts = gw.detector.observe(subjects, X, probs, fps, now=now, randomized=gw.randomized[tier_name])
            if not alerts:
                continue
            act = policy.probing_action(part[0].ctx.tier)
            first = None
            for alert in alerts:
                if key_id in alert.keys:
                    first = alert.at if first is None else min(first, alert.at)
                for implicated in alert.keys or [key_id]:
                    gw.audit.add_alert(
                        key_id=implicated,
                        detector=alert.detector,
                        action=act,
                        detail=alert.detail,
                        now=now,
                        scope=alert.subject.scope,
                        subject=alert.subject.name,
                    )
                    gw._action_cache.pop(implicated, None)
                gw.m_alerts.labels(detector=alert.detector).inc()
                log.warning(
                    "probing alert for %s %s (keys %s): %s (action %s)",
                    alert.subject.scope,
                    alert.subject.name,
                    ",".join(alert.keys),
                    alert.detector,
                    act,
                )
            if first is not None:  # the request holding the alert's record, and those after it
                ends = np.cumsum([len(j.X) for j in part])
                for i, end in zip(members, ends, strict=True):
                    if end > first:
                        acts[i] = act
        return acts


def create_app(
    model: Any,
    policy: Policy | dict | str | Path,
    *,
    keys: KeyStore | str | Path | None = None,
    audit: AuditLog | str | Path | None = None,
):
    """The gateway as a FastAPI app serving ``model`` under ``policy``.

    ``model`` is a :class:`ServedModel` or anything :func:`memberscope.targets.wrap` accepts (a fitted
    scikit-learn classifier or Pipeline, a torch module, a memberscope model, a model file); ``policy`` a
    :class:`Policy`, a mapping or a YAML path. ``keys``/``audit`` override the policy's database paths (or pass
    open stores). Serve it with :func:`memberscope.gateway.server.server_config` to get the policy's HTTP limits.
    """
    _require_fastapi()
    from fastapi import APIRouter, FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.openapi.utils import get_openapi
    from fastapi.responses import PlainTextResponse, Response
    from starlette.routing import Route

    from memberscope.gateway.policy import load_policy

    if isinstance(policy, str | Path):
        policy = load_policy(policy)
    elif isinstance(policy, dict):
        policy = Policy.from_dict(policy)
    served = as_served_model(model, n_features=policy.model.get("n_features"), n_classes=policy.model.get("n_classes"))
    if not isinstance(keys, KeyStore):
        keys_path = keys or policy.keys_db
        if keys_path is None:
            raise InvalidInputError("the gateway needs a key database: set keys_db in the policy")
        keys = KeyStore(keys_path, cache_seconds=policy.key_cache_seconds)
    if not isinstance(audit, AuditLog):
        audit_path = audit or policy.audit.path
        if audit_path is None:
            raise InvalidInputError("the gateway needs an audit log: set audit.path in the policy")
        audit = AuditLog(
            audit_path,
            fingerprint_key=keys.secret("audit-fingerprint"),
            raw_records=policy.audit.raw_records,
            retention_days=policy.audit.retention_days,
            synchronous=policy.audit.synchronous,
            max_path=policy.http.max_logged_path,
        )
    gw = Gateway(served, policy, keys=keys, audit=audit)
    PredictRequest, PredictResponse = _predict_models(served.n_features, policy.max_batch, policy.max_abs_value)

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        yield
        gw.keyless.flush()  # the keyless counts of the last second

    app = FastAPI(
        title="memberscope inference gateway",
        description="Model predictions behind API keys, rate limits, an output policy and an audit log.",
        version="1",
        lifespan=lifespan,
    )
    app.state.gateway = gw

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        errors = [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": e.get("msg", "invalid"), "type": e.get("type", "")}
            for e in exc.errors()[:20]
        ]
        return Response(json.dumps({"detail": errors}), status_code=422, media_type="application/json")

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception):  # pragma: no cover - a bug, logged without the body
        log.error("internal error on %s: %s", request.url.path, type(exc).__name__)
        return Response(json.dumps({"detail": "internal error"}), status_code=500, media_type="application/json")

    @app.get("/healthz", tags=["operations"])
    async def healthz():
        """Liveness: 200 when the process serves requests. Public, says nothing about the model."""
        return {"status": "ok"}

    @app.get("/metrics", tags=["operations"], response_class=PlainTextResponse)
    async def metrics():
        """Prometheus text format (admin keys only)."""
        return Response(gw.metrics.expose(), media_type=gw.metrics.content_type)

    @app.get("/admin/alerts", tags=["operations"])
    async def alerts(since: float = 0.0, key_id: str | None = None, limit: int = 1000):
        """Probing alerts, newest first (admin keys only)."""
        limit = max(1, min(int(limit), 10_000))
        since = since if math.isfinite(since) else 0.0
        return {"alerts": gw.audit.alerts(since=since, key_id=key_id, limit=limit)}

    gw.predict = _Predict(gw, PredictRequest)
    app.router.routes.append(Route(PREDICT_PATH, gw.predict, methods=["POST"]))

    # The predict route is a raw ASGI endpoint, which FastAPI does not document; this declaration (never
    # mounted, never called) gives it its OpenAPI entry.
    documented = APIRouter()

    @documented.post(
        PREDICT_PATH,
        tags=["inference"],
        response_model=None,
        responses={
            200: {"model": PredictResponse, "description": "predictions in the key's output granularity"},
            401: {"description": "missing or invalid key"},
            403: {"description": "admin key, or key blocked after probing alerts"},
            413: {"description": "body over the size limit"},
            429: {"description": "rate limited (Retry-After)"},
        },
    )
    async def predict_documentation(body: PredictRequest):  # type: ignore[valid-type]
        """Predictions for one record or a batch, at the output granularity of the key's tier."""

    def openapi():
        if app.openapi_schema is None:
            app.openapi_schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=[*app.routes, *documented.routes],
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend the schema
    app.add_middleware(_FrontDoor, gateway=gw)
    return app
