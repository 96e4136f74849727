"""Reference-model training throughput: vectorized vs sequential vs a plain DataLoader loop.

    .venv/bin/python benchmarks/train_modes.py --dataset fashion-mnist -k 16 64 --epochs 10

Each (mode, K) runs in its own subprocess so peak RSS (ru_maxrss) is that run's alone. Models are
MLPs 784-256-256-10 (Adam 1e-3, batch 128) on paired halves of a 20,000-record pool; accuracy is the
mean over models of accuracy on the pool records each model did not train on. Wall time and the
process's CPU time (user + system) are both reported: on a machine shared with other jobs CPU time
is the steadier measure of work. ``--memory-budget`` adds a vectorized run in batches sized to it.
``--gflops`` measures the machine's float32 matmul peak and the GFLOP/s vectorized training of a
larger MLP achieves.
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import subprocess
import sys
import time

import numpy as np


def dataloader_loop(recipe, X, y, subset, seed, n_classes):
    """How ML Privacy Meter and the LiRA reference code train: a DataLoader over a TensorDataset."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from memberscope.recipes import TorchModel
    from memberscope.training.networks import build_network

    net = build_network(recipe, tuple(X.shape[1:]), n_classes, generator=torch.Generator().manual_seed(seed))
    data = TensorDataset(torch.from_numpy(X[subset]), torch.from_numpy(y[subset].astype(np.int64)))
    loader = DataLoader(data, batch_size=recipe.batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed))
    opt = torch.optim.Adam(net.parameters(), lr=recipe.lr)
    for _ in range(recipe.epochs):
        for xb, yb in loader:
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(xb), yb).backward()
            opt.step()
    net.eval()
    return TorchModel(net, n_classes=n_classes, mean=torch.zeros(()), std=torch.ones(()))


