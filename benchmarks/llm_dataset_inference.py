"""Dataset inference on the demo setting: how many suspect texts it needs (power) and its false-positive rate.

    .venv/bin/python benchmarks/llm_dataset_inference.py --cache-dir runs/llm-bench-cache --threads 1 \
        --json runs/llm-di-bench.json

Each text's features are scored once per model; every trial then draws texts and a split with its own seed:

- power: ``n`` suspect texts drawn from the fine-tuned model's members, ``n`` validation texts from its
  non-members; the fraction of trials with p < 0.01 (and < 0.05) and the median p.
- null, base model: ``n`` + ``n`` texts drawn from the pool (members and non-members), which the base model
  never saw, split at random into suspect and validation; the fraction of trials with p < 0.05 is the
  false-positive rate at level 0.05.
- null, fine-tuned model: both sets drawn from its non-members (never seen either).

Prints Markdown tables (for BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import time
from pathlib import Path


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


def main() -> None:
    import numpy as np
    import torch

    from memberscope.llm.dataset_inference import DEFAULT_FEATURES, aggregate_and_test, text_features
    from memberscope.llm.demo_setting import DemoConfig, build_demo_setting
    from memberscope.llm.loading import load_language_model
    from memberscope.metrics import roc_auc

    parser = argparse.ArgumentParser()
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--architecture", default="gpt2")
    parser.add_argument("--finetune-epochs", type=int, default=None, help="fewer epochs: a model that memorised less")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--sizes", default="10,20,30,50,75,100,150,300")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = [int(s) for s in args.sizes.split(",")]
    report: dict = {"machine": _cpu(), "threads": torch.get_num_threads()}
    report["loadavg_start"] = Path("/proc/loadavg").read_text().split()[:3]

    config = DemoConfig(seed=args.seed, architecture=args.architecture)
    if args.finetune_epochs is not None:
        config = dataclasses.replace(config, finetune_epochs=args.finetune_epochs)
    setting = build_demo_setting(config, cache_dir=args.cache_dir, log=print)
    cfg = setting.config
    texts = setting.members + setting.nonmembers
    n_m = len(setting.members)
    feats = {}
    for part in ("target", "base"):
        lm = load_language_model(getattr(setting, f"{part}_dir"))
        t0 = time.perf_counter()
        X, _, _ = text_features(lm, texts, features=DEFAULT_FEATURES, max_length=cfg.context)
        report.setdefault("loss_auc", {})[part] = float(
            roc_auc(np.r_[np.ones(n_m, bool), np.zeros(len(texts) - n_m, bool)], X[:, 0])
        )
        seconds = time.perf_counter() - t0
        feats[part] = X
        report[f"{part}_scoring"] = {"texts": len(texts), "seconds": seconds, "texts_per_second": len(texts) / seconds}

    def trial_p(X_s, X_v, seed):
        return aggregate_and_test(X_s, X_v, seed=seed)["p_value"]

    rows = []
    for n in sizes:
        power, null_base, null_target = [], [], []
        for t in range(args.trials):
            rng = np.random.default_rng([args.seed, n, t])
            if n <= n_m and n <= len(texts) - n_m:
                s = rng.choice(n_m, size=n, replace=False)
                v = n_m + rng.choice(len(texts) - n_m, size=n, replace=False)
                power.append(trial_p(feats["target"][s], feats["target"][v], t))
            if 2 * n <= len(texts):
                pool = rng.permutation(len(texts))[: 2 * n]
                null_base.append(trial_p(feats["base"][pool[:n]], feats["base"][pool[n:]], t))
            if 2 * n <= len(texts) - n_m:
                pool = n_m + rng.permutation(len(texts) - n_m)[: 2 * n]
                null_target.append(trial_p(feats["target"][pool[:n]], feats["target"][pool[n:]], t))
        row = {"n": n}
        for key, ps in (("power", power), ("null_base", null_base), ("null_target", null_target)):
            ps = np.array(ps)
            row[key] = (
                {
                    "trials": len(ps),
                    "rate_p_below_0.01": float(np.mean(ps < 0.01)),
                    "rate_p_below_0.05": float(np.mean(ps < 0.05)),
                    "median_p": float(np.median(ps)),
                }
                if len(ps)
                else None
            )
        rows.append(row)
        print(row)
    report["rows"] = rows
    report["loadavg_end"] = Path("/proc/loadavg").read_text().split()[:3]

    print(f"\nmachine: {report['machine']}, torch threads {report['threads']}, loadavg start "
          f"{' '.join(report['loadavg_start'])}, end {' '.join(report['loadavg_end'])}")  # fmt: skip
    print(f"single-text loss attack AUC (members vs non-members): fine-tuned {report['loss_auc']['target']:.3f}, "
          f"base {report['loss_auc']['base']:.3f}")  # fmt: skip
    for part in ("target", "base"):
        s = report[f"{part}_scoring"]
        print(f"{part}: features of {s['texts']} texts in {s['seconds']:.1f} s ({s['texts_per_second']:.0f} texts/s)")
    print(f"\nsetting: {cfg.architecture}, {cfg.finetune_epochs} fine-tuning epochs; {args.trials} trials per row; "
          "p-values from aggregate_and_test (Welch t on the held-out half)\n")  # fmt: skip
    print("| suspect = validation texts | fine-tuned: p < 0.01 | fine-tuned: p < 0.05 | median p | "
          "base (null): p < 0.05 | fine-tuned, unseen both sides (null): p < 0.05 |")  # fmt: skip
    print("|---|---|---|---|---|---|")

    def pct(block, key):
        return "–" if block is None else f"{100 * block[key]:.0f}%"

    for row in rows:
        p = row["power"]
        median = "–" if p is None else f"{p['median_p']:.2g}"
        nulls = f"{pct(row['null_base'], 'rate_p_below_0.05')} | {pct(row['null_target'], 'rate_p_below_0.05')}"
        print(f"| {row['n']} | {pct(p, 'rate_p_below_0.01')} | {pct(p, 'rate_p_below_0.05')} | {median} | {nulls} |")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2, default=float))


if __name__ == "__main__":
    main()
