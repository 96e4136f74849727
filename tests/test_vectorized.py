"""Vectorized reference-model training against the plain sequential loop."""

import numpy as np
import pytest

from memberscope import datasets, recipes
from memberscope.api import run_audit
from memberscope.config import AuditConfig
from memberscope.exceptions import InvalidInputError
from memberscope.training.vectorized import supports_vectorized, train_vectorized


@pytest.mark.parametrize("optimizer,hidden,weight_decay", [("adam", [32, 16], 0.0), ("sgd", [], 1e-3)])
def test_equal_subsets_give_exactly_the_sequential_models(optimizer, hidden, weight_decay):
    """Same-size subsets and a batch size dividing them: identical batches, identical models."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 1, 4, 5)).astype(np.float32)
    y = rng.integers(0, 3, 300)
    subsets = [np.sort(rng.permutation(300)[:96]) for _ in range(3)]
    recipe = recipes.create(
        "mlp" if hidden else "logreg",
        hidden=hidden,
        epochs=3,
        batch_size=32,
        optimizer=optimizer,
        lr=0.01,
        weight_decay=weight_decay,
    )
    fast = [recipe.model(t, n_classes=3) for t in train_vectorized(recipe, X, y, subsets=subsets, seeds=[5, 6, 7],
                                                                   n_classes=3)]  # fmt: skip
    for model, subset, seed in zip(fast, subsets, [5, 6, 7], strict=True):
        slow = recipe.train(X[subset], y[subset], n_classes=3, seed=seed)
        for a, b in zip(model.net.state_dict().values(), slow.net.state_dict().values(), strict=True):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(model.query(X), slow.query(X), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("optimizer,standardize", [("adam", False), ("sgd", True)])
def test_cnn_vectorized_with_vmap_gives_the_sequential_models(optimizer, standardize):
    """The CNN goes through torch.func (stack_module_state + vmap of functional_call): same models."""
    rng = np.random.default_rng(2)
    X = rng.normal(size=(200, 1, 8, 8)).astype(np.float32)
    y = rng.integers(0, 3, 200)
    subsets = [np.sort(rng.permutation(200)[:64]) for _ in range(3)]
    recipe = recipes.create(
        "cnn", channels=[4, 8], hidden=[16], epochs=2, batch_size=32, optimizer=optimizer, standardize=standardize
    )
    fast = [recipe.model(t, n_classes=3) for t in train_vectorized(recipe, X, y, subsets=subsets, seeds=[1, 2, 3],
                                                                   n_classes=3)]  # fmt: skip
    for model, subset, seed in zip(fast, subsets, [1, 2, 3], strict=True):
        slow = recipe.train(X[subset], y[subset], n_classes=3, seed=seed)
        for a, b in zip(model.net.state_dict().values(), slow.net.state_dict().values(), strict=True):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(model.query(X), slow.query(X), rtol=1e-4, atol=1e-4)


def test_vectorized_models_match_sequential_accuracy_on_digits():
    ds = datasets.load("digits")
    rng = np.random.default_rng(1)
    masks = rng.random((6, ds.n_records)) < 0.5  # unequal subset sizes
    subsets = [np.flatnonzero(m) for m in masks]
    recipe = recipes.create("mlp", hidden=[64], epochs=40)
    trained = train_vectorized(recipe, ds.X, ds.y, subsets=subsets, seeds=list(range(6)), n_classes=10)
    fast = [recipe.model(t, n_classes=10) for t in trained]
    slow = [recipe.train(ds.X[s], ds.y[s], n_classes=10, seed=k) for k, s in enumerate(subsets)]

    def test_acc(model, mask):
        return (model.query(ds.X[~mask]).argmax(1) == ds.y[~mask]).mean()

    fast_acc = np.mean([test_acc(m, k) for m, k in zip(fast, masks, strict=True)])
    slow_acc = np.mean([test_acc(m, k) for m, k in zip(slow, masks, strict=True)])
    assert fast_acc > 0.9 and abs(fast_acc - slow_acc) < 0.02


def test_audit_results_agree_across_train_modes():
    common = dict(
        dataset="digits",
        model_params={"hidden": [64], "epochs": 80},
        reference_models=4,
        attacks=["lira-online", "rmia-online"],
        n_bootstrap=300,
        use_cache=False,
    )
    seq = run_audit(AuditConfig(train_mode="sequential", **common), progress=False).results
    vec = run_audit(AuditConfig(train_mode="vectorized", **common), progress=False).results
    assert vec["timings"]["models_trained"] == 5
    for name in ("lira-online", "rmia-online"):
        (a_lo, a_hi), (b_lo, b_hi) = seq["attacks"][name]["auc_ci"], vec["attacks"][name]["auc_ci"]
        assert a_lo <= b_hi and b_lo <= a_hi, (name, seq["attacks"][name]["auc_ci"], vec["attacks"][name]["auc_ci"])
    assert vec["target"]["train_accuracy"] == seq["target"]["train_accuracy"]  # the target is trained alike


def test_vectorized_mode_reuses_the_cache_and_falls_back_for_other_recipes(tmp_path, monkeypatch):
    monkeypatch.setenv("MEMBERSCOPE_CACHE_DIR", str(tmp_path))
    cfg = AuditConfig(
        dataset="digits",
        model_params={"hidden": [32], "epochs": 5},
        reference_models=4,
        attacks=["loss", "lira-offline"],
        n_bootstrap=50,
        train_mode="vectorized",
    )
    first = run_audit(cfg, progress=False)
    again = run_audit(cfg, progress=False)
    assert again.results["timings"]["models_from_cache"] == 5
    np.testing.assert_array_equal(first.scores["lira-offline"], again.scores["lira-offline"])
    cnn = run_audit(
        AuditConfig(
            dataset="digits",
            model="cnn",
            model_params={"epochs": 2, "dropout": 0.25},
            reference_models=2,
            attacks=["loss"],
            n_bootstrap=20,
            train_mode="vectorized",
        ),
        progress=False,
    )
    assert any("trained torch cnn models sequentially" in w for w in cnn.results["warnings"])
    assert not supports_vectorized(recipes.create("sklearn"))
    with pytest.raises(InvalidInputError, match="train_mode must be one of 'sequential', 'vectorized'; got 'gpu'"):
        AuditConfig(train_mode="gpu")
    with pytest.raises(InvalidInputError, match="vectorized training supports torch mlp, cnn and logreg"):
        train_vectorized(
            recipes.create("cnn", dropout=0.5),
            np.zeros((4, 1, 8, 8)),
            np.zeros(4),
            subsets=[np.arange(4)],
            seeds=[0],
            n_classes=2,
        )