def child(mode: str, k: int, dataset: str, epochs: int, pool: int, hidden: list[int], budget: str | None) -> dict:
    from memberscope import datasets, recipes
    from memberscope.engine.training import plan_jobs
    from memberscope.game import paired_masks
    from memberscope.parallel import parse_bytes
    from memberscope.training.vectorized import train_vectorized, vectorized_bytes_per_model

    ds = datasets.load(dataset)
    X, y = ds.X[:pool], ds.y[:pool]
    masks = paired_masks(pool, k, seed=0)
    subsets = [np.flatnonzero(m) for m in masks]
    recipe = recipes.create("mlp", hidden=hidden, epochs=epochs)
    start, cpu_start = time.perf_counter(), time.process_time()
    if mode == "vectorized":
        trained = train_vectorized(recipe, X, y, subsets=subsets, seeds=list(range(k)), n_classes=ds.n_classes)
        models = [recipe.model(t, n_classes=ds.n_classes) for t in trained]
    elif mode == "vectorized-budget":
        steps = -(-pool // 2 // recipe.batch_size)
        per_model = vectorized_bytes_per_model(
            recipe, feature_shape=tuple(X.shape[1:]), n_classes=ds.n_classes, n_steps=steps * epochs
        )
        models, start_k = [], 0
        for size in plan_jobs(k, per_model_bytes=per_model, budget=parse_bytes(budget), n_workers=1):
            trained = train_vectorized(
                recipe,
                X,
                y,
                subsets=subsets[start_k : start_k + size],
                seeds=list(range(start_k, start_k + size)),
                n_classes=ds.n_classes,
                steps_per_epoch=steps,
            )
            models += [recipe.model(t, n_classes=ds.n_classes) for t in trained]
            start_k += size
    elif mode == "sequential":
        models = [recipe.train(X[s], y[s], n_classes=ds.n_classes, seed=i) for i, s in enumerate(subsets)]
    else:
        models = [dataloader_loop(recipe, X, y, s, i, ds.n_classes) for i, s in enumerate(subsets)]
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    acc = np.mean([(m.query(X[~mk]).argmax(1) == y[~mk]).mean() for m, mk in zip(models, masks, strict=True)])
    return {
        "mode": mode,
        "k": k,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "accuracy": float(acc),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def matmul_peak(n: int = 4096, reps: int = 5) -> float:
    """Best GFLOP/s of an n x n float32 torch.matmul (2 n^3 flops) over ``reps`` runs."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.matmul(a, b)
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        torch.matmul(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def vectorized_gflops(k: int, hidden: list[int], batch: int, steps: int, n_features: int = 784) -> dict:
    """GFLOP/s of vectorized training of K MLPs on random data (matmul flops only, counted exactly).

    Per layer and record: forward 2·d_in·d_out, weight gradient 2·d_in·d_out, input gradient
    2·d_in·d_out except for the first layer (inputs need no gradient).
    """
    from memberscope import recipes
    from memberscope.training.vectorized import train_vectorized

    rng = np.random.default_rng(0)
    n = batch * 4
    X = rng.random((n, n_features), dtype=np.float32)
    y = rng.integers(0, 10, n)
    recipe = recipes.create("mlp", hidden=hidden, epochs=steps, batch_size=batch)
    subsets = [np.arange(n)[:batch] for _ in range(k)]  # one step per epoch
    train_vectorized(recipe, X, y, subsets=subsets[:1], seeds=[0], n_classes=10)  # warm-up
    start = time.perf_counter()
    train_vectorized(recipe, X, y, subsets=subsets, seeds=list(range(k)), n_classes=10)
    seconds = time.perf_counter() - start
    widths = [n_features, *hidden, 10]
    per_record = sum((4 if i == 0 else 6) * a * b for i, (a, b) in enumerate(itertools.pairwise(widths)))
    flops = per_record * batch * k * steps
    return {"seconds": seconds, "gflop": flops / 1e9, "gflops": flops / seconds / 1e9}


def loadavg() -> str:
    with open("/proc/loadavg") as fh:
        return fh.read().strip()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("-k", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--pool", type=int, default=20000)
    parser.add_argument("--modes", default="vectorized,sequential,dataloader")
    parser.add_argument("--hidden", type=int, nargs="+", default=[256, 256])
    parser.add_argument("--memory-budget", default=None, help="also run vectorized in batches sized to this")
    parser.add_argument("--gflops", action="store_true", help="matmul peak vs vectorized training of a big MLP")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "K"))
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.child:
        result = child(
            args.child[0], int(args.child[1]), args.dataset, args.epochs, args.pool, args.hidden, args.memory_budget
        )
        print(json.dumps(result))
        return
    import torch

    modes = args.modes.split(",") + (["vectorized-budget"] if args.memory_budget else [])
    print(f"loadavg at start: {loadavg()}; torch threads {torch.get_num_threads()}")
    print(f"{args.dataset}, pool {args.pool}, MLP hidden {args.hidden}, {args.epochs} epochs, 2 cores")
    print("| K | mode | wall s | CPU s | CPU s / model | mean test acc | peak RSS MiB |")
    print("|---|---|---|---|---|---|---|")
    for k in args.k:
        rows = {}
        for mode in modes:
            cmd = [sys.executable, __file__, "--child", mode, str(k), "--dataset", args.dataset]
            cmd += ["--epochs", str(args.epochs), "--pool", str(args.pool), "--hidden", *map(str, args.hidden)]
            if args.memory_budget:
                cmd += ["--memory-budget", args.memory_budget]
            if args.threads:
                cmd += ["--threads", str(args.threads)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            r = rows[mode] = json.loads(out.strip().splitlines()[-1])
            label = f"vectorized, budget {args.memory_budget}" if mode == "vectorized-budget" else mode
            print(
                f"| {k} | {label} | {r['seconds']:.1f} | {r['cpu_seconds']:.1f} | {r['cpu_seconds'] / k:.3f} | "
                f"{r['accuracy']:.4f} | {r['peak_rss_mib']:.0f} |",
                flush=True,
            )
        if "vectorized" in rows:
            for other in ("sequential", "dataloader"):
                if other in rows:
                    wall = rows[other]["seconds"] / rows["vectorized"]["seconds"]
                    cpu = rows[other]["cpu_seconds"] / rows["vectorized"]["cpu_seconds"]
                    print(f"K={k}: vectorized vs {other}: {wall:.2f}x faster in wall time, {cpu:.2f}x in CPU time")
    if args.gflops:
        peak = matmul_peak()
        big = vectorized_gflops(k=8, hidden=[1024, 1024], batch=512, steps=20)
        print(f"\nfloat32 matmul peak (4096x4096 torch.matmul, best of 5): {peak:.1f} GFLOP/s")
        print(
            f"vectorized training, K=8 MLP 784-1024-1024-10, batch 512, 20 steps: {big['gflop']:.1f} GFLOP "
            f"in {big['seconds']:.2f} s = {big['gflops']:.1f} GFLOP/s = {100 * big['gflops'] / peak:.0f}% of peak"
        )
    print(f"loadavg at end: {loadavg()}")


if __name__ == "__main__":
    main()
