"""Privacy mathematics kept apart from training and reporting: DP-SGD accounting (:mod:`.accounting`).

Pure functions only; nothing here trains a model, so reports and audits can import it without the training code.
"""

from memberscope.privacy.accounting import (
    ACCOUNTANT,
    compute_epsilon,
    default_delta,
    noise_multiplier,
    require_opacus,
)

__all__ = ["ACCOUNTANT", "compute_epsilon", "default_delta", "noise_multiplier", "require_opacus"]
