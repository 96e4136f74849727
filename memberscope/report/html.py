"""A single self-contained HTML report of an audit: figures embedded as data URIs, no external CSS or JS."""

from __future__ import annotations

import base64
import io
import math
from pathlib import Path
from typing import Any

from memberscope.exceptions import InvalidInputError, MissingDependencyError
from memberscope.report.gate import load_results
from memberscope.report.markdown import _ci_pct, _headline_fpr, _pct, executive_summary

__all__ = ["recommendations", "write_html"]

ASSUMPTIONS = {
    "loss": "the target's loss on the record, and population records to set the threshold",
    "confidence": "the target's confidence in the true label, and population records to set the threshold",
    "entropy": "the target's prediction entropy, and population records to set the threshold",
    "modified-entropy": "the target's modified prediction entropy (Song & Mittal 2021), and population records",
    "lira-online": "the training recipe and data distribution: K reference models, half trained WITH each record",
    "lira-offline": "the training recipe and data distribution: reference models trained WITHOUT the record",
    "rmia-online": "the training recipe, reference models (IN and OUT) and population records to compare against",
    "rmia-offline": "the training recipe, OUT reference models only, and population records to compare against",
}


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _roc_png(member, scores: dict, results: dict, tmp: Path) -> str:
    from memberscope.outputs import plot_roc

    path = tmp / "roc.png"
    plot_roc(member, scores, path, results=results)
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _hist_png(member, score, name: str) -> str:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(6.2, 5.4), dpi=110)
    bins = np.histogram_bin_edges(score[np.isfinite(score)], bins=60)
    ax.hist(score[~member], bins=bins, alpha=0.6, label="non-members", color="tab:blue", density=True)
    ax.hist(score[member], bins=bins, alpha=0.6, label="members", color="tab:red", density=True)
    ax.set_xlabel(f"{name} score (higher = more likely member)")
    ax.set_ylabel("density")
    ax.set_yscale("log")
    ax.legend()
    try:
        return _png(fig)
    finally:
        plt.close(fig)


def recommendations(results: dict[str, Any], *, hot_slices: list[str], headline_key: str) -> list[str]:
    """Prioritized advice that follows from the measured numbers (most urgent first)."""
    attacks = results["attacks"]
    fpr = float(headline_key)
    best = max(attacks, key=lambda a: attacks[a]["tpr_at_fpr"][headline_key])
    tpr = attacks[best]["tpr_at_fpr"][headline_key]
    ci = (attacks[best].get("tpr_at_fpr_ci") or {}).get(headline_key) or [tpr, tpr]
    out: list[str] = []
    if ci[0] > fpr:
        out.append(
            f"Leakage is measurable: {best} reaches TPR {_pct(tpr)} at {_pct(fpr)} FPR, {tpr / fpr:.1f}× chance, "
            f"with the whole CI above chance. Add `memberscope gate --max-tpr-at-fpr {headline_key}:BUDGET` to CI "
            "so a model exceeding the accepted budget cannot ship."
        )
    target = results.get("target") or {}
    gap = target.get("generalization_gap")
    if gap is None and "train_accuracy" in target and "test_accuracy" in target:
        gap = target["train_accuracy"] - target["test_accuracy"]
    if gap is not None and gap > 0.05:
        out.append(
            f"The generalization gap is large ({_pct(gap)}: train {_pct(target['train_accuracy'])} vs test "
            f"{_pct(target['test_accuracy'])}). Regularize (weight decay, early stopping, augmentation) or train "
            "with DP-SGD for a formal guarantee."
        )
    if hot_slices:
        out.append(
            f"Leakage concentrates in {', '.join(hot_slices)}: minimize or aggregate the data kept for these slices, "
            "collect more records there, or audit them separately."
        )
    if not out:
        out.append(
            f"No attack's TPR at {_pct(fpr)} FPR is distinguishable from chance in this audit; re-audit after "
            "changes to data or training, and with more reference models for stronger attacks."
        )
    return out


def _slice_rows(slices: dict[str, Any], key: str, overall: float) -> list[dict[str, Any]]:
    rows = []
    for name, m in slices.items():
        ci = (m.get("tpr_at_fpr_ci") or {}).get(key)
        rows.append(
            {
                "name": name,
                "n_members": m.get("n_members", "?"),
                "n_nonmembers": m.get("n_nonmembers", "?"),
                "auc": f"{m['auc']:.3f}" if isinstance(m.get("auc"), int | float) and math.isfinite(m["auc"]) else "–",
                "tpr": f"{_pct(m['tpr_at_fpr'][key])}{_ci_pct(ci)}",
                "hot": bool(ci) and ci[0] > overall,
            }
        )
    return rows


