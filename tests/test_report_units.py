"""Rates as percentages in every command's words: the defense recommendation, the audit and defend consoles,
and the red team's Markdown summary (no bare fractions such as "TPR 0.05 at FPR 0.01", no 16-digit numbers)."""

import io
import json
import re
from types import SimpleNamespace

import pytest
from report_fixtures import REDTEAM, metrics, write_audit_run
from rich.console import Console

from memberscope.defenses.evaluate import recommend

BARE_RATE = re.compile(r"\b(TPR|FPR|accuracy|acc)\s*\(?0\.\d+")
LONG_NUMBER = re.compile(r"\d\.\d{6,}")


def _defense(acc, shift):
    return {"test_accuracy": acc, "strongest_attack": "loss", "attacks": {"loss": metrics(shift)}}


@pytest.mark.parametrize(
    "defenses",
    [
        {"none": _defense(0.9123, 0.0), "l2": _defense(0.9, 0.0)},  # none needed
        {"none": _defense(0.9123, 3.0), "l2": _defense(0.8765, 0.0)},  # l2 chosen
        {"none": _defense(0.9123, 3.0), "l2": _defense(0.8765, 2.5)},  # none within the budget
    ],
)
def test_the_defense_recommendation_writes_rates_as_percentages(defenses):
    reason = recommend(defenses, (0.01, 0.05))["reason"]
    assert not BARE_RATE.search(reason), reason
    assert not LONG_NUMBER.search(reason), reason
    assert "1% " in reason or "FPR 1%" in reason, reason
    assert "5%" in reason, reason


def _printed(renderable, width=100):
    buffer = io.StringIO()
    Console(file=buffer, width=width, color_system=None).print(renderable)
    return " ".join(buffer.getvalue().split())


def test_the_audit_and_defend_consoles_write_accuracy_as_a_percentage(tmp_path):
    from memberscope.cli.defend import defenses_table
    from memberscope.report.console import results_table
    from memberscope.report.model import load_run

    results, _, _ = load_run(write_audit_run(tmp_path / "run"), figures=False)
    assert "train acc 99.0%, test acc 90.0%" in _printed(results_table(results))
    entry = {**_defense(0.9123, 1.0), "accuracy_cost": -0.01, "epsilon": None, "delta": None}
    defend = SimpleNamespace(
        dataset=SimpleNamespace(name="digits"),
        sections={"recommendation": {"budget": {"fpr": 0.01}}, "defenses": {"none": entry}},
    )
    text = _printed(defenses_table(defend))
    assert "91.23%" in text and "0.9123" not in text


def test_the_red_team_markdown_writes_the_target_fpr_as_a_percentage_and_a_short_threshold(tmp_path):
    from memberscope.report.markdown import write_markdown

    payload = json.loads(json.dumps(REDTEAM))
    payload["redteam"]["calibration"]["threshold"] = 4.794251134963191
    (tmp_path / "results.json").write_text(json.dumps(payload))
    md = write_markdown(tmp_path).read_text()
    assert "target FPR 1.0%, threshold 4.794)" in md, md
    assert not LONG_NUMBER.search(md)
