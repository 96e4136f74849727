"""End to end on 127.0.0.1: a scripted membership-inference attacker (httpx) against the gateway.

The same overfit random forest is served to two keys: a full-probability key and a label-only,
rate-limited key whose probing action is throttle. The confidence attack (population-calibrated
threshold) works through the first; the label-only perturbation attack is throttled after its first
burst and the gateway raises a probing alert for its key.
"""

import httpx
import numpy as np
from gateway_helpers import serve_in_thread

from memberscope import metrics

D, N = 10, 200
N_PERTURB = 50


def _data(rng, n):
    X = rng.standard_normal((n, D))
    y = ((X[:, 0] + X[:, 1] + 1.5 * rng.standard_normal(n)) > 0).astype(int)
    return X, y


def test_attack_tpr_drops_label_only_attack_is_throttled_and_flagged(tmp_path):
    from sklearn.ensemble import RandomForestClassifier

    from memberscope.gateway import create_app
    from memberscope.gateway.keys import KeyStore

    rng = np.random.default_rng(0)
    (Xm, ym), (Xn, yn), (Xp, yp) = _data(rng, N), _data(rng, N), _data(rng, N)
    # TPR at 1% FPR needs a few hundred non-members before its interval can exclude 0 (the threshold
    # itself is estimated): the confidence attack also scores 1,000 further non-members
    X_more, y_more = _data(rng, 5 * N)
    forest = RandomForestClassifier(n_estimators=50, random_state=0).fit(Xm, ym)
    np.save(tmp_path / "reference.npy", Xp)
    policy = {
        "keys_db": str(tmp_path / "keys.sqlite"),
        "audit": {"path": str(tmp_path / "audit.sqlite")},
        "max_batch": 100,
        "probing": {"reference": str(tmp_path / "reference.npy"), "action": "log", "throttle_limits": "20/minute"},
        "tiers": {
            "full": {"output": "identity", "limits": "10000/minute"},
            "label": {"output": "label-only", "limits": "2000/minute;5000/day", "probing_action": "throttle"},
            "ops": {"admin": True},
        },
    }
    keys = KeyStore(tmp_path / "keys.sqlite")
    _, full_key = keys.create("full")
    label_id, label_key = keys.create("label")
    _, admin_key = keys.create("ops")

    with serve_in_thread(create_app(forest, policy, keys=keys)) as url, httpx.Client(base_url=url) as client:

        def query(key, X):
            headers = {"Authorization": f"Bearer {key}"}
            return client.post("/v1/predict", json={"instances": X.tolist()}, headers=headers)

        def probabilities(X):
            out = []
            for start in range(0, len(X), 100):
                r = query(full_key, X[start : start + 100])
                assert r.status_code == 200, r.text
                out += r.json()["predictions"]
            return np.asarray(out)

        # 1. Confidence attack with the full-probability key, threshold calibrated on population data.
        def confidence(X, y):
            return np.log(np.maximum(probabilities(X)[np.arange(len(y)), y], 1e-12))

        s_mem, s_non, s_pop = confidence(Xm, ym), confidence(Xn, yn), confidence(Xp, yp)
        threshold = np.quantile(s_pop, 0.99)
        assert np.mean(s_non > threshold) <= 0.05  # the calibration transfers to unseen non-members
        s_more = confidence(X_more, y_more)
        member = np.r_[np.ones(N), np.zeros(N)]
        more = np.r_[member, np.zeros(len(s_more))]
        full = metrics.evaluate(more, np.r_[s_mem, s_non, s_more], fprs=(0.01,), n_bootstrap=200, seed=0)
        assert full.tpr_at_fpr["0.01"] >= 0.05 and full.tpr_at_fpr_ci["0.01"][0] > 0

        # 2. Label-only attack: per target, the record and N_PERTURB noisy copies; score = share still
        #    predicted as the true label. It stops at the first refusal, as a client must.
        targets, labels = np.r_[Xm, Xn], np.r_[ym, yn]
        budget = len(targets) * (N_PERTURB + 1)
        scores, answered, refusal = np.zeros(len(targets)), 0, None
        for i, (x, label) in enumerate(zip(targets, labels, strict=True)):
            batch = np.vstack([x, x + 0.3 * rng.standard_normal((N_PERTURB, D))])
            r = query(label_key, batch)
            if r.status_code != 200:
                refusal = r
                break
            preds = r.json()["predictions"]
            assert all(isinstance(p, int) for p in preds)  # label only: class indices, no probabilities
            scores[i] = np.mean(np.asarray(preds) == label)
            answered += len(batch)
        assert refusal is not None and refusal.status_code == 429
        assert int(refusal.headers["Retry-After"]) >= 1
        assert answered <= 0.05 * budget
        label_only = metrics.evaluate(member, scores, fprs=(0.01,), n_bootstrap=0)
        assert label_only.tpr_at_fpr["0.01"] <= 0.01 < full.tpr_at_fpr["0.01"]

        # 3. The probing alert names the label-only key, and only it.
        r = client.get("/admin/alerts", headers={"Authorization": f"Bearer {admin_key}"})
        alerts = r.json()["alerts"]
        assert {a["key_id"] for a in alerts} == {label_id}
        assert {a["detector"] for a in alerts} == {"perturbation-burst"}
        assert alerts[0]["action"] == "throttle"


