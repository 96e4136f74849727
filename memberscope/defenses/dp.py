"""DP-SGD through Opacus: per-record gradient clipping, Gaussian noise, Poisson sampling, PRV accounting.

``TorchRecipe(dp_epsilon=8)`` trains with :func:`train_dp`: Opacus's
``PrivacyEngine.make_private_with_epsilon`` picks the noise multiplier that spends ``dp_epsilon`` at
``dp_delta`` over ``epochs`` epochs of Poisson-sampled batches (expected size ``batch_size``), under the PRV
accountant; :class:`~opacus.utils.batch_memory_manager.BatchMemoryManager` splits each logical batch into
physical ones of at most ``dp_physical_batch`` records. The model records the ε that Opacus's accountant
reports for the steps actually taken (``model.privacy``).

Opacus is an optional extra: ``pip install 'memberscope[dp]'``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from memberscope.exceptions import MissingDependencyError

__all__ = ["ACCOUNTANT", "compute_epsilon", "default_delta", "require_opacus", "train_dp"]

ACCOUNTANT = "prv"


def require_opacus():
    """The ``opacus`` module, or :class:`MissingDependencyError` naming the extra that installs it."""
    try:
        import opacus
    except ImportError:
        raise MissingDependencyError(
            "DP-SGD needs Opacus, which is not installed; install the extra: pip install 'memberscope[dp]'"
        ) from None
    return opacus


def default_delta(n_train: int) -> float:
    """The largest power of ten that is at most ``1 / n_train`` (δ ≤ 1/n, the usual requirement)."""
    return float(10.0 ** math.floor(math.log10(1.0 / max(int(n_train), 1))))


def compute_epsilon(*, noise_multiplier: float, sample_rate: float, steps: int, delta: float) -> float:
    """ε spent by ``steps`` DP-SGD steps at ``sample_rate`` and ``noise_multiplier``, at ``delta``, by Opacus's PRV
    accountant (the accountant :func:`train_dp` trains with)."""
    require_opacus()
    from opacus.accountants import create_accountant

    accountant = create_accountant(ACCOUNTANT)
    accountant.history = [(noise_multiplier, sample_rate, steps)]
    return float(accountant.get_epsilon(delta=delta))


# Opacus warnings that are about our deliberate choices, not problems: a seeded (non-cryptographic) RNG for
# reproducible audits, and torch's note that the inputs of the first layer need no gradient.
_EXPECTED_WARNINGS = ("Secure RNG turned off", "Optimal order is the largest alpha", "Full backward hook is firing")


def train_dp(recipe, X: np.ndarray, y: np.ndarray, *, n_classes: int, seed: int, progress: Any = None):
    """Train with DP-SGD (see :func:`_train_dp`), silencing only Opacus's expected warnings."""
    import warnings

    with warnings.catch_warnings():
        for message in _EXPECTED_WARNINGS:
            warnings.filterwarnings("ignore", message=f".*{message}.*", category=UserWarning)
        return _train_dp(recipe, X, y, n_classes=n_classes, seed=seed, progress=progress)


def _train_dp(recipe, X: np.ndarray, y: np.ndarray, *, n_classes: int, seed: int, progress: Any = None):
    """Train ``recipe``'s network with DP-SGD on ``X`` (n, ...) and ``y`` (n,); a :class:`TorchModel` whose
    ``privacy`` holds ``epsilon``, ``delta``, ``noise_multiplier``, ``sample_rate``, ``steps`` and ``accountant``."""
    require_opacus()
    import torch
    from opacus import PrivacyEngine
    from opacus.utils.batch_memory_manager import BatchMemoryManager
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    from memberscope.defenses.training import augment_batch
    from memberscope.recipes.torch_nets import TorchModel, coarsen_features

    n = len(X)
    delta = recipe.dp_delta if recipe.dp_delta is not None else default_delta(n)
    torch.manual_seed(seed)
    net = recipe._network(tuple(X.shape[1:]), n_classes)
    inputs = coarsen_features(torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32)), recipe.coarsen)
    targets = torch.from_numpy(np.asarray(y, dtype=np.int64))
    loader = DataLoader(
        TensorDataset(inputs, targets),
        batch_size=min(recipe.batch_size, n),
        generator=torch.Generator().manual_seed(seed),
    )
    if recipe.optimizer == "adam":
        opt = torch.optim.Adam(net.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    else:
        opt = torch.optim.SGD(
            net.parameters(), lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay
        )
    engine = PrivacyEngine(accountant=ACCOUNTANT)
    private_net, private_opt, private_loader = engine.make_private_with_epsilon(
        module=net,
        optimizer=opt,
        data_loader=loader,
        target_epsilon=float(recipe.dp_epsilon),
        target_delta=delta,
        epochs=recipe.epochs,
        max_grad_norm=recipe.max_grad_norm,
        poisson_sampling=True,
        noise_generator=torch.Generator().manual_seed(seed + 1),
    )
    loss_fn = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    augment_gen = torch.Generator().manual_seed(seed + 2) if recipe.augment else None
    private_net.train()
    for _ in range(recipe.epochs):
        with BatchMemoryManager(
            data_loader=private_loader, max_physical_batch_size=recipe.dp_physical_batch, optimizer=private_opt
        ) as batches:
            for batch, labels in batches:
                if len(batch) == 0:  # Poisson sampling can draw an empty batch; the step still counts
                    private_opt.zero_grad(set_to_none=True)
                    private_opt.step()
                    continue
                if augment_gen is not None:
                    batch = augment_batch(
                        batch,
                        generator=augment_gen,
                        shift=recipe.augment_shift,
                        flip=recipe.augment_flip,
                        noise=recipe.augment_noise,
                    )
                private_opt.zero_grad(set_to_none=True)
                loss_fn(private_net(batch), labels).backward()
                private_opt.step()
        if progress is not None:
            progress()
    epsilon = float(engine.get_epsilon(delta))
    noise_multiplier, sample_rate, steps = engine.accountant.history[-1]
    steps = int(sum(h[2] for h in engine.accountant.history))
    # A clean copy of the trained weights (the Opacus wrapper keeps hooks and per-sample gradient buffers).
    clean = recipe._network(tuple(X.shape[1:]), n_classes)
    clean.load_state_dict({k.removeprefix("_module."): v for k, v in private_net.state_dict().items()})
    clean.eval()
    privacy = {
        "epsilon": epsilon,
        "delta": float(delta),
        "noise_multiplier": float(noise_multiplier),
        "sample_rate": float(sample_rate),
        "steps": steps,
        "max_grad_norm": float(recipe.max_grad_norm),
        "accountant": ACCOUNTANT,
        "target_epsilon": float(recipe.dp_epsilon),
    }
    return TorchModel(
        clean, n_classes=n_classes, mean=torch.zeros(()), std=torch.ones(()), privacy=privacy, coarsen=recipe.coarsen
    )
