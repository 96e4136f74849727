"""Gateway overhead: a bare FastAPI model endpoint vs the full gateway, on loopback, in one run.

    .venv/bin/python benchmarks/gateway_latency.py --duration 10 --rounds 3

Both servers are uvicorn processes (one worker each) serving the same scikit-learn logistic regression
(20 features, 3 classes), one record per request, cycling through 1,000 distinct records (so probing
detection does its full work, not the cheap path of an exact repeat). The bare endpoint validates the
body with pydantic, calls the model and returns JSON. The gateway runs as ``memberscope serve`` runs it
(:func:`memberscope.gateway.server.server_config`: its HTTP limits) and adds the API-key check, a per-key
moving-window rate limit (high enough never to refuse), the output policy (round:3), probing detection
(with a reference sample) and an audit-log row committed per request (SQLite WAL). The load generator is
Debian's ``wrk`` with a Lua POST script: 1 connection (closed loop: per-request latency) and 16
connections (throughput). Rounds alternate the two servers so that load from other jobs on the machine
hits both alike; each server's CPU time per request (from /proc) is reported too, as it depends less on
that load than throughput does.
"""

# No `from __future__ import annotations`: FastAPI must see the endpoint's body type itself.

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

N_FEATURES = 20
ROOT = Path(__file__).resolve().parents[1]


def _model():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = rng.standard_normal((1000, N_FEATURES))
    y = np.digitize(X[:, 0] + X[:, 1], [-0.5, 0.5])
    return LogisticRegression(max_iter=500).fit(X, y), X


def bare_app():
    """The baseline: FastAPI + pydantic validation + the model, nothing else."""
    from fastapi import FastAPI
    from pydantic import BaseModel

    model, _ = _model()

    class Body(BaseModel):
        instances: list[list[float]]

    app = FastAPI()

    @app.post("/v1/predict")
    async def predict(body: Body):
        return {"predictions": model.predict_proba(np.asarray(body.instances)).tolist()}

    return app


def gateway_app(workdir: Path, strategy: str = "moving-window"):
    from memberscope.gateway import create_app

    model, X = _model()
    np.save(workdir / "reference.npy", X[:500])
    policy = {
        "keys_db": str(workdir / "keys.sqlite"),
        "audit": {"path": str(workdir / "audit.sqlite")},
        "strategy": strategy,
        "probing": {"reference": str(workdir / "reference.npy")},
        "tiers": {"bench": {"output": "round:3", "limits": "10000000/minute;100000000/day"}},
    }
    return create_app(model, policy)


def components(workdir: Path, n: int = 2000) -> dict[str, float]:
    """Microseconds per call of each step the gateway adds, in-process (no HTTP), one record."""
    from memberscope.gateway.keys import KeyStore
    from memberscope.targets.wire import to_predictions

    app = gateway_app(workdir)
    gw = app.state.gateway
    _, key = KeyStore(workdir / "keys.sqlite").create("bench")
    tier = gw.policy.tiers["bench"]
    from memberscope.gateway.probing import Subject

    rng = np.random.default_rng(2)
    X = rng.standard_normal((1, N_FEATURES))
    probs = gw.model.predict_proba(X)
    fps = gw.audit.fingerprints(X)
    subjects = [Subject("key", "k"), Subject("address", "127.0.0.1")]
    records = rng.standard_normal((4 * n + 400, 1, N_FEATURES))
    stream = iter(records)
    steps = {
        "key check (SQLite row cached 1 s, HMAC-SHA256, compare_digest)": lambda: gw.keys.verify(key),
        "rate limit (moving window, 2 windows)": lambda: gw.limiter.hit(tier.rate_limits, "k", cost=1),
        "output policy (round:3) + wire format": lambda: to_predictions(tier.postprocessor(probs, rng=gw.rng)),
        "keyed fingerprint (HMAC-SHA256)": lambda: gw.audit.fingerprints(X),
        "probing detection (distinct records, key + address histories)": lambda: gw.detector.observe(
            subjects, next(stream), probs, gw.audit.fingerprints(X), now=time.time()
        ),
        "audit-log row (SQLite WAL, commit)": lambda: gw.audit.record(
            key_id="k",
            path="/v1/predict",
            status=200,
            decision="allowed",
            granularity="probabilities",
            X=X,
            fingerprints=fps,
        ),
        "model (scikit-learn predict_proba; the bare endpoint pays it too)": lambda: gw.model.predict_proba(X),
    }
    out = {}
    for name, step in steps.items():
        for _ in range(100):
            step()
        start = time.perf_counter()
        for _ in range(n):
            step()
        out[name] = (time.perf_counter() - start) / n * 1e6
    return out


