"""A privacy section for a model card, with ``model-index`` metadata, mergeable into a Hugging Face model card.

:func:`render_model_card` writes a Markdown card: YAML front matter holding a ``model-index`` entry (the strongest
attack's AUC and TPR at each FPR, with their 95% CIs in ``args``, and the largest empirical ε lower bound) and a
"Privacy: membership inference" section between HTML-comment markers. :func:`merge_model_card` merges both into an
existing card with ``huggingface_hub.ModelCard`` (the ``hf`` extra): earlier memberscope results are replaced,
everything else in the card is kept, and running it again replaces the section rather than adding a second one.

The metadata follows the Hub's model-index layout (``name``, ``results: [{task, dataset, metrics}]``; see
https://github.com/huggingface/hub-docs/blob/main/modelcard.md). It renders the same
:class:`~memberscope.report.model.ReportModel` as the HTML and Markdown reports, so the numbers agree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from memberscope.exceptions import InvalidInputError, MissingDependencyError
from memberscope.report.model import ReportModel, build_report, ci_pct, load_run, pct

__all__ = [
    "SECTION_END",
    "SECTION_START",
    "TASK_TYPE",
    "merge_model_card",
    "model_index",
    "privacy_section",
    "render_model_card",
    "write_model_card",
]

SECTION_START = "<!-- memberscope:privacy:start -->"
SECTION_END = "<!-- memberscope:privacy:end -->"
TASK_TYPE = "membership-inference"
"""The model-index task type of memberscope's results (a merge replaces earlier results of this task)."""


def _name(model: ReportModel, model_name: str | None) -> str:
    if model_name:
        return model_name
    config = model.results.config or {}
    return str(config.get("model_name") or model.subject)


def model_index(model: ReportModel, *, model_name: str | None = None) -> list[dict[str, Any]]:
    """The ``model-index`` entry of a run: one result (task ``membership-inference``) whose metrics are the
    strongest attack's AUC and TPR at each recorded FPR and the largest empirical ε lower bound.

    Returns an empty list for a run without attack metrics (nothing to index).
    """
    best = model.strongest
    if best is None:
        return []
    row = next(r for r in model.attack_rows if r.name == best)
    base_args = {"attack": best, "tool": f"memberscope {model.results.memberscope_version}"}
    metrics: list[dict[str, Any]] = [
        {
            "type": "membership-inference-auc",
            "value": round(float(row.auc), 4),
            "name": f"Membership-inference AUC ({best})",
            "args": {**base_args, **({"ci95": [round(v, 4) for v in row.auc_ci]} if row.auc_ci else {})},
        }
    ]
    for key in model.fpr_keys:
        if key not in row.tprs:
            continue
        args = {**base_args, "fpr": float(key)}
        if key in row.tpr_cis:
            args["ci95"] = [round(v, 4) for v in row.tpr_cis[key]]
        if not row.resolvable.get(key, True):
            args["resolvable"] = False
        metrics.append(
            {
                "type": "membership-inference-tpr",
                "value": round(float(row.tprs[key]), 4),
                "name": f"TPR at {pct(float(key))} FPR ({best})",
                "config": f"fpr={key}",
                "args": args,
            }
        )
    bounds = [(r.epsilon, r.name) for r in model.attack_rows if r.epsilon is not None]
    if bounds:
        eps, attack = max(bounds)
        metrics.append(
            {
                "type": "empirical-epsilon-lower-bound",
                "value": round(float(eps), 4),
                "name": "Empirical ε lower bound (95% confidence)",
                "args": {**base_args, "attack": attack, "delta": model.epsilon_delta},
            }
        )
    dataset = model.results.dataset
    return [
        {
            "name": _name(model, model_name),
            "results": [
                {
                    "task": {"type": TASK_TYPE, "name": "Membership inference audit"},
                    "dataset": {"type": str(dataset.name), "name": model.subject},
                    "metrics": metrics,
                }
            ],
        }
    ]


