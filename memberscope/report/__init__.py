"""Turning a finished audit's ``results.json`` into decisions and documents.

``gate`` checks measured leakage against a privacy budget (for CI pipelines).
"""

from __future__ import annotations

from memberscope.report.gate import GateResult, Violation, check_budget, load_results, parse_tpr_budget

__all__ = ["GateResult", "Violation", "check_budget", "load_results", "parse_tpr_budget"]
