"""PyTorch recipes: MLP, small CNN and logistic regression, trained with a plain seeded loop."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from memberscope.exceptions import InvalidInputError
from memberscope.recipes._base import Recipe, TrainedModel

__all__ = ["TorchModel", "TorchRecipe", "build_network"]

ARCHITECTURES = ("mlp", "cnn", "logreg")
OPTIMIZERS = ("adam", "sgd")


def build_network(
    architecture: str,
    feature_shape: tuple[int, ...],
    n_classes: int,
    *,
    hidden: tuple[int, ...],
    channels: tuple[int, ...],
    dropout: float,
):
    """The ``torch.nn.Module`` for ``architecture`` on inputs of shape ``(batch, *feature_shape)``."""
    from torch import nn

    n_features = int(np.prod(feature_shape))
    if architecture == "logreg":
        return nn.Sequential(nn.Flatten(), nn.Linear(n_features, n_classes))
    if architecture == "mlp":
        layers: list[nn.Module] = [nn.Flatten()]
        width = n_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            if dropout:
                layers.append(nn.Dropout(dropout))
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
        layers += [nn.Flatten(), nn.Linear(in_channels * height * width, hidden[0] if hidden else 128), nn.ReLU()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(hidden[0] if hidden else 128, n_classes))
        return nn.Sequential(*layers)
    raise InvalidInputError(f"unknown architecture {architecture!r}; expected one of {ARCHITECTURES}")


@dataclass
class TorchRecipe(Recipe):
    """Train a torch network with minibatch Adam/SGD on cross-entropy.

    Parameters
    ----------
    architecture : {"mlp", "cnn", "logreg"}
    hidden : widths of the hidden layers (MLP) or of the dense layer (CNN).
    channels : convolution channels (CNN).
    epochs, batch_size, lr, weight_decay, momentum, optimizer, dropout : the usual.
    standardize : fit per-feature mean/std on the training records and apply it inside the model
        (useful for raw tables; images in [0, 1] do not need it).
    """

    architecture: str = "mlp"
    hidden: tuple[int, ...] = (256, 256)
    channels: tuple[int, ...] = (16, 32)
    epochs: int = 30
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9
    optimizer: str = "adam"
    dropout: float = 0.0
    standardize: bool = False
    name: str = field(default="torch", init=False)

    def __post_init__(self) -> None:
        self.hidden = tuple(int(h) for h in self.hidden)
        self.channels = tuple(int(c) for c in self.channels)
        problems = []
        if self.architecture not in ARCHITECTURES:
            problems.append(f"architecture {self.architecture!r} is not one of {ARCHITECTURES}")
        if self.optimizer not in OPTIMIZERS:
            problems.append(f"optimizer {self.optimizer!r} is not one of {OPTIMIZERS}")
        if self.epochs < 1:
            problems.append(f"epochs must be >= 1; got {self.epochs}")
        if self.batch_size < 1:
            problems.append(f"batch_size must be >= 1; got {self.batch_size}")
        if not self.lr > 0:
            problems.append(f"lr must be > 0; got {self.lr}")
        if self.weight_decay < 0:
            problems.append(f"weight_decay must be >= 0; got {self.weight_decay}")
        if not 0 <= self.dropout < 1:
            problems.append(f"dropout must be in [0, 1); got {self.dropout}")
        if problems:
            raise InvalidInputError("invalid torch recipe: " + "; ".join(problems))

    def config(self) -> dict[str, Any]:
        cfg = asdict(self)
        cfg["hidden"], cfg["channels"] = list(self.hidden), list(self.channels)
        return cfg

    def _network(self, feature_shape: tuple[int, ...], n_classes: int):
        return build_network(
            self.architecture,
            feature_shape,
            n_classes,
            hidden=self.hidden,
            channels=self.channels,
            dropout=self.dropout,
        )

    def train(self, X: np.ndarray, y: np.ndarray, *, n_classes: int, seed: int, progress: Any = None) -> TorchModel:
        import torch
        from torch import nn

        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        net = self._network(tuple(X.shape[1:]), n_classes)
        inputs = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
        targets = torch.from_numpy(np.asarray(y, dtype=np.int64))
        mean, std = _fit_standardization(inputs, self.standardize)
        inputs = (inputs - mean) / std
        if self.optimizer == "adam":
            opt = torch.optim.Adam(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        else:
            opt = torch.optim.SGD(net.parameters(), lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay)
        loss_fn = nn.CrossEntropyLoss()
        n = inputs.shape[0]
        n_batches = math.ceil(n / self.batch_size)
        net.train()
        for _ in range(self.epochs):
            order = torch.randperm(n, generator=generator)
            for b in range(n_batches):
                idx = order[b * self.batch_size : (b + 1) * self.batch_size]
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(net(inputs[idx]), targets[idx])
                loss.backward()
                opt.step()
            if progress is not None:
                progress()
        net.eval()
        return TorchModel(net, n_classes=n_classes, mean=mean, std=std)

    def load(self, path: Path, *, n_classes: int, feature_shape: tuple[int, ...]) -> TorchModel:
        import torch

        state = torch.load(path, map_location="cpu", weights_only=True)
        net = self._network(feature_shape, n_classes)
        net.load_state_dict(state["net"])
        net.eval()
        return TorchModel(net, n_classes=n_classes, mean=state["mean"], std=state["std"])


def _fit_standardization(inputs, enabled: bool):
    import torch

    if not enabled:
        return torch.zeros(()), torch.ones(())
    mean = inputs.mean(dim=0)
    std = inputs.std(dim=0).clamp_min(1e-6)
    return mean, std


class TorchModel(TrainedModel):
    """A trained torch network (in eval mode) plus its input standardization."""

    def __init__(self, net, *, n_classes: int, mean, std):
        self.net, self.n_classes, self.mean, self.std = net, n_classes, mean, std

    def predict_logits(self, X: np.ndarray, *, batch_size: int = 4096) -> np.ndarray:
        import torch

        out = []
        with torch.inference_mode():
            for start in range(0, len(X), batch_size):
                batch = torch.from_numpy(np.ascontiguousarray(X[start : start + batch_size], dtype=np.float32))
                out.append(self.net((batch - self.mean) / self.std).numpy())
        return np.concatenate(out) if out else np.zeros((0, self.n_classes), dtype=np.float32)

    def save(self, path: Path) -> None:
        import torch

        torch.save({"net": self.net.state_dict(), "mean": self.mean, "std": self.std}, path)
