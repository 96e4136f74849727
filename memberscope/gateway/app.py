"""The FastAPI app: authentication, rate limits, output policy, probing detection and audit log.

Request path of ``POST /v1/predict``:

1. an ASGI middleware checks the key (``Authorization: Bearer KEY`` or ``X-API-Key: KEY``) before any
   routing or body parsing, so that a caller without a valid key gets 401 and learns nothing (not even
   the input shape from a validation error);
2. pydantic validates the body: a record of ``n_features`` finite numbers, or at most ``max_batch`` of them;
3. a key blocked by probing detection gets 403; the rate limits of its tier (and a probing throttle)
   are spent, one hit per record; a refused request gets 429 with ``Retry-After``;
4. the model's probabilities go through the tier's output post-processors and out in the KServe v1
   wire format of :func:`memberscope.targets.wire.to_predictions`;
5. probing detection looks at the records; every request, allowed or not, is one audit-log row.
"""

# No `from __future__ import annotations`: FastAPI reads the handlers' annotations at definition time.

import json
import logging
import math
import time
from pathlib import Path
from typing import Annotated, Any

import numpy as np

from memberscope.exceptions import InvalidInputError, MissingDependencyError
from memberscope.gateway.auditlog import AuditLog
from memberscope.gateway.keys import KeyStore
from memberscope.gateway.loading import ServedModel, as_served_model
from memberscope.gateway.policy import Policy
from memberscope.gateway.probing import ProbeDetector
from memberscope.gateway.ratelimit import RateLimiter

__all__ = ["Gateway", "create_app"]

log = logging.getLogger("memberscope.gateway")

PUBLIC_PATHS = {"/healthz"}
DOC_PATHS = {"/docs", "/openapi.json", "/docs/oauth2-redirect", "/redoc"}
ADMIN_PREFIXES = ("/admin/", "/metrics")


def _require_fastapi():
    try:
        import fastapi  # noqa: F401
    except ImportError:
        raise MissingDependencyError("the gateway needs FastAPI: pip install 'memberscope[serve]'") from None


class Gateway:
    """Everything one gateway process holds: model, policy, keys, limiter, detector, log, metrics."""

    def __init__(self, model: ServedModel, policy: Policy, *, keys: KeyStore, audit: AuditLog):
        from memberscope.gateway.metrics import GatewayMetrics

        self.model, self.policy, self.keys, self.audit = model, policy, keys, audit
        self.limiter = RateLimiter(policy.storage, policy.strategy)
        mean, std = model.mean, model.std
        if policy.probing.reference:
            ref = np.load(policy.probing.reference, allow_pickle=False).reshape(-1, model.n_features)
            mean, std = ref.mean(axis=0), ref.std(axis=0)
        self.detector = ProbeDetector(policy.probing, model.n_features, mean=mean, std=std)
        self.rng = np.random.default_rng(policy.seed)
        self.max_body = 4096 + policy.max_batch * model.n_features * 40
        self._action_cache: dict[str, tuple[float, str | None]] = {}
        self.metrics = GatewayMetrics()
        self.m_requests, self.m_records = self.metrics.requests, self.metrics.records
        self.m_alerts, self.m_latency = self.metrics.alerts, self.metrics.latency

    def probing_action(self, key_id: str, now: float) -> str | None:
        """block / throttle while an alert of that action is younger than the cooldown (cached 1 s)."""
        hit = self._action_cache.get(key_id)
        if hit is not None and now - hit[0] < self.policy.key_cache_seconds:
            return hit[1]
        action = self.audit.active_action(key_id, since=now - self.policy.probing.cooldown_seconds)
        self._action_cache[key_id] = (now, action)
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


def _json(status: int, body: dict, headers: dict | None = None):
    from fastapi.responses import JSONResponse

    return JSONResponse(status_code=status, content=body, headers=headers)


