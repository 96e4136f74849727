"""One-run ε lower bounds (Steinke et al. 2023) on the demo audit, for several canary counts.

    .venv/bin/python benchmarks/one_run_epsilon.py --canaries 1348,600,200 --out runs/bench-one-run

Each run audits scikit-learn's digits with the demo's overfit MLP (256-256, 100 epochs) and 16 reference models;
M pool records become canaries whose inclusion is re-drawn independently with probability 1/2. Prints one
Markdown table row per (M, attack): guesses k+ = k-, correct guesses, one-run ε and the Clopper–Pearson ε.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def main() -> None:
    from memberscope.api import DEMO_CONFIG, run_audit
    from memberscope.config import AuditConfig

    parser = argparse.ArgumentParser()
    parser.add_argument("--canaries", default="1348,600,200")
    parser.add_argument("--out", default="runs/bench-one-run")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print("| M canaries | attack | guesses (k+ + k−) | correct | one-run ε (95%) | Clopper–Pearson ε (95%) | audit s |")
    print("|---|---|---|---|---|---|---|")
    for m in [int(x) for x in args.canaries.split(",")]:
        start = time.perf_counter()
        cfg = AuditConfig(**{**DEMO_CONFIG, "seed": args.seed, "one_run_canaries": m, "n_bootstrap": 200})
        result = run_audit(cfg, progress=False)
        result.write(Path(args.out) / f"m{m}")
        seconds = time.perf_counter() - start
        eps = result.results["epsilon"]
        for name, bound in eps["one_run"]["attacks"].items():
            cp = eps["clopper_pearson"][name]["epsilon"]
            print(
                f"| {m} | {name} | {bound['guesses']} | {bound['correct']} | {bound['epsilon']:.2f} | {cp:.2f} "
                f"| {seconds:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
