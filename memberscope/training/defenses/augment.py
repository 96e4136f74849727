"""Data augmentation: each minibatch is randomly perturbed, from the model's own stream.

Images ``(n, c, h, w)`` get random shifts of up to ``augment_shift`` pixels and horizontal flips; other records
Gaussian noise of standard deviation ``augment_noise`` (in standardized units when ``standardize``).
"""

from __future__ import annotations

from memberscope.training.defenses._base import TrainingDefense, register
from memberscope.training.options import Interval, OneOf, Option

__all__ = ["Augment", "augment_batch"]


def _shift_images(images, dy, dx):
    """Shift each image ``i`` of ``(n, c, h, w)`` by ``(dy[i], dx[i])`` pixels, filling with zeros."""
    import torch

    n, _, h, w = images.shape
    pad = int(max(dy.abs().max().item(), dx.abs().max().item(), 0))
    if pad == 0:
        return images
    padded = torch.nn.functional.pad(images, (pad, pad, pad, pad))
    rows = (torch.arange(h)[None, :] + pad - dy[:, None]).clamp(0, h + 2 * pad - 1)  # (n, h)
    cols = (torch.arange(w)[None, :] + pad - dx[:, None]).clamp(0, w + 2 * pad - 1)  # (n, w)
    idx_n = torch.arange(n)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[idx_n, rows[:, :, None], cols[:, None, :]]  # (n, h, w, c)
    return out.permute(0, 3, 1, 2).contiguous()


def augment_batch(inputs, *, generator, shift: int, flip: bool = True, noise: float = 0.1):
    """A randomly augmented copy of a minibatch ``inputs`` of shape ``(n, ...)``, drawn from ``generator``.

    Images ``(n, c, h, w)``: each is flipped horizontally with probability 1/2 (when ``flip``) and shifted by up
    to ``shift`` pixels in each direction (zero fill). Anything else: ``inputs + noise * N(0, 1)``. An empty
    batch (DP-SGD's Poisson sampling draws some) is returned as it is, drawing nothing.
    """
    import torch

    if len(inputs) == 0:
        return inputs
    if inputs.ndim == 4:
        n = inputs.shape[0]
        out = inputs
        if flip:
            flipped = torch.rand(n, generator=generator) < 0.5
            out = torch.where(flipped[:, None, None, None], inputs.flip(-1), inputs)
        if shift > 0:
            dy = torch.randint(-shift, shift + 1, (n,), generator=generator)
            dx = torch.randint(-shift, shift + 1, (n,), generator=generator)
            out = _shift_images(out, dy, dx)
        return out
    return inputs + noise * torch.randn(inputs.shape, generator=generator)


@register
class Augment(TrainingDefense):
    name = "augment"
    options = (
        Option("augment", False, OneOf((False, True))),
        Option("augment_shift", 2, Interval(0)),
        Option("augment_flip", True, OneOf((False, True))),
        Option("augment_noise", 0.1, Interval(0)),
    )
    option, preset = "augment", True

    def start(self, run) -> None:
        self.generator = run.streams.spawn()

    def transform_batch(self, run, inputs):
        r = self.recipe
        return augment_batch(
            inputs, generator=self.generator, shift=r.augment_shift, flip=r.augment_flip, noise=r.augment_noise
        )
