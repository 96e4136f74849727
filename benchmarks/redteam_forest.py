"""The red team against a random forest served over HTTP: issue 14's scenario, before and after.

Setting (seeded): binary records of 60 features in 20 classes (each a noisy copy of its class's prototype); a
``RandomForestClassifier`` of 100 trees trained on 1,000 members (train accuracy 1.0) answers full
probability vectors from a stdlib HTTP server on 127.0.0.1 (``{"instances": ...}`` in, ``{"predictions": ...}``
out). Every attack is scored on the same 1,000 members and 1,000 non-members; the attacker owns 2,000 disjoint
public records, and nothing else.

- ``memberscope auto``: :func:`memberscope.redteam.run_redteam` with its defaults: the shadow family chosen by
  agreement with the target, the strongest of offline LiRA, offline RMIA and the shadow classifier on the
  calibration shadows, member verdicts held to the FPR on the attacker's held-out records.
- ``memberscope lira-offline`` / ``shadow classifier``: the same shadows, one attack forced.
- ``memberscope mlp shadows``: the same with ``--shadow-model mlp`` forced (the family the red team used before);
  ``before``: MLP shadows and the shadow classifier, the red team's old default.
- ``confidence threshold``: the true-class confidence, thresholded at the 1% FPR of the target's answers on the
  attacker's public records (the 20-line baseline of the issue).

Reported per attack: AUC and TPR at 1% and 0.1% FPR with bootstrap 95% CIs (from the ground truth), the observed
FPR of its "member" verdicts (where it gives verdicts), the conclusion it prints, queries spent and seconds.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/redteam_forest.py [--out benchmarks/results/redteam_forest.json]``.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

from memberscope.metrics import evaluate
from memberscope.redteam import run_redteam
from memberscope.targets import HttpTarget

N_MEMBERS, N_NON, N_PUBLIC, N_FEATURES, N_CLASSES = 1000, 1000, 2000, 60, 20
FPRS = (0.01, 0.001)


FLIP = 0.25
"""Share of a class prototype's bits flipped in each record (the forest's held-out accuracy is then about 0.88)."""


def make_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Binary records ``(n, 60)`` and labels ``(n,)`` in 20 classes: each record its class's random prototype with
    each bit flipped with probability :data:`FLIP`."""
    rng = np.random.default_rng(seed)
    prototypes = np.random.default_rng(1234).random((N_CLASSES, N_FEATURES)) < 0.5
    y = rng.integers(0, N_CLASSES, n)
    X = (prototypes[y] ^ (rng.random((n, N_FEATURES)) < FLIP)).astype(np.float64)
    return X, y


def serve(predict_proba) -> tuple[ThreadingHTTPServer, str]:
    """A model server on 127.0.0.1 answering ``{"instances": [...]}`` with ``{"predictions": [...]}``."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            out = json.dumps({"predictions": predict_proba(np.asarray(body["instances"])).tolist()}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/predict"


def metrics(member: np.ndarray, scores: np.ndarray, seed: int) -> dict:
    m = evaluate(member, scores, fprs=FPRS, n_bootstrap=1000, seed=seed)
    return {
        "auc": round(m.auc, 4),
        "auc_ci": [round(v, 4) for v in m.auc_ci],
        **{f"tpr@{k}": round(m.tpr_at_fpr[k], 4) for k in m.tpr_at_fpr},
        **{f"tpr@{k}_ci": [round(v, 4) for v in m.tpr_at_fpr_ci[k]] for k in m.tpr_at_fpr_ci},
    }


def main() -> None:
    from sklearn.ensemble import RandomForestClassifier

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    X, y = make_data(N_MEMBERS + N_NON + N_PUBLIC, seed=args.seed)
    members, non, public = slice(0, N_MEMBERS), slice(N_MEMBERS, N_MEMBERS + N_NON), slice(N_MEMBERS + N_NON, None)
    model = RandomForestClassifier(n_estimators=100, random_state=args.seed, n_jobs=1).fit(X[members], y[members])
    records, labels = np.r_[X[members], X[non]], np.r_[y[members], y[non]]
    member = np.r_[np.ones(N_MEMBERS, bool), np.zeros(N_NON, bool)]
    server, url = serve(model.predict_proba)
    rows = {
        "setting": {
            "train_accuracy": float(model.score(X[members], y[members])),
            "heldout_accuracy": float(model.score(X[non], y[non])),
        }
    }
    try:
        runs = (
            ("memberscope auto", {}),
            ("memberscope lira-offline", {"attack": "lira-offline"}),
            ("memberscope shadow classifier", {"attack": "shadow"}),
            ("memberscope mlp shadows", {"recipe": "mlp"}),
            (
                "before: shadow classifier, mlp shadows",
                {"recipe": "mlp", "attack": "shadow", "recipe_params": {"epochs": 40}},
            ),
        )
        for name, kwargs in runs:
            target = HttpTarget(url, n_classes=N_CLASSES, batch_size=500, timeout=300)
            t0 = time.perf_counter()
            with target:
                result = run_redteam(
                    target, records, labels, X[public], y[public], n_classes=N_CLASSES, seed=args.seed, **kwargs
                )
            seconds = time.perf_counter() - t0
            rt = result.results["redteam"]
            flagged = result.verdicts == "member"
            rows[name] = {
                **metrics(member, result.scores, args.seed),
                "attack": rt["attack"],
                "shadow_family": rt["shadows"]["family"],
                "agreement": {a["family"]: a["score"] for a in rt["shadows"]["agreement"]},
                "fit_poor": rt["shadows"]["fit"]["poor"],
                "member_verdicts": int(flagged.sum()),
                "verdict_tpr": round(float(flagged[member].mean()), 4),
                "verdict_fpr": round(float(flagged[~member].mean()), 4),
                "target_check": rt["target_check"],
                "conclusion": rt["conclusion"]["status"],
                "queries": int(rt["target"]["queries_spent"]),
                "seconds": round(seconds, 1),
            }
            print(name, json.dumps(rows[name]), flush=True)
        # The baseline: the true-class confidence, its threshold at 1% FPR on the target's answers on public records.
        target = HttpTarget(url, n_classes=N_CLASSES, batch_size=500, timeout=300)
        t0 = time.perf_counter()
        with target:
            pub = target.query(X[public])[np.arange(N_PUBLIC), y[public]]
            scores = target.query(records)[np.arange(len(records)), labels]
        threshold = np.nextafter(np.sort(pub)[::-1][int(0.01 * N_PUBLIC)], np.inf)
        flagged = scores >= threshold
        rows["confidence threshold"] = {
            **metrics(member, scores, args.seed),
            "member_verdicts": int(flagged.sum()),
            "verdict_tpr": round(float(flagged[member].mean()), 4),
            "verdict_fpr": round(float(flagged[~member].mean()), 4),
            "queries": int(target.queries_spent),
            "seconds": round(time.perf_counter() - t0, 1),
        }
        print("confidence threshold", json.dumps(rows["confidence threshold"]), flush=True)
    finally:
        server.shutdown()
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
