"""Training-time defenses: each option really changes training, and the recipe config (hence cache keys) shows it."""

import numpy as np
import pytest
import torch

from memberscope import datasets
from memberscope.exceptions import InvalidInputError
from memberscope.recipes import TorchRecipe, create
from memberscope.recipes.torch_nets import EnsembleModel
from memberscope.signals import log_probabilities
from memberscope.training.defenses.augment import augment_batch
from memberscope.training.defenses.coarsen import coarsen_features
from memberscope.training.defenses.early_stopping import EarlyStopping, split_validation
from memberscope.training.defenses.l1 import l1_penalty
from memberscope.training.vectorized import supports_vectorized


@pytest.fixture(scope="module")
def digits():
    d = datasets.load("digits", seed=0)
    return d.X[:600], d.y[:600], d.X[600:900], d.y[600:900]


def _train(digits, **params):
    X, y, _, _ = digits
    recipe = create("mlp", hidden=[64], epochs=params.pop("epochs", 15), **params)
    return recipe.train(X, y, n_classes=10, seed=0)


def _true_class_prob(model, X, y):
    return np.exp(log_probabilities(model.query(X))[np.arange(len(y)), y])


def test_config_lists_only_defenses_that_are_on():
    plain = TorchRecipe().config()
    assert not {"l1", "label_smoothing", "ensemble", "dp_epsilon"} & set(plain)
    assert TorchRecipe(label_smoothing=0.1).config()["label_smoothing"] == 0.1
    assert TorchRecipe(dp_epsilon=8).config()["dp_epsilon"] == 8
    assert TorchRecipe(ensemble=3).config() != plain
    assert not supports_vectorized(TorchRecipe(l1=1e-4)) and supports_vectorized(TorchRecipe(weight_decay=1e-4))


@pytest.mark.parametrize(
    "params, fragment",
    [
        ({"label_smoothing": 1.0}, "label_smoothing"),
        ({"l1": -1}, "l1"),
        ({"ensemble": 0}, "ensemble"),
        ({"early_stopping": -2}, "early_stopping"),
        ({"dp_epsilon": 0}, "dp_epsilon"),
        ({"dp_epsilon": 1, "l1": 1e-3}, "l1 cannot be combined"),
        ({"dp_epsilon": 1, "standardize": True}, "standardize cannot be combined"),
    ],
)
def test_bad_defense_options_name_the_value(params, fragment):
    with pytest.raises(InvalidInputError, match=fragment):
        TorchRecipe(**params)


def test_label_smoothing_caps_training_confidence(digits):
    X, y, _, _ = digits
    plain = _train(digits, epochs=60, lr=3e-3)
    smooth = _train(digits, epochs=60, lr=3e-3, label_smoothing=0.3)
    # The smoothed target puts 1 - 0.3 + 0.03 = 0.73 on the true class: the optimum of the smoothed loss.
    assert _true_class_prob(plain, X, y).mean() > 0.9
    assert _true_class_prob(smooth, X, y).mean() < 0.8


def test_l1_shrinks_the_weights(digits):
    plain, sparse = _train(digits), _train(digits, l1=1e-3)
    with torch.no_grad():
        assert float(l1_penalty(sparse.net)) < 0.7 * float(l1_penalty(plain.net))


def test_early_stopping_rule_and_best_weights():
    net = torch.nn.Linear(2, 1)
    stopper = EarlyStopping(2)
    decisions = []
    for epoch, loss in enumerate([3.0, 2.0, 2.5, 2.6]):
        with torch.no_grad():
            net.bias.fill_(float(epoch))
        decisions.append(stopper.step(loss, net))
    assert decisions == [False, False, False, True]  # two epochs without improving on 2.0
    stopper.restore(net)
    assert float(net.bias.detach()) == 1.0  # the weights of the best epoch (loss 2.0)
    train, val = split_validation(100, 0.1, seed=0)
    assert len(val) == 10 and len(np.intersect1d(train, val)) == 0 and len(train) + len(val) == 100


def test_early_stopping_stops_an_overfitting_run(digits):
    model = _train(digits, epochs=300, lr=1e-2, early_stopping=3)
    assert model.epochs_run < 300


def test_augment_batch_images_and_tables():
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(64, 1, 5, 5)
    flipped_only = augment_batch(images, generator=gen, shift=0, flip=True)
    same = (flipped_only == images).flatten(1).all(1)
    mirrored = (flipped_only == images.flip(-1)).flatten(1).all(1)
    assert bool((same | mirrored).all()) and 10 < int(mirrored.sum()) < 54
    table = torch.zeros(20000, 3)
    noisy = augment_batch(table, generator=gen, shift=0, noise=0.5)
    assert abs(float(noisy.std()) - 0.5) < 0.01


def test_augment_changes_training(digits):
    X = digits[0]
    plain = _train(digits)
    augmented = _train(digits, augment=True, augment_shift=1, augment_flip=False)
    assert not np.allclose(plain.query(X), augmented.query(X))


def test_ensemble_averages_probabilities_of_disjoint_members(digits, tmp_path):
    X, y, X_test, _ = digits
    recipe = create("mlp", hidden=[32], epochs=5, ensemble=3)
    model = recipe.train(X, y, n_classes=10, seed=0)
    assert isinstance(model, EnsembleModel) and len(model.members) == 3
    probs = np.mean([np.exp(log_probabilities(m.query(X_test))) for m in model.members], axis=0)
    np.testing.assert_allclose(np.exp(model.query(X_test)), probs, rtol=1e-5, atol=1e-6)
    model.save(tmp_path / "ensemble.bin")
    loaded = recipe.load(tmp_path / "ensemble.bin", n_classes=10, feature_shape=X.shape[1:])
    np.testing.assert_allclose(loaded.query(X_test), model.query(X_test), rtol=1e-6)


def test_coarsen_rounds_features_in_training_and_queries(digits):
    x = torch.tensor([0.0, 0.1, 0.13, 0.62, 1.0])
    assert torch.allclose(coarsen_features(x, 0.25), torch.tensor([0.0, 0.0, 0.25, 0.5, 1.0]))
    X = digits[0]
    model = _train(digits, coarsen=0.5)
    # The model sees only the grid: a record and any record that rounds to the same grid point give the same outputs.
    grid = coarsen_features(torch.from_numpy(X[:20]), 0.5).numpy()
    np.testing.assert_array_equal(model.query(X[:20]), model.query(grid + 0.1))
