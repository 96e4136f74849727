"""One headline everywhere: the risk level (documented thresholds) and the finding, the same in the console,
results.json, the HTML report and the Markdown summary."""

import html
import io
import json

import pytest
from report_fixtures import write_audit_run
from rich.console import Console

from memberscope.report.console import headline_text
from memberscope.report.html import write_html
from memberscope.report.markdown import markdown_summary
from memberscope.report.model import build_report, load_run
from memberscope.results import write_results_json
from memberscope.results.risk import risk_level


@pytest.mark.parametrize(
    ("tpr", "ci", "fpr", "resolvable", "level"),
    [
        (0.15, (0.10, 0.20), 0.01, True, "high"),  # lower end exactly 10× the FPR
        (0.12, (0.099, 0.20), 0.01, True, "elevated"),
        (0.03, (0.011, 0.05), 0.01, True, "elevated"),
        (0.01, (0.01, 0.05), 0.01, True, "inconclusive"),  # lower end at chance, upper end 5×: cannot tell
        (0.01, (0.005, 0.02), 0.01, True, "low"),  # upper end exactly 2× the FPR
        (0.01, (0.005, 0.021), 0.01, True, "inconclusive"),
        (0.0005, (0.0, 0.001), 0.001, False, "inconclusive"),  # unresolvable FPR never gives "low"
        (0.3, (0.2, 0.4), 0.001, False, "high"),  # ... but a clear leak is still high
        (0.01, None, 0.01, True, "inconclusive"),  # no CI never gives "low"
        (None, None, None, True, "inconclusive"),  # no ground truth
    ],
)
def test_risk_level_thresholds(tpr, ci, fpr, resolvable, level):
    risk = risk_level(tpr, ci, fpr, resolvable=resolvable)
    assert risk.level == level
    assert risk.reason


def _console_text(results):
    buffer = io.StringIO()
    Console(file=buffer, width=80, color_system=None).print(headline_text(results))
    return " ".join(buffer.getvalue().split())


def test_console_json_html_and_markdown_show_one_headline(tmp_path):
    run = write_audit_run(tmp_path / "run")
    results, scores, defenses = load_run(run)
    model = build_report(results, scores=scores, defenses=defenses)
    risk = results.risk()
    assert risk.level == "high"  # rmia-online separates members by 2 standard deviations

    write_results_json(results, run / "results.json")
    saved = json.loads((run / "results.json").read_text())["headline"]
    assert saved["finding"] == model.summary
    assert saved["risk"] == {"level": risk.level, "reason": risk.reason}

    console = _console_text(results)
    assert f"Risk: {risk.level.upper()}" in console
    assert " ".join(model.summary.split()) in console

    page = html.unescape(write_html(run).read_text())
    assert f"Risk: {risk.level.upper()}" in page and risk.reason in page and model.summary in page

    md = markdown_summary(results)
    assert f"**Risk: {risk.level.upper()}**" in md and model.summary in md


def test_the_headline_attack_is_the_one_the_tables_mark_strongest(tmp_path):
    results, scores, _ = load_run(write_audit_run(tmp_path / "run"))
    model = build_report(results, scores=scores)
    assert model.strongest in model.summary
    row = next(r for r in model.attack_rows if r.name == model.strongest)
    assert f"{100 * row.tprs[model.headline_fpr]:.1f}%" in model.summary


def _attack(tprs, cis, auc_ci=(0.45, 0.55), resolvable=None):
    from memberscope.results import AttackResult

    entry = {
        "auc": sum(auc_ci) / 2,
        "auc_ci": list(auc_ci),
        "tpr_at_fpr": tprs,
        "tpr_at_fpr_ci": cis,
        "fpr_resolvable": resolvable or {k: True for k in tprs},
    }
    return AttackResult.from_dict(entry)


def test_a_run_is_never_low_when_its_auc_ci_lies_above_half():
    """The red-team case of issue 18: 0.0% (0.0%–0.0%) at 1% FPR, yet AUC 0.73 (0.70–0.78) and 51 member verdicts."""
    from memberscope.results.risk import assess

    attacks = {
        "shadow": _attack({"0.1": 0.17, "0.01": 0.0}, {"0.1": [0.033, 0.297], "0.01": [0.0, 0.0]}, (0.696, 0.775))
    }
    risk = assess(attacks, "0.01", "shadow")
    assert risk.level == "elevated" and "AUC" in risk.reason
    attacks["shadow"] = _attack({"0.1": 0.17, "0.01": 0.0}, {"0.1": [0.033, 0.297], "0.01": [0.0, 0.0]})
    assert assess(attacks, "0.01", "shadow").level == "low"


def test_another_attack_or_fpr_above_chance_raises_the_level():
    from memberscope.results.risk import assess

    quiet = _attack({"0.01": 0.01}, {"0.01": [0.005, 0.015]})
    loud_elsewhere = _attack({"0.1": 0.5, "0.01": 0.012}, {"0.1": [0.45, 0.55], "0.01": [0.004, 0.019]})
    risk = assess({"loss": quiet, "lira": loud_elsewhere}, "0.01", "loss")
    assert risk.level == "elevated" and "lira at FPR 10%" in risk.reason
    high = _attack({"0.001": 0.2}, {"0.001": [0.15, 0.25]})
    assert assess({"loss": quiet, "lira": high}, "0.01", "loss").level == "high"
    unresolved = _attack({"0.001": 0.2}, {"0.001": [0.15, 0.25]}, resolvable={"0.001": False})
    # a TPR measured at an empirical FPR of 0 (the FPR unresolvable) shows a leak, but not how large against α
    risk = assess({"loss": quiet, "lira": unresolved}, "0.01", "loss")
    assert risk.level == "elevated" and "unresolvable" in risk.reason
    at_chance = _attack({"0.001": 0.0}, {"0.001": [0.0, 0.001]}, resolvable={"0.001": False})
    assert assess({"loss": quiet, "lira": at_chance}, "0.01", "loss").level == "low"


