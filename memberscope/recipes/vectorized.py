"""Train K torch models of one recipe as a single batched computation (stacked weights, ``bmm``).

Each model keeps its own training subset, shuffling stream and initialization seed (the same
initialization the sequential loop uses). Each layer's weights are stacked along a leading model
axis and applied with batched matrix products; one optimizer step updates all of them. Adam and
SGD act elementwise, so a stacked optimizer is exactly K independent optimizers. Minibatches are
full-size: each model draws ``batch_size`` records per step from its own stream of shuffled
epochs, and an "epoch" is ``ceil(mean subset size / batch_size)`` steps, so subsets of slightly
different sizes stay in step.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from memberscope.exceptions import InvalidInputError
from memberscope.recipes.torch_nets import TorchModel, TorchRecipe, _fit_standardization

__all__ = ["supports_vectorized", "train_vectorized"]


def supports_vectorized(recipe) -> bool:
    """Whether ``recipe`` can be trained by :func:`train_vectorized` (torch MLP and logistic regression, no defenses
    other than weight decay)."""
    return (
        isinstance(recipe, TorchRecipe)
        and recipe.architecture in ("mlp", "logreg")
        and recipe.dropout == 0
        and not recipe.defended
    )


def _index_streams(subsets: Sequence[np.ndarray], seeds: Sequence[int], n_steps: int, batch_size: int):
    import torch

    streams = []
    for subset, seed in zip(subsets, seeds, strict=True):
        generator = torch.Generator().manual_seed(int(seed))
        subset_t = torch.as_tensor(np.asarray(subset, dtype=np.int64))
        need, parts = n_steps * batch_size, []
        while need > 0:
            perm = subset_t[torch.randperm(len(subset_t), generator=generator)]
            parts.append(perm[:need])
            need -= len(parts[-1])
        streams.append(torch.cat(parts))
    return torch.stack(streams)  # (K, n_steps * batch_size)


def _linear_layers(net):
    from torch import nn

    return [m for m in net.modules() if isinstance(m, nn.Linear)]


def train_vectorized(
    recipe: TorchRecipe,
    X: np.ndarray,
    y: np.ndarray,
    *,
    subsets: Sequence[np.ndarray],
    seeds: Sequence[int],
    n_classes: int,
    progress: Callable[[], None] | None = None,
) -> list[TorchModel]:
    """Train ``len(subsets)`` models, model ``k`` on ``X[subsets[k]]`` with seed ``seeds[k]``.

    ``X`` has shape (n, ...), ``y`` (n,). Returns the models in order; ``progress`` is called once per epoch.
    Layer ``l`` of all K models is one weight tensor of shape (K, d_in, d_out), applied with a
    batched matrix product, so a step costs a few kernels regardless of K.
    """
    import torch

    if not supports_vectorized(recipe):
        raise InvalidInputError(
            f"vectorized training supports torch mlp and logreg recipes without dropout; got {recipe.config()}"
        )
    if not subsets:
        return []
    k_models = len(subsets)
    feature_shape = tuple(X.shape[1:])
    inputs = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32)).reshape(len(X), -1)
    targets = torch.from_numpy(np.asarray(y, dtype=np.int64))
    nets, means, stds = [], [], []
    for subset, seed in zip(subsets, seeds, strict=True):
        torch.manual_seed(int(seed))  # the same initialization as TorchRecipe.train
        nets.append(recipe._network(feature_shape, n_classes))
        m, s = _fit_standardization(inputs[torch.as_tensor(np.asarray(subset))], recipe.standardize)
        means.append(m.expand(inputs.shape[1]))
        stds.append(s.expand(inputs.shape[1]))
    mean, std = torch.stack(means)[:, None, :], torch.stack(stds)[:, None, :]  # (K, 1, d)
    n_layers = len(_linear_layers(nets[0]))
    weights = [
        torch.stack([_linear_layers(n)[i].weight.detach().T for n in nets]).requires_grad_() for i in range(n_layers)
    ]  # (K, d_in, d_out)
    biases = [
        torch.stack([_linear_layers(n)[i].bias.detach()[None, :] for n in nets]).requires_grad_()
        for i in range(n_layers)
    ]  # (K, 1, d_out)
    tensors = weights + biases
    if recipe.optimizer == "adam":
        opt = torch.optim.Adam(tensors, lr=recipe.lr, weight_decay=recipe.weight_decay)
    else:
        opt = torch.optim.SGD(tensors, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay)
    steps_per_epoch = math.ceil(float(np.mean([len(s) for s in subsets])) / recipe.batch_size)
    streams = _index_streams(subsets, seeds, steps_per_epoch * recipe.epochs, recipe.batch_size)
    for epoch in range(recipe.epochs):
        for step in range(steps_per_epoch):
            start = (epoch * steps_per_epoch + step) * recipe.batch_size
            idx = streams[:, start : start + recipe.batch_size]  # (K, B)
            h = (inputs[idx] - mean) / std  # (K, B, d)
            for i in range(n_layers):
                h = torch.baddbmm(biases[i], h, weights[i])
                if i < n_layers - 1:
                    h = torch.relu(h)
            # Sum over models of each model's mean loss: every model gets exactly its own gradient.
            loss = (
                torch.nn.functional.cross_entropy(h.reshape(-1, n_classes), targets[idx].reshape(-1), reduction="sum")
                / recipe.batch_size
            )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if progress is not None:
            progress()
    models = []
    with torch.no_grad():
        for k in range(k_models):
            net = nets[k]
            for i, layer in enumerate(_linear_layers(net)):
                layer.weight.copy_(weights[i][k].T)
                layer.bias.copy_(biases[i][k, 0])
            net.eval()
            models.append(
                TorchModel(
                    net,
                    n_classes=n_classes,
                    mean=means[k].reshape(feature_shape) if recipe.standardize else torch.zeros(()),
                    std=stds[k].reshape(feature_shape) if recipe.standardize else torch.ones(()),
                )
            )
    return models
