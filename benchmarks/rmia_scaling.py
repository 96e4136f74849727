"""RMIA at scale: the pairwise comparison by sorting vs the peer's dense float64 matrix, and a full fit + score.

    .venv/bin/python benchmarks/rmia_scaling.py                                  # n = z = 5,000, 20,000, 50,000
    .venv/bin/python benchmarks/rmia_scaling.py --sizes 50000 --classes 100 --queries 2

1. The pairwise comparison: for each record x, the fraction of population records z with
   LR(x) / LR(z) > gamma. memberscope sorts the LR(z) once and binary-searches each LR(x)
   (``pairwise_dominance``); ML Privacy Meter's ``run_rmia`` (modules/mia/attacks/rmia.py) builds
   ``ratios = prob_ratio_x[:, None] / prob_ratio_z``, an n × z float64 matrix, then
   ``np.average(ratios > 1.0, axis=1)``, an n × z boolean matrix on top. The dense form is run only
   where both matrices fit in ``--dense-limit`` GiB; otherwise its size is printed. Time and peak
   traced memory (tracemalloc sees numpy's buffers); the scores are compared.
2. A full ``rmia-offline`` fit (true-label probabilities of K reference models on the n pool and z
   population records, and the choice of ``a`` on them) and ``score`` on synthetic logits, with
   the time of the choice of ``a`` alone, and the ratio of that to scoring. Each of the three is the
   fastest of ``--repeats`` runs (the usual guard against other processes on a shared machine), in
   CPU seconds of this process (``time.process_time``; run it with ``OMP_NUM_THREADS=1``), the wall
   time beside it. The load average is printed at the start and the end.
"""

from __future__ import annotations

import argparse
import gc
import os
import time
import tracemalloc

import numpy as np

from memberscope.attacks import ReferenceOutputs, TargetOutputs, create
from memberscope.attacks.rmia import pairwise_dominance
from memberscope.game import paired_masks


def dense_peer(prob_ratio_x: np.ndarray, prob_ratio_z: np.ndarray, gamma: float) -> np.ndarray:
    """ML Privacy Meter's formulation: an n × z float64 ratio matrix, then an n × z boolean one."""
    ratios = prob_ratio_x[:, np.newaxis] / prob_ratio_z
    return np.average(ratios > gamma, axis=1)


def measure(fn):
    gc.collect()
    tracemalloc.start()
    start = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return out, seconds, peak


def synthetic_outputs(n: int, z: int, k: int, classes: int, queries: int, seed: int = 0):
    """Reference models more confident on their members; a target model on the same records."""
    rng = np.random.default_rng(seed)
    labels, pop_labels = rng.integers(0, classes, n), rng.integers(0, classes, z)
    masks = paired_masks(n, k, seed=seed)
    ref = rng.normal(size=(k, n, queries, classes)).astype(np.float32)
    for j in range(k):
        ref[j, masks[j], :, labels[masks[j]]] += 2.0
    refs = ReferenceOutputs(
        logits=ref,
        masks=masks,
        labels=labels,
        population_logits=rng.normal(size=(k, z, queries, classes)).astype(np.float32),
        population_labels=pop_labels,
    )
    target_logits = rng.normal(size=(n, queries, classes)).astype(np.float32)
    target = TargetOutputs(
        logits=target_logits,
        labels=labels,
        population_logits=rng.normal(size=(z, queries, classes)).astype(np.float32),
        population_labels=pop_labels,
    )
    return refs, target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5_000, 20_000, 50_000], help="n = z")
    parser.add_argument("--gamma", type=float, default=1.0)
    parser.add_argument("--reference-models", type=int, default=4)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--queries", type=int, default=1)
    parser.add_argument("--dense-limit", type=float, default=8.0, help="GiB the dense matrices may take")
    parser.add_argument("--repeats", type=int, default=3, help="full fit/score: the fastest of this many runs")
    args = parser.parse_args()

    print("load average at start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    print(f"gamma={args.gamma}; pairwise comparison on LR values drawn from a normal (log scale)")
    print("| n = z | sorting (memberscope) | dense float64 + bool n×z (ML Privacy Meter) | scores |")
    print("|---|---|---|---|")
    rng = np.random.default_rng(0)
    for n in args.sizes:
        log_x, log_z = rng.normal(size=n), rng.normal(size=n)
        fast, t_fast, m_fast = measure(lambda x=log_x, z=log_z: pairwise_dominance(x, z, gamma=args.gamma))
        need = n * n * (8 + 1) / 2**30
        if need <= args.dense_limit:
            ratio_x, ratio_z = np.exp(log_x), np.exp(log_z)
            slow, t_slow, m_slow = measure(lambda rx=ratio_x, rz=ratio_z: dense_peer(rx, rz, args.gamma))
            differ = int(np.sum(fast != slow))
            dense = f"{t_slow:.2f} s, {m_slow / 2**20:,.0f} MiB"
            same = "identical" if differ == 0 else f"{differ} of {n:,} differ (exp/divide rounding at ties)"
        else:
            dense = f"not run: needs {need:,.1f} GiB ({n * n * 8 / 2**30:,.1f} float64 + {n * n / 2**30:,.1f} bool)"
            same = "-"
        print(f"| {n:,} | {t_fast * 1e3:.1f} ms, {m_fast / 2**20:.1f} MiB | {dense} | {same} |", flush=True)

    k, c, q = args.reference_models, args.classes, args.queries
    print(
        f"\nrmia-offline on synthetic logits: K={k} reference models, {c} classes, {q} query(ies) per record; "
        f"fastest of {args.repeats}"
    )
    print(
        "| n = z | fit (incl. choosing a), CPU (wall) | choosing a, CPU (wall) | score, CPU (wall) | a / score (CPU) |"
    )
    print("|---|---|---|---|---|")

    def timed(fn, *args):
        wall, cpu = time.perf_counter(), time.process_time()
        out = fn(*args)
        return out, time.process_time() - cpu, time.perf_counter() - wall

    for n in args.sizes:
        refs, target = synthetic_outputs(n, n, k, c, q)
        best = {"fit": [np.inf, np.inf], "a": [np.inf, np.inf], "score": [np.inf, np.inf]}
        for _ in range(args.repeats):
            attack = create("rmia-offline")
            runs = {"fit": timed(attack.fit, refs), "a": timed(attack._choose_a), "score": timed(attack.score, target)}
            for key, (_, cpu, wall) in runs.items():
                best[key] = [min(best[key][0], cpu), min(best[key][1], wall)]
            a = runs["a"][0]
        cell = {key: f"{cpu:.3f} s ({wall:.3f} s)" for key, (cpu, wall) in best.items()}
        ratio = best["a"][0] / best["score"][0]
        print(f"| {n:,} | {cell['fit']} | {cell['a']} (a = {a}) | {cell['score']} | {ratio:.1f}× |", flush=True)
    print("load average at end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))


if __name__ == "__main__":
    main()