def test_block_action_refuses_a_probing_key_and_logs_it(tmp_path):
    from sklearn.linear_model import LogisticRegression

    from memberscope.gateway import create_app
    from memberscope.gateway.auditlog import AuditLog
    from memberscope.gateway.keys import KeyStore

    rng = np.random.default_rng(1)
    X, y = _data(rng, 300)
    policy = {
        "keys_db": str(tmp_path / "keys.sqlite"),
        "audit": {"path": str(tmp_path / "audit.sqlite")},
        "probing": {"reference": None, "action": "block", "cooldown_seconds": 600},
        "tiers": {"label": {"output": "label-only"}, "other": {"output": "label-only"}},
    }
    keys = KeyStore(tmp_path / "keys.sqlite")
    prober_id, prober = keys.create("label")
    _, bystander = keys.create("other")
    app = create_app(LogisticRegression().fit(X, y), policy, keys=keys)
    with serve_in_thread(app) as url, httpx.Client(base_url=url) as client:

        def ask(key, batch):
            return client.post("/v1/predict", json={"instances": batch.tolist()}, headers={"X-API-Key": key})

        # Without a reference, the first 200 distinct records served are the profile's sample.
        assert ask(bystander, X[:100]).status_code == 200
        assert ask(prober, X[100:200]).status_code == 200
        burst = X[0] + 0.05 * rng.standard_normal((40, D))
        flagged = ask(prober, burst)  # judged before it is answered: the request that raises the alert is refused
        assert flagged.status_code == 403 and "blocked" in flagged.json()["detail"]
        refused = ask(prober, X[200:201])
        assert refused.status_code == 403 and "blocked" in refused.json()["detail"]
        assert int(refused.headers["Retry-After"]) == 600
        last = ask(bystander, X[200:300])
        assert last.status_code == 200, last.text  # other keys, even from the same address, are not
    log = AuditLog(tmp_path / "audit.sqlite", fingerprint_key=b"unused")
    rows = log.requests()
    assert [r["decision"] for r in rows if r["key_id"] == prober_id] == ["allowed", "blocked", "blocked"]
    assert {a["key_id"] for a in log.alerts()} == {prober_id}


def test_concurrent_requests_are_judged_together_and_each_logged_once(tmp_path):
    """Requests that reach the model in one turn of the event loop are judged and logged together: the
    prober's copies, interleaved with bystanders' real records, get blocked; every request has one row."""
    import asyncio

    from sklearn.linear_model import LogisticRegression

    from memberscope.gateway import create_app
    from memberscope.gateway.auditlog import AuditLog
    from memberscope.gateway.keys import KeyStore

    rng = np.random.default_rng(3)
    X, y = _data(rng, 600)
    np.save(tmp_path / "reference.npy", X[:400])
    policy = {
        "keys_db": str(tmp_path / "keys.sqlite"),
        "audit": {"path": str(tmp_path / "audit.sqlite")},
        "probing": {"reference": str(tmp_path / "reference.npy"), "action": "block"},
        "tiers": {"label": {"output": "label-only"}},
    }
    keys = KeyStore(tmp_path / "keys.sqlite")
    prober_id, prober = keys.create("label")
    bystanders = [keys.create("label")[1] for _ in range(3)]
    app = create_app(LogisticRegression().fit(X, y), policy, keys=keys)
    copies = X[400] + 0.02 * rng.standard_normal((60, D))

    async def fire(url):
        async with httpx.AsyncClient(base_url=url, timeout=30, limits=httpx.Limits(max_connections=32)) as client:
            jobs = []
            for i in range(60):
                jobs.append(
                    client.post("/v1/predict", json={"instance": copies[i].tolist()}, headers={"X-API-Key": prober})
                )
                key = bystanders[i % 3]
                jobs.append(
                    client.post("/v1/predict", json={"instance": X[450 + i].tolist()}, headers={"X-API-Key": key})
                )
            return await asyncio.gather(*jobs)

    with serve_in_thread(app) as url:
        responses = asyncio.run(fire(url))
    probe = [r.status_code for r in responses[0::2]]
    benign = [r.status_code for r in responses[1::2]]
    assert set(benign) == {200}
    assert set(probe) == {200, 403} and probe.count(200) <= 30
    rows = AuditLog(tmp_path / "audit.sqlite", fingerprint_key=b"unused").requests()
    assert len(rows) == len(responses)
    assert sorted(r["status"] for r in rows if r["key_id"] == prober_id) == sorted(probe)
