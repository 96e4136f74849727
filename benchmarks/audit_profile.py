"""Where a whole audit's time goes, against the DataLoader loop training the same number of models.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/audit_profile.py --threads 1 --hidden 256 --epochs 20 \\
        --pool-size 10000 --population-size 5000 -k 16 --precision auto

The audit runs in a child process, as ``memberscope audit --train-mode vectorized --attacks lira-online`` does
(``memberscope.audit(..., out=...)``: results.json, scores.csv, roc.png, report.html). Its time is split by
wrapping the engine's steps, each counted exclusively (a step inside another is not counted twice):

import (``import memberscope``), data (``datasets.load``), training (``train_vectorized``, the sequential
``recipe.train``), precision check (its own bookkeeping; its trainings count as training), outputs
(``model_outputs``), attacks (``run_attacks``), metrics (``evaluate_attack``, the fidelity check, ε, vulnerable
records), writing (results files and report) and the rest of the engine. ``import torch`` is timed on its own. A
second child trains ``k + 1`` models (target and references) on halves of the same pool with a plain ``DataLoader``
loop (torch's ``Adam``), as ML Privacy Meter and the LiRA code do. CPU seconds are the process's (user + system);
wall seconds are reported too: on a shared, loaded machine CPU time is the steadier measure.

By default the audit runs without a cache. ``--cache-dir DIR`` runs it with that cache folder: a first run (say
``--seed 1 --skip-loop``) leaves the precision check's verdict there, and a second run with another seed trains new
models but reuses the verdict, as a second audit of the same recipe and data on the same machine does.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from matmul_peak import machine


class Phases:
    """Exclusive wall and CPU seconds per phase name."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.stack: list[list] = []

    def wrap(self, owner, attribute: str, phase: str) -> None:
        inner = getattr(owner, attribute)

        def timed(*args, **kwargs):
            now_w, now_c = time.perf_counter(), time.process_time()
            if self.stack:  # pause the enclosing phase
                outer = self.stack[-1]
                self._add(outer[0], now_w - outer[1], now_c - outer[2])
            self.stack.append([phase, now_w, now_c])
            try:
                return inner(*args, **kwargs)
            finally:
                name, start_w, start_c = self.stack.pop()
                end_w, end_c = time.perf_counter(), time.process_time()
                self._add(name, end_w - start_w, end_c - start_c)
                if self.stack:
                    self.stack[-1][1], self.stack[-1][2] = end_w, end_c

        setattr(owner, attribute, timed)

    def _add(self, name: str, wall: float, cpu: float) -> None:
        self.wall[name] = self.wall.get(name, 0.0) + wall
        self.cpu[name] = self.cpu.get(name, 0.0) + cpu


def audit_child(args) -> dict:
    start_w, start_c = time.perf_counter(), time.process_time()
    import memberscope
    import memberscope.api as api

    phases = Phases()
    phases._add("import", time.perf_counter() - start_w, time.process_time() - start_c)
    from memberscope import datasets, recipes
    from memberscope.engine import models, precision, run
    from memberscope.results import AuditResult
    from memberscope.training import vectorized

    phases.wrap(datasets, "load", "data")
    phases.wrap(vectorized, "train_vectorized", "training")
    phases.wrap(recipes.TorchRecipe, "train", "training")
    phases.wrap(precision, "check_precision", "precision check")
    phases.wrap(models, "model_outputs", "outputs")
    phases.wrap(run, "run_attacks", "attacks")
    for name in ("evaluate_attack", "fidelity_check", "epsilon_section", "vulnerable_records"):
        phases.wrap(run, name, "metrics")
    phases.wrap(AuditResult, "write", "writing")
    phases.wrap(api, "write_run", "writing")
    phases.wrap(api, "run_audit", "engine (rest)")
    before_w, before_c = time.perf_counter(), time.process_time()
    import torch

    torch.set_num_threads(args.threads)
    phases._add("import torch", time.perf_counter() - before_w, time.process_time() - before_c)
    result = memberscope.audit(
        dataset=args.dataset,
        model="mlp",
        model_params={"hidden": [args.hidden], "epochs": args.epochs},
        pool_size=args.pool_size,
        population_size=args.population_size,
        reference_models=args.k,
        attacks=["lira-online"],
        train_mode="vectorized",
        precision=args.precision,
        use_cache=args.cache_dir is not None,
        cache_dir=args.cache_dir,
        seed=args.seed,
        out=args.out,
        progress=False,
    ).results
    total_w, total_c = time.perf_counter() - start_w, time.process_time() - start_c
    return {
        "wall": phases.wall,
        "cpu": phases.cpu,
        "total_wall": total_w,
        "total_cpu": total_c,
        "auc": result.attacks["lira-online"].auc,
        "precision": result.reference_models["precision"],
        "target_test_accuracy": result.target.test_accuracy,
        "reference_test_accuracy": result.reference_models["mean_test_accuracy"],
    }


