"""DP-SGD accounting: the δ memberscope uses by default and the ε that Opacus's PRV accountant gives a run.

Opacus is an optional extra (``pip install 'memberscope[dp]'``); :func:`default_delta` does not need it.
"""

from __future__ import annotations

import functools
import math

from memberscope.exceptions import MissingDependencyError

__all__ = ["ACCOUNTANT", "compute_epsilon", "default_delta", "noise_multiplier", "require_opacus"]

#: The Opacus accountant DP-SGD training and :func:`compute_epsilon` use: privacy random variables
#: (Gopi, Lee and Wutschitz, NeurIPS 2021), tighter than RDP.
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
    """The largest power of ten that is at most ``1 / (10 n_train)``: δ ≪ 1/n, as practice requires.

    A δ of ``1/n`` allows a mechanism that publishes one random training record outright; the usual advice
    (Dwork and Roth 2014, §2.3; Ponomareva et al., "How to DP-fy ML", JAIR 2023) is δ well below ``1/n``. Every
    ε memberscope reports is reported with its δ; pass ``dp_delta`` to choose another (e.g. ``1e-5``).
    """
    return float(10.0 ** math.floor(math.log10(1.0 / (10 * max(int(n_train), 1)))))


# The two functions below are pure and slow (seconds each); every reference model of an audit trains on as many
# records with the same recipe, so they all ask the same question: the answers are cached.


@functools.lru_cache(maxsize=256)
def compute_epsilon(*, noise_multiplier: float, sample_rate: float, steps: int, delta: float) -> float:
    """ε spent by ``steps`` DP-SGD steps at Poisson ``sample_rate`` and ``noise_multiplier``, at ``delta``, by
    Opacus's PRV accountant (the accountant DP-SGD training uses; Opacus's ``PrivacyEngine.get_epsilon``).

    Raises
    ------
    MissingDependencyError
        When Opacus is not installed.
    """
    require_opacus()
    from opacus.accountants import create_accountant

    accountant = create_accountant(ACCOUNTANT)
    accountant.history = [(noise_multiplier, sample_rate, steps)]
    return float(accountant.get_epsilon(delta=delta))


@functools.lru_cache(maxsize=256)
def noise_multiplier(*, target_epsilon: float, target_delta: float, sample_rate: float, epochs: int) -> float:
    """The noise multiplier σ with which ``epochs`` epochs of DP-SGD at Poisson ``sample_rate`` spend
    ``target_epsilon`` at ``target_delta`` under the PRV accountant: Opacus's ``get_noise_multiplier`` (a binary
    search to within ε 0.01, as ``PrivacyEngine.make_private_with_epsilon`` runs it).

    Raises
    ------
    MissingDependencyError
        When Opacus is not installed.
    """
    require_opacus()
    from opacus.accountants.utils import get_noise_multiplier

    return float(
        get_noise_multiplier(
            target_epsilon=target_epsilon,
            target_delta=target_delta,
            sample_rate=sample_rate,
            epochs=epochs,
            accountant=ACCOUNTANT,
        )
    )
