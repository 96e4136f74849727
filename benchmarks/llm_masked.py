"""Masked-LM audit benchmark: the BERT demo setting, every attack on pseudo-log-likelihood (PLL) for the
fine-tuned and the base model, and PLL scoring throughput (texts/s and scored tokens/s).

    .venv/bin/python benchmarks/llm_masked.py --cache-dir runs/llm-bench-cache --threads 1 --json runs/llm-masked.json

A text of n tokens costs n masked copies (Salazar et al. 2020), so PLL scoring does ~n times the work of a
causal LM's single pass; the throughput table measures it, beside the GPT-2 demo model (same size, same texts)
scored causally, in wall-clock and in process CPU seconds (less sensitive to a shared machine's load).
``--only-throughput`` skips the audits. Prints Markdown tables (for BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def _fmt(value, ci, pct=False):
    f = (lambda v: f"{100 * v:.1f}%") if pct else (lambda v: f"{v:.3f}")
    return f"{f(value)} ({f(ci[0])}–{f(ci[1])})"


def _pick(attacks):
    return {
        k: {
            "auc": v["auc"],
            "auc_ci": v["auc_ci"],
            "tpr_at_fpr": v["tpr_at_fpr"]["0.01"],
            "tpr_ci": v["tpr_at_fpr_ci"]["0.01"],
        }
        for k, v in attacks.items()
    }


def main() -> None:
    import numpy as np
    import torch

    from memberscope.llm.audit import audit_llm
    from memberscope.llm.demo_setting import DemoConfig, build_demo_setting
    from memberscope.llm.loading import load_language_model
    from memberscope.llm.scoring import score_texts

    parser = argparse.ArgumentParser()
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-tokens", type=int, default=4096)
    parser.add_argument("--only-throughput", action="store_true")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    report: dict = {"machine": _cpu(), "threads": torch.get_num_threads()}
    report["loadavg_start"] = Path("/proc/loadavg").read_text().split()[:3]

    t0 = time.perf_counter()
    setting = build_demo_setting(DemoConfig(seed=args.seed, architecture="bert"), cache_dir=args.cache_dir, log=print)
    report["setting"] = {"cached": setting.cached, "seconds": round(time.perf_counter() - t0, 1), **setting.info}
    cfg = setting.config
    common = dict(members=setting.members, nonmembers=setting.nonmembers, max_length=cfg.context, seed=args.seed)
    if not args.only_throughput:
        target = audit_llm(model=setting.target_dir, reference_model=setting.base_dir, **common).results
        base = audit_llm(
            model=setting.base_dir, attacks=["loss", "zlib", "lowercase", "min-k", "min-k++"], validity=False, **common
        ).results
        report["target"], report["base"] = _pick(target["attacks"]), _pick(base["attacks"])
        report["validity"] = target["llm"]["validity"]

    causal = build_demo_setting(DemoConfig(seed=args.seed), cache_dir=args.cache_dir, log=print)
    models = {
        "BERT, PLL": load_language_model(setting.target_dir),
        "GPT-2, causal": load_language_model(causal.target_dir),
    }
    texts = setting.members + setting.nonmembers
    throughput = {}
    for vocab in (False, True):
        for name, lm in models.items():
            walls, cpus, n_tokens = [], [], 0
            for _ in range(args.repeats):
                w0, c0 = time.perf_counter(), time.process_time()
                stats = score_texts(
                    lm, texts, max_length=cfg.context, vocab_stats=vocab, batch_tokens=args.batch_tokens
                )
                walls.append(time.perf_counter() - w0)
                cpus.append(time.process_time() - c0)
                n_tokens = int(stats.lengths.sum())
            wall, cpu = float(np.median(walls)), float(np.median(cpus))
            throughput[f"{name}, {'with vocab stats' if vocab else 'log-probs only'}"] = {
                "seconds": wall,
                "cpu_seconds": cpu,
                "texts_per_second": len(texts) / wall,
                "texts_per_cpu_second": len(texts) / cpu,
                "tokens_per_second": n_tokens / wall,
                "n_tokens": n_tokens,
            }
    report["throughput"] = {"n_texts": len(texts), "batch_tokens": args.batch_tokens, **throughput}
    report["loadavg_end"] = Path("/proc/loadavg").read_text().split()[:3]

    print(f"\nmachine: {report['machine']}, torch threads {report['threads']}, "
          f"loadavg start {' '.join(report['loadavg_start'])}, end {' '.join(report['loadavg_end'])}")  # fmt: skip
    s = report["setting"]
    print(f"BERT demo setting: {'from cache' if s['cached'] else 'built'} in {s['seconds']} s "
          f"(pre-train {s.get('pretrain_seconds')} s, fine-tune {s.get('finetune_seconds')} s, "
          f"{s.get('n_parameters'):,} parameters)\n")  # fmt: skip
    if "target" in report:
        print(
            "| attack (on PLL) | fine-tuned AUC (95% CI) | fine-tuned TPR@1%FPR | base AUC (95% CI) | base TPR@1%FPR |"
        )
        print("|---|---|---|---|---|")
        for name, t in report["target"].items():
            b = report["base"].get(name)
            base_cells = f"{_fmt(b['auc'], b['auc_ci'])} | {_fmt(b['tpr_at_fpr'], b['tpr_ci'], True)}" if b else "– | –"
            target_cells = f"{_fmt(t['auc'], t['auc_ci'])} | {_fmt(t['tpr_at_fpr'], t['tpr_ci'], True)}"
            print(f"| {name} | {target_cells} | {base_cells} |")
        v = report["validity"]
        print(f"\nvalidity guard (bag-of-words, no model): AUC {_fmt(v['baseline_auc'], v['baseline_auc_ci'])}\n")
    print(f"PLL scoring of {len(texts)} texts (median of {args.repeats}, batch_tokens {args.batch_tokens}):\n")
    print("| model, scoring, pass | wall s | CPU s | texts/s | texts per CPU-second | scored tokens/s |")
    print("|---|---|---|---|---|---|")
    for name, t in throughput.items():
        print(f"| {name} | {t['seconds']:.2f} | {t['cpu_seconds']:.2f} | {t['texts_per_second']:.1f} | "
              f"{t['texts_per_cpu_second']:.1f} | {t['tokens_per_second']:,.0f} |")  # fmt: skip
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2, default=float))


if __name__ == "__main__":
    main()
