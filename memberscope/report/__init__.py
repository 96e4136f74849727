"""Turning a finished audit's ``results.json`` into decisions and documents.

``gate`` checks measured leakage against a privacy budget (for CI pipelines); ``epsilon`` turns attack scores into
empirical lower bounds on the differential-privacy ε (Clopper–Pearson over thresholds, and one-run
auditing with canaries).
"""

from __future__ import annotations

from memberscope.report.epsilon import (
    EpsilonBound,
    OneRunBound,
    epsilon_lower_bound,
    epsilon_lower_bounds_from_csv,
    one_run_audit,
    one_run_epsilon,
)
from memberscope.report.gate import GateResult, Violation, check_budget, load_results, parse_tpr_budget

__all__ = [
    "EpsilonBound",
    "GateResult",
    "OneRunBound",
    "Violation",
    "check_budget",
    "epsilon_lower_bound",
    "epsilon_lower_bounds_from_csv",
    "load_results",
    "one_run_audit",
    "one_run_epsilon",
    "parse_tpr_budget",
]
