"""Time and peak memory of ``memberscope.metrics.evaluate`` at n = 10^5, 10^6 and 10^7 records.

    .venv/bin/python benchmarks/metrics_scaling.py                      # 10^5, 10^6, 10^7; 1,000 replicates
    .venv/bin/python benchmarks/metrics_scaling.py --sizes 1000000 --n-bootstrap 1000 --chunk 2
    .venv/bin/python benchmarks/metrics_scaling.py --sizes 1000000 2000000 10000000 --time-replicates 10

Each size runs in a fresh subprocess, so its peak resident memory (``resource.getrusage``
``ru_maxrss``) is that of one attack's evaluation: scores and ground truth (half members, a
normal shift of 0.5, AUC about 0.64), then ``evaluate`` with the default FPRs. The child reports
the process's resident memory before ``evaluate`` and its peak during it, the wall and CPU time of
``evaluate`` alone (CPU time is the fairer figure on a shared machine), which interval method each
metric used, and the AUC's and the TPR at 0.1% FPR's intervals. Above
``memberscope.metrics.BOOTSTRAP_MAX_RECORDS`` (2 * 10^6) records ``evaluate`` runs no bootstrap
(DeLong for the AUC, order statistics for the TPR).

``--time-replicates B`` times ``B`` bootstrap replicates alone at each size instead, as ``evaluate``
runs them (CPU seconds per replicate, and that times ``--n-bootstrap``): what the bootstrap would
cost where ``evaluate`` no longer runs it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys


def child(n: int, n_bootstrap: int, chunk: int | None, time_replicates: int = 0) -> dict:
    import resource
    import time
    import warnings

    import numpy as np

    from memberscope.metrics import DEFAULT_FPRS, evaluate
    from memberscope.metrics._bootstrap import replicates_from_ranked
    from memberscope.metrics._roc import rank_records

    rng = np.random.default_rng(0)
    member = rng.random(n) < 0.5
    score = rng.normal(size=n) + 0.5 * member
    if time_replicates:
        ranked = rank_records(member, score)
        cpu_start = time.process_time()
        replicates_from_ranked(  # as evaluate runs them: no advantage (its interval is DKW)
            member,
            ranked,
            time_replicates,
            rng=np.random.default_rng(1),
            fprs=DEFAULT_FPRS,
            chunk=chunk,
            advantage=False,
        )
        return {"n": n, "replicates": time_replicates, "cpu_seconds": time.process_time() - cpu_start}
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start, cpu_start = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        metrics = evaluate(member, score, n_bootstrap=n_bootstrap, chunk=chunk)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "n": n,
        "n_bootstrap": n_bootstrap,
        "chunk": chunk,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "rss_before_mib": before / 1024,
        "peak_rss_mib": peak / 1024,
        "auc": metrics.auc,
        "auc_ci": metrics.auc_ci,
        "auc_ci_method": metrics.auc_ci_method,
        "tpr_at_fpr": metrics.tpr_at_fpr,
        "tpr_at_fpr_ci": metrics.tpr_at_fpr_ci,
        "tpr_at_fpr_ci_method": metrics.tpr_at_fpr_ci_method,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 10_000_000])
    parser.add_argument("--n-bootstrap", type=int, default=1000)
    parser.add_argument("--chunk", type=int, default=None, help="bootstrap replicates scored together")
    parser.add_argument("--time-replicates", type=int, default=0, help="time this many bootstrap replicates alone")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.sizes[0], args.n_bootstrap, args.chunk, args.time_replicates)))
        return
    print(f"python {platform.python_version()}, {platform.machine()}; one subprocess per size")
    print("load average at start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()), flush=True)
    if args.time_replicates:
        print("| n | replicates timed | CPU per replicate | times --n-bootstrap |")
        print("|---|---|---|---|")
        for n in args.sizes:
            cmd = [
                sys.executable,
                __file__,
                "--child",
                "--sizes",
                str(n),
                "--time-replicates",
                str(args.time_replicates),
            ]
            if args.chunk is not None:
                cmd += ["--chunk", str(args.chunk)]
            row = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
            per = row["cpu_seconds"] / row["replicates"]
            print(f"| {n:,} | {row['replicates']} | {per * 1e3:.1f} ms | {per * args.n_bootstrap:.0f} s |", flush=True)
        print("load average at end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
        return
    print(
        "| n | replicates | evaluate time (CPU time) | peak RSS (RSS before evaluate) | interval methods "
        "| AUC (95% CI) | TPR@0.1%FPR (95% CI) |"
    )
    print("|---|---|---|---|---|---|---|")
    for n in args.sizes:
        cmd = [sys.executable, __file__, "--child", "--sizes", str(n), "--n-bootstrap", str(args.n_bootstrap)]
        if args.chunk is not None:
            cmd += ["--chunk", str(args.chunk)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        row = json.loads(out.strip().splitlines()[-1])
        methods = sorted(set(row["tpr_at_fpr_ci_method"].values()))
        tpr, (tpr_lo, tpr_hi) = row["tpr_at_fpr"]["0.001"], row["tpr_at_fpr_ci"]["0.001"]
        print(
            f"| {n:,} | {row['n_bootstrap']:,} | {row['seconds']:.1f} s ({row['cpu_seconds']:.1f} s) | "
            f"{row['peak_rss_mib']:,.0f} MiB "
            f"({row['rss_before_mib']:,.0f} MiB) | AUC {row['auc_ci_method']}; TPR {', '.join(methods)} | "
            f"{row['auc']:.4f} ({row['auc_ci'][0]:.4f}–{row['auc_ci'][1]:.4f}) | "
            f"{100 * tpr:.3f}% ({100 * tpr_lo:.3f}%–{100 * tpr_hi:.3f}%) |",
            flush=True,
        )
    print("load average at end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))


if __name__ == "__main__":
    main()