def _serve(kind: str, port: int, workdir: Path) -> None:
    import uvicorn

    if kind == "bare":
        uvicorn.run(bare_app(), host="127.0.0.1", port=port, log_level="warning", access_log=False)
        return
    from memberscope.gateway.server import run_server, server_config

    app = gateway_app(workdir)
    policy = app.state.gateway.policy
    run_server(server_config(app, policy, port=port, log_level="warning", access_log=False))


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(kind: str, workdir: Path):
    import httpx

    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", kind, "--port", str(port), "--workdir", str(workdir)], cwd=ROOT
    )
    for _ in range(600):
        try:
            httpx.post(f"http://127.0.0.1:{port}/v1/predict", content=b"{}", timeout=1.0)
            return proc, port
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{kind} server did not start")


LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
HEADERS
bodies = {BODIES}
counter = 0
request = function()
  counter = counter + 1
  return wrk.format(nil, nil, nil, bodies[(counter % #bodies) + 1])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"mean_us": %.1f, "non2xx": %d, "socket_errors": %d}\\n', summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), latency.mean, e.status, e.connect + e.read + e.write + e.timeout))
end
"""


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (from /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wrk(port: int, script: Path, connections: int, duration: float, pid: int) -> dict:
    cpu_before = _cpu_seconds(pid)
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{int(duration)}s",
            "--timeout",
            "5s",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}/v1/predict",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next((ln for ln in out.splitlines() if ln.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{out}")
    res = json.loads(line[len("RESULT ") :])
    res["rps"] = res["requests"] / (res["duration_us"] / 1e6)
    res["cpu_us"] = (_cpu_seconds(pid) - cpu_before) / max(1, res["requests"]) * 1e6
    return res


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10.0, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--serve", choices=["bare", "gateway"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        _serve(args.serve, args.port, args.workdir)
        return
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk (scripts/setup.sh installs it)")
    from memberscope.gateway.keys import KeyStore

    workdir = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    _, key = KeyStore(workdir / "keys.sqlite").create("bench")
    records = np.random.default_rng(1).standard_normal((1000, N_FEATURES)).round(4).tolist()
    bodies = ",".join("[==[" + json.dumps({"instances": [r]}) + "]==]" for r in records)
    scripts = {}
    for kind, headers in (("bare", ""), ("gateway", f'wrk.headers["Authorization"] = "Bearer {key}"')):
        scripts[kind] = workdir / f"{kind}.lua"
        scripts[kind].write_text(LUA.replace("BODIES", bodies).replace("HEADERS", headers))
    (workdir / "components").mkdir()
    parts = components(workdir / "components")
    servers = {kind: _start(kind, workdir) for kind in ("bare", "gateway")}
    results: dict = {}
    load_before = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    try:
        for kind, (proc, port) in servers.items():  # warm-up
            _wrk(port, scripts[kind], 4, 2, proc.pid)
        for _ in range(args.rounds):
            for c in args.connections:
                for kind, (proc, port) in servers.items():
                    results.setdefault((kind, c), []).append(_wrk(port, scripts[kind], c, args.duration, proc.pid))
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait(timeout=10)
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(f"machine: {os.cpu_count()} cores; /proc/loadavg before: {load_before}, after: {load}")
    print("| server | connections | requests/s (rounds) | median | p50 ms | p99 ms | server CPU µs/request | non-2xx |")
    print("|---|---|---|---|---|---|---|---|")
    summary = {}
    for (kind, c), runs in sorted(results.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        rps = np.median([r["rps"] for r in runs])
        p50 = np.median([r["p50_us"] for r in runs]) / 1000
        p99 = np.median([r["p99_us"] for r in runs]) / 1000
        cpu = np.median([r["cpu_us"] for r in runs])
        summary[(kind, c)] = (rps, p50, p99, cpu)
        each = ", ".join(f"{r['rps']:.0f}" for r in runs)
        print(
            f"| {kind} | {c} | {each} | {rps:.0f} | {p50:.2f} | {p99:.2f} | {cpu:.0f} | "
            f"{sum(r['non2xx'] for r in runs)} |"
        )
    for c in args.connections:
        d50 = summary[("gateway", c)][1] - summary[("bare", c)][1]
        d99 = summary[("gateway", c)][2] - summary[("bare", c)][2]
        share = summary[("gateway", c)][0] / summary[("bare", c)][0]
        per_round = [g["rps"] / b["rps"] for g, b in zip(results[("gateway", c)], results[("bare", c)], strict=True)]
        print(
            f"gateway at {c} connection(s): {share:.0%} of the bare throughput (rounds: "
            f"{', '.join(f'{x:.0%}' for x in per_round)}), p50 {d50:+.2f} ms, p99 {d99:+.2f} ms, CPU per request "
            f"{summary[('gateway', c)][3] - summary[('bare', c)][3]:+.0f} µs (medians of {args.rounds} rounds)"
        )
    print("| step the gateway adds (in-process) | µs per request |")
    print("|---|---|")
    for name, us in parts.items():
        print(f"| {name} | {us:.0f} |")
    audit = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("
            "'select count(*), sum(decision=\"allowed\") from requests').fetchone())",
            str(workdir / "audit.sqlite"),
        ],
        capture_output=True,
        text=True,
    ).stdout.strip()
    print(f"audit log rows (total, allowed): {audit}")
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
