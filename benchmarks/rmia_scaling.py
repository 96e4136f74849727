"""RMIA's pairwise comparison: sorting (memberscope) vs a dense n × z matrix.

    .venv/bin/python benchmarks/rmia_scaling.py --n 50000 --z 50000

Both compute, for each record x, the fraction of population records z with LR(x)/LR(z) > gamma
(in log space). Reports wall time and peak traced memory (tracemalloc sees numpy's buffers) and
checks that the scores are identical.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np

from memberscope.attacks.rmia import pairwise_dominance


def dense(log_ratio_x: np.ndarray, log_ratio_z: np.ndarray, gamma: float) -> np.ndarray:
    """The textbook formulation: an n × z boolean matrix of pairwise comparisons."""
    return (log_ratio_x[:, None] - np.log(gamma) > log_ratio_z[None, :]).mean(axis=1)


def measure(fn, *args):
    tracemalloc.start()
    start = time.perf_counter()
    out = fn(*args)
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return out, seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--z", type=int, default=50_000)
    parser.add_argument("--gamma", type=float, default=2.0)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x, z = rng.normal(size=args.n), rng.normal(size=args.z)
    fast, t_fast, m_fast = measure(lambda: pairwise_dominance(x, z, gamma=args.gamma))
    slow, t_slow, m_slow = measure(lambda: dense(x, z, args.gamma))
    identical = np.array_equal(fast, slow)
    print(f"n={args.n:,} z={args.z:,} gamma={args.gamma}")
    print("| method | time | peak memory |")
    print("|---|---|---|")
    print(f"| sorting, O((n+z) log z) | {t_fast * 1e3:.1f} ms | {m_fast / 2**20:.1f} MiB |")
    print(f"| dense n×z matrix | {t_slow:.2f} s | {m_slow / 2**20:,.0f} MiB |")
    print(
        f"identical scores: {identical}; speed-up {t_slow / t_fast:,.0f}×, memory {m_slow / max(m_fast, 1):,.0f}× less"
    )
    if not identical:
        raise SystemExit("scores differ")


if __name__ == "__main__":
    main()