class _AuthMiddleware:
    """Pure ASGI: authenticates before routing and body parsing; caps the body size."""

    def __init__(self, app, gateway: Gateway):
        self.app, self.gw = app, gateway

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        public = path in PUBLIC_PATHS or (self.gw.policy.public_docs and path in DOC_PATHS)
        if not public:
            headers = dict(scope["headers"])
            token = None
            auth = headers.get(b"authorization", b"").decode("latin-1")
            if auth[:7].lower() == "bearer ":
                token = auth[7:].strip()
            elif b"x-api-key" in headers:
                token = headers[b"x-api-key"].decode("latin-1").strip()
            record = self.gw.keys.verify(token)
            if record is None:
                self.gw.audit.record(key_id=None, path=path, status=401, decision="rejected", detail="auth")
                self.gw.m_requests.labels(path="other", status="401").inc()
                resp = _json(401, {"detail": "missing or invalid API key"}, {"WWW-Authenticate": "Bearer"})
                return await resp(scope, receive, send)
            tier = self.gw.policy.tiers.get(record.tier)
            if tier is None or (path.startswith(ADMIN_PREFIXES) and not tier.admin):
                why = "unknown tier" if tier is None else "not an admin key"
                self.gw.audit.record(key_id=record.key_id, path=path, status=403, decision="rejected", detail=why)
                return await _json(403, {"detail": f"this key may not use {path} ({why})"})(scope, receive, send)
            scope.setdefault("state", {})["key"] = record
            scope["state"]["tier"] = tier
            if scope["method"] == "POST":
                length = headers.get(b"content-length")
                if length is None:
                    return await _json(411, {"detail": "a Content-Length header is required"})(scope, receive, send)
                if not length.isdigit() or int(length) > self.gw.max_body:
                    self.gw.audit.record(
                        key_id=record.key_id, path=path, status=413, decision="rejected", detail="body too large"
                    )
                    detail = (
                        f"request body over {self.gw.max_body} bytes; send at most {self.gw.policy.max_batch} records"
                    )
                    return await _json(413, {"detail": detail})(scope, receive, send)
        await self.app(scope, receive, send)


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
    open stores).
    """
    _require_fastapi()
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import PlainTextResponse, Response

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
        )
    gw = Gateway(served, policy, keys=keys, audit=audit)
    PredictRequest, PredictResponse = _predict_models(served.n_features, policy.max_batch, policy.max_abs_value)

    app = FastAPI(
        title="memberscope inference gateway",
        description="Model predictions behind API keys, rate limits, an output policy and an audit log.",
        version="1",
    )
    app.state.gateway = gw

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        errors = [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": e.get("msg", "invalid"), "type": e.get("type", "")}
            for e in exc.errors()[:20]
        ]
        key = getattr(request.state, "key", None)
        gw.audit.record(
            key_id=key.key_id if key else None,
            path=request.url.path,
            status=422,
            decision="rejected",
            detail=json.dumps(errors)[:2000],
        )
        gw.m_requests.labels(path=request.url.path, status="422").inc()
        return _json(422, {"detail": errors})

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception):  # pragma: no cover - a bug, logged without the body
        log.error("internal error on %s: %s", request.url.path, type(exc).__name__)
        return _json(500, {"detail": "internal error"})

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

    @app.post(
        "/v1/predict",
        tags=["inference"],
        response_model=None,  # the handler serializes itself; the schema below documents the answer
        responses={
            200: {"model": PredictResponse, "description": "predictions in the key's output granularity"},
            401: {"description": "missing or invalid key"},
            403: {"description": "admin key, or key blocked after probing alerts"},
            429: {"description": "rate limited (Retry-After)"},
        },
    )
    async def predict(body: PredictRequest, request: Request):  # type: ignore[valid-type]
        """Predictions for one record or a batch, at the output granularity of the key's tier."""
        start = time.perf_counter()
        key, tier = request.state.key, request.state.tier
        path = "/v1/predict"
        X = np.asarray(body.instances if body.instances is not None else [body.instance], dtype=np.float64)
        now = time.time()
        if tier.admin:  # operators' keys read alerts and metrics; they get no predictions to leak
            gw.audit.record(key_id=key.key_id, path=path, status=403, decision="rejected", detail="admin key", now=now)
            return _json(403, {"detail": "admin keys may not query the model; use a key of a serving tier"})
        action = gw.probing_action(key.key_id, now) if policy.probing.enabled else None
        if action == "block":
            gw.audit.record(key_id=key.key_id, path=path, status=403, decision="blocked", X=X, now=now)
            gw.m_requests.labels(path=path, status="403").inc()
            retry = str(int(policy.probing.cooldown_seconds))
            return _json(403, {"detail": "this key is blocked after probing alerts"}, {"Retry-After": retry})
        retry_after = gw.limiter.hit(tier.rate_limits, key.key_id, cost=len(X)) if tier.rate_limits else None
        if retry_after is None and action == "throttle":  # a separate budget, not shared with the tier's windows
            retry_after = gw.limiter.hit(policy.probing.throttle_rate_limits, "probing", key.key_id, cost=len(X))
        if retry_after is not None:
            window = gw.limiter.refused_by
            why = "throttled after probing alerts: " if action == "throttle" else ""
            detail = f"rate limit exceeded ({why}{window.amount} records per {window.get_expiry()} s)"
            gw.audit.record(
                key_id=key.key_id, path=path, status=429, decision="throttled", X=X, now=now, detail=why or None
            )
            gw.m_requests.labels(path=path, status="429").inc()
            return _json(429, {"detail": detail}, {"Retry-After": str(int(retry_after))})
        with np.errstate(all="ignore"):
            probs = gw.model.predict_proba(X)
        bad = np.flatnonzero(~np.isfinite(probs).all(axis=1))
        if len(bad):
            gw.audit.record(key_id=key.key_id, path=path, status=422, decision="rejected", X=X, detail="model output")
            detail = f"the model gives no finite output for record(s) {bad[:10].tolist()}; check their values"
            return _json(422, {"detail": detail})
        observed = tier.postprocessor(probs, rng=gw.rng)
        granularity = tier.postprocessor.granularity
        from memberscope.targets.wire import to_predictions

        predictions = to_predictions(observed, granularity=granularity)
        if policy.probing.enabled:
            for alert in gw.detector.observe(key.key_id, X, probs, now=now):
                act = policy.probing_action(tier)
                gw.audit.add_alert(
                    key_id=key.key_id, detector=alert["detector"], action=act, detail=alert["detail"], now=now
                )
                gw.m_alerts.labels(detector=alert["detector"]).inc()
                gw._action_cache.pop(key.key_id, None)
                log.warning("probing alert for key %s: %s (action %s)", key.key_id, alert["detector"], act)
        gw.audit.record(
            key_id=key.key_id, path=path, status=200, decision="allowed", granularity=granularity, X=X, now=now
        )
        gw.m_requests.labels(path=path, status="200").inc()
        gw.m_records.labels(tier=tier.name).inc(len(X))
        gw.m_latency.observe(time.perf_counter() - start)
        return Response(json.dumps({"predictions": predictions}), media_type="application/json")

    app.add_middleware(_AuthMiddleware, gateway=gw)
    return app
