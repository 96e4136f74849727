"""Defenses on the privacy–utility frontier: every defense of `memberscope defend`, adaptively attacked.

    .venv/bin/python benchmarks/defenses.py --dataset fashion-mnist --pool-size 10000 --population-size 5000 \
        -k 8 --epochs 30 --out runs/bench-defenses

Writes OUT/results.json (kind defend), OUT/frontier.png and OUT/summary.md (the markdown tables for BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from memberscope.defenses.evaluate import DefendConfig, run_defenses, write_outputs
from memberscope.metrics import fpr_key

DEFENSES = (
    "none,l2,dropout,early-stopping,label-smoothing,augment,ensemble,"
    "dp-sgd:eps=1:epochs=10:lr=3e-3:batch_size=256:dp_physical_batch=64,"
    "dp-sgd:eps=8:epochs=10:lr=3e-3:batch_size=256:dp_physical_batch=64,"
    "round:2,top-k:1,label-only"
)


def _pct(value: float, ci) -> str:
    return f"{100 * value:.2f}% ({100 * ci[0]:.2f}–{100 * ci[1]:.2f})"


def summary(results: dict, wall: float, loadavg: str) -> str:
    key = fpr_key(results["recommendation"]["budget"]["fpr"])
    g = results["game"]
    lines = [
        f"wall {wall:.0f} s; /proc/loadavg at start and end: {loadavg}",
        f"pool {g['pool_size']} ({g['n_members']} members), population {g['population_size']}, "
        f"K={g['n_reference_models']} reference models per defense, test records {g['test_records']}",
        "",
        "| defense | test acc | accuracy cost | ε (δ) | strongest attack | its TPR@1%FPR (95% CI) | its AUC (95% CI) "
        "| LiRA-online TPR@1%FPR | RMIA-online TPR@1%FPR | label-only TPR@1%FPR | train s (target) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, e in results["defenses"].items():
        best = e["attacks"][e["strongest_attack"]]
        eps = "–" if e["epsilon"] is None else f"{e['epsilon']:.2f} ({e['delta']:.0e})"
        cost = "–" if e["accuracy_cost"] is None else f"{100 * e['accuracy_cost']:+.2f} pt"
        cells = [
            name,
            f"{e['test_accuracy']:.4f}",
            cost,
            eps,
            e["strongest_attack"],
            _pct(best["tpr_at_fpr"][key], best["tpr_at_fpr_ci"][key]),
            f"{best['auc']:.3f} ({best['auc_ci'][0]:.3f}–{best['auc_ci'][1]:.3f})",
        ]
        for attack in ("lira-online", "rmia-online", "label-only"):
            a = e["attacks"].get(attack)
            cells.append("–" if a is None else _pct(a["tpr_at_fpr"][key], a["tpr_at_fpr_ci"][key]))
        cells.append("–" if e["train_seconds"] is None else f"{e['train_seconds']:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Leakage by the attacker's budget (strongest attack's TPR at the budget FPR, 95% CI; draw 0):",
              "", "| defense | view | assumes | queries per record | strongest attack | TPR (95% CI) |",
              "|---|---|---|---|---|---|"]  # fmt: skip
    for name, e in results["defenses"].items():
        for b in e.get("attacker_budgets") or []:
            lines.append(f"| {name} | {b['view']} | {b['assumes']} | {b['queries_per_record']} | "
                         f"{b['strongest_attack']} | {_pct(b['tpr'], b['tpr_ci'])} |")  # fmt: skip
    lines += ["", "Per training draw (strongest attack's TPR, test accuracy):", "",
              "| defense | " + " | ".join(f"draw {i}" for i in range(len(results["defenses"]["none"]["draws"])))
              + " | max CI upper |", "|---|" + "---|" * (len(results["defenses"]["none"]["draws"]) + 1)]  # fmt: skip
    for name, e in results["defenses"].items():
        cells = [f"{_pct(d['tpr'], d['tpr_ci'])}, acc {d['test_accuracy']:.3f}" for d in e["draws"]]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {100 * max(d['upper_tpr'] for d in e['draws']):.2f}% |")
    plan = results["plan"]
    lines += ["", f"Plan: **{plan['verdict']}**", "",
              "| rank | defense | assumes | removed TPR points (CI) | accuracy cost points (CI) "
              "| removed per point (CI) | within budget (all draws) |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for i, r in enumerate(plan["ranking"], 1):
        if "removed_points" not in r:
            continue
        lines.append(
            f"| {i} | {r['defense']} | {r['group']} | {r['removed_points']:+.2f} ({r['removed_points_ci'][0]:+.2f}–"
            f"{r['removed_points_ci'][1]:+.2f}) | {r['cost_points']:+.2f} ({r['cost_points_ci'][0]:+.2f}–"
            f"{r['cost_points_ci'][1]:+.2f}) | {r['removed_per_point']:+.2f} ({r['removed_per_point_ci'][0]:+.2f}–"
            f"{r['removed_per_point_ci'][1]:+.2f}) | {'yes' if r['within_budget'] else 'no'} |"
        )
    lines += [""] + [f"- {step}" for step in plan.get("next_steps", [])]
    rec = results["recommendation"]
    lines += ["", f"Recommendation (budget TPR ≤ {rec['budget']['max_tpr']} at FPR {rec['budget']['fpr']}, CI upper "
              f"bound): **{rec['defense']}** — {rec['reason']}"]  # fmt: skip
    lines += ["", "Every attack on the output-side defenses (same target, reference outputs post-processed too):", ""]
    lines += ["| defense | attack | AUC (95% CI) | TPR@1%FPR (95% CI) |", "|---|---|---|---|"]
    for name, e in results["defenses"].items():
        if e["kind"] != "output" and name != "none":
            continue
        for attack, a in e["attacks"].items():
            auc = f"{a['auc']:.3f} ({a['auc_ci'][0]:.3f}–{a['auc_ci'][1]:.3f})"
            lines.append(f"| {name} | {attack} | {auc} | {_pct(a['tpr_at_fpr'][key], a['tpr_at_fpr_ci'][key])} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--defenses", default=DEFENSES)
    parser.add_argument("--pool-size", type=int, default=10000)
    parser.add_argument("--population-size", type=int, default=5000)
    parser.add_argument("-k", "--reference-models", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--hidden", default="256,256")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--budget", default="0.01:0.05")
    parser.add_argument("--draws", type=int, default=1)
    parser.add_argument("--noise-repeats", default="1,4,16,20")
    parser.add_argument("--label-only-budgets", default="16,64,256")
    parser.add_argument("--n-bootstrap", type=int, default=1000)
    parser.add_argument("--out", default="runs/bench-defenses")
    args = parser.parse_args()
    load_start = Path("/proc/loadavg").read_text().strip() if os.path.exists("/proc/loadavg") else "?"
    start = time.perf_counter()
    cfg = DefendConfig(
        dataset=args.dataset,
        model="mlp",
        model_params={"hidden": [int(h) for h in args.hidden.split(",")], "epochs": args.epochs},
        defenses=args.defenses,
        reference_models=args.reference_models,
        seed=args.seed,
        pool_size=args.pool_size,
        population_size=args.population_size,
        budget=args.budget,
        draws=args.draws,
        noise_repeats=args.noise_repeats,
        label_only_budgets=args.label_only_budgets,
        n_bootstrap=args.n_bootstrap,
    )
    result = run_defenses(cfg, progress=True)
    wall = time.perf_counter() - start
    load_end = Path("/proc/loadavg").read_text().strip() if os.path.exists("/proc/loadavg") else "?"
    paths = write_outputs(result, args.out)
    text = f"{platform.machine()}, python {platform.python_version()}\n" + summary(
        result.results.to_dict(), wall, f"{load_start} / {load_end}"
    )
    Path(args.out, "summary.md").write_text(text)
    print(text)
    print(json.dumps(paths))


if __name__ == "__main__":
    main()