def write_html(run_dir: str | Path) -> Path:
    """Write ``run_dir/report.html`` from the audit's ``results.json`` and ``scores.csv``."""
    try:
        import jinja2
    except ImportError:  # pragma: no cover
        raise MissingDependencyError("the HTML report needs jinja2: pip install 'jinja2>=3'") from None
    import tempfile

    import numpy as np
    import pandas as pd

    from memberscope import __version__
    from memberscope.report.epsilon import epsilon_lower_bounds_from_csv

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InvalidInputError(f"run directory {str(run_dir)!r} does not exist; expected an audit's --out folder")
    results = load_results(run_dir / "results.json")
    scores_path = run_dir / "scores.csv"
    try:
        table = pd.read_csv(scores_path)
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"cannot read scores file {str(scores_path)!r}: {exc}") from None
    attacks = results["attacks"]
    missing = [a for a in attacks if a not in table.columns] + (["member"] if "member" not in table.columns else [])
    if missing:
        raise InvalidInputError(f"scores file {str(scores_path)!r} lacks columns {missing}")
    member = table["member"].to_numpy().astype(bool)
    scores = {a: table[a].to_numpy(dtype=float) for a in attacks}
    epsilon = epsilon_lower_bounds_from_csv(scores_path)

    key = _headline_fpr(attacks)
    fpr_keys = list(attacks[next(iter(attacks))]["tpr_at_fpr"])
    strongest = max(attacks, key=lambda a: attacks[a]["tpr_at_fpr"][key])
    overall = attacks[strongest]["tpr_at_fpr"][key]
    slice_tables = []
    hot: list[str] = []
    for field, title in (("per_class", "class"), ("per_group", "group")):
        if attacks[strongest].get(field):
            rows = _slice_rows(attacks[strongest][field], key, overall)
            slice_tables.append((title, rows))
            hot += [f"{title} {r['name']}" for r in rows if r["hot"]]
    attack_rows = []
    for name, entry in attacks.items():
        ci = entry.get("auc_ci")
        tprs = [f"{_pct(entry['tpr_at_fpr'][k])}{_ci_pct((entry.get('tpr_at_fpr_ci') or {}).get(k))}" for k in fpr_keys]
        attack_rows.append(
            {
                "name": name,
                "auc": f"{entry['auc']:.3f}" + (f" ({ci[0]:.3f}–{ci[1]:.3f})" if ci else ""),
                "tprs": tprs,
                "epsilon": f"{epsilon[name].epsilon:.2f}",
            }
        )
    warnings = list(results.get("warnings") or [])
    for name, entry in attacks.items():
        warnings += [f"{name}: {w}" for w in entry.get("warnings") or []]
    target = results.get("target") or {}
    vulnerable = results.get("vulnerable_records") or {}

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("memberscope.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["pct"] = lambda x: _pct(float(x))
    with tempfile.TemporaryDirectory() as tmp:
        roc = _roc_png(member, scores, results, Path(tmp))
    html = env.get_template("report.html.j2").render(
        dataset=(results.get("dataset") or {}).get("name", "?"),
        version=results.get("memberscope_version", __version__),
        created=results.get("created", ""),
        schema_version=results["schema_version"],
        summary=executive_summary(results),
        fpr_keys=fpr_keys,
        attack_rows=attack_rows,
        roc_png=roc,
        hist_png=_hist_png(member, np.asarray(scores[strongest]), strongest),
        strongest=strongest,
        headline_key=key,
        overall_tpr=overall,
        slice_tables=slice_tables,
        vulnerable_attack=vulnerable.get("attack", "–"),
        vulnerable=vulnerable.get("records") or [],
        recommendations=recommendations(results, hot_slices=hot, headline_key=key),
        game={
            k: (results.get("game") or {}).get(k, "?")
            for k in (
                "pool_size",
                "population_size",
                "n_members",
                "n_nonmembers",
                "n_reference_models",
                "reference_design",
            )
        },
        train_acc=_pct(target["train_accuracy"]) if "train_accuracy" in target else "?",
        test_acc=_pct(target["test_accuracy"]) if "test_accuracy" in target else "?",
        assumptions=[(a, ASSUMPTIONS.get(a, "see the attack's documentation")) for a in attacks],
        warnings=list(dict.fromkeys(warnings)),
    )
    path = run_dir / "report.html"
    path.write_text(html, encoding="utf-8")
    return path
