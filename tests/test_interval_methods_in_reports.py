"""Every report format names the method each interval actually used (results.json ``*_ci_method``), never a fixed
"stratified bootstrap" sentence (the trial's report.html said bootstrap while results.json recorded
order-statistics-clopper-pearson and wilson-worst-case-variance)."""

import json

import pytest
from report_fixtures import write_audit_run

from memberscope.report.html import write_html
from memberscope.report.intervals import METHOD_NAMES, interval_methods, interval_note
from memberscope.report.markdown import render_markdown
from memberscope.report.model import build_report, load_run
from memberscope.report.model_card import render_model_card
from memberscope.results.schema import Results


def _renderings(run_dir):
    results, scores, defenses = load_run(run_dir)
    model = build_report(results, scores=scores, defenses=defenses)
    return {
        "html": write_html(run_dir).read_text(),
        "markdown": render_markdown(model),
        "model card": render_model_card(model),
    }


def test_each_format_names_the_recorded_methods(tmp_path):
    run = write_audit_run(tmp_path / "run")
    results = Results.from_dict(json.loads((run / "results.json").read_text()))
    recorded = {m for used in interval_methods(results).values() for m in used}
    assert recorded and "unrecorded" not in recorded
    for name, text in _renderings(run).items():
        assert "bootstrap 95% intervals" not in text, name
        for method in recorded:
            assert METHOD_NAMES[method] in text, (name, method)


def test_mixed_methods_name_their_attacks():
    def attack(auc_method, tpr_method):
        return {"auc": 0.6, "auc_ci": [0.55, 0.65], "auc_ci_method": auc_method, "tpr_at_fpr": {"0.01": 0.02},
                "tpr_at_fpr_ci": {"0.01": [0.0, 0.05]}, "tpr_at_fpr_ci_method": {"0.01": tpr_method},
                "fpr_resolvable": {"0.01": True}}  # fmt: skip

    results = Results.from_dict({"schema_version": "2.0", "kind": "audit", "config": {"confidence": 0.9},
        "attacks": {"loss": attack("bootstrap", "bootstrap"),
                    "lira": attack("wilson-worst-case-variance", "order-statistics-clopper-pearson")}})  # fmt: skip
    note = interval_note(results)
    assert note.startswith("90% CIs")
    assert "stratified percentile bootstrap (loss)" in note and "(lira)" in note
    assert "order statistics with Clopper–Pearson bounds (lira at 1%)" in note


@pytest.mark.parametrize("kind", ["audit"])
def test_no_note_without_metrics(kind):
    assert interval_note(Results.from_dict({"schema_version": "2.0", "kind": kind, "attacks": {}})) is None
    assert build_report(Results.from_dict({"schema_version": "2.0", "kind": kind, "attacks": {}})) is not None