def privacy_section(model: ReportModel) -> str:
    """The card's "Privacy: membership inference" section (Markdown, between :data:`SECTION_START` and
    :data:`SECTION_END`)."""
    results, game = model.results, model.game
    lines = [SECTION_START, "## Privacy: membership inference", ""]
    risk = results.risk()
    lines += [
        f"Audited with memberscope {results.memberscope_version} ({results.created}). "
        f"**Risk: {risk.level.upper()}** ({risk.reason}). {model.summary}",
        "",
    ]
    for alarm in model.alarms:
        lines += [f"> **Warning:** {alarm}", ""]
    if model.attack_rows and model.headline_fpr is not None:
        key = model.headline_fpr
        lines += [f"| attack | AUC (95% CI) | TPR @ {pct(float(key))} FPR (95% CI) | ε lower bound |", "|" + "---|" * 4]
        ordered = sorted(model.attack_rows, key=lambda r: (r.name != model.strongest, -r.tprs.get(key, -1.0)))
        for r in ordered:
            auc = f"{r.auc:.3f}" + (f" ({r.auc_ci[0]:.3f}–{r.auc_ci[1]:.3f})" if r.auc_ci else "")
            tpr = f"{pct(r.tprs[key])}{ci_pct(r.tpr_cis.get(key))}" if key in r.tprs else "–"
            eps = "–" if r.epsilon is None else f"{r.epsilon:.2f}"
            lines.append(f"| `{r.name}` | {auc} | {tpr} | {eps} |")
        lines.append("")
    if model.draws:  # the spread over training draws (`--targets N`), as every other report shows it
        from memberscope.report.model import draw_cells

        key = pct(float(model.headline_fpr)) if model.headline_fpr is not None else "1%"
        lines += [f"| attack | AUC mean ± sd | worst AUC | TPR @ {key} FPR mean ± sd | worst TPR |", "|" + "---|" * 5]
        lines += ["| " + " | ".join(draw_cells(r)) + " |" for r in model.draws]
        lines.append("")
    if model.draw_note:
        lines += [model.draw_note, ""]
    facts = []
    if game.n_members is not None:
        facts.append(
            f"- **What was tested:** {game.n_members} training records (members) against {game.n_nonmembers} "
            f"records the model did not train on, with {game.n_reference_models or 0} reference models."
        )
    target = model.target
    if target.train_accuracy is not None and target.test_accuracy is not None:
        facts.append(
            f"- **Utility:** accuracy {pct(target.train_accuracy)} on members, {pct(target.test_accuracy)} on "
            "held-out records."
        )
    from memberscope.report.frameworks import facts_of

    facts.append(f"- **Reading:** {facts_of(model).verdict_text()}.")
    from memberscope.report.intervals import interval_note

    if (methods := interval_note(model.results)) is not None:
        facts.append(f"- **Intervals:** {methods}")
    if model.frameworks:
        items = "; ".join(f"{f.framework} {f.item.split(' (')[0]}" for f in model.frameworks)
        facts.append(f"- **Frameworks** (guidance, see the full report): {items}.")
    lines += facts
    if model.warnings:
        lines += ["", "**Caveats**", ""] + [f"- {w}" for w in model.warnings]
    lines += ["", SECTION_END]
    return "\n".join(lines) + "\n"


def render_model_card(model: ReportModel, *, model_name: str | None = None) -> str:
    """A Markdown model card: YAML front matter with the ``model-index`` and the privacy section."""
    import yaml

    index = model_index(model, model_name=model_name)
    meta: dict[str, Any] = {"tags": ["membership-inference", "privacy-audit"]}
    if index:
        meta["model-index"] = index
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)
    return f"---\n{front}---\n\n{privacy_section(model)}"


def _replace_section(text: str, section: str) -> str:
    start, end = text.find(SECTION_START), text.find(SECTION_END)
    if start != -1 and end > start:
        return text[:start] + section.rstrip("\n") + text[end + len(SECTION_END) :]
    return text.rstrip("\n") + "\n\n" + section


def merge_model_card(card_path: str | Path, model: ReportModel, *, model_name: str | None = None, out=None) -> Path:
    """Merge the privacy section and model-index results of ``model`` into the Hugging Face model card at
    ``card_path`` (written to ``out``, default ``card_path`` itself).

    Earlier ``membership-inference`` results of the card's model-index and an earlier memberscope section are
    replaced; everything else is kept. The card's own ``model_name`` (if any) names the results.

    Raises
    ------
    MissingDependencyError
        Without ``huggingface_hub`` (the ``hf`` extra).
    InvalidInputError
        When ``card_path`` does not exist or is not a readable model card.
    """
    try:
        from huggingface_hub import ModelCard
        from huggingface_hub.repocard_data import model_index_to_eval_results
    except ImportError:
        raise MissingDependencyError(
            "merging into a model card needs huggingface_hub: pip install 'memberscope[hf]' "
            "(without it, `memberscope report --format model-card` writes a card to merge by hand)"
        ) from None
    card_path = Path(card_path)
    if not card_path.is_file():
        raise InvalidInputError(f"model card {str(card_path)!r} does not exist; expected a README.md with metadata")
    try:
        card = ModelCard.load(card_path)
    except Exception as exc:  # huggingface_hub raises ValueError and yaml errors for a malformed header
        raise InvalidInputError(f"cannot read model card {str(card_path)!r}: {exc}") from None
    name = model_name or card.data.model_name
    index = model_index(model, model_name=name)
    if index:
        _, ours = model_index_to_eval_results(index)
        kept = [r for r in (card.data.eval_results or []) if r.task_type != TASK_TYPE]
        card.data.model_name = card.data.model_name or index[0]["name"]
        card.data.eval_results = kept + ours
    tags = list(card.data.tags or [])
    card.data.tags = tags + [t for t in ("membership-inference", "privacy-audit") if t not in tags]
    card.text = _replace_section(card.text, privacy_section(model))
    target = Path(out) if out is not None else card_path
    card.save(target)
    return target


def write_model_card(
    run_dir: str | Path, *, model_name: str | None = None, merge_into: str | Path | None = None, out=None
) -> Path:
    """Write the model card of the run in ``run_dir`` (``run_dir/model_card.md``, or ``out``), or merge it into the
    card ``merge_into`` (see :func:`merge_model_card`)."""
    results, scores, defenses = load_run(run_dir, figures=False)
    model = build_report(results, scores=scores, defenses=defenses)
    if merge_into is not None:
        return merge_model_card(merge_into, model, model_name=model_name, out=out)
    path = Path(out) if out is not None else Path(run_dir) / "model_card.md"
    path.write_text(render_model_card(model, model_name=model_name), encoding="utf-8")
    return path
