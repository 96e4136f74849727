"""Two gateway processes sharing a real redis-server enforce one rate limit exactly."""

import asyncio

import httpx
import joblib
import numpy as np
import yaml
from gateway_helpers import gateway_processes, redis_server
from sklearn.linear_model import LogisticRegression

from memberscope.gateway.auditlog import AuditLog
from memberscope.gateway.keys import KeyStore

LIMIT, REQUESTS = 50, 120


def test_two_processes_share_one_limit_exactly(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 4))
    joblib.dump(LogisticRegression().fit(X, (X[:, 0] > 0).astype(int)), tmp_path / "model.joblib")
    keys = KeyStore(tmp_path / "keys.sqlite")
    _, key = keys.create("capped")
    keys.close()

    with redis_server() as redis_url:
        policy = {
            "keys_db": "keys.sqlite",
            "storage": redis_url,
            "strategy": "moving-window",
            "audit": {"path": "audit.sqlite"},
            "tiers": {"capped": {"output": "round:2", "limits": f"{LIMIT}/minute"}},
        }
        (tmp_path / "policy.yaml").write_text(yaml.safe_dump(policy))
        with gateway_processes(tmp_path / "model.joblib", tmp_path / "policy.yaml", n=2) as servers:
            (url_a, _), (url_b, _) = servers

            async def fire():
                headers = {"X-API-Key": key}
                async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=200)) as client:
                    jobs = [
                        client.post(
                            f"{(url_a, url_b)[i % 2]}/v1/predict", json={"instance": X[i].tolist()}, headers=headers
                        )
                        for i in range(REQUESTS)
                    ]
                    return await asyncio.gather(*jobs)

            responses = asyncio.run(fire())
    codes = [r.status_code for r in responses]
    assert codes.count(200) == LIMIT and codes.count(429) == REQUESTS - LIMIT
    served_by = {url_a: 0, url_b: 0}
    for r in responses:
        if r.status_code == 200:
            served_by[str(r.request.url).rsplit("/v1", 1)[0]] += 1
    assert min(served_by.values()) > 0  # both processes answered
    assert all("Retry-After" in r.headers for r in responses if r.status_code == 429)
    # Both processes wrote to one audit log: one row per request, decisions matching the answers.
    log = AuditLog(tmp_path / "audit.sqlite", fingerprint_key=b"unused")
    rows = log.requests()
    assert sorted(r["decision"] for r in rows) == sorted({200: "allowed", 429: "throttled"}[c] for c in codes)
