"""Attack strength benchmark: every attack on an overfit target, with CIs and timings.

    .venv/bin/python benchmarks/attack_strength.py --dataset fashion-mnist -k 16 --out runs/bench-fmnist
    .venv/bin/python benchmarks/attack_strength.py --dataset purchase-synthetic -k 16 --out runs/bench-purchase
    .venv/bin/python benchmarks/attack_strength.py --dataset fashion-mnist -k 2 --attacks lira-offline,rmia-offline

Prints a Markdown table (for BENCHMARKS.md) and writes the audit's outputs to --out.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import memberscope
from memberscope.api import run_audit
from memberscope.config import AuditConfig


def _fmt(value, ci, pct):
    f = (lambda v: f"{100 * v:.1f}%") if pct else (lambda v: f"{v:.3f}")
    return f"{f(value)} ({f(ci[0])}–{f(ci[1])})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--model", default="mlp")
    parser.add_argument("--model-params", default='{"hidden": [256, 256], "epochs": 30}')
    parser.add_argument("-k", "--reference-models", type=int, default=16)
    parser.add_argument("--attacks", default="all")
    parser.add_argument("--pool-size", type=int, default=None)
    parser.add_argument("--population-size", type=int, default=None)
    parser.add_argument("--n-records", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None)
    parser.add_argument("--no-cache", action="store_true")
    parser.add_argument("--targets", type=int, default=1, help="training draws (audit --targets N)")
    args = parser.parse_args()

    config = AuditConfig(
        dataset=args.dataset,
        model=args.model,
        model_params=json.loads(args.model_params),
        reference_models=args.reference_models,
        attacks=args.attacks.split(","),
        seed=args.seed,
        pool_size=args.pool_size,
        population_size=args.population_size,
        n_records=args.n_records,
        use_cache=not args.no_cache,
        targets=args.targets,
    )
    start = time.perf_counter()
    result = run_audit(config, progress=False)
    wall = time.perf_counter() - start
    if args.out:
        result.write(args.out)
    r = result.results
    print(
        f"memberscope {memberscope.__version__}, {platform.processor() or platform.machine()}, "
        f"python {platform.python_version()}; wall {wall:.1f} s "
        f"(training {r['timings']['training_seconds']:.1f} s for {r['timings']['models_trained']} models, "
        f"{r['timings']['models_from_cache']} from cache)"
    )
    print(
        f"dataset {r['dataset']['name']}: pool {r['game']['pool_size']} ({r['game']['n_members']} members), "
        f"population {r['game']['population_size']}, K={r['game']['n_reference_models']}; target train acc "
        f"{r['target']['train_accuracy']:.3f}, test acc {r['target']['test_accuracy']:.3f}"
    )
    print()
    print("| attack | AUC (95% CI) | TPR@1%FPR (95% CI) | TPR@0.1%FPR (95% CI) | fit+score s |")
    print("|---|---|---|---|---|")
    for name, e in r["attacks"].items():
        t = e["timings"]
        print(
            f"| {name} | {_fmt(e['auc'], e['auc_ci'], False)} | "
            f"{_fmt(e['tpr_at_fpr']['0.01'], e['tpr_at_fpr_ci']['0.01'], True)} | "
            f"{_fmt(e['tpr_at_fpr']['0.001'], e['tpr_at_fpr_ci']['0.001'], True)} | "
            f"{t['fit_seconds'] + t['score_seconds']:.2f} |"
        )
    draws = r.get("draws")
    if draws:
        print()
        print(f"over {draws['n_draws']} training draws ({draws['design']}):")
        print()
        print("| attack | AUC mean ± sd (min–max) | TPR@1%FPR mean ± sd (min–max) | TPR@0.1%FPR mean ± sd (min–max) |")
        print("|---|---|---|---|")
        for name, e in draws["attacks"].items():
            cells = [_spread(e["auc"], False)]
            cells += [_spread(e["tpr_at_fpr"][k], True) for k in ("0.01", "0.001")]
            print(f"| {name} | " + " | ".join(cells) + " |")
    for w in r["warnings"]:
        print(f"\nwarning: {w}")


def _spread(s, percent):
    f = (lambda v: f"{100 * v:.1f}%") if percent else (lambda v: f"{v:.3f}")
    return f"{f(s['mean'])} ± {f(s['std'])} ({f(s['min'])}–{f(s['max'])})"


if __name__ == "__main__":
    main()
