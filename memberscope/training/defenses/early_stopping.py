"""Early stopping: a ``validation_fraction`` of the training records is held out, and training stops when their
loss has not improved for ``early_stopping`` epochs (the patience), keeping the best epoch's weights.

``stop_epoch`` stops training after that many epochs at the latest: the hook for a stopping epoch chosen elsewhere,
such as the suggested stopping epoch of a privacy-per-epoch curve
(:meth:`memberscope.monitor.PrivacyCurve.suggest_stop`, whose ``defend_spec`` is
``early-stopping:0:stop_epoch=E`` — patience 0: no validation hold-out, stop after epoch E). With both set, training
stops at whichever comes first."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from memberscope.exceptions import InvalidInputError
from memberscope.training.defenses._base import TrainingDefense, register
from memberscope.training.options import Interval, Option

__all__ = ["EarlyStopping", "EarlyStoppingDefense", "split_validation"]


def split_validation(n: int, fraction: float, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded disjoint sorted ``(train, validation)`` positions in ``range(n)``; validation gets ``ceil(fraction n)``.

    Raises
    ------
    InvalidInputError
        When either part would be empty.
    """
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


@register
class EarlyStoppingDefense(TrainingDefense):
    name = "early-stopping"
    options = (
        Option("early_stopping", 0, Interval(0, integer=True), meaning="patience in epochs"),
        Option("validation_fraction", 0.1, Interval(0, 1, closed="neither")),
        Option("stop_epoch", None, Interval(1, integer=True), meaning="stop after this epoch", optional=True),
    )
    option, preset = "early_stopping", 3

    @classmethod
    def is_active(cls, recipe) -> bool:
        return recipe.early_stopping != 0 or recipe.stop_epoch is not None

    def prepare_data(self, run) -> None:
        if not self.recipe.early_stopping:  # stop_epoch alone: no validation records to hold out
            return
        from memberscope.game import derive_seed

        train, validation = split_validation(
            len(run.inputs), self.recipe.validation_fraction, seed=derive_seed(run.streams.seed, "validation")
        )
        self.inputs, self.targets = run.inputs[validation], run.targets[validation]
        run.inputs, run.targets = run.inputs[train], run.targets[train]

    def start(self, run) -> None:
        self.stopper = EarlyStopping(int(self.recipe.early_stopping)) if self.recipe.early_stopping else None

    def end_epoch(self, run) -> bool:
        stop = self.recipe.stop_epoch is not None and run.epochs_run >= self.recipe.stop_epoch
        if self.stopper is None:
            return stop
        import torch
        from torch import nn

        run.net.eval()
        with torch.no_grad():
            logits = run.net((self.inputs - run.mean) / run.std)
            loss = float(nn.functional.cross_entropy(logits, self.targets))
        run.net.train()
        return self.stopper.step(loss, run.net) or stop

    def finish(self, run) -> None:
        if self.stopper is not None:
            self.stopper.restore(run.net)
