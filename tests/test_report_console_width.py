"""The console's attack table at an 80-column terminal: nothing cut, no interval split across lines."""

import io

from report_fixtures import write_audit_run
from rich.console import Console

from memberscope.report.console import headline_text, results_table
from memberscope.report.model import load_run


def test_attack_table_fits_80_columns_with_whole_intervals(tmp_path):
    results, _, _ = load_run(write_audit_run(tmp_path / "run"), figures=False)
    buffer = io.StringIO()
    console = Console(file=buffer, width=80, color_system=None)
    console.print(results_table(results))
    console.print(headline_text(results))
    lines = buffer.getvalue().splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert not any("…" in line for line in lines)
    for line in lines:
        assert line.count("[") == line.count("]"), f"an interval split across lines: {line!r}"
    assert any("rmia-online (strongest)" in line for line in lines)


def test_llm_table_names_an_in_memory_model_and_fits_80_columns():
    import json

    from report_fixtures import llm_payload

    from memberscope.cli.llm import _llm_table

    payload = json.loads(json.dumps(llm_payload()))
    payload["llm"]["model"] = ""  # llm-demo's model lives in memory
    buffer = io.StringIO()
    Console(file=buffer, width=80, color_system=None).print(_llm_table(payload))
    text = buffer.getvalue()
    assert "in-memory language model: 1000 members, 1000 non-members" in text
    lines = text.splitlines()
    assert all(len(line) <= 80 and line.count("[") == line.count("]") for line in lines)


def test_the_one_run_epsilon_is_printed(tmp_path):
    from memberscope.report.console import one_run_text

    results, _, _ = load_run(write_audit_run(tmp_path / "run", one_run=True), figures=False)
    attacks = results.epsilon["one_run"]["attacks"]
    best = max(attacks, key=lambda a: attacks[a]["epsilon"])
    text = one_run_text(results)
    assert text.startswith("One-run ε audit (1000 canaries, δ = 0)")
    assert f"ε ≥ {attacks[best]['epsilon']:.2f} at 95% confidence ({best}:" in text
    without, _, _ = load_run(write_audit_run(tmp_path / "plain", one_run=False), figures=False)
    assert one_run_text(without) is None


def test_defend_table_folds_instead_of_cutting_at_80_columns():
    from types import SimpleNamespace

    from report_fixtures import metrics

    from memberscope.cli.defend import defenses_table

    entry = {
        "test_accuracy": 0.9123,
        "accuracy_cost": -0.0123,
        "epsilon": 8.0,
        "delta": 1e-5,
        "strongest_attack": "modified-entropy",
        "attacks": {"modified-entropy": metrics(1.0)},
    }
    results = SimpleNamespace(
        dataset=SimpleNamespace(name="fashion-mnist"),
        sections={
            "recommendation": {"budget": {"fpr": 0.01}},
            "defenses": {"dp-sgd:eps=8:delta=1e-5:clip=1": entry, "none": {**entry, "epsilon": None}},
        },
    )
    buffer = io.StringIO()
    Console(file=buffer, width=80, color_system=None).print(defenses_table(results))
    text = buffer.getvalue()
    assert "…" not in text and all(len(line) <= 80 for line in text.splitlines())
    assert text.count("modified-entropy") == 2, text  # the attack's name whole on one line, in both rows
    for figure in ("91.23%", "-1.23 pt", "8.00", "(δ=1e-05)"):
        assert figure in text, figure  # numbers are never split across lines
