"""PyTorch recipes: MLP, small CNN and logistic regression, trained with a plain seeded loop."""

from __future__ import annotations

import math
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from memberscope.exceptions import InvalidInputError
from memberscope.recipes._base import Recipe
from memberscope.targets import Target, TorchTarget

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


# torch.manual_seed sets one process-wide generator: threads (joblib's threading backend) that seed and
# build networks at once would draw each other's initial weights.
_INIT_LOCK = threading.Lock()


def seeded_network(recipe: TorchRecipe, feature_shape: tuple[int, ...], n_classes: int, seed: int):
    """``recipe``'s network initialized from ``seed``, safe to call from several threads at once."""
    import torch

    with _INIT_LOCK:
        torch.manual_seed(int(seed))
        return recipe._network(tuple(feature_shape), n_classes)


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
    l1, label_smoothing, early_stopping, validation_fraction, augment, augment_shift, augment_flip, augment_noise,
        ensemble, coarsen :
        training-time defenses (:mod:`memberscope.defenses.training`); off by default.
    dp_epsilon, dp_delta, max_grad_norm, dp_physical_batch : DP-SGD through Opacus (:mod:`memberscope.defenses.dp`);
        off while ``dp_epsilon`` is None. ``dp_delta`` None means the largest power of ten <= 1 / n_train.
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
    l1: float = 0.0
    label_smoothing: float = 0.0
    early_stopping: int = 0
    validation_fraction: float = 0.1
    augment: bool = False
    augment_shift: int = 2
    augment_flip: bool = True
    augment_noise: float = 0.1
    ensemble: int = 1
    coarsen: float = 0.0
    dp_epsilon: float | None = None
    dp_delta: float | None = None
    max_grad_norm: float = 1.0
    dp_physical_batch: int = 256
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
        problems += _defense_problems(self)
        if problems:
            raise InvalidInputError("invalid torch recipe: " + "; ".join(problems))

    def config(self) -> dict[str, Any]:
        cfg = asdict(self)
        cfg["hidden"], cfg["channels"] = list(self.hidden), list(self.channels)
        # Defense options at their defaults are left out, so recipes without defenses keep their cache keys;
        # any defense that is on is part of the config, hence of every cache key.
        for key, default in DEFENSE_DEFAULTS.items():
            if cfg[key] == default:
                del cfg[key]
        return cfg

    @property
    def defended(self) -> bool:
        """Whether any training-time defense beyond weight decay and dropout is on."""
        return any(getattr(self, k) != v for k, v in DEFENSE_DEFAULTS.items())

    def _network(self, feature_shape: tuple[int, ...], n_classes: int):
        return build_network(
            self.architecture,
            feature_shape,
            n_classes,
            hidden=self.hidden,
            channels=self.channels,
            dropout=self.dropout,
        )

    def train(self, X: np.ndarray, y: np.ndarray, *, n_classes: int, seed: int, progress: Any = None) -> Target:
        if self.ensemble > 1:
            from memberscope.defenses.training import train_ensemble

            return train_ensemble(self, X, y, n_classes=n_classes, seed=seed, progress=progress)
        if self.dp_epsilon is not None:
            from memberscope.defenses.dp import train_dp

            return train_dp(self, X, y, n_classes=n_classes, seed=seed, progress=progress)
        return self._train_plain(X, y, n_classes=n_classes, seed=seed, progress=progress)

    def _train_plain(self, X: np.ndarray, y: np.ndarray, *, n_classes: int, seed: int, progress: Any) -> TorchModel:
        import torch
        from torch import nn

        from memberscope.defenses import training as defenses

        generator = torch.Generator().manual_seed(seed)
        net = seeded_network(self, tuple(X.shape[1:]), n_classes, seed)
        inputs = coarsen_features(torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32)), self.coarsen)
        targets = torch.from_numpy(np.asarray(y, dtype=np.int64))
        stopper = None
        if self.early_stopping:
            from memberscope.game import derive_seed

            train_pos, val_pos = defenses.split_validation(
                len(inputs), self.validation_fraction, seed=derive_seed(seed, "validation")
            )
            val_inputs, val_targets = inputs[val_pos], targets[val_pos]
            inputs, targets = inputs[train_pos], targets[train_pos]
            stopper = defenses.EarlyStopping(self.early_stopping)
        mean, std = _fit_standardization(inputs, self.standardize)
        inputs = (inputs - mean) / std
        if self.optimizer == "adam":
            opt = torch.optim.Adam(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        else:
            opt = torch.optim.SGD(net.parameters(), lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay)
        loss_fn = nn.CrossEntropyLoss(label_smoothing=self.label_smoothing)
        augment_gen = torch.Generator().manual_seed(seed + 1) if self.augment else None
        n = inputs.shape[0]
        n_batches = math.ceil(n / self.batch_size)
        epochs_run = 0
        net.train()
        for _ in range(self.epochs):
            order = torch.randperm(n, generator=generator)
            for b in range(n_batches):
                idx = order[b * self.batch_size : (b + 1) * self.batch_size]
                batch = inputs[idx]
                if augment_gen is not None:
                    batch = defenses.augment_batch(
                        batch,
                        generator=augment_gen,
                        shift=self.augment_shift,
                        flip=self.augment_flip,
                        noise=self.augment_noise,
                    )
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(net(batch), targets[idx])
                if self.l1:
                    loss = loss + self.l1 * defenses.l1_penalty(net)
                loss.backward()
                opt.step()
            epochs_run += 1
            if progress is not None:
                progress()
            if stopper is not None:
                net.eval()
                with torch.no_grad():
                    val_loss = float(nn.functional.cross_entropy(net((val_inputs - mean) / std), val_targets))
                net.train()
                if stopper.step(val_loss, net):
                    break
        if stopper is not None:
            stopper.restore(net)
        net.eval()
        model = TorchModel(net, n_classes=n_classes, mean=mean, std=std, coarsen=self.coarsen)
        model.epochs_run = epochs_run
        return model

    def load(self, path: Path, *, n_classes: int, feature_shape: tuple[int, ...]) -> TorchModel:
        import torch

        state = torch.load(path, map_location="cpu", weights_only=True)
        if "ensemble" in state:
            from memberscope.defenses.training import EnsembleModel

            members = [self._model_from_state(s, feature_shape, n_classes) for s in state["ensemble"]]
            model = EnsembleModel(members, n_classes=n_classes)
            model.privacy = state.get("privacy")
            return model
        return self._model_from_state(state, feature_shape, n_classes)

    def _model_from_state(self, state, feature_shape, n_classes) -> TorchModel:
        net = self._network(feature_shape, n_classes)
        net.load_state_dict(state["net"])
        net.eval()
        model = TorchModel(net, n_classes=n_classes, mean=state["mean"], std=state["std"], coarsen=self.coarsen)
        model.privacy = state.get("privacy")
        return model


DEFENSE_DEFAULTS: dict[str, Any] = {
    "l1": 0.0,
    "label_smoothing": 0.0,
    "early_stopping": 0,
    "validation_fraction": 0.1,
    "augment": False,
    "augment_shift": 2,
    "augment_flip": True,
    "augment_noise": 0.1,
    "ensemble": 1,
    "coarsen": 0.0,
    "dp_epsilon": None,
    "dp_delta": None,
    "max_grad_norm": 1.0,
    "dp_physical_batch": 256,
}


def _defense_problems(recipe: TorchRecipe) -> list[str]:
    """Every invalid training-time defense option of ``recipe``, as sentences."""
    problems = []
    if recipe.l1 < 0:
        problems.append(f"l1 must be >= 0; got {recipe.l1}")
    if not 0 <= recipe.label_smoothing < 1:
        problems.append(f"label_smoothing must be in [0, 1); got {recipe.label_smoothing}")
    if int(recipe.early_stopping) != recipe.early_stopping or recipe.early_stopping < 0:
        problems.append(f"early_stopping (patience in epochs) must be an integer >= 0; got {recipe.early_stopping}")
    if not 0 < recipe.validation_fraction < 1:
        problems.append(f"validation_fraction must be in (0, 1); got {recipe.validation_fraction}")
    if recipe.augment_shift < 0 or recipe.augment_noise < 0:
        problems.append(
            f"augment_shift and augment_noise must be >= 0; got {recipe.augment_shift} and {recipe.augment_noise}"
        )
    if recipe.coarsen < 0:
        problems.append(f"coarsen (the grid step features are rounded to) must be >= 0; got {recipe.coarsen}")
    if int(recipe.ensemble) != recipe.ensemble or recipe.ensemble < 1:
        problems.append(f"ensemble must be an integer >= 1 (models); got {recipe.ensemble}")
    if recipe.dp_epsilon is not None:
        if not recipe.dp_epsilon > 0:
            problems.append(f"dp_epsilon must be > 0; got {recipe.dp_epsilon}")
        if recipe.dp_delta is not None and not 0 < recipe.dp_delta < 1:
            problems.append(f"dp_delta must be in (0, 1); got {recipe.dp_delta}")
        if not recipe.max_grad_norm > 0:
            problems.append(f"max_grad_norm must be > 0; got {recipe.max_grad_norm}")
        if recipe.dp_physical_batch < 1:
            problems.append(f"dp_physical_batch must be >= 1; got {recipe.dp_physical_batch}")
        if recipe.l1:
            problems.append("l1 cannot be combined with DP-SGD (the penalty's gradient is not clipped per record)")
        if recipe.early_stopping:
            problems.append("early_stopping cannot be combined with DP-SGD (the validation loss is not accounted)")
        if recipe.standardize:
            problems.append("standardize cannot be combined with DP-SGD (the mean and std are not private)")
    return problems


def coarsen_features(inputs, step: float):
    """Features rounded to the nearest multiple of ``step`` (``step=0``: unchanged); data minimization by coarsening."""
    if not step:
        return inputs
    return (inputs / step).round() * step


def _fit_standardization(inputs, enabled: bool):
    import torch

    if not enabled:
        return torch.zeros(()), torch.ones(())
    mean = inputs.mean(dim=0)
    std = inputs.std(dim=0).clamp_min(1e-6)
    return mean, std


class TorchModel(TorchTarget):
    """A network trained by :class:`TorchRecipe` (in eval mode) plus its input preprocessing; answers logits."""

    def __init__(self, net, *, n_classes: int, mean, std, privacy: dict[str, Any] | None = None, coarsen: float = 0.0):
        super().__init__(net, n_classes=n_classes, output_kind="logits")
        self.mean, self.std = mean, std
        #: Grid step the features are rounded to before the network sees them (data minimization); 0 = off.
        self.coarsen = coarsen
        #: DP-SGD accounting (epsilon, delta, steps, ...) when trained with DP-SGD, else None.
        self.privacy = privacy
        #: Epochs actually run (fewer than the recipe's when early stopping stopped it); None when loaded.
        self.epochs_run: int | None = None

    @property
    def description(self) -> str:
        return "memberscope torch model"

    def _forward(self, batch):
        return self.net((coarsen_features(batch, self.coarsen) - self.mean) / self.std)

    def save(self, path: Path) -> None:
        import torch

        state = {"net": self.net.state_dict(), "mean": self.mean, "std": self.std}
        if self.privacy is not None:
            state["privacy"] = self.privacy
        torch.save(state, path)
