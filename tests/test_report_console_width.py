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
