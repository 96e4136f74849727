"""Coverage of evaluate's 95% intervals in simulated games with a known ROC (the coverage test, more games).

    .venv/bin/python benchmarks/interval_coverage.py --games 1000

For every game size (members, non-members) and score model of ``memberscope.metrics.coverage``,
draws ``--games`` games, evaluates each with the default 1,000 bootstrap replicates, and prints the
fraction of games whose AUC, TPR@10%FPR, TPR@1%FPR and advantage intervals contain the true value
(also where the FPR is not resolvable, marked), the interval methods used and the mean AUC interval width.
"""

from __future__ import annotations

import argparse
import time

from memberscope.metrics.coverage import SCORE_MODELS, simulate_coverage

SIZES = [(5, 5), (50, 5), (1000, 5), (50, 10), (1000, 10), (50, 30), (1000, 30), (50, 100), (1000, 100)]
SIZES += [(50, 1000), (1000, 1000)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--games", type=int, default=1000)
    parser.add_argument("--n-bootstrap", type=int, default=1000)
    args = parser.parse_args()
    fprs = (0.1, 0.01)
    print(f"{args.games} games per row, {args.n_bootstrap} bootstrap replicates, 95% intervals")
    print(
        "| members | non-members | score model | AUC | TPR@10% | TPR@1% | advantage "
        "| AUC method | TPR methods | AUC width |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    start = time.perf_counter()
    for seed, (n1, n0) in enumerate(SIZES):
        for offset, name in enumerate(SCORE_MODELS):
            r = simulate_coverage(
                n1, n0, name, games=args.games, fprs=fprs, seed=100 * seed + offset, n_bootstrap=args.n_bootstrap
            )
            tpr = [f"{r.tpr_at_fpr[str(a)]:.3f}" + ("" if n0 * a >= 1 else " (unresolvable)") for a in fprs]

            def mix(counts):
                return ", ".join(f"{k.split('-')[0]} {v / args.games:.0%}" for k, v in sorted(counts.items()))

            tpr_methods = "; ".join(f"{a:g}: {mix(r.methods[str(a)])}" for a in fprs)
            print(
                f"| {n1:,} | {n0:,} | {name} | {r.auc:.3f} | {tpr[0]} | {tpr[1]} | {r.advantage:.3f} | "
                f"{mix(r.methods['auc'])} | {tpr_methods} | {r.mean_width['auc']:.3f} |",
                flush=True,
            )
    print(f"\n{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
