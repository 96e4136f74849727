"""The stacked optimizer of vectorized training against torch.optim's fused Adam and SGD (the slow path)."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from memberscope import recipes
from memberscope.training import fused, vectorized
from memberscope.training.fused import FusedAdam, FusedSGD, stacked_optimizer
from memberscope.training.vectorized import train_vectorized


def _params_and_grads(seed: int):
    g = torch.Generator().manual_seed(seed)
    shapes = [(3, 7, 5), (3, 1, 5), (4,)]
    params = [torch.randn(s, generator=g) for s in shapes]
    grads = [[torch.randn(s, generator=g) for s in shapes] for _ in range(6)]
    return params, grads


def _run(make, params, grads):
    params = [p.clone().requires_grad_() for p in params]
    opt = make(params)
    for step in grads:
        opt.zero_grad()
        for p, grad in zip(params, step, strict=True):
            p.grad = grad.clone()
        opt.step()
    return [p.detach() for p in params]


@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_fused_adam_is_torch_fused_adam_to_the_bit(weight_decay):
    params, grads = _params_and_grads(0)
    ours = _run(lambda ps: FusedAdam(ps, lr=0.01, weight_decay=weight_decay), params, grads)
    theirs = _run(lambda ps: torch.optim.Adam(ps, lr=0.01, weight_decay=weight_decay, fused=True), params, grads)
    for a, b in zip(ours, theirs, strict=True):
        assert torch.equal(a, b)
    moved = _run(lambda ps: FusedAdam(ps, lr=0.01), params, grads)
    assert not torch.equal(moved[0], params[0])  # the optimizer did step


@pytest.mark.parametrize("momentum,weight_decay", [(0.9, 0.0), (0.9, 1e-3), (0.0, 1e-3)])
def test_fused_sgd_is_torch_fused_sgd_to_the_bit(momentum, weight_decay):
    params, grads = _params_and_grads(1)
    ours = _run(lambda ps: FusedSGD(ps, lr=0.05, momentum=momentum, weight_decay=weight_decay), params, grads)
    theirs = _run(
        lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=momentum, weight_decay=weight_decay, fused=True),
        params,
        grads,
    )
    for a, b in zip(ours, theirs, strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("architecture,optimizer", [("mlp", "adam"), ("mlp", "sgd"), ("cnn", "adam")])
def test_vectorized_training_with_the_stacked_optimizer_equals_torch_optim(monkeypatch, architecture, optimizer):
    """The whole vectorized run, bit for bit, against the same run with torch.optim's fused optimizers."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(160, 1, 6, 6)).astype(np.float32)
    y = rng.integers(0, 3, 160)
    subsets = [np.sort(rng.permutation(160)[:70]) for _ in range(3)]
    recipe = recipes.create(
        architecture, hidden=[12], channels=[2, 3], epochs=2, batch_size=16, optimizer=optimizer, weight_decay=1e-3
    )

    def states():
        trained = train_vectorized(recipe, X, y, subsets=subsets, seeds=[4, 5, 6], n_classes=3)
        return [list(t.net.state_dict().values()) for t in trained]

    ours = states()

    def torch_optim(recipe, params):
        if recipe.optimizer == "adam":
            return torch.optim.Adam(params, lr=recipe.lr, weight_decay=recipe.weight_decay, fused=True)
        return torch.optim.SGD(
            params, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay, fused=True
        )

    monkeypatch.setattr(vectorized, "stacked_optimizer", torch_optim)
    theirs = states()
    for model_ours, model_theirs in zip(ours, theirs, strict=True):
        for a, b in zip(model_ours, model_theirs, strict=True):
            assert torch.equal(a, b)


def test_stacked_optimizer_follows_the_recipe():
    params = [torch.zeros(2, requires_grad=True)]
    adam = stacked_optimizer(recipes.create("mlp", lr=0.02, weight_decay=0.1), params)
    sgd = stacked_optimizer(recipes.create("mlp", optimizer="sgd", lr=0.3, momentum=0.5), params)
    assert isinstance(adam, FusedAdam) and (adam.lr, adam.weight_decay) == (0.02, 0.1)
    assert isinstance(sgd, FusedSGD) and (sgd.lr, sgd.momentum) == (0.3, 0.5)
    assert fused._has_fused_kernels()


def test_vectorized_training_does_not_import_the_compiler():
    """torch.optim.Optimizer imports torch._dynamo (about a second per process); vectorized training must not."""
    code = (
        "import sys, numpy as np\n"
        "from memberscope import recipes\n"
        "from memberscope.training.vectorized import train_vectorized\n"
        "X = np.random.default_rng(0).normal(size=(40, 5)).astype(np.float32); y = np.arange(40) % 2\n"
        "train_vectorized(recipes.create('mlp', hidden=[4], epochs=1, batch_size=8), X, y,\n"
        "                 subsets=[np.arange(20), np.arange(20, 40)], seeds=[0, 1], n_classes=2)\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    assert out.stdout.strip().splitlines()[-1] == "False"