def test_every_column_of_every_kind_of_report_has_a_tooltip(tmp_path):
    """Audit with defenses and one-run canaries, LLM, red team with and without ground truth: no <th> unexplained."""
    import re

    from report_fixtures import REDTEAM, defenses_payload, llm_payload, metrics

    from memberscope.report.glossary import column_help

    pages = [write_html(write_audit_run(tmp_path / "audit", claimed_epsilon=0.5, defenses=defenses_payload()))]
    for name, payload in (
        ("llm", llm_payload()),
        ("red", REDTEAM),
        ("red-truth", {**REDTEAM, "attacks": {"confidence": metrics(1.0)}}),
    ):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps(payload))
        pages.append(write_html(tmp_path / name))
    headers = set()
    for page in pages:
        text = page.read_text()
        bare = re.findall(r"<th>([^<]*)", text)
        assert bare == [], f"{page}: columns without a tooltip: {bare}"
        headers |= set(re.findall(r"<th title=\"[^\"]+\">([^<]*)", text))
    assert {"AUC (95% CI)", "TPR @ 1.0% FPR", "ε lower bound", "member", "defense"} <= headers
    assert "shadow" not in (column_help("TPR @ 1.0% FPR") or "")
    assert column_help("shadow TPR (95% CI)").startswith("The share of the shadow models")
    assert column_help("no such column") is None


def test_recommendations_show_code_not_markdown_backticks(tmp_path):
    page = write_html(write_audit_run(tmp_path / "run")).read_text()
    recs = page.split("<h2>Recommendations</h2>")[1].split("</ol>")[0]
    assert "<code>memberscope gate --max-tpr-at-fpr" in recs
    assert "`" not in recs


def test_code_spans_escape_everything_else():
    from memberscope.report.glossary import code_spans

    assert str(code_spans("run `a<b` & <i>x</i>")) == "run <code>a&lt;b</code> &amp; &lt;i&gt;x&lt;/i&gt;"


def test_a_red_team_headline_names_its_verdicts_beside_the_measured_tpr(tmp_path):
    from report_fixtures import REDTEAM, metrics

    from memberscope.results import read_results

    (tmp_path / "results.json").write_text(json.dumps({**REDTEAM, "attacks": {"confidence": metrics(1.0)}}))
    results = read_results(tmp_path)
    model = build_report(results)
    assert model.summary.startswith(
        "Scored against the membership you supplied (ground truth), an attacker who accepts 1.0% false positives"
    )
    assert "called 17 record(s) members, 60 non-members and 23 inconclusive" in model.summary
    write_results_json(results, tmp_path / "results.json")
    assert json.loads((tmp_path / "results.json").read_text())["headline"]["finding"] == model.summary
    page = html.unescape(write_html(tmp_path).read_text())
    assert model.summary in page and _console_text(results).count("called 17 record(s) members") == 1


def test_vulnerable_records_show_exceedance_as_a_percentage(tmp_path):
    run = write_audit_run(tmp_path / "run")
    data = json.loads((run / "results.json").read_text())
    data["vulnerable_records"] = {
        "attack": "rmia-online",
        "records": [{"record": "patient-7", "group": "rare", "score": 3.2, "nonmember_exceedance": 0.0125}],
    }
    (run / "results.json").write_text(json.dumps(data))
    page = write_html(run).read_text()
    assert "<td>patient-7</td>" in page and "<td>rare</td>" in page and "<td>1.2%</td>" in page


def test_a_red_team_without_a_query_budget_says_so(tmp_path):
    from report_fixtures import REDTEAM

    from memberscope.results import read_results

    data = json.loads(json.dumps(REDTEAM))
    data["redteam"]["target"]["query_budget"] = None
    (tmp_path / "results.json").write_text(json.dumps(data))
    summary = build_report(read_results(tmp_path)).summary
    assert summary.endswith("spending 1234 queries (no budget set).")


@pytest.mark.parametrize(
    ("significant", "shift", "level"),
    [(True, None, "elevated"), (True, "shifted", "inconclusive"), (False, None, "inconclusive")],
)
def test_a_dataset_inference_report_opens_with_its_verdict(tmp_path, significant, shift, level):
    p = 1e-6 if significant else 0.4
    verdict = "the model treats the suspect texts like training data" if significant else "inconclusive: p = 0.4"
    payload = {
        "kind": "dataset-inference",
        "created": "2026-11-30T10:00:00+0000",
        "p_value": p,
        "test": {"test": "welch", "p_value": p, "alpha": 0.05, "significant": significant},
        "verdict": verdict,
        "validity": {"warning": shift},
        "warnings": [],
    }
    (tmp_path / "results.json").write_text(json.dumps(payload))
    from memberscope.results import read_results

    results = read_results(tmp_path)
    assert results.risk().level == level
    page = html.unescape(write_html(tmp_path).read_text())
    sentence = verdict[:1].upper() + verdict[1:] + "."
    assert f"Risk: {level.upper()}" in page and sentence in page
    assert sentence in _console_text(results)
