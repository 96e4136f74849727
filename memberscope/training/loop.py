"""The one training loop of the torch recipes: minibatch Adam/SGD on cross-entropy, with defenses as plug-ins.

:func:`train` trains one model on ``X`` (n, ...) and ``y`` (n,) with the model's seed. Randomness comes only from
the model's :class:`~memberscope.training.randomness.Streams` (initial weights, batch order, and whatever the
defenses spawn), never from torch's process-wide generator, so a model is the same whichever thread, process or
machine trains it. The defenses switched on by the recipe (:mod:`memberscope.training.defenses`) hook in at fixed
points, in registry order::

    build the network from the init stream
    prepare_data      coarsen the records, hold out a validation set
    (fit the standardization on the training records; the optimizer; plain cross-entropy; shuffled batches)
    wrap              DP-SGD: Opacus's per-record clipping, noise and Poisson-sampled batches
    start             label smoothing's loss, augmentation's and dropout's generators, early stopping's tracker
    per epoch, per batch: transform_batch (augment), loss + penalty (L1), backward, step
    end_epoch         early stopping may stop
    finish            early stopping restores the best weights; DP-SGD records its accounting

:mod:`memberscope.training.vectorized` trains K models at once from the same pieces (:class:`Streams`,
:func:`~memberscope.training.networks.build_network`, :func:`epoch_orders`, :func:`fit_standardization`), with the
same optimizers as stacked fused kernels (:mod:`memberscope.training.fused`).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from memberscope.training.defenses import TrainingDefense, active_defenses
from memberscope.training.randomness import Streams

__all__ = [
    "TrainedEnsemble",
    "TrainedNetwork",
    "TrainingRun",
    "epoch_orders",
    "fit_standardization",
    "make_optimizer",
    "train",
]


@dataclass
class TrainedNetwork:
    """A trained network (eval mode) and what predicting with it needs.

    ``mean``/``std`` standardize inputs (scalars 0 and 1 when the recipe does not standardize); ``privacy`` is the
    DP-SGD accounting (None without DP-SGD); ``epochs_run`` may be below the recipe's epochs (early stopping).
    """

    net: Any
    mean: Any
    std: Any
    privacy: dict[str, Any] | None = None
    epochs_run: int | None = None


@dataclass
class TrainedEnsemble:
    """Members trained on disjoint parts of the training records (the ``ensemble`` defense)."""

    members: list[TrainedNetwork]


@dataclass
class TrainingRun:
    """The state of one model's training, which the defenses' hooks read and replace.

    ``inputs`` (n, ...) and ``targets`` (n,) are the training records (standardized from ``start`` on);
    ``batches()`` returns a context manager that yields one epoch's ``(inputs, targets)`` minibatches.
    """

    recipe: Any
    streams: Streams
    n_classes: int
    feature_shape: tuple[int, ...]
    net: Any
    inputs: Any
    targets: Any
    batch_generator: Any
    mean: Any = None
    std: Any = None
    optimizer: Any = None
    criterion: Any = None
    batches: Callable[[], contextlib.AbstractContextManager] | None = None
    epochs_run: int = 0
    privacy: dict[str, Any] | None = None


def fit_standardization(inputs, enabled: bool):
    """``(mean, std)`` per feature over the records of ``inputs`` (n, ...), std at least 1e-6; scalars 0 and 1 when
    not ``enabled``."""
    import torch

    if not enabled:
        return torch.zeros(()), torch.ones(())
    return inputs.mean(dim=0), inputs.std(dim=0).clamp_min(1e-6)


def make_optimizer(recipe, params, *, torch_optimizer: bool = False):
    """The recipe's optimizer (Adam, or SGD with momentum) with its learning rate and weight decay over ``params``.

    :class:`~memberscope.training.optimizers.Adam`/``SGD`` (torch's CPU update to the bit, without the import of
    ``torch._dynamo`` that ``torch.optim`` makes), or ``torch.optim``'s own when ``torch_optimizer`` (for a defense
    that wraps it, such as Opacus's DP-SGD)."""
    if torch_optimizer:
        import torch

        if recipe.optimizer == "adam":
            return torch.optim.Adam(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
        return torch.optim.SGD(params, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay)
    from memberscope.training.optimizers import SGD, Adam

    if recipe.optimizer == "adam":
        return Adam(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    return SGD(params, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay)


def epoch_orders(n: int, generator) -> Iterator[Any]:
    """Endless random permutations of ``range(n)``, one per epoch, drawn from ``generator``."""
    import torch

    while True:
        yield torch.randperm(n, generator=generator)


@contextlib.contextmanager
def _shuffled_batches(run: TrainingRun, orders: Iterator[Any]):
    order = next(orders)
    size = run.recipe.batch_size
    yield (
        (run.inputs[idx], run.targets[idx])
        for idx in (order[b * size : (b + 1) * size] for b in range(math.ceil(len(order) / size)))
    )


def train(recipe, X: np.ndarray, y: np.ndarray, *, n_classes: int, seed: int, progress=None):
    """Train ``recipe``'s network on ``X`` of shape (n, ...) and labels ``y`` of shape (n,), deterministic in ``seed``.

    Returns a :class:`TrainedNetwork`, or a :class:`TrainedEnsemble` when a defense trains several (``ensemble``).
    ``progress()`` is called after each epoch.

    Raises
    ------
    MissingDependencyError
        When a defense needs an optional dependency that is not installed (DP-SGD: Opacus).
    InvalidInputError
        When the records do not fit the recipe (a cnn on tables, too few records to hold out a validation set).
    """
    classes = active_defenses(recipe)
    for cls in classes:
        cls.check_available()
    defenses = [cls(recipe) for cls in classes]
    wrapper = next((d for d in defenses if d.wraps), None)
    if wrapper is not None:
        return wrapper.around(train, X, y, n_classes=n_classes, seed=seed, progress=progress)
    with contextlib.ExitStack() as stack:
        for d in defenses:
            stack.enter_context(d.context())
        return _train(recipe, defenses, X, y, n_classes=n_classes, seed=seed, progress=progress)


def _train(recipe, defenses: list[TrainingDefense], X, y, *, n_classes, seed, progress) -> TrainedNetwork:
    import torch
    from torch import nn

    from memberscope.training.networks import build_network

    streams = Streams(seed)
    feature_shape = tuple(X.shape[1:])
    run = TrainingRun(
        recipe=recipe,
        streams=streams,
        n_classes=n_classes,
        feature_shape=feature_shape,
        net=build_network(recipe, feature_shape, n_classes, generator=streams.init()),
        inputs=torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32)),
        targets=torch.from_numpy(np.asarray(y, dtype=np.int64)),
        batch_generator=streams.batches(),
    )
    for d in defenses:
        d.prepare_data(run)
    run.mean, run.std = fit_standardization(run.inputs, recipe.standardize)
    run.inputs = (run.inputs - run.mean) / run.std
    run.optimizer = make_optimizer(
        recipe, run.net.parameters(), torch_optimizer=any(d.needs_torch_optimizer for d in defenses)
    )
    run.criterion = nn.CrossEntropyLoss()
    orders = epoch_orders(len(run.inputs), run.batch_generator)
    run.batches = lambda: _shuffled_batches(run, orders)
    for d in defenses:
        d.wrap(run)
    for d in defenses:
        d.start(run)
    run.net.train()
    for _ in range(recipe.epochs):
        with run.batches() as batches:
            for inputs, targets in batches:
                for d in defenses:
                    inputs = d.transform_batch(run, inputs)
                run.optimizer.zero_grad(set_to_none=True)
                # An empty batch (DP-SGD's Poisson sampling) has a NaN mean loss but no gradient entries: Opacus
                # clips and sums nothing, adds its noise and steps, and the accountant counts the step.
                loss = run.criterion(run.net(inputs), targets)
                for d in defenses:
                    extra = d.penalty(run)
                    if extra is not None:
                        loss = loss + extra
                loss.backward()
                run.optimizer.step()
        run.epochs_run += 1
        if progress is not None:
            progress()
        if any([d.end_epoch(run) for d in defenses]):  # every defense sees every epoch
            break
    for d in defenses:
        d.finish(run)
    run.net.eval()
    return TrainedNetwork(net=run.net, mean=run.mean, std=run.std, privacy=run.privacy, epochs_run=run.epochs_run)
