"""Reference-model training throughput: vectorized vs sequential vs a plain DataLoader loop.

    .venv/bin/python benchmarks/train_modes.py --dataset fashion-mnist -k 16 64 --epochs 10

Each (mode, K) runs in its own subprocess so peak RSS (ru_maxrss) is that run's alone. Models are
MLPs 784-256-256-10 (Adam 1e-3, batch 128) on paired halves of a 20,000-record pool; accuracy is the
mean over models of accuracy on the pool records each model did not train on.
"""

from __future__ import annotations

import argparse
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

    torch.manual_seed(seed)
    net = recipe._network(tuple(X.shape[1:]), n_classes)
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


def child(mode: str, k: int, dataset: str, epochs: int, pool: int, hidden: list[int]) -> dict:
    from memberscope import datasets, recipes
    from memberscope.game import paired_masks
    from memberscope.recipes.vectorized import train_vectorized

    ds = datasets.load(dataset)
    X, y = ds.X[:pool], ds.y[:pool]
    masks = paired_masks(pool, k, seed=0)
    subsets = [np.flatnonzero(m) for m in masks]
    recipe = recipes.create("mlp", hidden=hidden, epochs=epochs)
    start = time.perf_counter()
    if mode == "vectorized":
        models = train_vectorized(recipe, X, y, subsets=subsets, seeds=list(range(k)), n_classes=ds.n_classes)
    elif mode == "sequential":
        models = [recipe.train(X[s], y[s], n_classes=ds.n_classes, seed=i) for i, s in enumerate(subsets)]
    else:
        models = [dataloader_loop(recipe, X, y, s, i, ds.n_classes) for i, s in enumerate(subsets)]
    seconds = time.perf_counter() - start
    acc = np.mean([(m.predict_logits(X[~mk]).argmax(1) == y[~mk]).mean() for m, mk in zip(models, masks, strict=True)])
    return {
        "mode": mode,
        "k": k,
        "seconds": seconds,
        "accuracy": float(acc),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("-k", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--pool", type=int, default=20000)
    parser.add_argument("--modes", default="vectorized,sequential,dataloader")
    parser.add_argument("--hidden", type=int, nargs="+", default=[256, 256])
    parser.add_argument("--child", nargs=2, metavar=("MODE", "K"))
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], int(args.child[1]), args.dataset, args.epochs, args.pool, args.hidden)))
        return
    print(f"{args.dataset}, pool {args.pool}, MLP hidden {args.hidden}, {args.epochs} epochs, 2 cores")
    print("| K | mode | wall s | s / model | mean test acc | peak RSS MiB |")
    print("|---|---|---|---|---|---|")
    for k in args.k:
        rows = {}
        for mode in args.modes.split(","):
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    mode,
                    str(k),
                    "--dataset",
                    args.dataset,
                    "--epochs",
                    str(args.epochs),
                    "--pool",
                    str(args.pool),
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            r = rows[mode] = json.loads(out.strip().splitlines()[-1])
            print(
                f"| {k} | {mode} | {r['seconds']:.1f} | {r['seconds'] / k:.2f} | {r['accuracy']:.4f} | "
                f"{r['peak_rss_mib']:.0f} |",
                flush=True,
            )
        if "vectorized" in rows:
            for other in ("sequential", "dataloader"):
                if other in rows:
                    print(
                        f"K={k}: vectorized is {rows[other]['seconds'] / rows['vectorized']['seconds']:.2f}x "
                        f"faster than {other}"
                    )


if __name__ == "__main__":
    main()
