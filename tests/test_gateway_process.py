"""``memberscope serve`` as a real process: a memberscope torch model, logs without keys, an audit
log that survives SIGKILL."""

import json
import signal

import httpx
import numpy as np
import yaml
from cli_helpers import run_cli
from gateway_helpers import gateway_processes

from memberscope.gateway.auditlog import AuditLog


def test_serve_a_memberscope_torch_model_then_crash(tmp_path, capsys):
    from memberscope.recipes import TorchRecipe
    from memberscope.targets import save_target

    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 6)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    recipe = TorchRecipe(architecture="mlp", hidden=(8,), epochs=2, standardize=True)
    model = recipe.train(X, y, n_classes=2, seed=0)
    save_target(model, tmp_path / "model.pt", recipe=recipe, feature_shape=(6,))
    policy = {
        "keys_db": "keys.sqlite",
        "audit": {"path": "audit.sqlite", "raw_records": False},
        "tiers": {"full": {"output": "identity", "limits": "3/minute"}},
    }
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(policy))
    code, key, err = run_cli(
        "keys", "create", "--tier", "full", "--policy", str(tmp_path / "policy.yaml"), capsys=capsys
    )
    assert code == 0 and key.strip().startswith("msk_") and "cannot be shown again" in err
    key = key.strip()
    wrong = key[:-3] + ("xyz" if not key.endswith("xyz") else "abc")

    with gateway_processes(tmp_path / "model.pt", tmp_path / "policy.yaml", log_dir=tmp_path) as servers:
        url, proc = servers[0]
        with httpx.Client(base_url=url, timeout=30) as client:
            sent = []
            for i in range(5):  # 3 allowed, then the 3/minute limit
                r = client.post("/v1/predict", json={"instance": X[i].tolist()}, headers={"X-API-Key": key})
                sent.append(r.status_code)
                if i == 0:
                    expected = np.exp(model.query(X[:1]).astype(np.float64))
                    expected /= expected.sum()
                    np.testing.assert_allclose(r.json()["predictions"], expected, rtol=1e-5)
            sent.append(
                client.post("/v1/predict", json={"instance": [0] * 6}, headers={"X-API-Key": wrong}).status_code
            )
            sent.append(client.post("/v1/predict", json={"instance": [0] * 5}, headers={"X-API-Key": key}).status_code)
        assert sent == [200, 200, 200, 429, 429, 401, 422]
        proc.send_signal(signal.SIGKILL)  # no shutdown handler runs
        proc.wait(timeout=10)

    # Every answered request is in the log, committed before its answer left: the rows are still in the
    # write-ahead log the killed process left behind, which the next reader recovers.
    assert (tmp_path / "audit.sqlite-wal").stat().st_size > 0
    rows = AuditLog(tmp_path / "audit.sqlite", fingerprint_key=b"unused", retention_days=None).requests()
    # The wrong key's 401 has no row: requests without a valid key are only counted per address
    # (test_gateway_limits.py).
    assert [r["status"] for r in rows] == [s for s in sent if s != 401]
    assert [r["decision"] for r in rows] == ["allowed"] * 3 + ["throttled"] * 2 + ["rejected"]
    key_id = key.split("_")[1]
    assert [r["key_id"] for r in rows] == [key_id] * 6
    assert all(r["records"] is None for r in rows)  # fingerprints only
    assert rows[0]["granularity"] == "probabilities" and len(rows[0]["fingerprints"]) == 32

    # The key (or its secret) appears in no log, no audit database and not in the key database.
    secret = key.split("_")[2]
    for path in tmp_path.iterdir():
        if path.is_file() and not path.name.endswith((".pt", ".json", ".yaml")):
            data = path.read_bytes()
            assert secret.encode() not in data and wrong.split("_")[2].encode() not in data, path.name
    log_text = (tmp_path / "gateway-0.log").read_text()
    assert "POST /v1/predict" in log_text  # the access log was captured, and holds no key
    assert json.dumps(secret) not in log_text
