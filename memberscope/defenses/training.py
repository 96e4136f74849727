"""Training-time defenses: the pieces :class:`memberscope.recipes.TorchRecipe` switches on by its options.

Each is a recipe option (``model_params``), so a defended model is trained, cached and attacked like any other:

- ``l1``: L1 penalty ``l1 * sum |w|`` on the weights, added to the loss (L2 is ``weight_decay``);
- ``label_smoothing``: cross-entropy against targets smoothed towards uniform (Szegedy et al. 2016);
- ``early_stopping``: patience in epochs; a ``validation_fraction`` of the training records is held out and
  training stops when its loss has not improved for that many epochs, keeping the best weights;
- ``augment``: images (``(n, c, h, w)``) get random shifts of up to ``augment_shift`` pixels and horizontal flips,
  other records Gaussian noise of standard deviation ``augment_noise`` (in standardized units when ``standardize``);
- ``ensemble``: ``n`` models trained on disjoint subsets of the training records, their probabilities averaged;
- ``dp_epsilon``: DP-SGD through Opacus (:mod:`memberscope.defenses.dp`).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np

from memberscope.exceptions import InvalidInputError
from memberscope.targets import Target

__all__ = [
    "EarlyStopping",
    "EnsembleModel",
    "augment_batch",
    "l1_penalty",
    "split_validation",
    "train_ensemble",
]


def l1_penalty(net):
    """``sum |w|`` over the weight matrices and kernels of ``net`` (biases are not penalised, like weight decay)."""
    return sum(p.abs().sum() for name, p in net.named_parameters() if name.endswith("weight"))


def _shift_images(images, dy, dx):
    """Shift each image ``i`` of ``(n, c, h, w)`` by ``(dy[i], dx[i])`` pixels, filling with zeros."""
    import torch

    n, _, h, w = images.shape
    pad = int(max(dy.abs().max().item(), dx.abs().max().item(), 0))
    if pad == 0:
        return images
    padded = torch.nn.functional.pad(images, (pad, pad, pad, pad))
    rows = (torch.arange(h)[None, :] + pad - dy[:, None]).clamp(0, h + 2 * pad - 1)  # (n, h)
    cols = (torch.arange(w)[None, :] + pad - dx[:, None]).clamp(0, w + 2 * pad - 1)  # (n, w)
    idx_n = torch.arange(n)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[idx_n, rows[:, :, None], cols[:, None, :]]  # (n, h, w, c)
    return out.permute(0, 3, 1, 2).contiguous()


def augment_batch(inputs, *, generator, shift: int, flip: bool = True, noise: float = 0.1):
    """A randomly augmented copy of a minibatch.

    Images ``(n, c, h, w)``: each is flipped horizontally with probability 1/2 (when ``flip``) and shifted by up
    to ``shift`` pixels in each direction (zero fill). Anything else: ``inputs + noise * N(0, 1)``.
    """
    import torch

    if inputs.ndim == 4:
        n = inputs.shape[0]
        out = inputs
        if flip:
            flipped = torch.rand(n, generator=generator) < 0.5
            out = torch.where(flipped[:, None, None, None], inputs.flip(-1), inputs)
        if shift > 0:
            dy = torch.randint(-shift, shift + 1, (n,), generator=generator)
            dx = torch.randint(-shift, shift + 1, (n,), generator=generator)
            out = _shift_images(out, dy, dx)
        return out
    return inputs + noise * torch.randn(inputs.shape, generator=generator)


def split_validation(n: int, fraction: float, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded disjoint ``(train, validation)`` positions in ``range(n)``; validation gets ``ceil(fraction n)``."""
    n_val = int(np.ceil(fraction * n))
    if n_val < 1 or n_val >= n:
        raise InvalidInputError(
            f"early stopping holds out validation_fraction={fraction} of {n} training records, "
            f"which leaves {n_val} for validation and {n - n_val} for training; expected both >= 1"
        )
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


class EarlyStopping:
    """Tracks the validation loss; ``step(loss, net)`` is True when training should stop.

    Keeps a copy of the best weights seen; :meth:`restore` loads them back.
    """

    def __init__(self, patience: int):
        if patience < 1:
            raise InvalidInputError(f"early stopping patience must be >= 1 epoch; got {patience}")
        self.patience = patience
        self.best_loss = float("inf")
        self.best_epoch = -1
        self.best_state: dict[str, Any] | None = None
        self.epochs_seen = 0

    def step(self, loss: float, net) -> bool:
        epoch = self.epochs_seen
        self.epochs_seen += 1
        if loss < self.best_loss:
            self.best_loss, self.best_epoch = loss, epoch
            self.best_state = copy.deepcopy(net.state_dict())
        return epoch - self.best_epoch >= self.patience

    def restore(self, net) -> None:
        if self.best_state is not None:
            net.load_state_dict(self.best_state)


class EnsembleModel(Target):
    """Models trained on disjoint subsets; answers ``log(mean_j softmax(z_j))`` (log of the averaged probabilities)."""

    output_kind = "logits"

    def __init__(self, members: list[Target], *, n_classes: int):
        super().__init__()
        if not members:
            raise InvalidInputError("an ensemble needs at least one model")
        self.members, self.n_classes = members, n_classes
        eps = [getattr(m, "privacy", None) for m in members]
        # Disjoint subsets: by parallel composition the ensemble is as private as its least private member.
        self.privacy = max((p for p in eps if p), key=lambda p: p["epsilon"], default=None)

    def _query(self, X: np.ndarray) -> np.ndarray:
        from scipy.special import logsumexp

        from memberscope.signals import log_probabilities
        from memberscope.targets.outputs import query_logits

        logp = np.stack([log_probabilities(query_logits(m, X)) for m in self.members])
        self.queries_spent += len(X)
        return (logsumexp(logp, axis=0) - np.log(len(self.members))).astype(np.float32)

    def save(self, path: Path) -> None:
        import torch

        torch.save(
            {
                "ensemble": [{"net": m.net.state_dict(), "mean": m.mean, "std": m.std} for m in self.members],
                "privacy": self.privacy,
            },
            path,
        )


def train_ensemble(recipe, X: np.ndarray, y: np.ndarray, *, n_classes: int, seed: int, progress=None):
    """``recipe.ensemble`` copies of ``recipe`` (with ``ensemble=1``), each on a disjoint seeded subset of ``X``."""
    import dataclasses

    from memberscope.game import derive_seed

    n_members = recipe.ensemble
    if len(X) < 2 * n_members:
        raise InvalidInputError(
            f"an ensemble of {n_members} models on disjoint subsets needs at least {2 * n_members} training records; "
            f"got {len(X)}"
        )
    member_recipe = dataclasses.replace(recipe, ensemble=1)
    order = np.random.default_rng(derive_seed(seed, "ensemble-split")).permutation(len(X))
    members = []
    for j, part in enumerate(np.array_split(order, n_members)):
        part = np.sort(part)
        members.append(
            member_recipe.train(
                X[part], y[part], n_classes=n_classes, seed=derive_seed(seed, "ensemble", j), progress=None
            )
        )
    if progress is not None:
        for _ in range(recipe.epochs):
            progress()
    return EnsembleModel(members, n_classes=n_classes)
