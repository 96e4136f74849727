"""Bit for bit: a seeded audit with DP-SGD or dropout gives the same scores wherever its models train.

Before training drew from explicit per-model generators, threads (joblib's threading backend) shared torch's
process-wide generator: DP-SGD's initial weights (seeded without the lock) and every dropout mask could come from
another model's stream, and threaded runs differed from the sequential one (dropout: every run).
"""

import numpy as np
import pytest
import torch

from memberscope.api import run_audit
from memberscope.config import AuditConfig
from memberscope.recipes import create
from memberscope.training.networks import Dropout, build_network
from tests.test_parallel import one_torch_thread

SMALL = dict(dataset="digits", n_records=500, reference_models=3, attacks=["loss", "lira-online"], n_bootstrap=20)
CASES = {
    "dp-sgd": {"hidden": [16], "epochs": 2, "batch_size": 64, "dp_epsilon": 8.0},
    "dropout": {"hidden": [32], "epochs": 4, "dropout": 0.5},
}
_sequential: dict[str, dict[str, np.ndarray]] = {}


def _audit(case: str, **where) -> dict[str, np.ndarray]:
    config = AuditConfig(**SMALL, model_params=CASES[case], seed=11, use_cache=False, **where)
    return run_audit(config, progress=False).scores


def sequential(case: str) -> dict[str, np.ndarray]:
    if case not in _sequential:
        with one_torch_thread():  # workers run torch on one thread each
            _sequential[case] = _audit(case)
    return _sequential[case]


def _assert_same(scores: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert set(scores) == set(expected)
    for name, score in expected.items():
        np.testing.assert_array_equal(scores[name], score, err_msg=name)


@pytest.mark.parametrize("case", list(CASES))
def test_threads_give_the_sequential_scores_every_time(case):
    expected = sequential(case)
    with one_torch_thread():
        for _ in range(3):  # the old race showed in some runs only
            _assert_same(_audit(case, n_jobs=4, backend="threading"), expected)


@pytest.mark.parametrize("case", list(CASES))
def test_loky_workers_give_the_sequential_scores(case):
    _assert_same(_audit(case, n_jobs=2, backend="loky"), sequential(case))


@pytest.mark.parametrize("case", list(CASES))
def test_ray_workers_give_the_sequential_scores(case, ray_cluster):
    _assert_same(_audit(case, n_jobs=2, backend="ray", ray_address=ray_cluster), sequential(case))


@pytest.mark.parametrize("params", [{"dropout": 0.5}, {"dp_epsilon": 8.0, "epochs": 1}, {"augment": True}])
def test_training_never_touches_the_global_generator(params):
    rng = np.random.default_rng(0)
    X, y = rng.random((64, 1, 4, 4), dtype=np.float32), rng.integers(0, 3, 64)
    recipe = create("mlp", **{"hidden": [8], "epochs": 2, "batch_size": 16, **params})
    torch.manual_seed(1)
    state = torch.random.get_rng_state()
    first = recipe.train(X, y, n_classes=3, seed=4).query(X)
    assert torch.equal(torch.random.get_rng_state(), state)
    torch.manual_seed(2)  # another global state: the same model
    np.testing.assert_array_equal(recipe.train(X, y, n_classes=3, seed=4).query(X), first)


@pytest.mark.parametrize("architecture,shape", [("mlp", (1, 8, 8)), ("cnn", (1, 8, 8)), ("logreg", (30,))])
def test_generator_initialization_equals_torchs_default_from_the_same_seed(architecture, shape):
    """The weights a seed gave before the generators were explicit: torch.manual_seed, then build the layers."""
    from torch import nn

    recipe = create(architecture, hidden=[16, 8], channels=[4, 8])
    torch.manual_seed(1234)
    if architecture == "logreg":
        reference = nn.Sequential(nn.Flatten(), nn.Linear(30, 10))
    elif architecture == "mlp":
        reference = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 8), nn.ReLU(),
                                  nn.Linear(8, 10))  # fmt: skip
    else:
        reference = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                  nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                                  nn.Linear(8 * 2 * 2, 16), nn.ReLU(), nn.Linear(16, 10))  # fmt: skip
    net = build_network(recipe, shape, 10, generator=torch.Generator().manual_seed(1234))
    expected = reference.state_dict()
    assert list(net.state_dict()) == list(expected)
    for name, value in net.state_dict().items():
        assert torch.equal(value, expected[name]), name


def test_dropout_masks_come_from_the_given_generator():
    layer = Dropout(0.5).train()
    x = torch.ones(2000)
    with pytest.raises(RuntimeError, match="generator"):
        layer(x)
    layer.generator = torch.Generator().manual_seed(3)
    first = layer(x)
    layer.generator = torch.Generator().manual_seed(3)
    assert torch.equal(layer(x), first)
    assert set(first.unique().tolist()) == {0.0, 2.0} and abs(float(first.mean()) - 1.0) < 0.1  # kept units x 1/(1-p)
    assert torch.equal(layer.eval()(x), x)
