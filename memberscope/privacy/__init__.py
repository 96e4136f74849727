"""Privacy mathematics kept apart from training and reporting: empirical ε lower bounds from membership attacks
(:mod:`~memberscope.privacy.empirical`: Clopper–Pearson bounds over thresholds, one-run audits, and the one
Clopper–Pearson interval everything else uses) and DP-SGD accounting (:mod:`~memberscope.privacy.accounting`).

Pure functions only; nothing here trains a model, so reports and audits can import it without the training code.
"""

from memberscope.privacy.accounting import (
    ACCOUNTANT,
    compute_epsilon,
    default_delta,
    noise_multiplier,
    require_opacus,
)
from memberscope.privacy.empirical import (
    EpsilonBound,
    OneRunBound,
    clopper_pearson,
    clopper_pearson_interval,
    epsilon_from_metrics,
    epsilon_lower_bound,
    epsilon_lower_bounds_from_csv,
    one_run_audit,
    one_run_epsilon,
    one_run_p_value,
)

__all__ = [
    "ACCOUNTANT",
    "EpsilonBound",
    "OneRunBound",
    "clopper_pearson",
    "clopper_pearson_interval",
    "compute_epsilon",
    "default_delta",
    "epsilon_from_metrics",
    "epsilon_lower_bound",
    "epsilon_lower_bounds_from_csv",
    "noise_multiplier",
    "one_run_audit",
    "one_run_epsilon",
    "one_run_p_value",
    "require_opacus",
]
