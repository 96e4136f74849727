"""What a client may send, on 127.0.0.1: a body cap on the bytes actually received, header and time limits,
keyless traffic counted rather than logged, one audit row per keyed answer, and keys kept out of URLs
and logs."""

import json
import socket
import threading
import time

import httpx
import numpy as np
import pytest
import yaml
from gateway_helpers import gateway_processes, serve_in_thread

from memberscope.gateway.auditlog import AuditLog

N_FEATURES, MAX_BATCH = 5, 8


def _policy(tmp, **http):
    return {
        "keys_db": str(tmp / "keys.sqlite"),
        "audit": {"path": str(tmp / "audit.sqlite")},
        "max_batch": MAX_BATCH,
        "probing": {"enabled": False},
        "http": {"request_timeout_seconds": 1.5, "unauthenticated_limits": "20/minute", **http},
        "tiers": {"full": {"output": "identity"}, "ops": {"admin": True}},
    }


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    from sklearn.linear_model import LogisticRegression

    from memberscope.gateway import create_app
    from memberscope.gateway.keys import KeyStore
    from memberscope.gateway.policy import Policy

    tmp = tmp_path_factory.mktemp("limits")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, N_FEATURES))
    model = LogisticRegression().fit(X, (X[:, 0] > 0).astype(int))
    policy = Policy.from_dict(_policy(tmp))
    store = KeyStore(tmp / "keys.sqlite")
    key_id, key = store.create("full")
    _, admin = store.create("ops")
    app = create_app(model, policy, keys=store)
    with serve_in_thread(app, policy) as url:
        yield {"url": url, "key": key, "key_id": key_id, "admin": admin, "app": app, "tmp": tmp}


