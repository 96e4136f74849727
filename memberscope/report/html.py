"""A single self-contained HTML report of a run: figures embedded as data URIs, no external CSS or JS.

It renders the :class:`~memberscope.report.model.ReportModel` of the run folder; nothing here reads
``results.json`` on its own.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

from memberscope.exceptions import MissingDependencyError
from memberscope.report.frameworks import DISCLAIMER
from memberscope.report.intervals import interval_note
from memberscope.report.model import (
    ReportModel,
    build_report,
    ci_pct,
    draw_cells,
    load_run,
    membership_probability_note,
    pct,
)

__all__ = ["render_html", "write_html"]


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _roc_png(model: ReportModel, tmp: Path, drawn: Path | None = None) -> str:
    from memberscope.results import plot_roc

    if drawn is not None:  # the run's roc.png, drawn from the same scores when the run was written
        return "data:image/png;base64," + base64.b64encode(drawn.read_bytes()).decode("ascii")
    if model.member is None or model.scores is None:
        raise ValueError("the ROC figure needs the report model's membership labels and per-record scores")
    path = tmp / "roc.png"
    plot_roc(model.member, model.scores, path, results=model.results)
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _hist_png(member, score, name: str) -> str:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(6.2, 5.4), dpi=110)
    bins = np.histogram_bin_edges(score[np.isfinite(score)], bins=60).tolist()
    ax.hist(score[~member], bins=bins, alpha=0.6, label="non-members", color="tab:blue", density=True)
    ax.hist(score[member], bins=bins, alpha=0.6, label="members", color="tab:red", density=True)
    ax.set_xlabel(f"{name} score (higher = more likely member)")
    ax.set_ylabel("density")
    ax.set_yscale("log")
    # A fixed place: loc="best" searches the data, warns when that takes over a second, and fails a loaded run.
    ax.legend(loc="upper left")
    try:
        return _png(fig)
    finally:
        plt.close(fig)


def _frontier_png(model: ReportModel) -> str | None:
    """:func:`_frontier_figure` as a PNG data URI, or None for a run without defenses."""
    fig = _frontier_figure(model)
    if fig is None:
        return None
    import matplotlib.pyplot as plt

    try:
        return _png(fig)
    finally:
        plt.close(fig)


def _frontier_figure(model: ReportModel):
    """The privacy–utility frontier: each defense's test accuracy against its strongest attack's TPR (a matplotlib
    ``Figure``, labels placed clear of each other), or None for a run without defenses."""
    points = [r for r in model.defenses if r.test_accuracy is not None and r.tpr is not None]
    if not points:
        return None
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.ticker import PercentFormatter

    from memberscope.report.labels import place_labels

    fig, ax = plt.subplots(figsize=(6.2, 4.6), dpi=110)
    labels: list[str] = []
    xy: list[tuple[float, float]] = []
    for r in points:
        accuracy, tpr = r.test_accuracy, r.tpr
        assert accuracy is not None and tpr is not None  # points keeps only rows with both
        xy.append((accuracy, tpr))
        yerr = [[tpr - r.tpr_ci[0]], [r.tpr_ci[1] - tpr]] if r.tpr_ci else None
        color = "tab:red" if r.alarm else ("tab:green" if r.epsilon is not None else "tab:blue")
        ax.errorbar(accuracy, tpr, yerr=yerr, fmt="o", color=color, capsize=3)
        labels.append(r.name + (f" (ε={r.epsilon:g})" if r.epsilon is not None else ""))
    key = points[0].fpr_key or "0.01"
    ax.axhline(float(key), color="gray", linestyle="--", linewidth=1, label=f"chance ({pct(float(key))})")
    ax.set_xlabel("test accuracy (utility)")
    ax.set_ylabel(f"TPR at {pct(float(key))} FPR, strongest attack (leakage)")
    ax.set_title("Privacy–utility frontier (lower right is better)")
    ax.legend(loc="upper left", fontsize=8)  # the leaky, accurate corner is upper right; "best" is slow
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))  # rates as percentages, as every table writes them
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    fig.tight_layout()
    # Defenses often land close together (none, l2, round:2): labels placed clear of each other, with leader lines.
    place_labels(ax, xy, labels)
    return fig


def _num(x: Any, fmt: str = "{:.3f}") -> str:
    return "–" if x is None else fmt.format(x)


def _ci(ci: Any, fmt: str = "{:.3f}") -> str:
    return f" ({fmt.format(ci[0])}–{fmt.format(ci[1])})" if ci else ""


ALARM_TITLES = {
    "audit": "Warning: leakage beyond the claimed guarantee",
    "dataset-inference": "Warning: the test may measure a difference between the sets, not training",
}


def _dataset_inference_facts(di: dict[str, Any] | None) -> dict[str, Any] | None:
    """The dataset-inference block of the report model, with its facts as the sentences the page shows."""
    if di is None:
        return None

    def q(value: Any) -> str:
        return "?" if value is None else str(value)

    recommended = "–"
    if di["recommended_suspect"] is not None:
        recommended = (
            f"at least {di['recommended_suspect']} suspect texts (with as many validation texts) caught the strongly "
            "memorising demo model reliably"
        )
        if di["needed_for_a_weak_leak"] is not None:
            recommended += f"; a weakly memorising one needed {di['needed_for_a_weak_leak']}"
        if di["minimum_per_set"] is not None:
            recommended += f"; the test refuses fewer than {di['minimum_per_set']} per set"
    effect = "–"
    if di["auc_held_out"] is not None:
        effect = f"held-out AUC {di['auc_held_out']:.3f} of the aggregated score (0.5: no separation)"
    validity = "–"
    if di["baseline_auc"] is not None:
        validity = _num(di["baseline_auc"]) + _ci(di["baseline_auc_ci"])
    statistic = "–" if di["statistic"] is None else f"t = {di['statistic']:.3f}"
    if di["statistic"] is not None and di["df"] is not None:
        statistic += f", {di['df']:.1f} degrees of freedom"
    return {
        **di,
        "p_value_text": "–" if di["p_value"] is None else f"{di['p_value']:.3g}",
        "statistic_text": statistic,
        "counts_text": f"{q(di['n_suspect'])} suspect, {q(di['n_validation'])} validation",
        "fit_text": f"{q(di['fit']['suspect'])} suspect + {q(di['fit']['validation'])} validation texts",
        "held_text": f"{q(di['held_out']['suspect'])} suspect + {q(di['held_out']['validation'])} validation texts",
        "recommended_text": recommended,
        "effect_text": effect,
        "validity_text": validity,
        "weights": sorted(di["weights"].items(), key=lambda kv: -abs(kv[1])),
    }


def render_html(model: ReportModel, *, roc_png: Path | None = None) -> str:
    """The report page of ``model`` as one self-contained HTML string; ``roc_png`` is the run's ROC figure when it
    was just drawn from the same scores (:func:`~memberscope.results.plot_roc`), else it is drawn here."""
    try:
        import jinja2
    except ImportError:  # pragma: no cover
        raise MissingDependencyError("the HTML report needs jinja2: pip install 'jinja2>=3'") from None
    import tempfile

    import numpy as np

    key = model.headline_fpr
    attack_rows = [
        {
            "name": r.name,
            "auc": _num(r.auc) + _ci(r.auc_ci),
            "tprs": [f"{pct(r.tprs[k])}{ci_pct(r.tpr_cis.get(k))}" if k in r.tprs else "–" for k in model.fpr_keys],
            "epsilon": _num(r.epsilon, "{:.2f}") + (" *" if r.epsilon_source == "metrics" else ""),
            "one_run": None if r.one_run is None else f"{r.one_run['epsilon']:.2f}",
        }
        for r in model.attack_rows
    ]
    one_run_rows = [
        {
            "name": r.name,
            "k_plus": r.one_run["k_plus"],
            "k_minus": r.one_run["k_minus"],
            "correct": r.one_run["correct"],
            "guesses": r.one_run.get("guesses", r.one_run["k_plus"] + r.one_run["k_minus"]),
            "epsilon": f"{r.one_run['epsilon']:.2f}",
        }
        for r in model.attack_rows
        if r.one_run
    ]
    slice_tables = [
        (
            title,
            [
                {
                    "name": r.name,
                    "n_members": r.n_members,
                    "n_nonmembers": r.n_nonmembers,
                    "auc": _num(r.auc),
                    "tpr": "–" if r.tpr is None else f"{pct(r.tpr)}{ci_pct(r.tpr_ci)}",
                    "hot": r.hot,
                }
                for r in rows
            ],
        )
        for title, rows in model.slices
    ]
    defense_table = [
        {
            "name": r.name,
            "test_accuracy": pct(r.test_accuracy) if r.test_accuracy is not None else "–",
            "epsilon": "–" if r.epsilon is None else f"{r.epsilon:g}" + (f" (δ={r.delta:g})" if r.delta else ""),
            "empirical": _num(r.empirical_epsilon, "{:.2f}"),
            "attack": r.attack or "–",
            "tpr": "–" if r.tpr is None else f"{pct(r.tpr)}{ci_pct(r.tpr_ci)}",
            "auc": _num(r.auc) + _ci(r.auc_ci),
            "alarm": r.alarm,
        }
        for r in model.defenses
    ]
    figures = []
    if model.scores is not None and model.strongest is not None:
        with tempfile.TemporaryDirectory() as tmp:
            figures.append(
                (
                    "log-log ROC curves",
                    _roc_png(model, Path(tmp), roc_png),
                    "Log-log ROC of every attack; the dashed line is chance.",
                )
            )
        figures.append(
            (
                "member and non-member score histograms",
                _hist_png(model.member, np.asarray(model.scores[model.strongest]), model.strongest),
                f"Scores of {model.strongest} (strongest attack) for members and non-members.",
            )
        )
    target, game = model.target, model.game
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("memberscope.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["pct"] = lambda x: pct(float(x))
    from memberscope.report.glossary import code_spans

    env.filters["code_spans"] = code_spans
    page = env.get_template("report.html.j2").render(
        title=model.title,
        dataset=model.subject,
        version=model.results.memberscope_version,
        created=model.results.created,
        schema_version=model.results.schema_version,
        summary=model.summary,
        risk=model.results.risk(),
        alarms=model.alarms,
        fpr_keys=model.fpr_keys,
        attack_rows=attack_rows,
        has_one_run=bool(one_run_rows),
        metrics_epsilon=model.epsilon_from_metrics,
        claimed=model.claimed,
        one_run=model.one_run,
        one_run_rows=one_run_rows,
        figures=figures,
        strongest=model.strongest or "–",
        headline_key=key or "0.01",
        overall_tpr=model.overall_tpr,
        slice_tables=slice_tables,
        vulnerable_attack=model.vulnerable.get("attack", "–"),
        vulnerable=model.vulnerable.get("records") or [],
        defense_table=defense_table,
        defense_rec=model.defense_recommendation,
        defense_plan=model.defense_plan,
        defense_details=[{**d, "tpr": f"{pct(d['tpr'])}{ci_pct(tuple(d['tpr_ci']))}"} for d in model.defense_details],
        frontier_png=_frontier_png(model) if model.defenses else None,
        red=model.redteam,
        llm=model.llm,
        di=_dataset_inference_facts(model.dataset_inference),
        alarm_title=ALARM_TITLES.get(model.kind, ALARM_TITLES["audit"]),
        recommendations=model.recommendations,
        frameworks=model.frameworks,
        frameworks_disclaimer=DISCLAIMER,
        game={
            k: (getattr(game, k) if getattr(game, k) is not None else "?")
            for k in (
                "pool_size",
                "population_size",
                "n_members",
                "n_nonmembers",
                "n_reference_models",
                "reference_design",
            )
        },
        show_threat_model=model.kind == "audit" and game.pool_size is not None,
        train_acc=pct(target.train_accuracy) if target.train_accuracy is not None else "?",
        test_acc=pct(target.test_accuracy) if target.test_accuracy is not None else "?",
        assumptions=model.assumptions,
        interval_note=interval_note(model.results),
        warnings=model.warnings,
        draw_note=model.draw_note,
        draw_rows=[draw_cells(r) for r in model.draws],
        probability_note=membership_probability_note(model.membership_probability),
        ppv_note=model.ppv_note,
    )
    from memberscope.report.glossary import add_column_help

    return add_column_help(page)


def write_html(run_dir: str | Path, *, roc_png: str | Path | None = None) -> Path:
    """Write ``run_dir/report.html`` for the run in ``run_dir`` (any kind; see
    :func:`~memberscope.report.model.load_run`). ``roc_png``: the ROC figure the caller has just written for this
    run (``write_outputs``'s ``roc``), embedded instead of drawn again."""
    results, scores, defenses = load_run(run_dir)
    path = Path(run_dir) / "report.html"
    model = build_report(results, scores=scores, defenses=defenses)
    path.write_text(render_html(model, roc_png=None if roc_png is None else Path(roc_png)), encoding="utf-8")
    return path
