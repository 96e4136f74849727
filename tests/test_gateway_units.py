"""The gateway's parts, each against an independent reference: keys, policy, limits, audit log, model
loading, and the keys CLI (probing detection: test_gateway_probing.py)."""

import hashlib
import hmac
import sqlite3
import time

import numpy as np
import pytest
from cli_helpers import run_cli

from memberscope.exceptions import InvalidInputError
from memberscope.gateway.auditlog import AuditLog
from memberscope.gateway.keys import KeyStore
from memberscope.gateway.policy import Policy, load_policy
from memberscope.gateway.ratelimit import RateLimiter

# --- keys -------------------------------------------------------------------------------------------


def test_keys_are_stored_as_salted_hmac_and_verified_in_constant_time(tmp_path, monkeypatch):
    store = KeyStore(tmp_path / "keys.sqlite", cache_seconds=0)
    key_id, key = store.create("full", label="alice")
    prefix, kid, secret = key.split("_")
    assert (prefix, kid) == ("msk", key_id) and len(secret) >= 40
    with sqlite3.connect(tmp_path / "keys.sqlite") as conn:
        salt, digest = conn.execute("SELECT salt, digest FROM keys WHERE key_id = ?", (key_id,)).fetchone()
    assert digest == hmac.new(salt, secret.encode(), hashlib.sha256).digest()  # independent recomputation
    assert secret.encode() not in (tmp_path / "keys.sqlite").read_bytes()
    _, other = store.create("full")
    assert (
        store.create("full")[1] != key
        and salt
        != sqlite3.connect(tmp_path / "keys.sqlite")
        .execute("SELECT salt FROM keys WHERE key_id = ?", (other.split("_")[1],))
        .fetchone()[0]
    )

    calls = []
    real = hmac.compare_digest
    monkeypatch.setattr("memberscope.gateway.keys.hmac.compare_digest", lambda a, b: calls.append(1) or real(a, b))
    assert store.verify(key).tier == "full"
    assert store.verify(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
    assert store.verify(f"msk_{'0' * 12}_{secret}") is None  # unknown id: still one comparison
    assert len(calls) == 3
    for bad in (None, "", "msk", key + "_x", key.replace("msk", "abc"), "msk_short_" + secret):
        assert store.verify(bad) is None
    store.revoke(key_id)
    assert store.verify(key) is None
    assert next((r.key_id, r.revoked is not None, r.label) for r in store.list()) == (key_id, True, "alice")
    with pytest.raises(InvalidInputError, match="no key with id"):
        store.revoke("nonexistent")
    with pytest.raises(InvalidInputError, match="tier"):
        store.create("bad tier!")


def test_keys_carry_a_tenant_and_old_key_databases_gain_the_column(tmp_path):
    with sqlite3.connect(tmp_path / "old.sqlite") as conn:  # a key database from before tenants
        conn.execute(
            "CREATE TABLE keys (key_id TEXT PRIMARY KEY, tier TEXT NOT NULL, salt BLOB NOT NULL, digest BLOB NOT NULL,"
            " created REAL NOT NULL, revoked REAL, label TEXT)"
        )
        salt = b"\1" * 16
        conn.execute(
            "INSERT INTO keys VALUES (?, ?, ?, ?, ?, NULL, NULL)",
            ("a1b2c3d4e5f6", "full", salt, hmac.new(salt, b"s" * 40, hashlib.sha256).digest(), 1.0),
        )
    store = KeyStore(tmp_path / "old.sqlite", cache_seconds=0)
    old = store.verify("msk_a1b2c3d4e5f6_" + "s" * 40)
    assert old is not None and old.tenant is None
    _, key = store.create("full", tenant="acme")
    assert store.verify(key).tenant == "acme"
    assert [r.tenant for r in store.list()] == [None, "acme"]
    with pytest.raises(InvalidInputError, match="tenant"):
        store.create("full", tenant="no spaces")


def test_keys_cli_prints_the_key_once_and_never_lists_it(tmp_path, capsys):
    db = str(tmp_path / "k.sqlite")
    code, out, err = run_cli("keys", "create", "--tier", "gold", "--db", db, "--label", "bob", capsys=capsys)
    assert code == 0 and out.count("msk_") == 1
    key = out.strip()
    code, out, _ = run_cli("keys", "list", "--db", db, capsys=capsys)
    key_id = key.split("_")[1]
    assert code == 0 and key_id in out and "gold" in out and "active" in out and key.split("_")[2] not in out
    code, _, err = run_cli("keys", "create", "--tier", "gold", "--db", db, "--tenant", "acme", capsys=capsys)
    assert code == 0 and "tenant acme" in err
    assert "\tacme\t" in run_cli("keys", "list", "--db", db, capsys=capsys)[1]
    assert run_cli("keys", "revoke", key_id, "--db", db, capsys=capsys)[0] == 0
    assert "revoked" in run_cli("keys", "list", "--db", db, capsys=capsys)[1]
    code, _, err = run_cli("keys", "revoke", "feedfeedfeed", "--db", db, capsys=capsys)
    assert code == 2 and "no key with id 'feedfeedfeed'" in err
    (tmp_path / "p.yaml").write_text("keys_db: k.sqlite\ntiers: {full: {output: identity}}\n")
    code, _, err = run_cli("keys", "create", "--tier", "gold", "--policy", str(tmp_path / "p.yaml"), capsys=capsys)
    assert code == 2 and "tier 'gold' is not in the policy" in err
    code, _, err = run_cli("keys", "list", capsys=capsys)
    assert code == 2 and "--db" in err


# --- policy -----------------------------------------------------------------------------------------


def test_policy_file_resolves_paths_and_names_bad_values(tmp_path):
    (tmp_path / "policy.yaml").write_text(
        "keys_db: k.sqlite\naudit: {path: logs/a.sqlite, retention_days: 7}\n"
        "tiers:\n  t: {output: 'temperature:2,top-k:2', limits: '60/minute;2000/day', probing_action: block}\n"
    )
    pol = load_policy(tmp_path / "policy.yaml")
    assert pol.keys_db == str(tmp_path / "k.sqlite") and pol.audit.path == str(tmp_path / "logs" / "a.sqlite")
    tier = pol.tiers["t"]
    assert tier.postprocessor.spec == "temperature:2,top-k:2" and tier.postprocessor.granularity == "top-k"
    assert [(lim.amount, lim.get_expiry()) for lim in tier.rate_limits] == [(60, 60), (2000, 86400)]
    assert pol.probing_action(tier) == "block"
    assert pol.http.max_header_bytes == 8192 and [w.amount for w in pol.http.unauthenticated_rate_limits] == [30]
    for data, message in [
        ({"tiers": {}}, "no tiers"),
        ({"tiers": {"t": {}}, "colour": 1}, "unknown policy setting"),
        ({"tiers": {"t": {"limits": "lots"}}}, "rate limit 'lots'"),
        ({"tiers": {"t": {"output": "blur:3"}}}, "blur"),
        ({"tiers": {"t": {"probing_action": "shout"}}}, "probing_action 'shout'"),
        ({"tiers": {"t": {}}, "storage": "mongodb://x"}, "storage"),
        ({"tiers": {"t": {}}, "probing": {"bits": 65}}, "bits"),
        ({"tiers": {"t": {"colour": 1}}}, "invalid policy"),
        ({"tiers": {"t": {}}, "probing": {"near_bits": 3}}, r"near_bits \(now: alpha\)"),
        ({"tiers": {"t": {}}, "probing": {"scan_threshold": 40}}, "at most scan_window"),
        ({"tiers": {"t": {}}, "probing": {"subjects": ["tenant"]}}, "must include 'key'"),
        ({"tiers": {"t": {}}, "http": {"max_header_bytes": 10}}, "max_header_bytes"),
        ({"tiers": {"t": {}}, "http": {"unauthenticated_limits": "often"}}, "rate limit 'often'"),
        ({"tiers": {"t": {}}, "http": {"speed": 1}}, "invalid policy"),
    ]:
        with pytest.raises(InvalidInputError, match=message):
            Policy.from_dict(data)


def test_serve_refuses_several_workers_without_shared_storage(tmp_path, capsys):
    (tmp_path / "p.yaml").write_text("keys_db: k.sqlite\ntiers: {full: {output: identity}}\n")
    code, _, err = run_cli(
        "serve", "--model", "x", "--policy", str(tmp_path / "p.yaml"), "--workers", "2", capsys=capsys
    )
    assert code == 2 and "redis://" in err
    code, _, err = run_cli(
        "serve", "--model", str(tmp_path / "none"), "--policy", str(tmp_path / "p.yaml"), capsys=capsys
    )
    assert code == 2 and "does not exist" in err


# --- rate limits ------------------------------------------------------------------------------------


def test_moving_window_limits_match_a_slow_reference():
    from limits import parse_many

    limiter = RateLimiter("memory://", "moving-window")
    windows = parse_many("4/second;6/minute")
    log: list[tuple[float, int]] = []  # reference: (time, cost) of every accepted request

    def reference(now, cost):
        return all(sum(c for t, c in log if t > now - item.get_expiry()) + cost <= item.amount for item in windows)

    outcomes, expected = [], []
    for step, cost in enumerate([1, 2, 1, 1, 3, 1, 1, 1, 2]):
        if step == 5:
            time.sleep(1.05)  # the second window empties, the minute window does not
        now = time.time()
        ok = reference(now, cost)
        expected.append(ok)
        got = limiter.hit(windows, "key-a", cost=cost)
        outcomes.append(got is None)
        if ok:
            log.append((now, cost))
    assert outcomes == expected
    assert limiter.hit(windows, "key-b", cost=5) == 1  # more than the 1-second window holds: wait it out
    retry = limiter.hit(windows, "key-a", cost=1)
    assert retry is not None and 1 <= retry <= 60


# Probing detection: tests/test_gateway_probing.py.


# --- audit log --------------------------------------------------------------------------------------


def test_audit_log_fingerprints_retention_and_wal(tmp_path):
    secret = b"s" * 32
    log = AuditLog(tmp_path / "a.sqlite", fingerprint_key=secret, retention_days=1.0)
    X = np.array([[1.0, 2.0], [1.0, 2.0], [3.0, 4.0]])
    now = time.time()
    log.record(key_id="k1", path="/v1/predict", status=200, decision="allowed", granularity="label", X=X, now=now)
    log.record(key_id="k1", path="/v1/predict", status=429, decision="throttled", X=X[:1], now=now - 3 * 86400)
    fps = log.requests()[0]["fingerprints"].split(",")
    assert fps[0] == hmac.new(secret, np.array([1.0, 2.0]).tobytes(), hashlib.sha256).hexdigest()[:32]
    assert fps[0] == fps[1] != fps[2] and log.requests()[0]["records"] is None
    other = AuditLog(tmp_path / "b.sqlite", fingerprint_key=b"t" * 32, raw_records=True)
    assert other.fingerprint(X[0]) != fps[0]  # keyed: another secret, another fingerprint
    other.record(key_id="k", path="/v1/predict", status=200, decision="allowed", X=X[:1])
    assert other.requests()[0]["records"] == "[[1.0, 2.0]]"
    assert log.prune(now=now) == 1 and [r["decision"] for r in log.requests()] == ["allowed"]
    with sqlite3.connect(tmp_path / "a.sqlite") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    log.add_alert(key_id="k1", detector="boundary", action="throttle", detail={"n": 1}, now=now)
    assert log.active_action("k1", since=now - 1) == "throttle" and log.active_action("k1", since=now + 1) is None
    assert log.alerts(key_id="k1")[0]["detail"] == {"n": 1} and log.alerts()[0]["scope"] == "key"


def test_audit_log_decisions_paths_and_keyless_counts(tmp_path):
    from memberscope.gateway.auditlog import KeylessCounter, decision_for

    log = AuditLog(tmp_path / "a.sqlite", fingerprint_key=b"s" * 32, max_path=32)
    for status in (200, 307, 400, 404, 405, 411, 413, 429, 500):
        log.record(key_id="k", path="/x/" + "y" * 100, status=status)
    rows = log.requests()
    assert [r["decision"] for r in rows] == [decision_for(s) for s in (200, 307, 400, 404, 405, 411, 413, 429, 500)]
    assert [decision_for(s) for s in (200, 307, 404, 429, 500)] == [
        "allowed",
        "redirected",
        "rejected",
        "throttled",
        "failed",
    ]
    assert {len(r["path"]) for r in rows} == {32} and rows[0]["path"].endswith("…")
    counter = KeylessCounter(log, bucket_seconds=60)
    t0 = 1_000_030.0  # buckets start at 1_000_020 and 1_000_080
    for i in range(500):  # one address, two statuses, two buckets; another address once
        counter.add("10.0.0.1", 401 if i % 5 else 429, now=t0 + (i % 2) * 60)
    counter.add("10.0.0.2", 401, now=t0)
    counter.flush()
    counter.add("10.0.0.1", 401, now=t0)  # a later flush adds to the same row
    counter.flush()
    got = {(r["bucket"], r["address"], r["status"]): r["count"] for r in log.keyless()}
    assert got == {
        (1_000_020.0, "10.0.0.1", 401): 201,
        (1_000_020.0, "10.0.0.1", 429): 50,
        (1_000_080.0, "10.0.0.1", 401): 200,
        (1_000_080.0, "10.0.0.1", 429): 50,
        (1_000_020.0, "10.0.0.2", 401): 1,
    }
    assert len(log.requests()) == len(rows)  # keyless traffic adds no request rows
    few = KeylessCounter(log, max_addresses=2)
    for a in ("1.1.1.1", "2.2.2.2", "3.3.3.3", "4.4.4.4"):
        few.add(a, 401, now=t0 + 600)
    few.flush()
    assert sorted(r["address"] for r in log.keyless() if r["bucket"] == t0 + 590) == ["*", "1.1.1.1", "2.2.2.2"]


def test_audit_log_adds_alert_scopes_to_an_old_database(tmp_path):
    with sqlite3.connect(tmp_path / "old.sqlite") as conn:
        conn.execute(
            "CREATE TABLE alerts (id INTEGER PRIMARY KEY, time REAL NOT NULL, key_id TEXT NOT NULL, "
            "detector TEXT NOT NULL, action TEXT NOT NULL, detail TEXT NOT NULL)"
        )
        conn.execute("INSERT INTO alerts VALUES (1, 5.0, 'k1', 'boundary', 'block', '{}')")
    log = AuditLog(tmp_path / "old.sqlite", fingerprint_key=b"s" * 32, retention_days=None)
    assert [(a["scope"], a["subject"]) for a in log.alerts()] == [("key", "k1")]
    log.add_alert(
        key_id="k2",
        detector="perturbation-burst",
        action="log",
        detail={},
        now=6.0,
        scope="address",
        subject="10.0.0.9",
    )
    assert (log.alerts()[0]["scope"], log.alerts()[0]["subject"]) == ("address", "10.0.0.9")


# --- loading ------------------------------------------------------------------------------------------


def test_load_model_formats_give_the_original_predictions(tmp_path):
    import joblib
    import torch
    from sklearn.tree import DecisionTreeClassifier

    from memberscope.gateway import load_model
    from memberscope.recipes import SklearnModel, TorchRecipe
    from memberscope.targets import save_target

    rng = np.random.default_rng(5)
    X = rng.standard_normal((60, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    tree = DecisionTreeClassifier(max_depth=2, random_state=0).fit(X, y)
    joblib.dump(tree, tmp_path / "tree.joblib")
    served = load_model(tmp_path / "tree.joblib")
    assert (served.n_features, served.n_classes) == (4, 2)
    np.testing.assert_allclose(served.predict_proba(X), tree.predict_proba(X), atol=1e-12)
    save_target(SklearnModel(tree, n_classes=2), tmp_path / "tree2.joblib")
    np.testing.assert_allclose(
        load_model(tmp_path / "tree2.joblib").predict_proba(X), tree.predict_proba(X), atol=1e-12
    )

    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 3)).eval()
    with torch.no_grad():
        expected = torch.softmax(net(torch.from_numpy(X)), dim=1).numpy()
    torch.save(net, tmp_path / "net.pt")
    torch.jit.save(torch.jit.script(net), tmp_path / "net.ts")
    for name in ("net.pt", "net.ts"):
        served = load_model(tmp_path / name)
        assert (served.n_features, served.n_classes) == (4, 3)
        np.testing.assert_allclose(served.predict_proba(X), expected, rtol=1e-5)

    recipe = TorchRecipe(architecture="logreg", epochs=1, standardize=True)
    trained = recipe.train(X, y, n_classes=2, seed=0)
    save_target(trained, tmp_path / "ms.pt", recipe=recipe, feature_shape=(4,))
    served = load_model(tmp_path / "ms.pt")
    logits = trained.query(X).astype(np.float64)
    np.testing.assert_allclose(
        served.predict_proba(X), np.exp(logits) / np.exp(logits).sum(1, keepdims=True), rtol=1e-5
    )
    assert served.mean is not None and served.mean.shape == (4,)

    (tmp_path / "ms.pt.json").unlink()
    with pytest.raises(InvalidInputError, match="sidecar"):
        load_model(tmp_path / "ms.pt")
    (tmp_path / "junk.bin").write_bytes(b"not a model")
    with pytest.raises(InvalidInputError, match="cannot load model"):
        load_model(tmp_path / "junk.bin")
    joblib.dump({"a": 1}, tmp_path / "dict.joblib")
    with pytest.raises(InvalidInputError, match="not a classifier"):
        load_model(tmp_path / "dict.joblib")


def test_worker_factory_builds_the_app_from_the_environment(tmp_path, monkeypatch):
    import joblib
    from sklearn.linear_model import LogisticRegression

    from memberscope.cli.gateway import ENV_MODEL, ENV_POLICY, app_from_env

    X = np.random.default_rng(6).standard_normal((50, 3))
    joblib.dump(LogisticRegression().fit(X, X[:, 0] > 0), tmp_path / "m.joblib")
    (tmp_path / "p.yaml").write_text("keys_db: k.sqlite\naudit: {path: a.sqlite}\ntiers: {full: {output: identity}}\n")
    monkeypatch.setenv(ENV_MODEL, str(tmp_path / "m.joblib"))
    monkeypatch.setenv(ENV_POLICY, str(tmp_path / "p.yaml"))
    app = app_from_env()
    assert app.state.gateway.model.n_features == 3 and (tmp_path / "a.sqlite").is_file()


def test_metrics_without_prometheus_client_write_the_same_text_format():
    from memberscope.gateway.metrics import GatewayMetrics

    def exercise(metrics):
        for status in ("200", "200", "429"):
            metrics.requests.labels(path="/v1/predict", status=status).inc()
        metrics.records.labels(tier='odd "tier"').inc(5)
        for seconds in (0.0004, 0.0015, 0.03, 2.0):
            metrics.latency.observe(seconds)
        return [ln for ln in metrics.expose().decode().splitlines() if "_created" not in ln]

    reference = exercise(GatewayMetrics(use_prometheus_client=True))  # the official client is the reference
    assert exercise(GatewayMetrics(use_prometheus_client=False)) == reference
    assert 'gateway_predict_seconds_bucket{le="+Inf"} 4.0' in reference


def test_sliding_window_counter_strategy_limits_too():
    from limits import parse_many

    limiter = RateLimiter("memory://", "sliding-window-counter")
    window = parse_many("5/minute")
    assert [limiter.hit(window, "k") is None for _ in range(7)] == [True] * 5 + [False] * 2
    with pytest.raises(InvalidInputError, match="rate-limit storage"):
        RateLimiter("redis://127.0.0.1:1:bad", "moving-window")
