"""The gateway's HTTP surface: outputs per tier, authentication, malformed bodies, fuzzing, metrics."""

import time

import httpx
import numpy as np
import pytest
from gateway_helpers import serve_in_thread

N_FEATURES, MAX_BATCH = 5, 8
TIERS = {
    "full": {"output": "identity"},
    "rounded": {"output": "round:2"},
    "top1": {"output": "top-k:1"},
    "label": {"output": "label-only"},
    "warm": {"output": "temperature:3"},
    "noisy": {"output": "gaussian:0.05"},
    "ops": {"admin": True},
}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    from sklearn.linear_model import LogisticRegression

    from memberscope.gateway import create_app
    from memberscope.gateway.keys import KeyStore

    tmp = tmp_path_factory.mktemp("gateway")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, N_FEATURES))
    y = np.digitize(X[:, 0] + 0.5 * X[:, 1], [-0.5, 0.5])  # three classes
    model = LogisticRegression().fit(X, y)
    policy = {
        "keys_db": str(tmp / "keys.sqlite"),
        "audit": {"path": str(tmp / "audit.sqlite")},
        "max_batch": MAX_BATCH,
        "seed": 0,
        "probing": {"enabled": False},
        # This module sends hundreds of keyless requests from one address; the per-address limit on them
        # has its own test (test_gateway_limits.py).
        "http": {"unauthenticated_limits": "100000/minute"},
        "tiers": TIERS,
    }
    store = KeyStore(tmp / "keys.sqlite", cache_seconds=0.2)
    keys = {tier: store.create(tier)[1] for tier in TIERS}
    app = create_app(model, policy, keys=store)
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield {"client": client, "url": url, "keys": keys, "store": store, "model": model, "app": app, "X": X}


def _auth(key):
    return {"Authorization": f"Bearer {key}"}


def test_each_tier_sees_its_output_policy(gateway):
    client, keys, X = gateway["client"], gateway["keys"], gateway["X"][:MAX_BATCH]
    probs = gateway["model"].predict_proba(X)  # the reference: scikit-learn directly, not the gateway's path

    def ask(tier):
        r = client.post("/v1/predict", json={"instances": X.tolist()}, headers=_auth(keys[tier]))
        assert r.status_code == 200, r.text
        return r.json()["predictions"]

    np.testing.assert_allclose(ask("full"), probs, rtol=1e-9)
    np.testing.assert_array_equal(ask("rounded"), np.round(probs, 2))
    assert ask("label") == [int(np.argmax(p)) for p in probs]
    top = ask("top1")
    assert [t["classes"] for t in top] == [[int(np.argmax(p))] for p in probs]
    np.testing.assert_allclose([t["probabilities"][0] for t in top], probs.max(axis=1), rtol=1e-9)
    tempered = np.exp(np.log(probs) / 3)
    np.testing.assert_allclose(ask("warm"), tempered / tempered.sum(axis=1, keepdims=True), rtol=1e-9)
    noisy = np.asarray(ask("noisy"))
    np.testing.assert_allclose(noisy.sum(axis=1), 1.0)
    assert not np.allclose(noisy, probs) and np.abs(noisy - probs).max() < 0.5
    one = client.post("/v1/predict", json={"instance": X[0].tolist()}, headers=_auth(keys["full"]))
    np.testing.assert_allclose(one.json()["predictions"], probs[:1], rtol=1e-9)


def test_no_endpoint_answers_without_a_valid_key(gateway):
    client, keys, store = gateway["client"], gateway["keys"], gateway["store"]
    real = keys["full"]
    key_id = real.split("_")[1]
    wrong_secret = real[:-4] + ("aaaa" if not real.endswith("aaaa") else "bbbb")
    paths = {r.path for r in gateway["app"].routes} | {"/nope", "/admin/x", "/v1/predict/"}
    assert {"/v1/predict", "/metrics", "/admin/alerts", "/openapi.json", "/docs"} <= paths
    for bad in (
        None,
        "",
        "Bearer",
        "Bearer msk_x_y",
        f"Bearer {wrong_secret}",
        f"Basic {real}",
        "Bearer " + "a" * 5000,
    ):
        headers = {} if bad is None else {"Authorization": bad}
        for path in sorted(paths - {"/healthz"}):
            for method in ("GET", "POST"):
                r = client.request(method, path, headers=headers, json={"instance": [0.0] * N_FEATURES})
                assert r.status_code == 401, (bad, path, method, r.status_code)
                assert r.json() == {"detail": "missing or invalid API key"}  # nothing about the model
    assert client.get("/healthz").json() == {"status": "ok"}
    # A revoked key stops working within the key cache's lifetime.
    _, doomed = store.create("full")
    assert client.post("/v1/predict", json={"instance": [0.0] * 5}, headers=_auth(doomed)).status_code == 200
    store.revoke(doomed.split("_")[1])
    time.sleep(0.3)
    assert client.post("/v1/predict", json={"instance": [0.0] * 5}, headers=_auth(doomed)).status_code == 401
    assert key_id  # the id alone is public and grants nothing
    assert client.get("/metrics", headers={"Authorization": f"Bearer msk_{key_id}_"}).status_code == 401


