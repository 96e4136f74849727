"""Reports of every feature's outputs: claimed vs empirical ε, one-run audit, defenses, red team, LLM."""

import json
import re

import pytest
from cli_helpers import run_cli
from report_fixtures import REDTEAM, defenses_payload, llm_payload, write_audit_run

from memberscope.report.html import write_html
from memberscope.report.markdown import write_markdown


def _images(html):
    return re.findall(r'<img src="(data:image/png;base64,[^"]+)"', html)


def test_audit_with_defenses_one_run_and_claimed_epsilon(tmp_path):
    run = write_audit_run(tmp_path / "run", claimed_epsilon=50.0, defenses=defenses_payload())
    html = write_html(run).read_text()
    assert len(_images(html)) == 3  # ROC, histogram, privacy-utility frontier
    assert "<h2>Defenses</h2>" in html and "<h2>One-run ε audit (1000 canaries)</h2>" in html
    assert re.search(r"<th[^>]*>claimed ε</th>", html) and "(ε, δ) = (50, 1e-05)-DP" in html
    assert 'class="alarm"' not in html  # every bound is far below ε = 50
    results = json.loads((run / "results.json").read_text())
    one = results["epsilon"]["one_run"]["attacks"]["rmia-online"]
    assert f"{one['correct']} / {one['guesses']}" in html and one["epsilon"] > 1
    assert "<td>dp-sgd</td><td>82.0%</td><td>1 (δ=1e-05)</td>" in html
    assert "Recommended:</strong> dp-sgd" in html
    md = write_markdown(run).read_text()
    assert "| `dp-sgd` | 82.0% | 1 (δ=1e-05) |" in md and "**Recommended defense:** dp-sgd" in md
    assert "**One-run ε audit**" in md and "| `rmia-online` |" in md and "WARNING" not in md
    assert "claimed ε |" in md


def test_empirical_above_claimed_epsilon_warns_loudly(tmp_path):
    run = write_audit_run(tmp_path / "run", claimed_epsilon=0.5, defenses=defenses_payload(dp_shift=3.0))
    html = write_html(run).read_text()
    assert 'class="alarm"' in html and "probably broken" in html
    assert re.search(
        r"rmia-online: empirical ε ≥ [0-9.]+ \(Clopper–Pearson, 95% confidence\) exceeds the claimed", html
    )
    assert re.search(r"defense dp-sgd: empirical ε ≥ [0-9.]+ .* exceeds its claimed ε = 1", html)
    assert '<tr class="hot"><td>dp-sgd</td>' in html
    md = write_markdown(run).read_text()
    assert md.count("**⚠ WARNING:**") >= 3 and "`dp-sgd` ⚠" in md
    # The loud warning tops the recommendations too.
    assert "audit the DP-SGD implementation" in html.split("<h2>Recommendations</h2>")[1][:400]


def test_redteam_results_without_ground_truth_render(tmp_path, capsys):
    (tmp_path / "results.json").write_text(json.dumps(REDTEAM))
    code, _, err = run_cli("report", str(tmp_path), capsys=capsys)
    assert code == 0, err
    html = (tmp_path / "report.html").read_text()
    assert "<h1>Red-team membership assessment: http://127.0.0.1:8000/predict</h1>" in html
    assert "called 17 record(s) members, 60 non-members and 23 inconclusive, spending 1234 of 5000 queries" in html
    assert "rounded to 2 decimals; deterministic; not-rate-limited" not in html
    # What the API shows, in recon's words (the same sentence `memberscope recon` prints).
    assert "the top-3 classes with their probabilities, rounded to 2 decimals; deterministic; not rate-limited" in html
    assert "12.0% (9.0%–15.0%)" in html and "<td>17</td><td>60</td><td>23</td>" in html
    assert "Return labels only" in html and not _images(html) and "<h2>Attacks</h2>" not in html
    code, _, err = run_cli("report", str(tmp_path), "--format", "md", capsys=capsys)
    assert code == 0, err
    md = (tmp_path / "summary.md").read_text()
    assert "## memberscope red team" in md and "- Verdicts: 17 member, 60 not-member, 23 inconclusive." in md
    assert "1. Return labels only" in md


def test_redteam_with_ground_truth_gets_an_attack_table(tmp_path):
    from report_fixtures import metrics

    (tmp_path / "results.json").write_text(json.dumps({**REDTEAM, "attacks": {"confidence": metrics(1.0)}}))
    html = write_html(tmp_path).read_text()
    assert "<h2>Attacks</h2>" in html and "<h2>Red-team findings</h2>" in html
    # the ground-truth figures are said to come from the membership the user supplied, apart from the verdicts
    assert "Scored against the membership you supplied (ground truth), an attacker who accepts 1.0% false" in html
    assert "Verdicts (without ground truth): against http://127.0.0.1:8000/predict" in html
    assert " *</td>" in html  # ε from the summary metrics, marked as such


def test_llm_results_render_canaries_and_validity_warning(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps(llm_payload()))
    html = write_html(tmp_path).read_text()
    assert "<h1>LLM membership-inference audit: /models/tiny-gpt</h1>" in html
    assert html.index("<td>1</td><td>1.20 (0.90–1.50)</td>") < html.index("<td>10</td><td>6.50 (5.90–7.10)</td>")
    assert 'class="alarm"' in html and "the split is not random" in html
    assert "0.710 (0.680–0.740)" in html and "<h2>Attacks</h2>" in html
    md = write_markdown(tmp_path).read_text()
    assert "| 10 | 6.50 (5.90–7.10) | 40.0% @ 1.0% FPR |" in md and "**⚠ WARNING:** LLM audit validity" in md


@pytest.mark.parametrize(
    "files,message",
    [
        ({"results.json": {"kind": "weird"}}, "has kind 'weird'"),
        ({"results.json": {"kind": "llm", "attacks": {"a": 1}}}, "must map attack names to metrics"),
        ({"results.json": REDTEAM, "defenses.json": {"nope": 1}}, "must hold an object with a 'defenses'"),
        ({"results.json": REDTEAM, "defenses.json": "{"}, "is not valid JSON"),
    ],
)
def test_malformed_inputs_exit_2(tmp_path, capsys, files, message):
    for name, content in files.items():
        (tmp_path / name).write_text(content if isinstance(content, str) else json.dumps(content))
    code, _, err = run_cli("report", str(tmp_path), capsys=capsys)
    assert code == 2 and message in err


def test_redteam_headline_states_the_conclusion(tmp_path, capsys):
    headline = "Inconclusive: the lira-offline attack's power on this target is unknown (the shadows fit poorly)."
    red = {**REDTEAM["redteam"], "conclusion": {"status": "inconclusive", "headline": headline, "reasons": []}}
    (tmp_path / "results.json").write_text(json.dumps({**REDTEAM, "redteam": red}))
    code, _, err = run_cli("report", str(tmp_path), capsys=capsys)
    assert code == 0, err
    html = (tmp_path / "report.html").read_text()
    assert "23 inconclusive, spending 1234 of 5000 queries. Inconclusive: the lira-offline attack" in html
