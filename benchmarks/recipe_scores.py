"""Fingerprints of seeded digits audits, one per recipe and training-time defense, to compare two versions.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/recipe_scores.py --out before.json
    PYTHONPATH=$PWD .venv/bin/python benchmarks/recipe_scores.py --out after.json --compare before.json

Each run is a small audit (digits, 4 reference models, few epochs, no cache); its fingerprint is the SHA-256 of
every attack's scores (float64 bytes) plus the AUCs, so "identical" means bit for bit. ``--races`` also repeats
the DP-SGD and dropout audits on 4 threads (``backend="threading"``) to show whether they match the sequential run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time

import numpy as np

SMALL = {"hidden": [32], "epochs": 6}
RUNS: dict[str, dict] = {
    "mlp": {"model": "mlp", "model_params": SMALL},
    "mlp-standardize": {"model": "mlp", "model_params": {**SMALL, "standardize": True, "optimizer": "sgd"}},
    "cnn": {"model": "cnn", "model_params": {"channels": [4, 8], "hidden": [16], "epochs": 3}},
    "logreg": {"model": "logreg", "model_params": {"epochs": 6}},
    "sklearn": {"model": "sklearn", "model_params": {"params": {"max_iter": 200}}},
    "mlp-vectorized": {"model": "mlp", "model_params": SMALL, "train_mode": "vectorized"},
    "cnn-vectorized": {
        "model": "cnn",
        "model_params": {"channels": [4, 8], "hidden": [16], "epochs": 3},
        "train_mode": "vectorized",
    },
    "logreg-vectorized": {"model": "logreg", "model_params": {"epochs": 6}, "train_mode": "vectorized"},
    "mlp-l2": {"model": "mlp", "model_params": {**SMALL, "weight_decay": 5e-4}},
    "mlp-l1": {"model": "mlp", "model_params": {**SMALL, "l1": 1e-4}},
    "mlp-label-smoothing": {"model": "mlp", "model_params": {**SMALL, "label_smoothing": 0.1}},
    "mlp-early-stopping": {"model": "mlp", "model_params": {**SMALL, "epochs": 12, "early_stopping": 2}},
    "mlp-augment": {"model": "mlp", "model_params": {**SMALL, "augment": True}},
    "mlp-augment-table": {
        "model": "mlp",
        "model_params": {**SMALL, "augment": True, "augment_noise": 0.05},
        "dataset": "breast-cancer",
    },
    "mlp-ensemble": {"model": "mlp", "model_params": {**SMALL, "ensemble": 2}},
    "mlp-coarsen": {"model": "mlp", "model_params": {**SMALL, "coarsen": 0.25}},
    "mlp-dp-sgd": {"model": "mlp", "model_params": {**SMALL, "epochs": 3, "dp_epsilon": 8.0}},
    "mlp-dp-sgd-augment": {"model": "mlp", "model_params": {**SMALL, "epochs": 3, "dp_epsilon": 8.0, "augment": True}},
    "mlp-dropout": {"model": "mlp", "model_params": {**SMALL, "dropout": 0.5}},
    "cnn-dropout": {"model": "cnn", "model_params": {"channels": [4, 8], "hidden": [16], "epochs": 2, "dropout": 0.5}},
}
RACES = ("mlp-dp-sgd", "mlp-dropout")


def fingerprint(name: str, spec: dict, **extra) -> dict:
    from memberscope.api import run_audit
    from memberscope.config import AuditConfig

    cfg = AuditConfig(
        dataset=spec.get("dataset", "digits"),
        model=spec["model"],
        model_params=spec["model_params"],
        reference_models=4,
        attacks=["loss", "lira-online", "rmia-offline"],
        n_bootstrap=50,
        seed=7,
        use_cache=False,
        train_mode=spec.get("train_mode", "sequential"),
        **extra,
    )
    start = time.perf_counter()
    result = run_audit(cfg, progress=False)
    digest = hashlib.sha256()
    for attack in sorted(result.scores):
        digest.update(attack.encode())
        digest.update(np.ascontiguousarray(result.scores[attack], dtype=np.float64).tobytes())
    return {
        "sha256": digest.hexdigest(),
        "auc": {a: m["auc"] for a, m in sorted(result.results["attacks"].items())},
        "seconds": round(time.perf_counter() - start, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--compare", default=None, help="an earlier --out file: print which runs changed")
    parser.add_argument("--only", default=None, help="comma-separated run names")
    parser.add_argument("--races", action="store_true", help="also repeat DP-SGD and dropout on 4 threads, 3 times")
    args = parser.parse_args()
    names = args.only.split(",") if args.only else list(RUNS)
    out: dict[str, dict] = {}
    for name in names:
        out[name] = fingerprint(name, RUNS[name])
        print(f"{name}: {out[name]['sha256'][:16]} AUC {out[name]['auc']} ({out[name]['seconds']} s)", flush=True)
    if args.races:
        for name in RACES:
            for run in range(3):
                key = f"{name}@threading-4#{run + 1}"
                out[key] = fingerprint(name, RUNS[name], n_jobs=4, backend="threading")
                same = out[key]["sha256"] == out[name]["sha256"]
                print(f"{key}: {out[key]['sha256'][:16]} {'same as' if same else 'DIFFERS from'} sequential "
                      f"AUC {out[key]['auc']}", flush=True)  # fmt: skip
    with open(args.out, "w") as fh:
        json.dump(out, fh, indent=2)
    if args.compare:
        with open(args.compare) as fh:
            before = json.load(fh)
        print("\n| run | before | after | identical |\n|---|---|---|---|")
        for name, now in out.items():
            then = before.get(name)
            if then is None:
                continue
            same = "yes" if then["sha256"] == now["sha256"] else "**no**"
            auc_then = ", ".join(f"{a} {v:.4f}" for a, v in then["auc"].items())
            auc_now = ", ".join(f"{a} {v:.4f}" for a, v in now["auc"].items())
            print(f"| {name} | {then['sha256'][:12]} ({auc_then}) | {now['sha256'][:12]} ({auc_now}) | {same} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
