"""The optimizer of vectorized training: torch's fused CPU Adam and SGD kernels over the stacked weights.

:func:`stacked_optimizer` returns an object with ``zero_grad()`` and ``step()`` that applies the recipe's optimizer
(Adam, or SGD with momentum, with its learning rate and weight decay) to a few large stacked tensors. It calls the
kernels ``torch.optim.Adam(fused=True)`` and ``torch.optim.SGD(fused=True)`` call (``torch._fused_adam_``,
``torch._fused_sgd_``), with the same state, so the update is theirs to the bit (``tests/test_training_fused.py``),
but without ``torch.optim.Optimizer``: its constructor and every step import ``torch._dynamo`` to switch the
compiler off, about a second per process, which every parallel worker would pay again for a few dozen steps of
work. Where this torch lacks the kernels, :func:`stacked_optimizer` falls back to ``torch.optim``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["FusedAdam", "FusedSGD", "stacked_optimizer"]


class FusedAdam:
    """Adam (Kingma & Ba 2015) with L2 weight decay added to the gradient, as ``torch.optim.Adam(fused=True)``.

    Parameters
    ----------
    params : sequence of float32 tensors requiring grad (any shapes).
    lr, betas, eps, weight_decay : Adam's hyperparameters, torch's defaults for ``betas`` and ``eps``.
    """

    def __init__(
        self,
        params: Sequence[Any],
        *,
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ):
        import torch

        self.params = list(params)
        self.lr, self.betas, self.eps, self.weight_decay = float(lr), betas, float(eps), float(weight_decay)
        self.exp_avgs = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self.exp_avg_sqs = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self.steps = [torch.tensor(0.0) for _ in self.params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        import torch

        with torch.no_grad():
            torch._foreach_add_(self.steps, 1)
            torch._fused_adam_(
                self.params,
                [p.grad for p in self.params],
                self.exp_avgs,
                self.exp_avg_sqs,
                [],
                self.steps,
                amsgrad=False,
                lr=self.lr,
                beta1=self.betas[0],
                beta2=self.betas[1],
                weight_decay=self.weight_decay,
                eps=self.eps,
                maximize=False,
            )


class FusedSGD:
    """SGD with momentum (no dampening, not Nesterov) and L2 weight decay, as ``torch.optim.SGD(fused=True)``."""

    def __init__(self, params: Sequence[Any], *, lr: float, momentum: float = 0.0, weight_decay: float = 0.0):
        self.params = list(params)
        self.lr, self.momentum, self.weight_decay = float(lr), float(momentum), float(weight_decay)
        self.buffers: list[Any] = []

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        import torch

        grads = [p.grad for p in self.params]
        first = self.momentum != 0 and not self.buffers
        if first:
            self.buffers = [torch.empty_like(g) for g in grads]
        with torch.no_grad():
            torch._fused_sgd_(
                self.params,
                grads,
                self.buffers if self.momentum != 0 else [],
                weight_decay=self.weight_decay,
                momentum=self.momentum,
                lr=self.lr,
                dampening=0.0,
                nesterov=False,
                maximize=False,
                is_first_step=first,
            )


def _has_fused_kernels() -> bool:
    import torch

    return hasattr(torch, "_fused_adam_") and hasattr(torch, "_fused_sgd_")


def stacked_optimizer(recipe: Any, params: Sequence[Any]) -> Any:
    """The recipe's optimizer (``optimizer`` in {"adam", "sgd"}, ``lr``, ``weight_decay``, ``momentum``) over
    ``params`` (float32 CPU tensors), as :class:`FusedAdam`/:class:`FusedSGD`; ``torch.optim``'s fused optimizers
    where this torch has no fused kernels."""
    if not _has_fused_kernels():  # pragma: no cover - every torch memberscope supports has them
        import torch

        if recipe.optimizer == "adam":
            return torch.optim.Adam(params, lr=recipe.lr, weight_decay=recipe.weight_decay, fused=True)
        return torch.optim.SGD(
            params, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay, fused=True
        )
    if recipe.optimizer == "adam":
        return FusedAdam(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    return FusedSGD(params, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay)
