"""LLM audit over HTTP vs local: the GPT-2 demo model served by an OpenAI-compatible completions server on 127.0.0.1
(``tests/llm_server.py``, a script around the same model folder), scored through ``llm-audit --endpoint``'s code path
(:class:`memberscope.llm.endpoint.EndpointLanguageModel`) and locally, on the demo's 300 members and 300 non-members.

    .venv/bin/python benchmarks/llm_http.py --cache-dir runs/llm-bench-cache --json runs/llm-http.json

Reports texts/s of the target pass (one request per ``batch`` texts; the server runs one torch thread, like the local
scorer), the largest difference between HTTP and local scores of every attack, and both audits' AUCs. Prints
Markdown tables (for BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import select
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ATTACKS = ["loss", "zlib", "lowercase", "min-k"]


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def _start_server(model_dir: Path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "llm_server.py"), "--model", str(model_dir), "--threads", "1"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    ready, _, _ = select.select([proc.stdout], [], [], 300)
    line = proc.stdout.readline() if ready else ""
    if not line.startswith("listening on "):
        proc.kill()
        raise SystemExit(f"server did not start: {line!r}")
    return proc, line.split()[-1]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    import numpy as np
    import torch

    from memberscope.llm.audit import audit_llm
    from memberscope.llm.demo_setting import DemoConfig, build_demo_setting
    from memberscope.llm.endpoint import EndpointLanguageModel
    from memberscope.llm.loading import load_language_model
    from memberscope.llm.scoring import score_texts

    parser = argparse.ArgumentParser()
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batches", default="1,8,32")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    started = time.perf_counter()
    setting = build_demo_setting(DemoConfig(seed=args.seed), cache_dir=args.cache_dir, log=print)
    print(f"setting ready in {time.perf_counter() - started:.1f} s (cached: {setting.cached})")
    lm = load_language_model(setting.target_dir)
    # A served model refuses prompts longer than its context (BOS + text tokens <= 64), where the local scorer cuts
    # them: both sides score the texts that fit, the members and non-members alike, lowercased too (the lowercase
    # attack sends every text again in lower case, which can take more tokens).
    context = setting.config.context

    def fits(text: str) -> bool:
        return all(
            1 + len(lm.tokenizer(t, add_special_tokens=False)["input_ids"]) <= context for t in (text, text.lower())
        )

    members = [t for t in setting.members if fits(t)]
    nonmembers = [t for t in setting.nonmembers if fits(t)]
    texts = members + nonmembers
    out: dict = {
        "cpu": _cpu(),
        "loadavg_before": Path("/proc/loadavg").read_text().split()[:3],
        "n_texts": len(texts),
        "n_members": len(members),
        "n_nonmembers": len(nonmembers),
        "n_demo_texts": len(setting.members) + len(setting.nonmembers),
    }
    local_times = []
    for _ in range(args.repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        stats = score_texts(lm, texts, max_length=setting.config.context, vocab_stats=False)
        local_times.append((time.perf_counter() - t0, time.process_time() - c0))
    wall, cpu = sorted(local_times)[len(local_times) // 2]
    out["local"] = {"wall_s": wall, "cpu_s": cpu, "texts_per_s": len(texts) / wall, "tokens": int(stats.lengths.sum())}
    kwargs = dict(members=members, nonmembers=nonmembers, attacks=ATTACKS, n_bootstrap=1000)
    local = audit_llm(model=setting.target_dir, max_length=setting.config.context, **kwargs)
    proc, url = _start_server(setting.target_dir)
    try:
        out["http"] = {}
        for batch in [int(b) for b in args.batches.split(",")]:
            runs = []
            for _ in range(args.repeats):
                endpoint = EndpointLanguageModel(f"{url}/v1/completions", model_name="demo", batch_size=batch)
                t0, c0 = time.perf_counter(), time.process_time()
                remote_stats = endpoint.token_stats(texts)
                runs.append((time.perf_counter() - t0, time.process_time() - c0, endpoint.http.requests_sent))
                endpoint.close()
            wall, cpu, requests = sorted(runs)[len(runs) // 2]
            diff = float(np.max(np.abs(remote_stats.logprobs - stats.logprobs)))
            out["http"][batch] = {
                "wall_s": wall,
                "client_cpu_s": cpu,
                "texts_per_s": len(texts) / wall,
                "requests": requests,
                "max_abs_token_logprob_diff": diff,
                "same_token_counts": bool(np.array_equal(remote_stats.offsets, stats.offsets)),
            }
        endpoint = EndpointLanguageModel(f"{url}/v1/completions", model_name="demo", batch_size=8)
        remote = audit_llm(model=endpoint, **kwargs)
        out["audit_over_http"] = {
            "pass_seconds": remote.results.sections["llm"]["pass_seconds"],
            "requests": endpoint.http.requests_sent,
            "queries": endpoint.http.queries_spent,
        }
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    out["server_cpu_s_total"] = _children_cpu()  # every HTTP pass and the audit, read once the server has exited
    out["attacks"] = {
        name: {
            "local_auc": local.results.attacks[name].auc,
            "http_auc": remote.results.attacks[name].auc,
            "max_abs_score_diff": float(np.max(np.abs(local.scores[name] - remote.scores[name]))),
        }
        for name in ATTACKS
    }
    out["loadavg_after"] = Path("/proc/loadavg").read_text().split()[:3]
    print(f"\nCPU {out['cpu']}; load {out['loadavg_before']} -> {out['loadavg_after']}; {len(texts)} of "
          f"{out['n_demo_texts']} texts fit the context ({len(members)} members, {len(nonmembers)} non-members), "
          f"{out['local']['tokens']:,} scored tokens")  # fmt: skip
    print("\n| scoring | requests | wall s | client CPU s | texts/s | max abs token log-prob diff vs local |")
    print("|---|---|---|---|---|---|")
    loc = out["local"]
    print(f"| local, one pass | – | {loc['wall_s']:.2f} | {loc['cpu_s']:.2f} | {loc['texts_per_s']:.1f} | – |")
    for batch, h in out["http"].items():
        print(
            f"| HTTP, {batch} texts/request | {h['requests']} | {h['wall_s']:.2f} | {h['client_cpu_s']:.2f} | "
            f"{h['texts_per_s']:.1f} | {h['max_abs_token_logprob_diff']:.2e} |"
        )
    print("\n| attack | local AUC | HTTP AUC | max abs score diff |")
    print("|---|---|---|---|")
    for name, a in out["attacks"].items():
        print(f"| {name} | {a['local_auc']:.4f} | {a['http_auc']:.4f} | {a['max_abs_score_diff']:.2e} |")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
