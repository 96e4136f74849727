"""The sequential loop's Adam and SGD: torch.optim's CPU update to the bit, without importing torch._dynamo."""

import subprocess
import sys

import pytest
import torch

from memberscope.training.optimizers import SGD, Adam


def _twins(seed: int):
    """Two identical small networks (a Linear layer with bias, then one without)."""
    torch.manual_seed(seed)
    a = torch.nn.Sequential(torch.nn.Linear(7, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3, bias=False))
    b = torch.nn.Sequential(torch.nn.Linear(7, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3, bias=False))
    b.load_state_dict(a.state_dict())
    return a, b


@pytest.mark.parametrize(
    ("ours", "theirs", "settings"),
    [
        (Adam, torch.optim.Adam, {"lr": 1e-2}),
        (Adam, torch.optim.Adam, {"lr": 3e-3, "weight_decay": 5e-4}),
        (SGD, torch.optim.SGD, {"lr": 0.05}),
        (SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9, "weight_decay": 1e-3}),
    ],
    ids=["adam", "adam-l2", "sgd", "sgd-momentum-l2"],
)
def test_every_step_equals_torch_optim_to_the_bit(ours, theirs, settings):
    mine, reference = _twins(0)
    opt_mine, opt_ref = ours(mine.parameters(), **settings), theirs(reference.parameters(), **settings)
    data = torch.Generator().manual_seed(1)
    for step in range(40):
        X, y = torch.randn(16, 7, generator=data), torch.randint(0, 3, (16,), generator=data)
        for net, opt in ((mine, opt_mine), (reference, opt_ref)):
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(net(X), y).backward()
            if step % 7 == 3:  # a parameter without a gradient at a step is skipped, as torch does
                net[0].bias.grad = None
            opt.step()
        for p, q in zip(mine.parameters(), reference.parameters(), strict=True):
            assert torch.equal(p, q), step


def test_zero_grad_in_place_as_torch():
    mine, _ = _twins(0)
    opt = Adam(mine.parameters())
    mine(torch.ones(2, 7)).sum().backward()
    grads = [p.grad for p in mine.parameters()]
    opt.zero_grad(set_to_none=False)
    assert all(p.grad is g and not g.any() for p, g in zip(mine.parameters(), grads, strict=True))
    opt.zero_grad()
    assert all(p.grad is None for p in mine.parameters())


def test_sequential_training_does_not_import_torch_dynamo():
    """torch.optim's first step imports torch._dynamo (about a second per process); memberscope's loop never does."""
    code = (
        "import sys; from memberscope import datasets, recipes\n"
        "ds = datasets.load('digits')\n"
        "recipes.create('mlp', hidden=[8], epochs=1).train(ds.X[:200], ds.y[:200], n_classes=10, seed=0)\n"
        "recipes.create('mlp', hidden=[8], epochs=1, optimizer='sgd').train(ds.X[:200], ds.y[:200], n_classes=10,"
        " seed=0)\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    assert out.stdout.strip().splitlines()[-1] == "False"
