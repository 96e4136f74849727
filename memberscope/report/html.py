"""A single self-contained HTML report of an audit: figures embedded as data URIs, no external CSS or JS."""

from __future__ import annotations

import base64
import io
import math
from pathlib import Path
from typing import Any

from memberscope.exceptions import InvalidInputError, MissingDependencyError
from memberscope.report.markdown import _ci_pct, _pct, executive_summary

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


def _num(x: Any, fmt: str = "{:.3f}") -> str:
    return fmt.format(x) if isinstance(x, int | float) and math.isfinite(x) else "–"


def _ci(ci: Any, fmt: str = "{:.3f}") -> str:
    return f" ({fmt.format(ci[0])}–{fmt.format(ci[1])})" if isinstance(ci, list | tuple) and len(ci) == 2 else ""


def _read_scores(run_dir: Path, attacks: dict[str, Any], *, required: bool):
    """``(member, {attack: scores})`` from scores.csv; None when absent and not required."""
    import pandas as pd

    scores_path = run_dir / "scores.csv"
    if not scores_path.exists() and not required:
        return None
    try:
        table = pd.read_csv(scores_path)
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"cannot read scores file {str(scores_path)!r}: {exc}") from None
    missing = [a for a in attacks if a not in table.columns] + (["member"] if "member" not in table.columns else [])
    if missing:
        raise InvalidInputError(f"scores file {str(scores_path)!r} lacks columns {missing}")
    return table["member"].to_numpy().astype(bool), {a: table[a].to_numpy(dtype=float) for a in attacks}


