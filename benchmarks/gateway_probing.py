"""Probing detection as a classifier: queries answered before the first alert, per attack pattern, and
false alarms on benign streams of real records, on the bundled datasets.

    .venv/bin/python benchmarks/gateway_probing.py                  # every dataset, every pattern
    .venv/bin/python benchmarks/gateway_probing.py --datasets breast-cancer --quick

Per dataset: a seeded split into the benign clients' records (30%), the target model's training records
(half of the rest) and held-out records (the other half): the attacker's population data, of which up to
2,000 are also the operator's reference sample (``probing.reference``). The target is a scikit-learn
logistic regression. Attack streams (memberscope's own attacks, their
documented parameter ranges): the label-only attack (:class:`memberscope.redteam.LabelOnlyAttack`,
Gaussian noise 0.1-2.0 × std with 4/16/50 copies, bit flips 0.02-0.3 on binary features, image
flips/shifts), sent record by record or round-robin over 100/200 records, one record's copies over
three keys of one tenant or one address, and over two workers sharing Redis (when ``redis-server`` is
installed); a boundary walk; the red-team shadow pipeline; repeats on a randomized tier. Benign streams:
every benign record once in a random order and then again (re-scoring passes) up to 10,000 queries per
dataset, batch clients, five keys of one office (one tenant, one address), and a dashboard polling one
record every 5 s. Queries arrive 10 per second (a 600-s window holds 6,000).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from memberscope import datasets
from memberscope.exceptions import DataUnavailableError
from memberscope.gateway.evaluation import (
    benign_stream,
    boundary_stream,
    concat_streams,
    dashboard_stream,
    label_only_stream,
    run_stream,
    shadow_stream,
)
from memberscope.gateway.policy import ProbingConfig
from memberscope.gateway.probing import ProbeDetector
from memberscope.redteam.label_only import LabelOnlyAttack

SECRET = b"benchmark-fingerprint-secret-32b"
GAUSSIAN = (0.1, 0.25, 0.5, 1.0, 2.0)
BIT_FLIPS = (0.02, 0.05, 0.1, 0.2, 0.3)


def prepare(name: str, seed: int, *, quick: bool) -> dict:
    """Splits, a fitted target model and what the streams need."""
    from sklearn.linear_model import LogisticRegression

    if name == "fashion-mnist":
        ds = datasets.load(name, n_records=8000 if quick else 40_000, seed=seed)
    elif name == "purchase-synthetic":
        ds = datasets.load(name, n_records=4000, seed=seed)
    else:
        ds = datasets.load(name)
    shape = tuple(ds.X.shape[1:]) if ds.X.ndim == 4 else None
    X = ds.X.reshape(len(ds.X), -1).astype(np.float64)
    y = ds.y
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(X))
    n = len(X)
    # Benign clients' records (30%, at most 12,000) are kept apart from everything else; the target trains
    # on half of the others; the operator's reference is up to 2,000 held-out records of the other half
    # (what the README recommends: records like the traffic, which mostly did not train the model), and
    # the attacker owns that half too (its population data may overlap the operator's sample).
    n_benign = min(12_000, int(0.3 * n))
    benign, rest = order[:n_benign], order[n_benign:]
    train, attacker = rest[: len(rest) // 2], rest[len(rest) // 2 :]
    ref = attacker[:2000]
    model = LogisticRegression(max_iter=300).fit(X[train], y[train])
    return {
        "name": name,
        "X": X,
        "y": y,
        "shape": shape,
        "reference": X[ref],
        "train": train,
        "attacker": attacker,
        "benign": benign,
        "model": model,
        "binary": bool(np.isin(X, (0.0, 1.0)).all()),
    }


def attack_streams(data: dict, rng: np.random.Generator, *, quick: bool) -> list:
    X, model = data["X"], data["model"]
    pop = X[data["attacker"]]
    members = X[data["train"]]
    streams = []

    def lo(noise, scale, q=16, **kw):
        fit_on = pop.reshape(len(pop), *data["shape"]) if noise == "flip-shift" else pop
        return LabelOnlyAttack(n_queries=q, noise=noise, noise_scale=scale, seed=int(rng.integers(1 << 30))).fit(fit_on)

    targets = members[rng.choice(len(members), 20, replace=False)]
    if data["binary"]:
        for p in BIT_FLIPS:
            streams.append(label_only_stream(targets, lo("bit-flip", p), name=f"label-only bit-flip {p}, 16 copies"))
    else:
        for s in GAUSSIAN:
            streams.append(label_only_stream(targets, lo("gaussian", s), name=f"label-only gaussian {s}, 16 copies"))
        if not quick:
            streams.append(
                label_only_stream(targets, lo("gaussian", 0.5, q=4), name="label-only gaussian 0.5, 4 copies")
            )
            streams.append(
                label_only_stream(targets, lo("gaussian", 1.0, q=50), name="label-only gaussian 1.0, 50 copies")
            )
    if data["shape"] is not None:
        streams.append(
            label_only_stream(targets, lo("flip-shift", None), image_shape=data["shape"], name="label-only flip-shift")
        )
    noise, scale = ("bit-flip", 0.05) if data["binary"] else ("gaussian", 0.5)
    for r in (100,) if quick else (100, 200):
        candidates = np.concatenate([members, X[data["benign"]]])  # members and non-members, as an attacker asks
        rr_targets = candidates[rng.choice(len(candidates), r, replace=False)]
        streams.append(
            label_only_stream(
                rr_targets,
                lo(noise, scale, q=50),
                order="round-robin",
                name=f"round-robin over {r} records, {noise} {scale}, 50 copies",
            )
        )
    one = targets[:1]
    copies = label_only_stream(one, lo(noise, scale, q=50))
    keys3 = np.array([f"k{i % 3}" for i in range(len(copies))], dtype=object)
    copies.keys = keys3
    copies.tenants = {"k0": "acme", "k1": "acme", "k2": "acme"}
    copies.addresses = np.array([f"10.0.0.{i % 3}" for i in range(len(copies))], dtype=object)
    copies.name = "one record over 3 keys of one tenant (3 addresses)"
    streams.append(copies)
    by_address = label_only_stream(one, lo(noise, scale, q=50), name="one record over 3 keys from one address")
    by_address.keys = keys3.copy()
    streams.append(by_address)
    streams.append(boundary_stream(members[:20], pop, model.predict, name="boundary walk (16 steps per record)"))
    rep = dashboard_stream(targets[0], 100, period=0.1, name="one record repeated on a randomized tier")
    rep.randomized = True
    rep.first_perturbed = 1
    streams.append(rep)
    streams.append(shadow_stream(pop, np.concatenate([members[:100], X[data["benign"]][:100]])))
    return streams


def benign_streams(data: dict, rng: np.random.Generator, *, quick: bool) -> list:
    B = data["X"][data["benign"]]
    n_total = 2000 if quick else 10_000
    streams = [benign_stream(B, n_total, rng, name="distinct records, re-scoring passes")]
    office = [
        benign_stream(B, n_total // 5, rng, keys=f"o{i}", addresses="192.0.2.7", start=float(i)) for i in range(5)
    ]
    merged = concat_streams("office: 5 keys of one tenant, one address", office, rng=rng)
    merged.tenants = {f"o{i}": "office" for i in range(5)}
    streams.append(merged)
    streams.append(dashboard_stream(B[0], 720, name="dashboard polling one record every 5 s (1 h)"))
    mixed = concat_streams(
        "dashboard + distinct records, same key",
        [dashboard_stream(B[1], 200, period=1.0), benign_stream(B, min(n_total, 2000), rng)],
        rng=rng,
    )
    streams.append(mixed)
    return streams


def run(data: dict, stream, config: ProbingConfig, *, batch_size: int = 1, detectors=None) -> dict:
    det = detectors or ProbeDetector(
        config, data["X"].shape[1], reference=data["profile"], reference_probs=data["reference_probs"]
    )
    start = time.perf_counter()
    res = run_stream(det, stream, data["model"].predict_proba, secret=SECRET, batch_size=batch_size)
    return {
        "dataset": data["name"],
        "stream": stream.name,
        "queries": len(stream),
        "first_alert": res.first_alert,
        "first_perturbed": None if stream.first_perturbed is None else stream.first_perturbed + 1,
        "detectors": res.detectors,
        "scopes": res.scopes,
        "seconds": round(time.perf_counter() - start, 2),
    }


def two_workers(data: dict, config: ProbingConfig, rng: np.random.Generator) -> dict | None:
    """Label-only copies of one record sent alternately to two detectors sharing a real redis-server."""
    import shutil

    if shutil.which("redis-server") is None:
        return None
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from gateway_helpers import redis_server

    from memberscope.gateway.history import history_store

    pop = data["X"][data["attacker"]]
    noise, scale = ("bit-flip", 0.05) if data["binary"] else ("gaussian", 0.5)
    attack = LabelOnlyAttack(n_queries=50, noise=noise, noise_scale=scale, seed=int(rng.integers(1 << 30))).fit(pop)
    stream = label_only_stream(data["X"][data["train"]][:1], attack, name="one record's copies over 2 workers (Redis)")
    with redis_server() as url:
        workers = [
            ProbeDetector(
                config,
                data["X"].shape[1],
                reference=data["profile"],
                store=history_store(url, namespace="bench", window_seconds=config.window_seconds),
            )
            for _ in range(2)
        ]
        return run(data, stream, config, detectors=workers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--datasets", nargs="+", default=["breast-cancer", "digits", "fashion-mnist", "purchase-synthetic"]
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="fewer patterns and 2,000 benign queries")
    parser.add_argument("--json", type=Path, help="also write every row here")
    args = parser.parse_args()
    config = ProbingConfig()
    rows = []
    for name in args.datasets:
        try:
            data = prepare(name, args.seed, quick=args.quick)
        except DataUnavailableError as exc:  # fashion-mnist may be absent on this machine
            print(f"skipping {name}: {exc}", file=sys.stderr)
            continue
        # The operator's profile, fitted once as the gateway does at start-up.
        data["profile"] = ProbeDetector(config, data["X"].shape[1], reference=data["reference"]).profile
        data["reference_probs"] = data["model"].predict_proba(data["reference"])
        rng = np.random.default_rng(args.seed)
        for stream in attack_streams(data, rng, quick=args.quick):
            rows.append({"kind": "attack", **run(data, stream, config)})
            print(json.dumps(rows[-1]), flush=True)
        with contextlib.suppress(RuntimeError):
            res = two_workers(data, config, rng)
            if res is not None:
                rows.append({"kind": "attack", **res})
                print(json.dumps(rows[-1]), flush=True)
        for stream in benign_streams(data, rng, quick=args.quick):
            rows.append({"kind": "benign", **run(data, stream, config)})
            print(json.dumps(rows[-1]), flush=True)
        batch = benign_stream(
            data["X"][data["benign"]], 2000 if args.quick else 10_000, rng, name="distinct records, batches of 64"
        )
        rows.append({"kind": "benign", **run(data, batch, config, batch_size=64)})
        print(json.dumps(rows[-1]), flush=True)
    print()
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3]) if os.path.exists("/proc/loadavg") else "?"
    shown = {k: v for k, v in vars(config).items() if k in ProbingConfig.__dataclass_fields__}
    print(f"probing config: {shown}")
    print(f"/proc/loadavg after the run: {load}")
    print(
        "| dataset | attack pattern | queries answered before the first alert | of which unmodified real records "
        "| detector (scope) |"
    )
    print("|---|---|---|---|---|")
    for r in rows:
        if r["kind"] != "attack":
            continue
        first = "no alert" if r["first_alert"] is None else str(r["first_alert"])
        if r["first_alert"] is None:
            first += f" in {r['queries']}"
        real = "all" if r["first_perturbed"] is None else str(min(r["first_perturbed"], r["first_alert"] or 10**9) - 1)
        how = ", ".join(r["detectors"]) + (f" ({', '.join(r['scopes'])})" if r["scopes"] else "")
        print(f"| {r['dataset']} | {r['stream']} | {first} | {real} | {how or '-'} |")
    print()
    print("| dataset | benign stream | queries | alerts |")
    print("|---|---|---|---|")
    total = alarms = 0
    for r in rows:
        if r["kind"] != "benign":
            continue
        total += r["queries"] if r["first_alert"] is None else r["first_alert"]
        alarms += r["first_alert"] is not None
        got = "none" if r["first_alert"] is None else f"at query {r['first_alert']} ({', '.join(r['detectors'])})"
        print(f"| {r['dataset']} | {r['stream']} | {r['queries']} | {got} |")
    print(f"\nbenign queries: {total}; streams with a false alarm: {alarms}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