def loop_child(args) -> dict:
    """k + 1 models on halves of the pool, each with a DataLoader loop (as benchmarks/precision_training.py)."""
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    from train_modes import dataloader_loop

    from memberscope import datasets, recipes
    from memberscope.game import paired_masks

    ds = datasets.load(args.dataset)
    X, y = ds.X[: args.pool_size], ds.y[: args.pool_size]
    masks = np.concatenate([paired_masks(args.pool_size, args.k, seed=0), paired_masks(args.pool_size, 1, seed=1)])
    recipe = recipes.create("mlp", hidden=[args.hidden], epochs=args.epochs)
    start_w, start_c = time.perf_counter(), time.process_time()
    models = [dataloader_loop(recipe, X, y, np.flatnonzero(m), i, ds.n_classes) for i, m in enumerate(masks)]
    acc = float(np.mean([(mo.query(X[~m]).argmax(1) == y[~m]).mean() for mo, m in zip(models, masks, strict=True)]))
    return {"wall": time.perf_counter() - start_w, "cpu": time.process_time() - start_c, "accuracy": acc}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--pool-size", type=int, default=10000)
    parser.add_argument("--population-size", type=int, default=5000)
    parser.add_argument("-k", type=int, default=16)
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="runs/audit-profile")
    parser.add_argument("--child", choices=["audit", "loop"])
    parser.add_argument("--skip-loop", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", default=None, help="run the audit with this cache folder (default: no cache)")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(audit_child(args) if args.child == "audit" else loop_child(args)))
        return
    print(f"start: {machine()}")
    base = [sys.executable, __file__, *sys.argv[1:]]
    results = {}
    for child in ("audit",) + (() if args.skip_loop else ("loop",)):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        wall = time.perf_counter()
        out = subprocess.run([*base, "--child", child], capture_output=True, text=True, check=True).stdout
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        results[child] = json.loads(out.strip().splitlines()[-1])
        results[child]["process_wall"] = time.perf_counter() - wall
        results[child]["process_cpu"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    a = results["audit"]
    print(
        f"audit: {args.dataset}, MLP hidden {args.hidden}, {args.epochs} epochs, pool {args.pool_size}, population "
        f"{args.population_size}, K={args.k}, lira-online, vectorized, seed {args.seed}, precision {args.precision} "
        f"-> {a['precision']['used']} (checks: "
        f"{[(c['candidate'], c['passed'], 'cached' if c.get('cached') else 'run') for c in a['precision']['checks']]})"
        f", cache {args.cache_dir or 'off'}; AUC {a['auc']:.4f}, target test acc {a['target_test_accuracy']:.4f}, "
        f"references {a['reference_test_accuracy']:.4f}"
    )
    print("| phase | CPU s | wall s |")
    print("|---|---|---|")
    for name in sorted(a["cpu"], key=lambda n: -a["cpu"][n]):
        print(f"| {name} | {a['cpu'][name]:.2f} | {a['wall'][name]:.2f} |")
    rest_c, rest_w = a["process_cpu"] - sum(a["cpu"].values()), a["process_wall"] - sum(a["wall"].values())
    print(f"| interpreter start-up and exit, unattributed | {rest_c:.2f} | {rest_w:.2f} |")
    print(f"| whole process (interpreter start to exit) | {a['process_cpu']:.2f} | {a['process_wall']:.2f} |")
    if "loop" in results:
        lp = results["loop"]
        print(
            f"DataLoader loop, {args.k + 1} models: {lp['cpu']:.2f} CPU s ({lp['wall']:.2f} wall s), mean held-out "
            f"accuracy {lp['accuracy']:.4f}; whole audit process vs loop: {lp['cpu'] / a['process_cpu']:.2f}x in "
            f"CPU time, {lp['wall'] / a['process_wall']:.2f}x in wall time"
        )
    print(f"end: {machine()}")


if __name__ == "__main__":
    main()
