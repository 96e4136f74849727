"""The random streams of one model, each a ``torch.Generator`` derived from the model's seed.

Nothing in training draws from torch's process-wide generator (``torch.manual_seed``): threads training several
models at once (joblib's threading backend) would draw each other's numbers. Every model gets its own streams:

- ``init``: the initial weights, drawn exactly as torch's default initialization draws them (seed ``seed``);
- ``batches``: the shuffled order of the training records, or DP-SGD's Poisson sampling (seed ``seed``);
- one more stream per consumer that asks with :meth:`Streams.spawn` (seeds ``seed + 1``, ``seed + 2``, ...), in
  the order the training loop's phases ask (a defense's ``wrap`` hook before any ``start`` hook, plug-ins in
  registry order): DP-SGD's noise, augmentation, dropout masks.

``init`` and ``batches`` share the seed on purpose: they are separate generators, and these are the draws the
recipes made before the streams were explicit, so a fixed seed still gives the same models.
"""

from __future__ import annotations

__all__ = ["Streams"]


class Streams:
    """Hands out the generators of the model trained with ``seed`` (see the module docstring)."""

    def __init__(self, seed: int):
        self.seed = int(seed)
        self._spawned = 0

    def init(self):
        """A generator for the initial weights (``torch.Generator`` seeded with ``seed``)."""
        return self._generator(self.seed)

    def batches(self):
        """A generator for the order (or Poisson sampling) of the training records, seeded with ``seed``."""
        return self._generator(self.seed)

    def spawn(self):
        """A fresh generator for one more consumer: seeded ``seed + 1`` on the first call, ``seed + 2`` next, ..."""
        self._spawned += 1
        return self._generator(self.seed + self._spawned)

    @staticmethod
    def _generator(seed: int):
        import torch

        return torch.Generator().manual_seed(seed)
