"""The torch networks of the recipes (MLP, small CNN, logistic regression), initialized from a given generator.

:func:`build_network` builds the layers on torch's ``meta`` device (no memory, no random draws), allocates them,
and, given a generator, initializes every parameter the way torch's own ``reset_parameters`` does (Kaiming-uniform
weights with ``a = sqrt(5)``, uniform biases in ``±1 / sqrt(fan_in)``), layer by layer in the same order, drawing
from that generator: the weights equal those of ``torch.manual_seed(seed)`` followed by building the layers, without
touching the process-wide generator. :class:`Dropout` draws its masks from a generator it is given.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from memberscope.exceptions import InvalidInputError
from memberscope.training.options import ARCHITECTURES

__all__ = ["Dropout", "build_network", "initialize"]


class Dropout(nn.Module):
    """Dropout (Srivastava et al. 2014) whose masks come from :attr:`generator`, never torch's global generator.

    In training mode each unit is zeroed with probability ``p`` and the others scaled by ``1 / (1 - p)``, as
    ``torch.nn.Dropout``; in eval mode it is the identity. The training loop sets :attr:`generator` to one of the
    model's streams for the duration of training; training without one is an error, not a silent global draw.
    """

    def __init__(self, p: float):
        super().__init__()
        self.p = float(p)
        self.generator: torch.Generator | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        if self.generator is None:
            raise RuntimeError("memberscope's Dropout trains only with a generator (set by the training loop)")
        keep = torch.empty_like(x).bernoulli_(1 - self.p, generator=self.generator)
        return x * keep / (1 - self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def _layers(architecture: str, feature_shape: tuple[int, ...], n_classes: int, *, hidden, channels, dropout):
    n_features = int(np.prod(feature_shape))
    if architecture == "logreg":
        return nn.Sequential(nn.Flatten(), nn.Linear(n_features, n_classes))
    if architecture == "mlp":
        layers: list[nn.Module] = [nn.Flatten()]
        width = n_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            if dropout:
                layers.append(Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, n_classes))
        return nn.Sequential(*layers)
    if architecture == "cnn":
        if len(feature_shape) != 3:
            raise InvalidInputError(
                f"the cnn recipe needs image records of shape (channels, height, width); got records "
                f"of shape {feature_shape}"
            )
        in_channels, height, width = feature_shape
        layers = []
        for c in channels:
            layers += [nn.Conv2d(in_channels, c, kernel_size=3, padding=1), nn.ReLU()]
            if min(height, width) >= 4:  # 8x8 digits get one pooling step fewer than 28x28 images
                layers.append(nn.MaxPool2d(2))
                height, width = height // 2, width // 2
            in_channels = c
        dense = hidden[0] if hidden else 128
        layers += [nn.Flatten(), nn.Linear(in_channels * height * width, dense), nn.ReLU()]
        if dropout:
            layers.append(Dropout(dropout))
        layers.append(nn.Linear(dense, n_classes))
        return nn.Sequential(*layers)
    raise InvalidInputError(f"unknown architecture {architecture!r}; expected one of {ARCHITECTURES}")


def build_network(recipe, feature_shape: tuple[int, ...], n_classes: int, *, generator: torch.Generator | None = None):
    """``recipe``'s ``torch.nn.Module`` on inputs of shape ``(batch, *feature_shape)``, on the CPU.

    Parameters
    ----------
    recipe : anything with ``architecture``, ``hidden``, ``channels`` and ``dropout`` (a torch recipe).
    feature_shape : shape of one record, e.g. ``(1, 8, 8)``.
    n_classes : number of outputs.
    generator : initialize the parameters from it (see :func:`initialize`); None leaves them uninitialized, for
        loading saved weights.

    Raises
    ------
    InvalidInputError
        For a cnn on records that are not images ``(channels, height, width)``.
    """
    with torch.device("meta"):
        net = _layers(
            recipe.architecture,
            tuple(feature_shape),
            n_classes,
            hidden=recipe.hidden,
            channels=recipe.channels,
            dropout=recipe.dropout,
        )
    net = net.to_empty(device="cpu")
    if generator is not None:
        initialize(net, generator)
    return net


def _affine(module: Any, generator: torch.Generator) -> None:
    # torch's nn.Linear / nn.Conv2d reset_parameters, with the generator passed to both draws.
    nn.init.kaiming_uniform_(module.weight, a=math.sqrt(5), generator=generator)
    if module.bias is not None:
        fan_in, _ = nn.init._calculate_fan_in_and_fan_out(module.weight)
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
        nn.init.uniform_(module.bias, -bound, bound, generator=generator)


# Layer type -> how torch initializes it by default; a network with any other parametrized layer is refused.
INITIALIZERS: dict[type[nn.Module], Callable[[Any, torch.Generator], None]] = {nn.Linear: _affine, nn.Conv2d: _affine}


def initialize(net: nn.Module, generator: torch.Generator) -> None:
    """(Re-)initialize every parameter of ``net`` in place, layer by layer in module order, drawing from ``generator``.

    Raises
    ------
    TypeError
        When a layer with parameters has no entry in :data:`INITIALIZERS` (it would stay uninitialized).
    """
    with torch.no_grad():
        for module in net.modules():
            if not any(True for _ in module.parameters(recurse=False)):
                continue
            init = INITIALIZERS.get(type(module))
            if init is None:
                raise TypeError(f"no initializer for {type(module).__name__}; add one to INITIALIZERS")
            init(module, generator)
