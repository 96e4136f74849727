"""Turning a finished run's ``results.json`` into decisions and documents.

One :class:`~memberscope.report.model.ReportModel` per run (:func:`build_report`) is rendered as HTML
(:func:`write_html`) or Markdown (:func:`write_markdown`); :func:`check_budget` gates measured leakage against a
privacy budget (for CI pipelines); :mod:`~memberscope.report.history` keeps past runs.
"""

from __future__ import annotations

from memberscope.report.gate import GateResult, Violation, check_budget, load_results, parse_tpr_budget
from memberscope.report.html import write_html
from memberscope.report.markdown import write_markdown
from memberscope.report.model import ReportModel, build_report

__all__ = [
    "GateResult",
    "ReportModel",
    "Violation",
    "build_report",
    "check_budget",
    "load_results",
    "parse_tpr_budget",
    "write_html",
    "write_markdown",
]