def write_html(run_dir: str | Path) -> Path:
    """Write ``run_dir/report.html`` from ``results.json`` (any kind), ``scores.csv`` and ``defenses.json``.

    An audit core result needs its ``scores.csv`` (ROC and histograms); red-team and LLM results render
    without one, and ``defenses.json`` adds the defense matrix and the privacy–utility frontier.
    """
    try:
        import jinja2
    except ImportError:  # pragma: no cover
        raise MissingDependencyError("the HTML report needs jinja2: pip install 'jinja2>=3'") from None
    import tempfile

    import numpy as np

    from memberscope import __version__
    from memberscope.report import sections
    from memberscope.report.epsilon import epsilon_lower_bound

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InvalidInputError(f"run directory {str(run_dir)!r} does not exist; expected an audit's --out folder")
    results = sections.load_report_results(run_dir / "results.json")
    kind = results.get("kind") or "audit"
    attacks = results.get("attacks") or {}
    scored = _read_scores(run_dir, attacks, required=kind == "audit") if attacks else None
    defenses = sections.load_defenses(run_dir)

    key = sections.headline_key(attacks) if attacks else None
    fpr_keys = list(dict.fromkeys(k for entry in attacks.values() for k in (entry.get("tpr_at_fpr") or {})))
    best = sections.strongest(attacks, key) if key is not None else None
    overall = attacks[best]["tpr_at_fpr"][key] if best is not None else 0.0

    # Empirical ε: recorded by the audit, else from scores.csv, else from the summary metrics.
    csv_bounds = None
    if scored is not None and "clopper_pearson" not in (results.get("epsilon") or {}):
        member, scores = scored
        csv_bounds = {a: epsilon_lower_bound(member, s) for a, s in scores.items()}
    eps_rows = sections.epsilon_rows(results, csv_bounds)
    eps_by_attack = {r["attack"]: r for r in eps_rows}
    claimed = sections.claimed_epsilon(results)
    alarms = sections.epsilon_alarms(claimed, eps_rows)
    one_run = (results.get("epsilon") or {}).get("one_run")

    slice_tables = []
    hot: list[str] = []
    if best is not None:
        for field, title in (("per_class", "class"), ("per_group", "group")):
            if attacks[best].get(field):
                rows = _slice_rows(attacks[best][field], key, overall)
                slice_tables.append((title, rows))
                hot += [f"{title} {r['name']}" for r in rows if r["hot"]]
    attack_rows = []
    for name, entry in attacks.items():
        tprs = entry.get("tpr_at_fpr") or {}
        cis = entry.get("tpr_at_fpr_ci") or {}
        eps = eps_by_attack.get(name) or {}
        run = eps.get("one_run")
        attack_rows.append(
            {
                "name": name,
                "auc": _num(entry.get("auc")) + _ci(entry.get("auc_ci")),
                "tprs": [f"{_pct(tprs[k])}{_ci_pct(cis.get(k))}" if k in tprs else "–" for k in fpr_keys],
                "epsilon": _num(eps.get("cp"), "{:.2f}") + (" *" if eps.get("cp_source") == "metrics" else ""),
                "one_run": None if run is None else f"{run['epsilon']:.2f}",
            }
        )
    one_run_rows = [
        {
            "name": r["attack"],
            "k_plus": r["one_run"]["k_plus"],
            "k_minus": r["one_run"]["k_minus"],
            "correct": r["one_run"]["correct"],
            "guesses": r["one_run"].get("guesses", r["one_run"]["k_plus"] + r["one_run"]["k_minus"]),
            "epsilon": f"{r['one_run']['epsilon']:.2f}",
        }
        for r in eps_rows
        if r["one_run"]
    ]
    warnings = list(results.get("warnings") or [])
    for name, entry in attacks.items():
        warnings += [f"{name}: {w}" for w in entry.get("warnings") or []]

    # Defenses (issue 5): matrix, frontier and recommendation.
    defense_rows = sections.defense_rows(defenses) if defenses is not None else []
    alarms += sections.defense_alarms(defense_rows)
    defense_table = [
        {
            "name": r["name"],
            "test_accuracy": _pct(r["test_accuracy"]) if r["test_accuracy"] is not None else "–",
            "epsilon": "–"
            if r["epsilon"] is None
            else f"{r['epsilon']:g}" + (f" (δ={r['delta']:g})" if r["delta"] else ""),
            "empirical": _num(r["empirical_epsilon"], "{:.2f}"),
            "attack": r["attack"] or "–",
            "tpr": "–" if r["tpr"] is None else f"{_pct(r['tpr'])}{_ci_pct(r['tpr_ci'])}",
            "auc": _num(r["auc"]) + _ci(r["auc_ci"]),
            "alarm": r["alarm"],
        }
        for r in defense_rows
    ]
    defense_rec = (defenses or {}).get("recommendation") or {}

    red = sections.redteam_context(results)
    llm = sections.llm_context(results)
    if llm is not None and llm["validity_warning"]:
        alarms.append(f"LLM audit validity: {llm['validity_warning']}")

    # Summary and recommendations, most urgent first.
    if best is not None:
        summary = executive_summary(results)
    elif red is not None:
        summary = sections.redteam_summary(red)
    else:
        summary = "This results file holds no attack metrics with ground truth to summarize."
    recs: list[str] = []
    if alarms:
        recs.append(
            "An empirical ε lower bound exceeds a claimed ε (see the warning above): audit the DP-SGD implementation "
            "(per-example clipping, noise scale, sampling) and its accountant before releasing models trained with it."
        )
    if defense_rec.get("defense") or defense_rec.get("reason"):
        recs.append(
            f"Defense: {defense_rec.get('defense') or 'none meets the budget'} — {defense_rec.get('reason', '')}"
        )
    if red is not None:
        recs += red["recommendations"]
    if best is not None and kind == "audit":
        recs += recommendations(results, hot_slices=hot, headline_key=key)

    figures = []
    if scored is not None and best is not None:
        member, scores = scored
        with tempfile.TemporaryDirectory() as tmp:
            figures.append(
                (
                    "log-log ROC curves",
                    _roc_png(member, scores, results, Path(tmp)),
                    "Log-log ROC of every attack; the dashed line is chance.",
                )
            )
        figures.append(
            (
                "member and non-member score histograms",
                _hist_png(member, np.asarray(scores[best]), best),
                f"Scores of {best} (strongest attack) for members and non-members.",
            )
        )
    frontier = sections.frontier_png(defense_rows) if defense_rows else None

    target = results.get("target") or {}
    vulnerable = results.get("vulnerable_records") or {}
    game = results.get("game") or {}
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("memberscope.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["pct"] = lambda x: _pct(float(x))
    title = {
        "audit": "Membership-inference audit",
        "redteam": "Red-team membership assessment",
        "llm": "LLM membership-inference audit",
    }[kind]
    subject = (results.get("dataset") or {}).get("name") or (llm or {}).get("model") or (red or {}).get("url") or "?"
    html = env.get_template("report.html.j2").render(
        title=title,
        dataset=subject,
        version=results.get("memberscope_version", __version__),
        created=results.get("created", ""),
        schema_version=results.get("schema_version", "–"),
        summary=summary,
        alarms=alarms,
        fpr_keys=fpr_keys,
        attack_rows=attack_rows,
        has_one_run=bool(one_run_rows),
        metrics_epsilon=any(r["cp_source"] == "metrics" for r in eps_rows),
        claimed=claimed,
        one_run=one_run,
        one_run_rows=one_run_rows,
        figures=figures,
        strongest=best or "–",
        headline_key=key or "0.01",
        overall_tpr=overall,
        slice_tables=slice_tables,
        vulnerable_attack=vulnerable.get("attack", "–"),
        vulnerable=vulnerable.get("records") or [],
        defense_table=defense_table,
        defense_rec=defense_rec,
        frontier_png=frontier,
        red=red,
        llm=llm,
        recommendations=recs,
        game={
            k: game.get(k, "?")
            for k in (
                "pool_size",
                "population_size",
                "n_members",
                "n_nonmembers",
                "n_reference_models",
                "reference_design",
            )
        },
        show_threat_model=kind == "audit" and bool(game),
        train_acc=_pct(target["train_accuracy"]) if _is_rate(target.get("train_accuracy")) else "?",
        test_acc=_pct(target["test_accuracy"]) if _is_rate(target.get("test_accuracy")) else "?",
        assumptions=[(a, ASSUMPTIONS.get(a, "see the attack's documentation")) for a in attacks],
        warnings=list(dict.fromkeys(warnings)),
    )
    path = run_dir / "report.html"
    path.write_text(html, encoding="utf-8")
    return path


def _is_rate(x: Any) -> bool:
    return isinstance(x, int | float) and math.isfinite(x)
