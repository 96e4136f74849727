"""Read and write a run's files: ``results.json`` (the source of truth), ``scores.csv`` and ``roc.png``."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from memberscope.exceptions import InvalidInputError

if TYPE_CHECKING:
    from memberscope.results.schema import Results

__all__ = [
    "RECORD_COLUMNS",
    "json_safe",
    "plot_roc",
    "read_results",
    "write_outputs",
    "write_results_json",
    "write_scores_csv",
]


RECORD_COLUMNS = ("record", "member", "set", "label", "group")
"""Columns of ``scores.csv`` that describe a record; every other column is an attack's scores."""


def _json_default(value: Any) -> Any:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (tuple, set)):
        return list(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, Path):
        return str(value)
    # A model, an estimator or another object in a configuration: written as its repr, never a failed write.
    return repr(value)


def json_safe(value: Any) -> Any:
    """``value`` with everything JSON cannot hold made plain: numpy numbers and arrays, paths, tuples; any other
    object (a model, an estimator in a configuration) as its repr. NaN and infinities stay floats."""
    return json.loads(json.dumps(value, default=_json_default))


def _clean(value: Any) -> Any:
    """Replace NaN/inf (not valid JSON) by None, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def _atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_results_json(results: Any, path: Path) -> None:
    """Write :class:`~memberscope.results.Results` (or its dictionary) to ``path`` atomically; NaN becomes null."""
    if hasattr(results, "to_dict"):
        results = results.to_dict()
    text = json.dumps(_clean(json.loads(json.dumps(results, default=_json_default))), indent=2, allow_nan=False)
    _atomic_text(path, text + "\n")


def read_results(path: str | Path):
    """Typed :class:`~memberscope.results.Results` from a ``results.json`` (or the folder holding it).

    Reads schema 1.0 files too (and a folder's ``defenses.json`` of schema 1.0 when it has no results.json).
    Raises InvalidInputError for a missing, unreadable, non-JSON or wrong-schema file, naming it.
    """
    from memberscope.results.schema import Results

    path = Path(path)
    if path.is_dir():
        path = (
            path / "results.json"
            if (path / "results.json").exists() or not (path / "defenses.json").exists()
            else path / "defenses.json"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"cannot read results file {str(path)!r}: {exc}") from None
    try:
        values = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"results file {str(path)!r} is not valid JSON: {exc}") from None
    return Results.from_dict(values, where=f"results file {str(path)!r}")


def write_scores_csv(
    records: np.ndarray,
    member: np.ndarray | None,
    scores: dict[str, np.ndarray],
    path: Path,
    columns: dict[str, np.ndarray] | None = None,
) -> None:
    """Columns ``record`` (the user's ids, row numbers or dataset indices), the extra ``columns`` (label, group,
    set, ...), ``member`` (when known) and one per attack; one row per scored record."""
    import pandas as pd

    records = np.asarray(records)
    if records.dtype == object:
        as_int = pd.to_numeric(pd.Series(records), errors="coerce")
        if as_int.notna().all() and (as_int == as_int.round()).all():
            records = as_int.to_numpy().astype(np.int64)
    frame = pd.DataFrame({"record": records.astype(np.int64) if records.dtype.kind in "iu" else records})
    if member is not None:
        frame["member"] = np.asarray(member).astype(np.int8)
    for name, values in (columns or {}).items():
        frame[name] = np.asarray(values)
    for name, values in scores.items():
        frame[name] = values
    tmp = path.with_name(f".{path.name}.tmp")
    frame.to_csv(tmp, index=False, float_format="%.10g")
    os.replace(tmp, path)


def plot_roc(
    member: np.ndarray,
    scores: dict[str, np.ndarray],
    path: Path,
    *,
    results: Results | None = None,
    title: str | None = None,
) -> None:
    """Log-log ROC of every attack with the chance diagonal (as recommended by Carlini et al. 2022)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from memberscope.metrics import roc_curve

    n_non = int((~member.astype(bool)).sum())
    low = 10 ** math.floor(math.log10(1.0 / max(n_non, 1)))
    fig, ax = plt.subplots(figsize=(6.2, 5.4), dpi=110)
    grid = np.logspace(math.log10(low), 0, 200)
    ax.plot(grid, grid, ls="--", color="grey", lw=1, label="chance")
    for name, values in scores.items():
        fpr, tpr, _ = roc_curve(member, values)
        label = name
        if results is not None and name in results.attacks:
            entry = results.attacks[name]
            label = f"{name} (AUC {entry.auc:.3f}, TPR@1% {entry.metrics.tpr_at_fpr.get('0.01', float('nan')):.3f})"
        ax.plot(np.maximum(fpr, low), np.maximum(tpr, low), lw=1.4, label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(low, 1)
    ax.set_ylim(low, 1)
    ax.set_xlabel("false-positive rate")
    ax.set_ylabel("true-positive rate")
    ax.set_title(title or "Membership inference ROC (log-log)")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)


def write_outputs(result, out_dir) -> dict[str, str]:
    """Write ``results.json``, and ``scores.csv`` and ``roc.png`` when there are scores (and ground truth), for a
    :class:`~memberscope.results.RunResult`; returns the paths written."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInputError(f"cannot create output directory {str(out)!r}: {exc.strerror or exc}") from None
    paths = {"results": out / "results.json"}
    write_results_json(result.results, paths["results"])
    if result.scores:
        paths["scores"] = out / "scores.csv"
        write_scores_csv(result.records, result.member, result.scores, paths["scores"], result.columns)
    if result.scores and result.member is not None and result.member.any() and not result.member.all():
        paths["roc"] = out / "roc.png"
        plot_roc(
            result.member,
            result.scores,
            paths["roc"],
            results=result.results,
            title=f"Membership inference on {result.results.dataset.name} (log-log ROC)",
        )
    return {k: str(v) for k, v in paths.items()}