def test_admin_endpoints_need_an_admin_key(gateway):
    client, keys = gateway["client"], gateway["keys"]
    assert client.post("/v1/predict", json={"instance": [0.0] * 5}, headers=_auth(keys["full"])).status_code == 200
    assert client.get("/metrics", headers=_auth(keys["full"])).status_code == 403
    assert client.get("/admin/alerts", headers=_auth(keys["full"])).status_code == 403
    r = client.get("/metrics", headers=_auth(keys["ops"]))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert "# TYPE gateway_requests_total counter" in r.text and 'status="200"' in r.text
    assert client.post("/v1/predict", json={"instance": [0.0] * 5}, headers=_auth(keys["ops"])).status_code == 403


MALFORMED = [
    ("wrong shape", {"instances": [[0.0] * (N_FEATURES - 1)]}, "at least 5"),
    ("too long a record", {"instance": [0.0] * (N_FEATURES + 1)}, "at most 5"),
    ("huge batch", {"instances": [[0.0] * N_FEATURES] * (MAX_BATCH + 1)}, "at most 8"),
    ("empty batch", {"instances": []}, "at least 1"),
    ("string number", {"instance": ["1.0"] + [0.0] * (N_FEATURES - 1)}, "valid number"),
    ("boolean", {"instance": [True] + [0.0] * (N_FEATURES - 1)}, "valid number"),
    ("null", {"instance": [None] * N_FEATURES}, "valid number"),
    ("nested", {"instances": [[[0.0]] * N_FEATURES]}, "valid number"),
    ("both fields", {"instance": [0.0] * 5, "instances": [[0.0] * 5]}, "exactly one"),
    ("neither field", {}, "exactly one"),
    ("extra field", {"instance": [0.0] * 5, "model": "x"}, "Extra inputs"),
    ("not an object", [1, 2, 3], "valid dictionary"),
    ("overflowing int", {"instance": [10**400] + [0.0] * 4}, "valid number"),
    ("out of range", {"instance": [1e300] + [0.0] * 4}, "less than or equal to 1000000"),
]


@pytest.mark.parametrize(("name", "body", "message"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_bodies_get_a_clear_4xx(gateway, name, body, message):
    r = gateway["client"].post("/v1/predict", json=body, headers=_auth(gateway["keys"]["full"]))
    assert r.status_code == 422, r.text
    assert message in r.text


@pytest.mark.parametrize(
    ("raw", "status", "message"),
    [
        (b'{"instance": [NaN, 0, 0, 0, 0]}', 422, "finite number"),
        (b'{"instance": [Infinity, 0, 0, 0, 0]}', 422, "finite number"),
        (b'{"instance": [1e999, 0, 0, 0, 0]}', 422, "finite number"),
        (b"not json at all", 422, "JSON decode error"),
        (b'{"instance": [0, 0', 422, "JSON decode error"),
        (b"", 422, "Field required"),
        (b"\xff\xfe\x00", 400, "error parsing the body"),
        (b'{"instances": [' + b"[0,0,0,0,0]," * 5000 + b"[0,0,0,0,0]]}", 413, "at most 8 records"),
    ],
)
def test_malformed_raw_bodies_get_a_clear_4xx(gateway, raw, status, message):
    headers = {**_auth(gateway["keys"]["full"]), "Content-Type": "application/json"}
    r = gateway["client"].post("/v1/predict", content=raw, headers=headers)
    assert r.status_code == status, r.text
    assert message in r.text


def test_schemathesis_fuzzing_finds_no_server_error(gateway):
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    schema = schemathesis.openapi.from_dict(gateway["app"].openapi())
    headers = _auth(gateway["keys"]["ops"])
    predict_headers = _auth(gateway["keys"]["full"])
    seen = set()
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(
            max_examples=30, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck)
        )
        def fuzz(case):
            h = predict_headers if case.path == "/v1/predict" else headers
            response = case.call(base_url=gateway["url"], headers=h)
            seen.add(response.status_code)
            assert response.status_code < 500, (case.path, case.body, response.text)

        fuzz()
    assert 200 in seen and 422 in seen


def test_a_non_json_content_type_is_refused(gateway):
    headers = {**_auth(gateway["keys"]["full"]), "Content-Type": "text/plain"}
    r = gateway["client"].post("/v1/predict", content=b'{"instance": [0, 0, 0, 0, 0]}', headers=headers)
    assert 400 <= r.status_code < 500, r.text
