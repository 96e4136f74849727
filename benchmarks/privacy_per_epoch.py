"""Privacy per epoch on an overfitting Fashion-MNIST MLP, with the Lightning callback, and the callback's overhead.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/privacy_per_epoch.py --epochs 40 --members 2000

An MLP 784-512-512-10 (Adam 1e-3, batch 128, no regularization) trains on ``--members`` Fashion-MNIST records
(a small training set, so it overfits). Every epoch :class:`memberscope.integrations.lightning.PrivacyCallback`
audits all of them against ``--nonmembers`` records it never trains on, with the attacks that need no per-epoch
reference models: loss, class-calibrated loss (``--population`` records) and RMIA against ``--references`` reference
MLPs trained once, before, on population halves (none of the audited records). The same training runs a second
time without the callback; the overhead per epoch is the difference of the two runs' wall times per epoch, and the
callback's own time per audit (logits and scoring) is reported too.

Writes ``--out`` (JSON: the curve, the suggested stop, the timings) and ``--plot`` (the curve).
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np


def _module(hidden: list[int], lr: float, seed: int):
    import lightning.pytorch as L
    import torch

    class MLP(L.LightningModule):
        def __init__(self):
            super().__init__()
            torch.manual_seed(seed)
            layers, width = [], 784
            for h in hidden:
                layers += [torch.nn.Linear(width, h), torch.nn.ReLU()]
                width = h
            self.net = torch.nn.Sequential(torch.nn.Flatten(), *layers, torch.nn.Linear(width, 10))

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, _):
            return torch.nn.functional.cross_entropy(self(batch[0]), batch[1])

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=lr)

    return MLP()


def _fit(module, x, y, *, epochs: int, batch: int, seed: int, callbacks) -> tuple[float, float]:
    """Wall and CPU (user + system, all threads) seconds of fitting."""
    import lightning.pytorch as L
    import torch

    data = torch.utils.data.TensorDataset(torch.as_tensor(x), torch.as_tensor(y))
    loader = torch.utils.data.DataLoader(
        data, batch_size=batch, shuffle=True, generator=torch.Generator().manual_seed(seed)
    )
    trainer = L.Trainer(
        max_epochs=epochs, callbacks=callbacks, logger=False, enable_progress_bar=False, enable_model_summary=False,
        enable_checkpointing=False, accelerator="cpu", deterministic=True,
    )  # fmt: skip
    started, cpu = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Lightning's advice on loader workers and its own deprecations
        trainer.fit(module, loader)
    return time.perf_counter() - started, time.process_time() - cpu


def _print(curve, stop) -> None:
    print("epoch  tpr@1%  [95% CI]        auc    strongest        train_acc test_acc audit_s")
    for r in curve.records:
        print(
            f"{r.epoch:5d}  {r.tpr:.3f}  [{r.tpr_ci[0]:.3f}, {r.tpr_ci[1]:.3f}]  {r.auc:.3f}  {r.strongest:15s}  "
            f"{r.train_accuracy:.3f}     {r.test_accuracy:.3f}    {r.seconds:.2f}"
        )
    print(stop.reason)
    print(f"defend spec: {stop.defend_spec}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--nonmembers", type=int, default=2000)
    parser.add_argument("--population", type=int, default=4000)
    parser.add_argument("--references", type=int, default=4)
    parser.add_argument("--hidden", type=int, nargs="+", default=[512, 512])
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/privacy_per_epoch.json")
    parser.add_argument("--plot", default="benchmarks/figures/privacy_per_epoch.png")
    parser.add_argument(
        "--from-json",
        action="store_true",
        help="train nothing: recompute the suggested stop and the plot from the curve saved in --out",
    )
    args = parser.parse_args()
    if args.from_json:
        from memberscope.monitor import PrivacyCurve

        saved = json.loads(Path(args.out).read_text())
        curve = PrivacyCurve.read_json(args.out)
        saved["suggested_stop"] = curve.suggest_stop().to_dict()
        Path(args.out).write_text(json.dumps(saved, indent=2) + "\n")
        title = f"Fashion-MNIST MLP on {saved['command']['members']} records: privacy and accuracy per epoch"
        curve.plot(args.plot, title=title)
        _print(curve, curve.suggest_stop())
        return

    import torch

    from memberscope import datasets
    from memberscope.integrations.lightning import PrivacyCallback
    from memberscope.monitor.torch_model import RecordSet, model_logits

    ds = datasets.load("fashion-mnist")
    x = np.asarray(ds.X, dtype=np.float32).reshape(len(ds.y), -1)
    y = ds.y.astype(np.int64)
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(y))
    n_m, n_n, n_p = args.members, args.nonmembers, args.population
    mem, non, pop = order[:n_m], order[n_m : n_m + n_n], order[n_m + n_n : n_m + n_n + n_p]
    ref_pool = order[n_m + n_n + n_p : n_m + n_n + n_p + 2 * n_m]  # none audited, none population

    # Reference models trained once, before: each on a random half of the reference pool (as many records as the
    # target), so all of them are OUT on every audited and population record.
    started = time.perf_counter()
    ref_audited, ref_population = [], []
    audited = RecordSet.of((x[np.r_[mem, non]], y[np.r_[mem, non]]), "audited")
    population = RecordSet.of((x[pop], y[pop]), "population")
    for k in range(args.references):
        part = rng.choice(ref_pool, size=n_m, replace=False)
        ref = _module(args.hidden, args.lr, args.seed + 1 + k)
        _fit(ref, x[part], y[part], epochs=args.epochs, batch=args.batch, seed=args.seed + 1 + k, callbacks=[])
        ref_audited.append(model_logits(ref, audited))
        ref_population.append(model_logits(ref, population))
    ref_seconds = time.perf_counter() - started
    references = (np.stack(ref_audited), np.stack(ref_population)) if args.references >= 2 else None

    callback = PrivacyCallback(
        (x[mem], y[mem]), (x[non], y[non]), (x[pop], y[pop]), reference_logits=references, seed=args.seed
    )
    (with_callback, with_cpu) = _fit(
        _module(args.hidden, args.lr, args.seed), x[mem], y[mem], epochs=args.epochs, batch=args.batch,
        seed=args.seed, callbacks=[callback],
    )  # fmt: skip
    (without, without_cpu) = _fit(
        _module(args.hidden, args.lr, args.seed), x[mem], y[mem], epochs=args.epochs, batch=args.batch,
        seed=args.seed, callbacks=[],
    )  # fmt: skip
    curve = callback.curve
    stop = callback.suggest_stop()
    audit_seconds = [r.seconds for r in curve.records]
    out = {
        "command": vars(args),
        "torch_threads": torch.get_num_threads(),
        "reference_training_seconds": ref_seconds,
        "fit_seconds_with_callback": with_callback,
        "fit_seconds_without_callback": without,
        "epoch_seconds_without_callback": without / args.epochs,
        "overhead_seconds_per_epoch": (with_callback - without) / args.epochs,
        "cpu_seconds_with_callback": with_cpu,
        "cpu_seconds_without_callback": without_cpu,
        "overhead_cpu_seconds_per_epoch": (with_cpu - without_cpu) / args.epochs,
        "audit_seconds_per_epoch_mean": float(np.mean(audit_seconds)),
        "audit_seconds_per_epoch_max": float(np.max(audit_seconds)),
        **curve.to_dict(),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    Path(args.plot).parent.mkdir(parents=True, exist_ok=True)
    curve.plot(args.plot, title=f"Fashion-MNIST MLP on {n_m} records: privacy and accuracy per epoch")
    _print(curve, stop)
    print(
        f"fit {with_callback:.1f} s with the callback, {without:.1f} s without: "
        f"{out['overhead_seconds_per_epoch']:.2f} s overhead per epoch "
        f"on {out['epoch_seconds_without_callback']:.2f} s; "
        f"audit {out['audit_seconds_per_epoch_mean']:.2f} s per epoch (max {out['audit_seconds_per_epoch_max']:.2f}); "
        f"CPU {with_cpu:.1f} s vs {without_cpu:.1f} s: {out['overhead_cpu_seconds_per_epoch']:.2f} CPU s per epoch"
    )


if __name__ == "__main__":
    main()
