"""Reduced-precision reference training against float32 (the slow path), and the stale-weight pitfall of autocast."""

import contextlib
import threading

import numpy as np
import pytest
import torch

from memberscope import datasets, recipes
from memberscope.exceptions import UnknownNameError
from memberscope.training.precision import PRECISION_CHOICES, get_precision, native_bf16, precision_scope
from memberscope.training.vectorized import train_vectorized


@pytest.fixture(scope="module")
def digits():
    ds = datasets.load("digits")
    masks = np.random.default_rng(1).random((4, ds.n_records)) < 0.5
    return ds.X, ds.y, masks


def _train(X, y, masks, precision, *, hidden=(64,), epochs=25):
    recipe = recipes.create("mlp", hidden=list(hidden), epochs=epochs)
    subsets = [np.flatnonzero(m) for m in masks]
    trained = train_vectorized(
        recipe, X, y, subsets=subsets, seeds=list(range(len(masks))), n_classes=10, precision=precision
    )
    return [recipe.model(t, n_classes=10) for t in trained]


def _test_accuracy(models, X, y, masks):
    return np.array([(m.query(X[~mk]).argmax(1) == y[~mk]).mean() for m, mk in zip(models, masks, strict=True)])


def _params(models):
    return [torch.cat([p.flatten() for p in m.net.state_dict().values()]) for m in models]


@pytest.mark.parametrize("precision", ["bf16-matmul", "bf16"])
def test_reduced_precision_models_are_as_accurate_as_float32(digits, precision):
    X, y, masks = digits
    reference = _test_accuracy(_train(X, y, masks, "fp32"), X, y, masks)
    reduced = _train(X, y, masks, precision)
    accuracy = _test_accuracy(reduced, X, y, masks)
    assert reference.mean() > 0.8
    # ~900 test records per model: one binomial standard error is about 0.012.
    np.testing.assert_allclose(accuracy, reference, atol=0.03)


@pytest.mark.parametrize("precision", ["fp32", "bf16-matmul", "bf16"])
def test_same_seed_same_models_in_every_precision(digits, precision):
    X, y, masks = digits
    first, second = _params(_train(X, y, masks, precision, epochs=2)), _params(_train(X, y, masks, precision, epochs=2))
    for a, b in zip(first, second, strict=True):
        assert torch.equal(a, b)


def test_bf16_autocast_changes_the_arithmetic_and_returns_float32_networks(digits):
    X, y, masks = digits
    fp32, bf16 = _train(X, y, masks, "fp32", epochs=2), _train(X, y, masks, "bf16", epochs=2)
    assert all(p.dtype == torch.float32 for m in bf16 for p in m.net.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(_params(fp32), _params(bf16), strict=True))


def test_bf16_matmul_rounds_the_products_where_the_cpu_has_bf16(digits):
    """oneDNN computes float32 products from bfloat16 operands only on CPUs with bfloat16 instructions."""
    X, y, masks = digits
    Xw = np.repeat(X, 8, axis=1)  # 512 features: large enough products for oneDNN
    fp32 = _train(Xw, y, masks, "fp32", hidden=(256,), epochs=1)
    mixed = _train(Xw, y, masks, "bf16-matmul", hidden=(256,), epochs=1)
    differs = any(not torch.equal(a, b) for a, b in zip(_params(fp32), _params(mixed), strict=True))
    assert differs == native_bf16()
    assert torch.backends.mkldnn.matmul.fp32_precision != "bf16"  # the process-wide flag is restored


def _stale_loop(cache_enabled: bool, per_step: bool) -> list[float]:
    """Adam on one fixed batch; the loss of each step. A whole-loop autocast with its cache on keeps the bfloat16
    copies of the weights made on the first step: every later forward pass sees the initial weights. (Nesting
    counts too: an autocast entered per step inside any outer autocast, even a disabled one, keeps its cache.)"""
    g = torch.Generator().manual_seed(0)
    w = torch.randn(3, 8, 4, generator=g).requires_grad_()
    x, t = torch.randn(3, 16, 8, generator=g), torch.randint(0, 4, (48,), generator=g)
    opt = torch.optim.Adam([w], lr=0.1, foreach=False)
    outer = torch.autocast("cpu", dtype=torch.bfloat16, cache_enabled=cache_enabled)
    losses = []
    with contextlib.nullcontext() if per_step else outer:
        for _ in range(5):
            with outer if per_step else torch.autocast("cpu", dtype=torch.bfloat16, cache_enabled=cache_enabled):
                loss = torch.nn.functional.cross_entropy(torch.bmm(x, w).reshape(-1, 4).float(), t)
            losses.append(loss.detach().item())
            opt.zero_grad()
            loss.backward()
            opt.step()
    return losses


def test_the_stale_weight_pitfall_exists_and_per_step_autocast_avoids_it():
    stale = _stale_loop(cache_enabled=True, per_step=False)
    assert len(set(stale)) == 1  # the pitfall: five steps, the same loss (torch behaves as documented here)
    for fresh in (_stale_loop(cache_enabled=False, per_step=False), _stale_loop(cache_enabled=True, per_step=True)):
        assert fresh[-1] < fresh[0] - 0.1


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_a_callers_cached_autocast_around_training_changes_nothing(digits, precision):
    """Regression test of the pitfall: training inside a user's ``torch.autocast`` (cache on) gives the same models
    as without it; fp32 switches autocast off, bf16 enters its own per step with the cache off."""
    X, y, masks = digits
    plain = _params(_train(X, y, masks, precision, epochs=2))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        wrapped = _params(_train(X, y, masks, precision, epochs=2))
    for a, b in zip(plain, wrapped, strict=True):
        assert torch.equal(a, b)


def test_precision_scope_serializes_different_settings_and_restores_the_flag():
    before = torch.backends.mkldnn.matmul.fp32_precision
    seen, inside = [], threading.Event()
    release = threading.Event()

    def bf16_holder():
        with precision_scope("bf16-matmul"):
            seen.append(torch.backends.mkldnn.matmul.fp32_precision)
            inside.set()
            release.wait(10)

    thread = threading.Thread(target=bf16_holder)
    thread.start()
    inside.wait(10)
    with precision_scope("bf16-matmul"):  # the same setting shares
        seen.append(torch.backends.mkldnn.matmul.fp32_precision)
    waiter_got = []

    def fp32_holder():
        with precision_scope("fp32"):
            waiter_got.append(torch.backends.mkldnn.matmul.fp32_precision)

    other = threading.Thread(target=fp32_holder)
    other.start()
    other.join(0.2)
    assert other.is_alive()  # another setting waits for the bf16 holder
    release.set()
    thread.join(10)
    other.join(10)
    assert seen == ["bf16", "bf16"] and waiter_got == ["none"]
    assert torch.backends.mkldnn.matmul.fp32_precision == before


def test_unknown_precision_is_refused_by_name(digits):
    X, y, masks = digits
    assert PRECISION_CHOICES == ("auto", "fp32", "bf16-matmul", "bf16")
    with pytest.raises(UnknownNameError, match="fp16"):
        get_precision("fp16")
    with pytest.raises(UnknownNameError, match="fp16"):
        _train(X, y, masks, "fp16")
