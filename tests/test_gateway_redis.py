"""Two gateway processes sharing a real redis-server enforce one rate limit exactly and see one probing
picture."""

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
    np.save(tmp_path / "reference.npy", rng.standard_normal((400, 4)))  # records like the traffic
    keys = KeyStore(tmp_path / "keys.sqlite")
    _, key = keys.create("capped")
    prober_id, prober = keys.create("label")
    keys.close()

    with redis_server() as redis_url:
        policy = {
            "keys_db": "keys.sqlite",
            "storage": redis_url,
            "strategy": "moving-window",
            "audit": {"path": "audit.sqlite"},
            "probing": {"reference": "reference.npy"},
            "tiers": {
                "capped": {"output": "round:2", "limits": f"{LIMIT}/minute"},
                "label": {"output": "label-only", "probing_action": "block"},
            },
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

            # One record's noisy copies, each on a new connection, alternately to the two processes: the
            # copies add up in one history (Redis), so the prober is blocked by both after about as many
            # copies as one process alone needs, not twice as many.
            copies = X[0] + 0.01 * rng.standard_normal((60, 4))
            probe_codes = []
            for i, x in enumerate(copies):
                url = (url_a, url_b)[i % 2]
                r = httpx.post(f"{url}/v1/predict", json={"instance": x.tolist()}, headers={"X-API-Key": prober})
                probe_codes.append(r.status_code)
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
    rows = [r for r in log.requests() if r["key_id"] != prober_id]
    assert sorted(r["decision"] for r in rows) == sorted({200: "allowed", 429: "throttled"}[c] for c in codes)
    first_refusal = probe_codes.index(403)
    # The scan needs 10 evidence queries; the request that raises the alert is itself refused. (The address
    # history also holds X[0] when the rate-limit run above served it rather than throttled it: then the 9th
    # copy completes the ten.) Once refused, every later copy is refused, whichever process it reaches.
    served_x0 = responses[0].status_code == 200
    assert (8 if served_x0 else 9) <= first_refusal <= 20 and set(probe_codes[first_refusal:]) == {403}
    alerts = log.alerts()
    # One alert per scope that reaches the threshold, each recorded by one of the two processes, all naming
    # the prober. With X[0] served before, the address's history is one ahead and its alert blocks the key
    # before the key's own history has ten; otherwise both reach ten at the same copy.
    assert {a["key_id"] for a in alerts} == {prober_id} and {a["detector"] for a in alerts} == {"perturbation-burst"}
    scopes = sorted(a["scope"] for a in alerts)
    assert scopes == ["address"] if served_x0 else scopes in (["key"], ["address", "key"])
