"""The arithmetic reference models are trained in: float32, bfloat16 matrix products, or bfloat16 autocast.

Each precision is a small class in the registry :data:`PRECISIONS`; vectorized training
(:mod:`memberscope.training.vectorized`) enters :meth:`Precision.step` around every optimizer step and
:meth:`Precision.forward` around every forward pass and loss, and stores the records it draws minibatches from once,
in :attr:`Precision.pool_dtype`:

- ``fp32``: every operation in float32, the reference.
- ``bf16-matmul``: float32 tensors throughout, with oneDNN computing each matrix product from bfloat16-rounded
  operands with float32 accumulation and a float32 result (torch's ``torch.backends.mkldnn.matmul.fp32_precision =
  "bf16"``, the CPU analogue of TF32). Activations, the loss, gradients, Adam and the weights stay float32.
- ``bf16``: torch's CPU autocast to bfloat16: the matrix products take and return bfloat16, activations between
  layers are bfloat16, softmax and the loss run in float32 (autocast's own lists), the records are stored in
  bfloat16; the weights and Adam's moments stay float32 (the "master" copy), so small updates are not lost.

An enclosing ``torch.autocast`` (a user's) is switched off for the whole step, backward pass included, so it can
neither change the precision nor train on stale weights. Autocast is entered per step with its cast cache off.
Wrapping a whole training call in ``torch.autocast`` with the default cache trains on stale weights: the cache keeps
the bfloat16 copy of each weight made on the first step while the optimizer updates the float32 weight in place, so
every later forward pass uses the initial weights (``tests/test_training_precision.py`` pins this).

The oneDNN flag of ``bf16-matmul`` is process-wide in torch, not per thread. Steps of different precisions in one
process therefore never overlap: :func:`precision_scope` (entered by every step, and by the engine around computing
a model's outputs) lets any number of threads in at once as long as they ask for the same setting of the flag.
Other torch work that a caller runs in its own threads during such a step would see bfloat16 products too.

Reduced precision is meant for reference models only, trained in vectorized batches; whether it is trusted on a run
is decided by comparing a few models trained both ways (:mod:`memberscope.engine.precision`).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any, ClassVar

from memberscope.registry import Registry

__all__ = [
    "PRECISIONS",
    "PRECISION_CHOICES",
    "Precision",
    "get_precision",
    "native_bf16",
    "precision_scope",
]


class _FlagScope:
    """Holders of one value of torch's process-wide oneDNN fp32-matmul flag: same-value holders share, others wait.

    A tiny shared/exclusive lock: ``hold("bf16")`` waits until nobody holds another value, sets the flag if it is the
    first holder, and restores the previous value when the last holder leaves.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._value: str | None = None
        self._holders = 0
        self._previous: str | None = None

    @contextlib.contextmanager
    def hold(self, value: str) -> Iterator[None]:
        import torch

        with self._cond:
            while self._holders and self._value != value:
                self._cond.wait()
            if not self._holders:
                self._value = value
                matmul = torch.backends.mkldnn.matmul  # type: ignore[attr-defined]  # not in torch's stubs
                self._previous = matmul.fp32_precision
                if self._previous != value:
                    matmul.fp32_precision = value
            self._holders += 1
        try:
            yield
        finally:
            with self._cond:
                self._holders -= 1
                if not self._holders:
                    if self._previous != self._value:
                        torch.backends.mkldnn.matmul.fp32_precision = self._previous  # type: ignore[attr-defined]
                    self._value = None
                    self._cond.notify_all()


_FLAG = _FlagScope()


def precision_scope(name: str = "fp32") -> contextlib.AbstractContextManager:
    """Hold torch's oneDNN fp32-matmul setting for precision ``name``: ``"bf16"`` products for ``bf16-matmul``,
    torch's default (``"none"``: the float32 kernels memberscope always used) for the others; waits while a step of
    another setting runs in another thread."""
    return _FLAG.hold("bf16" if name == "bf16-matmul" else "none")


def native_bf16() -> bool:
    """Whether this CPU has bfloat16 dot-product instructions (AVX512-BF16 or AMX), which make bfloat16 faster than
    float32; without them torch emulates bfloat16 and it is slower."""
    import torch

    cpu = getattr(torch, "cpu", None)
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(cpu, name, lambda: False)()) for name in checks)


class Precision:
    """One way to train reference models (subclass it, set the class attributes, register it).

    Class attributes
    ----------------
    name : the ``--precision`` value.
    reduced : whether anything is computed below float32 (then the engine checks it before trusting it).
    pool : dtype name the training records are stored in (``"float32"`` or ``"bfloat16"``).
    summary : one line for help texts and results.json.
    """

    name: ClassVar[str]
    reduced: ClassVar[bool] = True
    pool: ClassVar[str] = "float32"
    summary: ClassVar[str]

    @property
    def pool_dtype(self) -> Any:
        import torch

        return getattr(torch, self.pool)

    @contextlib.contextmanager
    def step(self) -> Iterator[None]:
        """Entered around one whole optimizer step (forward, loss, backward, update): holds the oneDNN setting and
        switches off any autocast of the caller, which would otherwise also reach the backward pass (on CPU it runs
        in the calling thread, under that thread's autocast state)."""
        import torch

        with precision_scope(self.name), torch.autocast("cpu", enabled=False):
            yield

    def forward(self) -> contextlib.AbstractContextManager:
        """Entered around the forward pass and the loss of one step (autocast, when the precision uses it)."""
        import torch

        return torch.autocast("cpu", enabled=False)

    @classmethod
    def available(cls) -> bool:
        """Whether this CPU runs the precision natively (fast); an emulated one is never chosen automatically."""
        return native_bf16()


PRECISIONS: Registry[type[Precision]] = Registry("precision")


@PRECISIONS.register("fp32")
class Float32(Precision):
    name = "fp32"
    reduced = False
    summary = "float32 throughout (the reference)"

    @classmethod
    def available(cls) -> bool:
        return True


@PRECISIONS.register("bf16-matmul")
class BFloat16Matmul(Precision):
    name = "bf16-matmul"
    summary = "matrix products from bfloat16-rounded operands, float32 accumulation and everything else float32"


@PRECISIONS.register("bf16")
class BFloat16(Precision):
    name = "bf16"
    pool = "bfloat16"
    summary = "bfloat16 autocast per step (products and activations bfloat16; loss, weights and Adam float32)"

    def forward(self) -> contextlib.AbstractContextManager:
        import torch

        return torch.autocast("cpu", dtype=torch.bfloat16, cache_enabled=False)


PRECISION_CHOICES = ("auto", *PRECISIONS.names())
"""The values of the ``precision`` setting: ``auto`` (the fastest that passes the check) or a registered name."""


def get_precision(name: str) -> Precision:
    """The :class:`Precision` registered as ``name``.

    Raises
    ------
    UnknownNameError
        When no precision has that name.
    """
    return PRECISIONS.get(name)()
