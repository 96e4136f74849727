"""DP-SGD (Abadi et al., CCS 2016) through Opacus: per-record gradient clipping, Gaussian noise, Poisson sampling.

``dp_epsilon=8`` switches it on. The noise multiplier is the one that spends ``dp_epsilon`` at ``dp_delta`` (None:
the largest power of ten <= 1 / (10 n_train), δ well below 1/n) over ``epochs`` epochs of Poisson-sampled batches of
expected size ``batch_size`` under the PRV accountant (:func:`memberscope.privacy.accounting.noise_multiplier`:
Opacus's search, as ``PrivacyEngine.make_private_with_epsilon`` runs it, cached across the models of an audit). Opacus's
``PrivacyEngine.make_private`` wraps the network, optimizer and data, and its ``BatchMemoryManager`` splits each
logical batch into physical ones of at most ``dp_physical_batch`` records. Randomness is the model's own: the
Poisson sampler draws from its ``batches`` stream, the noise from a spawned stream. The trained model records the
ε Opacus's accountant gives the steps taken (``privacy``).

An empty Poisson batch (likely with small batches on few records) is a step like any other: the empty batch goes
through the network, Opacus clips and sums no per-record gradient, adds the noise and steps, and the accountant
counts the step.
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections.abc import Mapping
from typing import ClassVar

from memberscope.training.defenses._base import TrainingDefense, register
from memberscope.training.options import Interval, Option

__all__ = ["DPSGD"]

# Notices about deliberate choices, not problems: a seeded (non-cryptographic) generator for reproducible audits;
# the accountant's search reaching its largest order; torch's note that the first layer's inputs need no gradient.
_EXPECTED_WARNINGS = ("Secure RNG turned off", "Optimal order is the largest alpha", "Full backward hook is firing")
_FILTERS = [("ignore", f".*{m}.*") for m in _EXPECTED_WARNINGS]
_filters_lock = threading.Lock()
_filters_users = 0


@contextlib.contextmanager
def _expected_warnings_ignored():
    """Ignore :data:`_EXPECTED_WARNINGS` while any thread trains with DP-SGD.

    ``warnings.catch_warnings`` is not thread-safe (threads leaving it restore each other's filter lists, letting
    warnings through and dropping filters): the filters are added by the first DP-SGD training in the process and
    removed when the last one running ends.
    """
    global _filters_users
    with _filters_lock:
        if _filters_users == 0:
            for action, message in _FILTERS:
                warnings.filterwarnings(action, message=message, category=UserWarning)
        _filters_users += 1
    try:
        yield
    finally:
        with _filters_lock:
            _filters_users -= 1
            if _filters_users == 0:
                import re

                ours = {(action, re.compile(message, re.I), UserWarning, None, 0) for action, message in _FILTERS}
                warnings.filters[:] = [f for f in warnings.filters if f not in ours]
                mutated = getattr(warnings, "_filters_mutated", None)
                if mutated is not None:
                    mutated()  # drop cached decisions, as warnings.filterwarnings does


@register
class DPSGD(TrainingDefense):
    name, title = "dp-sgd", "DP-SGD"
    options = (
        Option("dp_epsilon", None, Interval(0, closed="neither"), optional=True),
        Option("dp_delta", None, Interval(0, 1, closed="neither"), optional=True),
        Option("max_grad_norm", 1.0, Interval(0, closed="neither")),
        Option("dp_physical_batch", 256, Interval(1)),
    )
    option, preset = "dp_epsilon", 8.0
    needs_torch_optimizer = True  # Opacus wraps a torch.optim.Optimizer
    aliases: ClassVar[Mapping[str, str]] = {
        "eps": "dp_epsilon",
        "epsilon": "dp_epsilon",
        "delta": "dp_delta",
        "clip": "max_grad_norm",
    }
    excludes: ClassVar[Mapping[str, str]] = {
        "l1": "the penalty's gradient is not clipped per record",
        "early_stopping": "the validation loss is not accounted",
        "standardize": "the mean and std are not private",
    }

    @classmethod
    def check_available(cls) -> None:
        from memberscope.privacy.accounting import require_opacus

        require_opacus()

    def context(self):
        return _expected_warnings_ignored()

    def wrap(self, run) -> None:
        from opacus import PrivacyEngine
        from torch.utils.data import DataLoader, TensorDataset

        from memberscope.privacy.accounting import ACCOUNTANT, default_delta, noise_multiplier

        r = self.recipe
        n = len(run.inputs)
        self.delta = r.dp_delta if r.dp_delta is not None else default_delta(n)
        loader = DataLoader(
            TensorDataset(run.inputs, run.targets), batch_size=min(r.batch_size, n), generator=run.batch_generator
        )
        self.engine = PrivacyEngine(accountant=ACCOUNTANT)
        sigma = noise_multiplier(
            target_epsilon=float(r.dp_epsilon), target_delta=self.delta, sample_rate=1 / len(loader), epochs=r.epochs
        )
        run.net, run.optimizer, self.loader = self.engine.make_private(
            module=run.net,
            optimizer=run.optimizer,
            data_loader=loader,
            noise_multiplier=sigma,
            max_grad_norm=r.max_grad_norm,
            poisson_sampling=True,
            noise_generator=run.streams.spawn(),
        )
        self.optimizer = run.optimizer
        run.batches = self._physical_batches

    def _physical_batches(self):
        from opacus.utils.batch_memory_manager import BatchMemoryManager

        return BatchMemoryManager(
            data_loader=self.loader, max_physical_batch_size=self.recipe.dp_physical_batch, optimizer=self.optimizer
        )

    def finish(self, run) -> None:
        from memberscope.privacy.accounting import ACCOUNTANT, compute_epsilon
        from memberscope.training.networks import build_network

        history = self.engine.accountant.history
        noise_multiplier, sample_rate, _ = history[-1]
        steps = int(sum(h[2] for h in history))
        if len(history) == 1:  # one (σ, q) throughout: the same computation as the engine's, cached
            epsilon = compute_epsilon(
                noise_multiplier=noise_multiplier, sample_rate=sample_rate, steps=steps, delta=self.delta
            )
        else:
            epsilon = float(self.engine.get_epsilon(self.delta))
        # A clean copy of the trained weights (the Opacus wrapper keeps hooks and per-sample gradient buffers).
        clean = build_network(self.recipe, run.feature_shape, run.n_classes)
        clean.load_state_dict({k.removeprefix("_module."): v for k, v in run.net.state_dict().items()})
        run.net = clean
        run.privacy = {
            "epsilon": epsilon,
            "delta": float(self.delta),
            "noise_multiplier": float(noise_multiplier),
            "sample_rate": float(sample_rate),
            "steps": steps,
            "max_grad_norm": float(self.recipe.max_grad_norm),
            "accountant": ACCOUNTANT,
            "target_epsilon": float(self.recipe.dp_epsilon),
        }
