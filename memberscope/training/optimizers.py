"""Adam and SGD for the sequential training loop: torch.optim's own CPU update, without ``torch.optim.Optimizer``.

``torch.optim.Adam`` and ``torch.optim.SGD`` on CPU tensors run their single-tensor code (``_single_tensor_adam``,
``_single_tensor_sgd``: on CPU torch defaults to neither its ``foreach`` nor its ``fused`` kernels). Their base
class imports ``torch._dynamo`` on the first step, to switch the compiler off (about a second per process, paid
again by every parallel worker; memberscope never compiles). :class:`Adam` and :class:`SGD` run the same tensor
operations in the same order on the same state, so every update is torch's to the bit
(``tests/test_training_optimizers.py`` compares them step by step), with only what memberscope's loop uses:
``zero_grad(set_to_none=True)`` and ``step()``; no parameter groups, closures, AMSGrad, Nesterov, dampening or
``maximize``.

Opacus's DP-SGD wraps a ``torch.optim.Optimizer``: a training-time defense that needs one says so
(:attr:`~memberscope.training.defenses.TrainingDefense.needs_torch_optimizer`) and gets torch's.

The stacked optimizers of vectorized training are in :mod:`memberscope.training.fused`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["SGD", "Adam"]


def _scalar_dtype() -> Any:
    """The dtype of torch's step counters (``torch.optim.optimizer._get_scalar_dtype``)."""
    import torch

    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


class _Optimizer:
    def __init__(self, params: Iterable[Any]):
        self.params = list(params)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients (``set_to_none=False`` zeroes them in place instead, as torch does)."""
        for p in self.params:
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                p.grad.detach_()
                p.grad.requires_grad_(False)
                p.grad.zero_()


class Adam(_Optimizer):
    """Adam (Kingma & Ba 2015) with L2 weight decay added to the gradient: ``torch.optim.Adam``'s CPU update.

    Parameters
    ----------
    params : iterable of float tensors requiring grad (any shapes); a parameter without a gradient at a step is
        skipped at that step, as torch does.
    lr, betas, eps, weight_decay : Adam's hyperparameters, torch's defaults for ``betas`` and ``eps``.
    """

    def __init__(
        self,
        params: Iterable[Any],
        *,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ):
        super().__init__(params)
        self.lr, self.betas, self.eps, self.weight_decay = lr, betas, eps, weight_decay
        self.state: dict[int, tuple[Any, Any, Any]] = {}  # index -> (step, exp_avg, exp_avg_sq)

    def step(self) -> None:
        import torch

        beta1, beta2 = self.betas
        with torch.no_grad():
            for i, param in enumerate(self.params):
                grad = param.grad
                if grad is None:
                    continue
                if i not in self.state:
                    self.state[i] = (
                        torch.tensor(0.0, dtype=_scalar_dtype()),  # torch's step counter, as torch keeps it
                        torch.zeros_like(param, memory_format=torch.preserve_format),
                        torch.zeros_like(param, memory_format=torch.preserve_format),
                    )
                step_t, exp_avg, exp_avg_sq = self.state[i]
                step_t += 1
                if self.weight_decay != 0:
                    grad = grad.add(param, alpha=self.weight_decay)
                exp_avg.lerp_(grad, 1 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                step = step_t.item()
                bias_correction1 = 1 - beta1**step
                bias_correction2 = 1 - beta2**step
                step_size = self.lr / bias_correction1
                bias_correction2_sqrt = bias_correction2**0.5
                denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(self.eps)
                param.addcdiv_(exp_avg, denom, value=-step_size)


class SGD(_Optimizer):
    """SGD with momentum (no dampening, not Nesterov) and L2 weight decay: ``torch.optim.SGD``'s CPU update.

    Parameters
    ----------
    params : iterable of float tensors requiring grad; one without a gradient at a step is skipped at that step.
    lr, momentum, weight_decay : as ``torch.optim.SGD``.
    """

    def __init__(self, params: Iterable[Any], *, lr: float, momentum: float = 0.0, weight_decay: float = 0.0):
        super().__init__(params)
        self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay
        self.buffers: dict[int, Any] = {}

    def step(self) -> None:
        import torch

        with torch.no_grad():
            for i, param in enumerate(self.params):
                grad = param.grad
                if grad is None:
                    continue
                if self.weight_decay != 0:
                    grad = grad.add(param, alpha=self.weight_decay)
                if self.momentum != 0:
                    buf = self.buffers.get(i)
                    if buf is None:
                        buf = self.buffers[i] = grad.detach().clone()
                    else:
                        buf.mul_(self.momentum).add_(grad, alpha=1)
                    grad = buf
                param.add_(grad, alpha=-self.lr)
