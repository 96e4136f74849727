"""Train K torch models of one recipe as a single batched computation (stacked weights, ``bmm``).

Each model keeps its own training subset and its own streams (:class:`~memberscope.training.randomness.Streams`):
the same initial weights and the same stream of shuffled epochs the sequential loop
(:mod:`memberscope.training.loop`) draws for that seed. Each layer's weights are stacked along a leading model
axis and applied with batched matrix products; one optimizer step updates all of them. Adam and
SGD act elementwise, so a stacked optimizer is exactly K independent optimizers. Minibatches are
full-size: each model draws ``batch_size`` records per step from its own stream of shuffled
epochs, and an "epoch" is ``ceil(mean subset size / batch_size)`` steps, so subsets of slightly
different sizes stay in step.

The optimizer is :func:`~memberscope.training.fused.stacked_optimizer` (torch's fused Adam/SGD kernels without
``torch.optim``'s per-process start-up cost), and ``precision`` (:mod:`memberscope.training.precision`) chooses
the arithmetic: float32 (the default and the reference), bfloat16 matrix products, or bfloat16 autocast entered
per step with its cache off.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import numpy as np

from memberscope.exceptions import InvalidInputError
from memberscope.training.defenses import active_defenses
from memberscope.training.fused import stacked_optimizer
from memberscope.training.loop import TrainedNetwork, epoch_orders, fit_standardization
from memberscope.training.options import ARCHITECTURES
from memberscope.training.precision import get_precision
from memberscope.training.randomness import Streams

__all__ = ["supports_vectorized", "train_vectorized", "vectorized_bytes_per_model"]


def supports_vectorized(recipe) -> bool:
    """Whether ``recipe`` can be trained by :func:`train_vectorized`: a torch recipe (MLP, CNN, logistic
    regression) whose training-time defenses all declare ``vectorized`` (of the built-in ones, only ``l2``; not
    dropout, L1, label smoothing, early stopping, augmentation, ensembles, coarsening or DP-SGD).
    """
    return (
        getattr(recipe, "name", None) == "torch"
        and recipe.architecture in ARCHITECTURES
        and all(cls.vectorized for cls in active_defenses(recipe))
    )


def vectorized_bytes_per_model(recipe, *, feature_shape: tuple[int, ...], n_classes: int, n_steps: int) -> int:
    """Estimated bytes one model adds to a vectorized batch (sizes a batch to a memory budget).

    Parameters are held four times over (the model object, the stacked tensor, its gradient, and
    Adam's two moments or SGD's momentum); each step's activations for a minibatch: the gathered
    inputs (twice when standardized), and per layer its output, activation and their gradients
    (for the CNN: every module's output and its gradient, counted on one record); plus the model's
    pre-drawn index stream (int64 per step and record). A 25% margin covers allocator slack.
    """
    n_features = int(np.prod(feature_shape))
    if recipe.architecture == "cnn":
        import torch

        from memberscope.training.networks import build_network

        net = build_network(recipe, tuple(feature_shape), n_classes)
        n_params = sum(p.numel() for p in net.parameters())
        sizes: list[int] = []
        hooks = [
            m.register_forward_hook(lambda m, i, o: sizes.append(o.numel()))
            for m in net
            if len(list(m.children())) == 0
        ]
        with torch.no_grad():
            net(torch.zeros((1, *feature_shape)))
        for h in hooks:
            h.remove()
        per_record = 2 * sum(sizes)
    else:
        widths = [n_features, *(() if recipe.architecture == "logreg" else recipe.hidden), n_classes]
        n_params = sum(a * b + b for a, b in itertools.pairwise(widths))
        per_record = 4 * sum(widths[1:])
    optimizer_state = 2 if recipe.optimizer == "adam" else 1
    params = (3 + optimizer_state) * n_params * 4
    batch = recipe.batch_size
    activations = batch * 4 * ((2 if recipe.standardize else 1) * n_features + per_record)
    indices = n_steps * batch * 8
    return int(1.25 * (params + activations + indices))


def _index_streams(subsets: Sequence[np.ndarray], seeds: Sequence[int], n_steps: int, batch_size: int):
    """Each model's record indices for all ``n_steps`` steps: its epochs' shuffled orders (the sequential loop's
    :func:`epoch_orders` of its ``batches`` stream) laid end to end; shape (K, n_steps * batch_size)."""
    import torch

    streams = []
    for subset, seed in zip(subsets, seeds, strict=True):
        orders = epoch_orders(len(subset), Streams(seed).batches())
        subset_t = torch.as_tensor(np.asarray(subset, dtype=np.int64))
        need, parts = n_steps * batch_size, []
        while need > 0:
            perm = subset_t[next(orders)]
            parts.append(perm[:need])
            need -= len(parts[-1])
        streams.append(torch.cat(parts))
    return torch.stack(streams)  # (K, n_steps * batch_size)


def _linear_layers(net):
    from torch import nn

    return [m for m in net.modules() if isinstance(m, nn.Linear)]


def train_vectorized(
    recipe,
    X: np.ndarray,
    y: np.ndarray,
    *,
    subsets: Sequence[np.ndarray],
    seeds: Sequence[int],
    n_classes: int,
    steps_per_epoch: int | None = None,
    progress: Callable[[], None] | None = None,
    precision: str = "fp32",
) -> list[TrainedNetwork]:
    """Train ``len(subsets)`` models, model ``k`` on ``X[subsets[k]]`` with seed ``seeds[k]``.

    ``X`` has shape (n, ...), ``y`` (n,). Returns the trained networks in order; ``progress`` is called once per epoch.
    ``precision`` is a name of :data:`~memberscope.training.precision.PRECISIONS` (``"fp32"``, ``"bf16-matmul"``,
    ``"bf16"``); the returned networks are float32 whichever it is.
    ``steps_per_epoch`` defaults to ``ceil(mean subset size / batch_size)``; pass the value for the
    whole run when its models are trained in several batches, so a model never depends on its batch.
    Layer ``l`` of all K models is one weight tensor of shape (K, d_in, d_out), applied with a
    batched matrix product, so a step costs a few kernels regardless of K.

    Raises
    ------
    InvalidInputError
        When :func:`supports_vectorized` is False for ``recipe``.
    UnknownNameError
        When ``precision`` is not a registered precision.
    """
    import torch

    from memberscope.training.networks import build_network

    arithmetic = get_precision(precision)
    if not supports_vectorized(recipe):
        raise InvalidInputError(
            "vectorized training supports torch mlp, cnn and logreg recipes without dropout or training-time "
            f"defenses other than l2; got {recipe.config()}"
        )
    if not subsets:
        return []
    if recipe.architecture == "cnn":
        return _train_vmap(
            recipe,
            X,
            y,
            subsets=subsets,
            seeds=seeds,
            n_classes=n_classes,
            steps_per_epoch=steps_per_epoch,
            progress=progress,
            arithmetic=arithmetic,
        )
    k_models = len(subsets)
    feature_shape = tuple(X.shape[1:])
    inputs = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32)).reshape(len(X), -1)
    targets = torch.from_numpy(np.asarray(y, dtype=np.int64))
    nets, means, stds = [], [], []
    for subset, seed in zip(subsets, seeds, strict=True):
        nets.append(build_network(recipe, feature_shape, n_classes, generator=Streams(seed).init()))  # as train()
        records = inputs[torch.as_tensor(np.asarray(subset))] if recipe.standardize else inputs  # no copy unused
        m, s = fit_standardization(records, recipe.standardize)
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
    # Adam: one fused kernel per tensor instead of six elementwise passes (the update rule is Adam's).
    opt = stacked_optimizer(recipe, weights + biases)
    pool = inputs.to(arithmetic.pool_dtype)  # the records, once, in the dtype the products take
    if steps_per_epoch is None:
        steps_per_epoch = math.ceil(float(np.mean([len(s) for s in subsets])) / recipe.batch_size)
    n_steps, batch = steps_per_epoch * recipe.epochs, recipe.batch_size
    # Every step's indices and labels drawn up front, laid out so step t's (K * B) block is contiguous.
    steps = _index_streams(subsets, seeds, n_steps, batch).view(k_models, n_steps, batch).transpose(0, 1)
    steps = steps.reshape(n_steps, k_models * batch).contiguous()
    step_targets = targets[steps]  # (n_steps, K * B)
    for epoch in range(recipe.epochs):
        for step in range(steps_per_epoch):
            t = epoch * steps_per_epoch + step
            with arithmetic.step():
                with arithmetic.forward():
                    h = pool.index_select(0, steps[t]).view(k_models, batch, -1)  # (K, B, d)
                    if recipe.standardize:
                        h = (h - mean) / std
                    for i in range(n_layers):
                        h = torch.baddbmm(biases[i], h, weights[i])
                        if i < n_layers - 1:
                            h = torch.relu_(h)
                    # Sum over models of each model's mean loss: every model gets exactly its own gradient.
                    logits = h.view(-1, n_classes)
                    loss = torch.nn.functional.cross_entropy(logits, step_targets[t], reduction="sum") / batch
                opt.zero_grad()
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
                TrainedNetwork(
                    net,
                    mean=means[k].reshape(feature_shape) if recipe.standardize else torch.zeros(()),
                    std=stds[k].reshape(feature_shape) if recipe.standardize else torch.ones(()),
                )
            )
    return models


def _train_vmap(
    recipe, X, y, *, subsets, seeds, n_classes, steps_per_epoch, progress, arithmetic
) -> list[TrainedNetwork]:
    """Any network (the CNN): K copies' parameters stacked with ``torch.func.stack_module_state`` and one
    ``vmap`` of ``functional_call`` over them per step; the same batches and optimizer as the MLP path."""
    import copy

    import torch
    from torch.func import functional_call, stack_module_state, vmap

    from memberscope.training.networks import build_network

    k_models = len(subsets)
    feature_shape = tuple(X.shape[1:])
    inputs = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
    targets = torch.from_numpy(np.asarray(y, dtype=np.int64))
    nets, stats = [], []
    for subset, seed in zip(subsets, seeds, strict=True):
        nets.append(build_network(recipe, feature_shape, n_classes, generator=Streams(seed).init()))  # as train()
        records = inputs[torch.as_tensor(np.asarray(subset))] if recipe.standardize else inputs  # no copy unused
        stats.append(fit_standardization(records, recipe.standardize))
    params, buffers = stack_module_state(nets)  # name -> (K, ...) leaf tensors requiring grad
    base = copy.deepcopy(nets[0]).to("meta")
    if recipe.standardize:
        mean = torch.stack([m.expand(feature_shape) for m, _ in stats])[:, None]  # (K, 1, *feature_shape)
        std = torch.stack([s.expand(feature_shape) for _, s in stats])[:, None]
    opt = stacked_optimizer(recipe, list(params.values()))
    pool = inputs.to(arithmetic.pool_dtype)

    def forward(p, b, x):
        return functional_call(base, (p, b), (x,))

    batched = vmap(forward)
    if steps_per_epoch is None:
        steps_per_epoch = math.ceil(float(np.mean([len(s) for s in subsets])) / recipe.batch_size)
    n_steps, batch = steps_per_epoch * recipe.epochs, recipe.batch_size
    steps = _index_streams(subsets, seeds, n_steps, batch).view(k_models, n_steps, batch).transpose(0, 1)
    steps = steps.reshape(n_steps, k_models * batch).contiguous()
    step_targets = targets[steps]
    for epoch in range(recipe.epochs):
        for step in range(steps_per_epoch):
            t = epoch * steps_per_epoch + step
            with arithmetic.step():
                with arithmetic.forward():
                    h = pool.index_select(0, steps[t]).view(k_models, batch, *feature_shape)
                    if recipe.standardize:
                        h = (h - mean) / std
                    logits = batched(params, buffers, h)  # (K, B, n_classes)
                    loss = torch.nn.functional.cross_entropy(
                        logits.reshape(-1, n_classes), step_targets[t], reduction="sum"
                    )
                opt.zero_grad()
                (loss / batch).backward()
                opt.step()
        if progress is not None:
            progress()
    models = []
    with torch.no_grad():
        for k, net in enumerate(nets):
            for name, value in net.named_parameters():
                value.copy_(params[name][k])
            net.eval()
            mean_k, std_k = stats[k]
            models.append(TrainedNetwork(net, mean=mean_k, std=std_k))
    return models
