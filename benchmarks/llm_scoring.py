"""LLM audit benchmark: the demo setting's build time, every attack's AUC / TPR@1%FPR on the fine-tuned and
the base model, canary exposure by repetitions, scoring throughput and one shared pass vs one pass per attack.

    .venv/bin/python benchmarks/llm_scoring.py --cache-dir runs/llm-bench-cache --threads 1 --json runs/llm-bench.json

Prints Markdown tables (for BENCHMARKS.md). With a fresh --cache-dir the demo models are built (timed);
otherwise they come from the cache.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path


def _fmt(value, ci, pct=False):
    f = (lambda v: f"{100 * v:.1f}%") if pct else (lambda v: f"{v:.3f}")
    return f"{f(value)} ({f(ci[0])}–{f(ci[1])})"


def main() -> None:
    import numpy as np
    import torch

    from memberscope.llm import attacks as llm_attacks
    from memberscope.llm.audit import audit_llm
    from memberscope.llm.demo_setting import DemoConfig, build_demo_setting
    from memberscope.llm.loading import load_language_model

    parser = argparse.ArgumentParser()
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    report: dict = {"machine": platform.processor() or platform.machine(), "threads": torch.get_num_threads()}
    report["loadavg_start"] = Path("/proc/loadavg").read_text().split()[:3]

    # 1. The demo setting (built, or from the cache).
    t0 = time.perf_counter()
    setting = build_demo_setting(DemoConfig(seed=args.seed), cache_dir=args.cache_dir, log=print)
    report["setting"] = {"cached": setting.cached, "seconds": round(time.perf_counter() - t0, 1), **setting.info}
    cfg = setting.config

    # 2. Audits of the fine-tuned target (base as reference) and of the base model (the null case).
    common = dict(members=setting.members, nonmembers=setting.nonmembers, max_length=cfg.context, seed=args.seed)
    target = audit_llm(
        model=setting.target_dir,
        reference_model=setting.base_dir,
        canaries=setting.canaries,
        canary_digits=cfg.canary_digits,
        **common,
    ).results
    base = audit_llm(model=setting.base_dir, attacks=["loss", "zlib", "lowercase", "min-k", "min-k++"], **common)
    base = base.results
    report["target"] = {k: {"auc": v["auc"], "auc_ci": v["auc_ci"], "tpr_at_fpr": v["tpr_at_fpr"]["0.01"],
                            "tpr_ci": v["tpr_at_fpr_ci"]["0.01"]} for k, v in target["attacks"].items()}  # fmt: skip
    report["base"] = {k: {"auc": v["auc"], "auc_ci": v["auc_ci"], "tpr_at_fpr": v["tpr_at_fpr"]["0.01"],
                          "tpr_ci": v["tpr_at_fpr_ci"]["0.01"]} for k, v in base["attacks"].items()}  # fmt: skip
    report["canaries"] = target["llm"]["canaries"]
    report["canary_details"] = {k: v for k, v in target["llm"]["canary_details"].items() if k != "per_canary"}
    report["validity"] = target["llm"]["validity"]

    # 3. Throughput, and one shared pass vs one pass per attack (median of --repeats).
    lm = load_language_model(setting.target_dir)
    ref = load_language_model(setting.base_dir)
    texts = setting.members + setting.nonmembers
    attacks = [llm_attacks.create(n) for n in llm_attacks.LLM_ATTACKS]
    timings = {"shared": [], "separate": []}
    for _ in range(args.repeats):
        for mode in ("shared", "separate"):
            t0 = time.perf_counter()
            scores = llm_attacks.score_attacks(
                lm, texts, attacks, reference=ref, max_length=cfg.context, shared=mode == "shared"
            )
            timings[mode].append(time.perf_counter() - t0)
    signals, _ = llm_attacks.compute_signals(lm, texts, attacks[:1], max_length=cfg.context)
    n_tokens = int(signals.target.lengths.sum())
    tp = {}
    for vocab in (False, True):
        from memberscope.llm.scoring import score_texts

        runs = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            score_texts(lm, texts, max_length=cfg.context, vocab_stats=vocab)
            runs.append(time.perf_counter() - t0)
        tp["with vocab stats" if vocab else "log-probs only"] = n_tokens / float(np.median(runs))
    report["throughput"] = {
        "n_texts": len(texts),
        "n_tokens": n_tokens,
        "tokens_per_second": tp,
        "shared_seconds": float(np.median(timings["shared"])),
        "separate_seconds": float(np.median(timings["separate"])),
        "attacks": list(scores),
    }
    report["loadavg_end"] = Path("/proc/loadavg").read_text().split()[:3]

    # 4. Markdown.
    print(f"\nmachine: {report['machine']}, torch threads {report['threads']}, "
          f"loadavg start {' '.join(report['loadavg_start'])}, end {' '.join(report['loadavg_end'])}")  # fmt: skip
    s = report["setting"]
    print(f"demo setting: {'from cache' if s['cached'] else 'built'} in {s['seconds']} s "
          f"(pre-train {s.get('pretrain_seconds')} s, fine-tune {s.get('finetune_seconds')} s, "
          f"{s.get('n_parameters'):,} parameters)\n")  # fmt: skip
    print("| attack | fine-tuned AUC (95% CI) | fine-tuned TPR@1%FPR | base AUC (95% CI) | base TPR@1%FPR |")
    print("|---|---|---|---|---|")
    for name, t in report["target"].items():
        b = report["base"].get(name)
        base_cells = f"{_fmt(b['auc'], b['auc_ci'])} | {_fmt(b['tpr_at_fpr'], b['tpr_ci'], True)}" if b else "– | –"
        print(f"| {name} | {_fmt(t['auc'], t['auc_ci'])} | {_fmt(t['tpr_at_fpr'], t['tpr_ci'], True)} | {base_cells} |")
    v = report["validity"]
    print(f"\nvalidity guard (bag-of-words, no model): AUC {_fmt(v['baseline_auc'], v['baseline_auc_ci'])}\n")
    d = report["canary_details"]
    print(f"canaries: |R| = {d['space_size']:,} ({d['max_exposure']:.1f} bits max), rank {d['method']} "
          f"against {d['n_candidates']} random secrets\n")  # fmt: skip
    print("| repetitions | canaries | mean exposure (95% CI) | exposures | TPR@1%FPR on canaries |")
    print("|---|---|---|---|---|")
    for reps, c in report["canaries"].items():
        exps = ", ".join(f"{e:.1f}" for e in c["exposures"])
        tpr = _fmt(c["tpr_at_fpr"]["0.01"], c["tpr_at_fpr_ci"]["0.01"], True)
        print(f"| {reps} | {c['n_canaries']} | {_fmt(c['exposure_mean'], c['exposure_ci'])} | {exps} | {tpr} |")
    t = report["throughput"]
    print(f"\nscoring {t['n_texts']} texts, {t['n_tokens']:,} tokens: "
          + ", ".join(f"{k} {v:,.0f} tokens/s" for k, v in t["tokens_per_second"].items()))  # fmt: skip
    print(f"all {len(t['attacks'])} attacks: one shared pass per model {t['shared_seconds']:.2f} s vs one pass per "
          f"attack {t['separate_seconds']:.2f} s ({t['separate_seconds'] / t['shared_seconds']:.2f}×)")  # fmt: skip
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2, default=float))


if __name__ == "__main__":
    main()
