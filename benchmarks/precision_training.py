"""K reference models five ways in one process: DataLoader loop, sequential, vectorized in fp32 / bf16-matmul / bf16.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/precision_training.py --threads 1 --hidden 64 256 --reps 3

Issue 20's table: Fashion-MNIST, pool 10,000 (each model on its own half, ``paired_masks``), MLP 784-H-10, Adam
1e-3, batch 128, 5 epochs, K=16, one thread; best of ``--reps`` (CPU seconds of the process, and wall seconds).
Accuracy is the mean over models of accuracy on the pool records each did not train on. For the vectorized rows
the matrix-product work (forward, weight gradient, input gradient past the first layer) is divided by the CPU time
and set against the machine's best fp32 and bf16 rates on the same products, measured at start-up by
``benchmarks/matmul_peak.py`` (the flop-weighted rate of the fastest kernel per product).
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from matmul_peak import machine, measure, peaks, trainer_shapes
from train_modes import dataloader_loop


def train(mode: str, recipe, X, y, subsets, n_classes):
    from memberscope.training.vectorized import train_vectorized

    if mode == "dataloader":
        return [dataloader_loop(recipe, X, y, s, i, n_classes) for i, s in enumerate(subsets)]
    if mode == "sequential":
        return [recipe.train(X[s], y[s], n_classes=n_classes, seed=i) for i, s in enumerate(subsets)]
    precision = mode.split(" ", 1)[1]
    trained = train_vectorized(
        recipe, X, y, subsets=subsets, seeds=list(range(len(subsets))), n_classes=n_classes, precision=precision
    )
    return [recipe.model(t, n_classes=n_classes) for t in trained]


def matmul_flops(widths: list[int], records: int) -> float:
    """Flops of the products of training on ``records`` records: forward and weight gradient per layer, input
    gradient for every layer but the first."""
    return float(sum((4 if i == 0 else 6) * a * b for i, (a, b) in enumerate(itertools.pairwise(widths))) * records)


def weighted_peak(table, widths, k, batch, kind: str) -> float:
    """The rate of one step's products if each ran at the best ``kind`` kernel measured for its shape."""
    seconds, flops = 0.0, 0.0
    for label, (kk, m, inner, n) in trainer_shapes(k, widths, batch):
        f = 2.0 * kk * m * inner * n
        if label.startswith("fwd") and not label.startswith(f"fwd {widths[0]}x"):
            f *= 2  # the input gradient: the same shapes as the forward product
        seconds += f / (peaks(table, label)[kind] * 1e9)
        flops += f
    return flops / seconds / 1e9


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("-k", type=int, default=16)
    parser.add_argument("--pool", type=int, default=10000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--hidden", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--modes", default="dataloader,sequential,vectorized fp32,vectorized bf16-matmul,vectorized bf16"
    )
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    from memberscope import datasets, recipes
    from memberscope.game import paired_masks

    print(f"start: {machine()}; torch {torch.__version__}, {args.threads} thread(s)")
    ds = datasets.load(args.dataset)
    X, y = ds.X[: args.pool], ds.y[: args.pool]
    masks = paired_masks(args.pool, args.k, seed=0)
    subsets = [np.flatnonzero(m) for m in masks]
    modes = args.modes.split(",")
    n_features = int(np.prod(X.shape[1:]))
    print(
        f"{args.dataset}, pool {args.pool} (each model on its half), K={args.k}, {args.epochs} epochs, batch 128, "
        f"Adam 1e-3; best of {args.reps}; CPU s (wall s), mean held-out accuracy"
    )
    print("| MLP | " + " | ".join(modes) + " | vectorized GFLOP/s (fp32 / bf16-matmul / bf16) | peaks fp32 / bf16 |")
    print("|---" * (len(modes) + 3) + "|")
    for hidden in args.hidden:
        widths = [n_features, hidden, ds.n_classes]
        table = measure(trainer_shapes(args.k, widths, 128), reps=2)
        peak = {kind: weighted_peak(table, widths, args.k, 128, kind) for kind in ("fp32", "bf16")}
        recipe = recipes.create("mlp", hidden=[hidden], epochs=args.epochs, lr=1e-3, batch_size=128)
        steps = math.ceil(np.mean([len(s) for s in subsets]) / 128) * args.epochs
        flops = matmul_flops(widths, 128 * steps * args.k)
        cells, rates = [], []
        base = None
        for mode in modes:
            best_cpu, best_wall = float("inf"), float("inf")
            for _ in range(args.reps):
                wall, cpu = time.perf_counter(), time.process_time()
                models = train(mode, recipe, X, y, subsets, ds.n_classes)
                best_cpu = min(best_cpu, time.process_time() - cpu)
                best_wall = min(best_wall, time.perf_counter() - wall)
            acc = np.mean([(m.query(X[~mk]).argmax(1) == y[~mk]).mean() for m, mk in zip(models, masks, strict=True)])
            base = best_cpu if mode == "dataloader" else base
            speed = f", {base / best_cpu:.2f}×" if base is not None and mode != "dataloader" else ""
            cells.append(f"{best_cpu:.2f} s ({best_wall:.1f}){speed}, acc {acc:.4f}")
            if mode.startswith("vectorized"):
                rates.append(flops / best_cpu / 1e9)
            print(f"  {hidden} {mode}: {cells[-1]}", flush=True)
        rate_text = " / ".join(f"{r:.1f}" for r in rates)
        shares = f"{100 * rates[-1] / peak['bf16']:.0f}% of bf16" if rates else ""
        print(
            f"| 784-{hidden}-10 | " + " | ".join(cells) + f" | {rate_text} ({shares}) | "
            f"{peak['fp32']:.1f} / {peak['bf16']:.1f} |",
            flush=True,
        )
    print(f"end: {machine()}")


if __name__ == "__main__":
    main()