def _raw(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def _status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def _rows(gateway):
    return AuditLog(gateway["tmp"] / "audit.sqlite", fingerprint_key=b"unused").requests()


def test_a_chunked_50_mb_body_with_a_lying_length_gets_413_and_healthz_stays_responsive(gateway):
    gw = gateway["app"].state.gateway
    sock = _raw(gateway["url"])
    head = (
        b"POST /v1/predict HTTP/1.1\r\nHost: localhost\r\nX-API-Key: " + gateway["key"].encode() + b"\r\n"
        b"Content-Type: application/json\r\nContent-Length: 10\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"[0.0,0.0,0.0,0.0,0.0]," * 3000  # 66 kB of a syntactically plausible batch
    sent, response, stop = [0], [b""], threading.Event()

    def send():
        try:
            sock.sendall(head + b"%x\r\n" % 15 + b'{"instances": [' + b"\r\n")
            while sent[0] < 50_000_000 and not stop.is_set():
                sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
                sent[0] += len(chunk)
        except OSError:  # the server closed the connection after its 413
            pass

    def receive():
        while not response[0].endswith(b"}") and len(response[0]) < 10_000:
            data = sock.recv(4096)
            if not data:
                break
            response[0] += data
        stop.set()

    threads = [threading.Thread(target=send), threading.Thread(target=receive)]
    for t in threads:
        t.start()
    health = []
    with httpx.Client(base_url=gateway["url"], timeout=10) as client:
        while not stop.is_set() or len(health) < 10:
            start = time.perf_counter()
            assert client.get("/healthz").status_code == 200
            health.append(time.perf_counter() - start)
            time.sleep(0.02)
    for t in threads:
        t.join(timeout=30)
    sock.close()
    assert _status(response[0]) == 413 and b"over" in response[0]
    # Refused while streaming, not after 50 MB: what the client got out before it saw the 413 is what the
    # kernel's loopback socket buffers (a few MB) absorbed, not what the gateway read (at most max_body).
    assert sent[0] < 10_000_000 and gw.max_body < 10_000
    assert health and max(health) < 1.0
    assert _rows(gateway)[-1]["status"] == 413


def test_a_declared_length_over_the_cap_is_refused_before_reading(gateway):
    sock = _raw(gateway["url"])
    sock.sendall(
        b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nX-API-Key: " + gateway["key"].encode() + b"\r\n"
        b"Content-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n"
    )
    assert _status(sock.recv(4096)) == 413
    sock.close()


def test_the_request_head_and_body_must_arrive_in_time(gateway):
    slow_head = _raw(gateway["url"])
    start = time.perf_counter()
    slow_head.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\n")
    reply = b""
    for _ in range(30):  # a header byte every 0.2 s: never idle, never done
        try:
            slow_head.sendall(b"X")
        except OSError:
            break
        slow_head.settimeout(0.2)
        try:
            reply += slow_head.recv(4096)
        except TimeoutError:
            continue
        if reply:
            break
    assert _status(reply) == 408 and 1.3 < time.perf_counter() - start < 4.0
    slow_head.close()
    slow_body = _raw(gateway["url"])
    slow_body.sendall(
        b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nX-API-Key: " + gateway["key"].encode() + b"\r\n"
        b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n" + b'{"instance": ['
    )
    start = time.perf_counter()
    slow_body.settimeout(5)
    assert _status(slow_body.recv(4096)) == 408 and time.perf_counter() - start < 3.0
    slow_body.close()


def test_headers_over_the_limit_are_refused(gateway, tmp_path):
    from sklearn.dummy import DummyClassifier

    from memberscope.gateway import create_app

    # The HTTP layer buffers at most max_header_bytes (8 kB) of an incomplete request head: 400 ...
    sock = _raw(gateway["url"])
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Filler: " + b"a" * 9000)
    time.sleep(0.2)
    sock.sendall(b"\r\n\r\n")
    assert _status(sock.recv(4096)) == 400
    sock.close()
    # ... and a large head that arrives whole is refused by the gateway: 431.
    with httpx.Client(base_url=gateway["url"], timeout=10) as client:
        assert client.get("/healthz", headers={"X-Filler": "a" * 12_000}).status_code == 431
    # Where the server's own limit is larger (plain uvicorn: 16 kB), the gateway's still holds.
    app = create_app(
        DummyClassifier().fit(np.zeros((4, N_FEATURES)), [0, 1, 0, 1]), _policy(tmp_path, max_header_bytes=2048)
    )
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        assert client.get("/healthz", headers={"X-Filler": "a" * 4000}).status_code == 431
        assert client.get("/healthz").status_code == 200


def test_keyless_traffic_is_counted_not_logged_and_limited_per_address(gateway):
    gw = gateway["app"].state.gateway
    before = len(_rows(gateway))
    long_path = "/v1/" + "p" * 6000
    with httpx.Client(base_url=gateway["url"], timeout=10) as client:
        codes = [
            client.get(long_path, headers={"X-API-Key": "msk_000000000000_" + "x" * 40}).status_code for _ in range(40)
        ]
        assert codes == [401] * 20 + [429] * 20  # the per-address limit of 20/minute on requests without a key
        refused = client.get("/metrics")
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
        # A valid key from the same address is unaffected.
        ok = client.post("/v1/predict", json={"instance": [0.0] * N_FEATURES}, headers={"X-API-Key": gateway["key"]})
        assert ok.status_code == 200
    gw.keyless.flush()
    rows = _rows(gateway)
    assert len(rows) == before + 1 and rows[-1]["status"] == 200  # no row for any keyless request
    counts: dict[tuple[str, int], int] = {}
    for r in gw.audit.keyless():  # summed over the minute buckets: a slow run can cross a minute's boundary
        counts[r["address"], r["status"]] = counts.get((r["address"], r["status"]), 0) + r["count"]
    assert counts[("127.0.0.1", 401)] >= 20 and counts[("127.0.0.1", 429)] >= 21
    assert long_path not in (gateway["tmp"] / "audit.sqlite").read_bytes().decode("latin-1")


def test_every_answered_request_with_a_key_is_one_row(gateway):
    key, url = gateway["key"], gateway["url"]
    auth = {"X-API-Key": key}
    before = len(_rows(gateway))
    expected = []
    with httpx.Client(base_url=url, timeout=10, follow_redirects=False) as client:
        for method, path, kwargs, status in [
            ("POST", "/v1/predict", {"json": {"instance": [0.0] * N_FEATURES}}, 200),
            ("GET", "/nope/" + "x" * 1000, {}, 404),
            ("GET", "/v1/predict", {}, 405),
            ("POST", "/v1/predict/", {"json": {"instance": [0.0] * N_FEATURES}}, 307),
            ("POST", "/v1/predict", {"content": b"\xff\xfe\x00", "headers": {"Content-Type": "application/json"}}, 400),
            ("POST", "/v1/predict", {"content": b"{}", "headers": {"Content-Type": "text/plain"}}, 415),
            ("POST", "/v1/predict", {"json": {"instance": [0.0]}}, 422),
            ("GET", "/metrics", {}, 403),
        ]:
            headers = {**auth, **kwargs.pop("headers", {})}
            r = client.request(method, path, headers=headers, **kwargs)
            assert r.status_code == status, (path, r.text)
            expected.append(status)
    sock = _raw(url)  # a POST without a length
    sock.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nX-API-Key: " + key.encode() + b"\r\n\r\n")
    assert _status(sock.recv(4096)) == 411
    sock.close()
    expected.append(411)
    rows = _rows(gateway)[before:]
    assert [r["status"] for r in rows] == expected
    assert {r["key_id"] for r in rows} == {gateway["key_id"]}
    assert [r["decision"] for r in rows][:4] == ["allowed", "rejected", "rejected", "redirected"]
    assert max(len(r["path"]) for r in rows) == 256 and rows[1]["path"].endswith("…")


def test_credentials_twice_or_in_the_url_are_refused(gateway):
    key, admin = gateway["key"], gateway["admin"]
    before = len(_rows(gateway))
    body = {"instance": [0.0] * N_FEATURES}
    with httpx.Client(base_url=gateway["url"], timeout=10) as client:
        for headers, params in [
            ([("X-API-Key", key), ("X-API-Key", key)], None),
            ([("X-API-Key", key), ("Authorization", f"Bearer {key}")], None),
            ([("Authorization", f"Bearer {key}"), ("Authorization", "Bearer other")], None),
            ([("X-API-Key", key)], {"api_key": key}),
            ([("X-API-Key", key)], {"q": key}),  # a key anywhere in the query string
            ([], {"token": "anything"}),
        ]:
            r = client.post("/v1/predict", json=body, headers=headers, params=params)
            assert r.status_code == 400, (headers, params)
        # Ordinary query parameters are fine.
        assert (
            client.get("/admin/alerts", params={"since": 0, "key_id": "abc"}, headers={"X-API-Key": admin}).status_code
            == 200
        )
    rows = _rows(gateway)[before:]
    assert [r["status"] for r in rows] == [200] and rows[0]["path"] == "/admin/alerts"


def test_query_strings_and_keys_never_reach_the_logs(tmp_path):
    import joblib
    from sklearn.linear_model import LogisticRegression

    from memberscope.gateway.keys import KeyStore

    rng = np.random.default_rng(1)
    X = rng.standard_normal((100, N_FEATURES))
    joblib.dump(LogisticRegression().fit(X, (X[:, 0] > 0).astype(int)), tmp_path / "m.joblib")
    policy = _policy(tmp_path)
    policy.update(keys_db="keys.sqlite", audit={"path": "audit.sqlite"})
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(policy))
    store = KeyStore(tmp_path / "keys.sqlite")
    _, key = store.create("full")
    _, admin = store.create("ops")
    store.close()
    marker = "QUERYMARKER7731"
    with gateway_processes(tmp_path / "m.joblib", tmp_path / "policy.yaml", log_dir=tmp_path) as servers:
        url = servers[0][0]
        with httpx.Client(base_url=url, timeout=10) as client:
            assert client.post(f"/v1/predict?api_key={key}", json={"instance": [0.0] * 5}).status_code == 400
            assert client.get(f"/admin/alerts?key_id={marker}", headers={"X-API-Key": admin}).status_code == 200
            assert client.get(f"/nope?{marker}=1", headers={"X-API-Key": key}).status_code == 404
            assert client.get(f"/healthz?{marker}").status_code == 200
    log_text = (tmp_path / "gateway-0.log").read_text()
    assert "GET /admin/alerts" in log_text and "GET /healthz" in log_text  # the access log is there
    secret = key.split("_")[2]
    for path in (tmp_path / "gateway-0.log", tmp_path / "audit.sqlite", tmp_path / "audit.sqlite-wal"):
        if path.exists():
            data = path.read_bytes()
            assert marker.encode() not in data and secret.encode() not in data, path.name


def test_alert_details_use_the_audit_logs_keyed_fingerprints(tmp_path):
    from sklearn.linear_model import LogisticRegression

    from memberscope.gateway import create_app
    from memberscope.gateway.keys import KeyStore

    rng = np.random.default_rng(2)
    X = rng.standard_normal((400, N_FEATURES)) @ rng.standard_normal((N_FEATURES, N_FEATURES))
    np.save(tmp_path / "ref.npy", X[:300])
    policy = _policy(tmp_path)
    policy["probing"] = {"reference": str(tmp_path / "ref.npy"), "action": "log"}
    store = KeyStore(tmp_path / "keys.sqlite")
    _, key = store.create("full")
    app = create_app(LogisticRegression().fit(X, (X[:, 0] > 0).astype(int)), policy, keys=store)
    copies = X[300] + 0.01 * rng.standard_normal((30, N_FEATURES))
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        for x in np.vstack([X[300], copies]):
            r = client.post("/v1/predict", json={"instance": x.tolist()}, headers={"X-API-Key": key})
            assert r.status_code == 200
    log = app.state.gateway.audit
    alert = log.alerts()[0]
    logged = {r["fingerprints"] for r in log.requests()}
    assert alert["detector"] == "perturbation-burst"
    assert alert["detail"]["fingerprint"] in logged and alert["detail"]["nearest"] in logged
    assert json.dumps(alert["detail"]).count(str(round(float(X[300][0]), 4))) == 0  # no raw values
