"""The machine's matrix-product peak per kernel and precision, for the shapes vectorized training runs.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/matmul_peak.py --threads 1 -k 16 --hidden 256 --batch 128

torch's float32 ``bmm`` goes to MKL, which may pick slower kernels than the CPU allows (AVX2 on AMD); the same
products through oneDNN (``torch.ops.mkldnn._linear_pointwise``), OpenBLAS (numpy's ``matmul``) or in bfloat16
can run at two to four times the rate. A "percent of peak" is only meaningful against the best of them, so this
measures every kernel torch and numpy can reach for:

- the trainer's own products for K models of an MLP ``d_in-hidden-...-classes`` with minibatch B: per layer the
  forward (K, B, d_in) x (K, d_in, d_out) and the weight gradient (K, d_in, B) x (K, B, d_out);
- a square 2048 x 2048 product (the kernel's steady rate).

Rates are GFLOP/s (2 m n k flops per product) over the process's CPU time, best of ``--reps`` (CPU time, not wall
time: on a shared machine a descheduled process loses wall time but not CPU time). :func:`peaks` returns the best
fp32 and bf16 rates for reuse by ``benchmarks/train_modes.py --peak``.
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Callable

import numpy as np


def _rate(fn: Callable[[], object], flops: float, reps: int) -> float:
    fn()
    best = float("inf")
    for _ in range(reps):
        start = time.process_time()
        n = 0
        while True:  # at least 50 ms per measurement, so the CPU clock's resolution does not matter
            fn()
            n += 1
            elapsed = time.process_time() - start
            if elapsed > 0.05:
                break
        best = min(best, elapsed / n)
    return flops / best / 1e9


def kernels(a, b) -> dict[str, Callable[[], object]]:
    """Ways to compute ``a @ b`` for float32 torch tensors of shape (K, m, k) and (K, k, n)."""
    import torch

    a_np, b_np = a.numpy(), b.numpy()
    a_bf, b_bf = a.bfloat16(), b.bfloat16()
    b_t = b.transpose(1, 2).contiguous()  # linear takes (out, in) weights

    def mkl():
        return torch.bmm(a, b)

    def onednn_fp32():
        return [torch.ops.mkldnn._linear_pointwise(a[i], b_t[i], None, "none", [], "") for i in range(len(a))]

    def openblas():
        return np.matmul(a_np, b_np)

    def bf16():
        return torch.bmm(a_bf, b_bf)

    def bf16_matmul():
        previous = torch.backends.mkldnn.matmul.fp32_precision
        torch.backends.mkldnn.matmul.fp32_precision = "bf16"
        try:
            return torch.bmm(a, b)
        finally:
            torch.backends.mkldnn.matmul.fp32_precision = previous

    return {
        "fp32 MKL (torch.bmm)": mkl,
        "fp32 oneDNN (mkldnn linear)": onednn_fp32,
        "fp32 OpenBLAS (numpy)": openblas,
        "bf16 oneDNN (torch.bmm, bf16 tensors)": bf16,
        "bf16-matmul oneDNN (fp32 tensors)": bf16_matmul,
    }


def trainer_shapes(k: int, widths: list[int], batch: int) -> list[tuple[str, tuple[int, int, int, int]]]:
    """(label, (K, m, k, n)) of each layer's forward and weight-gradient products."""
    shapes = []
    for d_in, d_out in itertools.pairwise(widths):
        shapes.append((f"fwd {d_in}x{d_out}", (k, batch, d_in, d_out)))
        shapes.append((f"dW {d_in}x{d_out}", (k, d_in, batch, d_out)))
    return shapes


def measure(shapes, reps: int) -> dict[str, dict[str, float]]:
    """GFLOP/s per shape label and kernel name."""
    import torch

    g = torch.Generator().manual_seed(0)
    table: dict[str, dict[str, float]] = {}
    for label, (kk, m, inner, n) in shapes:
        a, b = torch.randn(kk, m, inner, generator=g), torch.randn(kk, inner, n, generator=g)
        flops = 2.0 * kk * m * inner * n
        table[label] = {name: _rate(fn, flops, reps) for name, fn in kernels(a, b).items()}
    return table


def peaks(table: dict[str, dict[str, float]], label: str) -> dict[str, float]:
    """The best fp32 and bf16 rates of the row ``label``: {"fp32": ..., "bf16": ...}."""
    row = table[label]
    return {
        "fp32": max(v for name, v in row.items() if name.startswith("fp32")),
        "bf16": max(v for name, v in row.items() if name.startswith("bf16")),
    }


def machine() -> str:
    import subprocess

    model = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    name = next((line.split(":", 1)[1].strip() for line in model.splitlines() if line.startswith("Model name")), "?")
    with open("/proc/loadavg") as fh:
        return f"{name}; loadavg {fh.read().strip()}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-k", type=int, default=16)
    parser.add_argument("--features", type=int, default=784)
    parser.add_argument("--hidden", type=int, nargs="*", default=[256])
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    from memberscope.training.precision import native_bf16

    print(f"{machine()}; torch {torch.__version__}, {args.threads} thread(s), native bf16: {native_bf16()}")
    shapes = [("square 2048", (1, 2048, 2048, 2048))]
    shapes += trainer_shapes(args.k, [args.features, *args.hidden, args.classes], args.batch)
    table = measure(shapes, args.reps)
    names = list(next(iter(table.values())))
    print("| product (K, m, k, n) | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for label, shape in shapes:
        print(f"| {label} {shape} | " + " | ".join(f"{table[label][n]:.1f}" for n in names) + " |")
    print(f"end: {machine()}")


if __name__ == "__main__":
    main()
