"""What a run found: typed :class:`Results` (the content of ``results.json``), the run's per-record scores
(:class:`AuditResult`), and the files they are written to.

One schema for every command (audit, defend, red team, LLM audit, dataset inference), one version
(:data:`SCHEMA_VERSION`, reading 1.0 files too), and one rule for the strongest attack
(:func:`strongest_attack`), used by every renderer and the gate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from memberscope.results.io import plot_roc, read_results, write_outputs, write_results_json, write_scores_csv
from memberscope.results.schema import (
    KINDS,
    SCHEMA_VERSION,
    AttackResult,
    DatasetInfo,
    GameInfo,
    Results,
    TargetInfo,
    headline_fpr,
    strongest_attack,
)

__all__ = [
    "KINDS",
    "SCHEMA_VERSION",
    "AttackResult",
    "AuditResult",
    "DatasetInfo",
    "GameInfo",
    "Results",
    "TargetInfo",
    "headline_fpr",
    "plot_roc",
    "read_results",
    "strongest_attack",
    "write_outputs",
    "write_results_json",
    "write_scores_csv",
]


@dataclass
class AuditResult:
    """The outcome of a run: its :class:`Results` and the per-record scores behind them.

    Attributes
    ----------
    results : Results
        The content of ``results.json`` (``results["attacks"]`` reads its JSON view).
    records : ndarray of shape (n,)
        The user's id (or row number, or dataset index) of each scored record.
    member : ndarray of shape (n,), bool, or None
        Ground truth, when known.
    labels : ndarray of shape (n,) or None
        Class label (code) of each record.
    scores : dict of str to ndarray of shape (n,)
        Attack name → score per record, higher = more likely member.
    columns : dict of str to ndarray of shape (n,)
        Further per-record columns of ``scores.csv``: the class ``label`` by name, the ``group``, the ``set`` a
        record came from (members or non-members file), ...
    """

    results: Results
    records: np.ndarray
    member: np.ndarray | None
    labels: np.ndarray | None = None
    scores: dict[str, np.ndarray] = field(default_factory=dict)
    columns: dict[str, np.ndarray] = field(default_factory=dict)

    def write(self, out_dir: str | Path) -> dict[str, str]:
        """Write ``results.json``, ``scores.csv`` and ``roc.png`` into ``out_dir``; returns the paths."""
        return write_outputs(self, out_dir)
