"""Privacy statistics, apart from training and reporting: empirical ε lower bounds from membership attacks
(:mod:`~memberscope.privacy.empirical`: Clopper–Pearson bounds over thresholds, one-run audits) and the one
Clopper–Pearson interval everything else uses.
"""

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
    "EpsilonBound",
    "OneRunBound",
    "clopper_pearson",
    "clopper_pearson_interval",
    "epsilon_from_metrics",
    "epsilon_lower_bound",
    "epsilon_lower_bounds_from_csv",
    "one_run_audit",
    "one_run_epsilon",
    "one_run_p_value",
]
