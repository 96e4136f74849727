"""Write an audit's outputs: results.json (the source of truth), scores.csv and roc.png."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from memberscope.exceptions import InvalidInputError

__all__ = ["plot_roc", "results_table", "write_outputs", "write_results_json", "write_scores_csv"]


def _json_default(value: Any) -> Any:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (tuple, set)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


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


def write_results_json(results: dict[str, Any], path: Path) -> None:
    text = json.dumps(_clean(json.loads(json.dumps(results, default=_json_default))), indent=2, allow_nan=False)
    _atomic_text(path, text + "\n")


def write_scores_csv(records: np.ndarray, member: np.ndarray, scores: dict[str, np.ndarray], path: Path) -> None:
    """Columns ``record, member`` and one per attack; one row per audited record."""
    import pandas as pd

    frame = pd.DataFrame({"record": records.astype(np.int64), "member": member.astype(np.int8)})
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
    results: dict[str, Any] | None = None,
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
        if results is not None and name in results.get("attacks", {}):
            entry = results["attacks"][name]
            label = f"{name} (AUC {entry['auc']:.3f}, TPR@1% {entry['tpr_at_fpr'].get('0.01', float('nan')):.3f})"
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
    """Write results.json, scores.csv and roc.png for an :class:`~memberscope.audit.AuditResult`."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInputError(f"cannot create output directory {str(out)!r}: {exc.strerror or exc}") from None
    paths = {"results": out / "results.json", "scores": out / "scores.csv", "roc": out / "roc.png"}
    write_results_json(result.results, paths["results"])
    write_scores_csv(result.records, result.member, result.scores, paths["scores"])
    dataset = result.results.get("dataset", {}).get("name", "")
    plot_roc(
        result.member,
        result.scores,
        paths["roc"],
        results=result.results,
        title=f"Membership inference on {dataset} (log-log ROC)",
    )
    return {k: str(v) for k, v in paths.items()}


def _fmt_ci(value: float | None, ci: list[float] | None, pct: bool) -> str:
    if value is None:
        return "–"
    f = (lambda v: f"{100 * v:.1f}%") if pct else (lambda v: f"{v:.3f}")
    return f"{f(value)} [{f(ci[0])}, {f(ci[1])}]" if ci else f(value)


def results_table(results: dict[str, Any]):
    """A ``rich.table.Table``: attack, AUC, TPR at 1% and 0.1% FPR, each with its 95% CI."""
    from rich.table import Table

    target = results.get("target", {})
    level = int(round(100 * results.get("config", {}).get("confidence", 0.95)))
    table = Table(
        title=(
            f"{results['dataset']['name']}: target train acc {target.get('train_accuracy', 0):.3f}, "
            f"test acc {target.get('test_accuracy', 0):.3f} ({level}% CIs)"
        )
    )
    table.add_column("attack")
    table.add_column("AUC", justify="right")
    table.add_column("TPR @ 1% FPR", justify="right")
    table.add_column("TPR @ 0.1% FPR", justify="right")
    for name, entry in results["attacks"].items():
        cells = [_fmt_ci(entry["auc"], entry["auc_ci"], pct=False)]
        for key in ("0.01", "0.001"):
            value = entry["tpr_at_fpr"].get(key)
            text = _fmt_ci(value, entry["tpr_at_fpr_ci"].get(key), pct=True)
            if value is not None and not entry.get("fpr_resolvable", {}).get(key, True):
                text += " *"
            cells.append(text)
        table.add_row(name, *cells)
    if any(not v for e in results["attacks"].values() for v in e.get("fpr_resolvable", {}).values()):
        table.caption = "* too few non-members to resolve this FPR; the value is the TPR at FPR 0"
    return table
