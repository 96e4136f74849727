"""Text-classifier audit benchmark: the BERT demo fine-tuned as a classifier on labelled fortunes
(:mod:`memberscope.llm.classifier_demo`), audited with the target alone (K = 0) and with K reference fine-tunes of
the pre-trained base (LiRA, RMIA, shadow), plus a null split (two halves of texts it never saw) and the target's
answer throughput.

    .venv/bin/python benchmarks/llm_text_audit.py --cache-dir runs/llm-bench-cache -k 4 --json runs/llm-text-audit.json

The demo setting (BERT pre-training, then the target's fine-tune) is cached under ``--cache-dir``; the reference
fine-tunes are always trained afresh (``use_cache=False``), so the K > 0 audit's time is the training it costs. With
the setting cached, K = 4 takes about 4-5 minutes on a 2-core machine at load 5 (each reference fine-tune ~57 s;
~240 s at load 18). BENCHMARKS.md has the figures.

Prints Markdown tables (for BENCHMARKS.md).
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


def _pick(results) -> dict:
    return {
        name: {
            "auc": a.metrics.auc,
            "auc_ci": list(a.metrics.auc_ci),
            "tpr": a.metrics.tpr_at_fpr.get("0.01"),
            "tpr_ci": list(a.metrics.tpr_at_fpr_ci.get("0.01", (float("nan"), float("nan")))),
        }
        for name, a in results.attacks.items()
    }


def main() -> None:
    import torch

    from memberscope.llm.classifier_demo import ClassifierDemoConfig, build_classifier_setting
    from memberscope.llm.demo_setting import DemoConfig
    from memberscope.llm.loading import load_text_classifier
    from memberscope.llm.text_audit import audit_text_classifier

    parser = argparse.ArgumentParser()
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-k", "--reference-models", type=int, default=4)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    out: dict = {"cpu": _cpu(), "loadavg_before": Path("/proc/loadavg").read_text().split()[:3]}
    config = ClassifierDemoConfig(base=DemoConfig(seed=args.seed, architecture="bert"), seed=args.seed)
    t0 = time.perf_counter()
    setting = build_classifier_setting(config, cache_dir=args.cache_dir)
    out["setting_seconds"] = time.perf_counter() - t0
    out["setting_cached"] = setting.cached
    print(f"classifier setting in {out['setting_seconds']:.1f} s (cached: {setting.cached}): {setting.target_dir}")
    common = dict(members=setting.members, nonmembers=setting.nonmembers, max_length=config.max_length, seed=0)

    target = load_text_classifier(setting.target_dir, max_length=config.max_length)
    texts = setting.members.texts + setting.nonmembers.texts
    t0, c0 = time.perf_counter(), time.process_time()
    target.query(texts)
    out["query"] = {"texts": len(texts), "wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0}

    t0 = time.perf_counter()
    alone = audit_text_classifier(setting.target_dir, use_cache=False, **common).results
    out["k0"] = {"seconds": time.perf_counter() - t0, "attacks": _pick(alone)}
    out["target"] = {"train_accuracy": alone.target.train_accuracy, "test_accuracy": alone.target.test_accuracy}
    t0 = time.perf_counter()
    refs = audit_text_classifier(
        setting.target_dir,
        base_model=setting.base_dir,
        reference_models=args.reference_models,
        finetune=config.finetune(),
        use_cache=False,
        **common,
    ).results
    out["k"] = {
        "reference_models": args.reference_models,
        "seconds": time.perf_counter() - t0,
        "training_seconds": refs.timings.get("training_seconds"),
        "models_trained": refs.timings.get("models_trained"),
        "references": refs.reference_models,
        "attacks": _pick(refs),
    }
    half = len(setting.nonmembers.texts) // 2
    nm = setting.nonmembers
    null = audit_text_classifier(
        setting.target_dir,
        members=(nm.texts[:half], nm.labels[:half]),
        nonmembers=(nm.texts[half:], nm.labels[half:]),
        max_length=config.max_length,
        seed=0,
        use_cache=False,
    ).results
    out["null"] = _pick(null)
    out["loadavg_after"] = Path("/proc/loadavg").read_text().split()[:3]

    print(f"\nCPU {out['cpu']}; load {out['loadavg_before']} -> {out['loadavg_after']}")
    t = out["target"]
    print(f"target: train accuracy {t['train_accuracy']:.3f}, test accuracy {t['test_accuracy']:.3f}")
    q = out["query"]
    print(f"answers: {q['texts']} texts in {q['wall_s']:.2f} s wall, {q['cpu_s']:.2f} s CPU "
          f"({q['texts'] / q['wall_s']:.0f} texts/s)")  # fmt: skip
    k = out["k"]
    print(f"K=0 audit {out['k0']['seconds']:.1f} s; K={k['reference_models']} audit {k['seconds']:.1f} s "
          f"(training {k['training_seconds']} s for {k['models_trained']} reference fine-tunes; references "
          f"{k['references']})")  # fmt: skip
    print(f"\n| attack | K=0 AUC (95% CI) | K={k['reference_models']} AUC (95% CI) | K={k['reference_models']} "
          "TPR@1%FPR (95% CI) | null split AUC (95% CI) |")  # fmt: skip
    print("|---|---|---|---|---|")
    for name, a in k["attacks"].items():
        zero = out["k0"]["attacks"].get(name)
        nul = out["null"].get(name)
        print(
            f"| {name} | {_fmt(zero['auc'], zero['auc_ci']) if zero else '–'} | {_fmt(a['auc'], a['auc_ci'])} | "
            f"{_fmt(a['tpr'], a['tpr_ci'], pct=True)} | {_fmt(nul['auc'], nul['auc_ci']) if nul else '–'} |"
        )
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=2, default=str))


if __name__ == "__main__":
    main()
