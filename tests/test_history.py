"""Run history: rows per attack in SQLite, `memberscope history`, and audits recording by default."""

import json

import pytest
from cli_helpers import run_cli

from memberscope.exceptions import InvalidInputError
from memberscope.report.history import default_history_db, list_runs, record_run


def _results(seed, tpr):
    attack = {"auc": 0.6, "tpr_at_fpr": {"0.01": tpr}, "tpr_at_fpr_ci": {"0.01": [tpr - 0.01, tpr + 0.01]}}
    return {
        "created": f"2026-01-0{seed}",
        "config": {"model": "mlp", "seed": seed},
        "dataset": {"name": "digits"},
        "game": {"n_reference_models": 4},
        "attacks": {"loss": attack, "rmia-online": {**attack, "auc": 0.7}},
    }


def test_record_and_list_newest_first(tmp_path):
    db = tmp_path / "sub" / "h.sqlite"
    assert record_run(db, _results(1, 0.05), out_dir="runs/a") == 2
    record_run(db, _results(2, 0.08))
    rows = list_runs(db)
    assert [(r["seed"], r["attack"]) for r in rows] == [
        (2, "rmia-online"),
        (2, "loss"),
        (1, "rmia-online"),
        (1, "loss"),
    ]
    assert rows[-1]["out_dir"] == "runs/a" and rows[0]["out_dir"] is None
    assert rows[0]["tpr_at_1pct"] == 0.08 and rows[0]["tpr_at_1pct_low"] == pytest.approx(0.07)
    assert len(list_runs(db, limit=1)) == 1


def test_default_db_follows_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("MEMBERSCOPE_HISTORY_DB")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_history_db() == tmp_path / "memberscope" / "history.sqlite"


def test_bad_history_input(tmp_path):
    with pytest.raises(InvalidInputError, match="does not exist"):
        list_runs(tmp_path / "none.sqlite")
    with pytest.raises(InvalidInputError, match="limit 0 must be at least 1"):
        list_runs(tmp_path / "none.sqlite", limit=0)
    (tmp_path / "junk.sqlite").write_text("not a database" * 100)
    with pytest.raises(InvalidInputError, match="cannot open history database"):
        list_runs(tmp_path / "junk.sqlite")


def test_history_command(tmp_path, capsys):
    db = tmp_path / "h.sqlite"
    record_run(db, _results(3, 0.05), out_dir="runs/x")
    code, out, err = run_cli("history", "--db", str(db), capsys=capsys)
    assert code == 0, err
    assert "memberscope history" in out and "digits" in out
    code, out, err = run_cli("history", "--db", str(db), "--json", "--limit", "1", capsys=capsys)
    assert code == 0, err
    [row] = json.loads(out)
    assert (row["attack"], row["tpr_at_1pct"], row["out_dir"]) == ("rmia-online", 0.05, "runs/x")
    code, _, err = run_cli("history", "--db", str(tmp_path / "missing.sqlite"), capsys=capsys)
    assert code == 2 and "does not exist" in err


def test_audit_records_into_history(tmp_path, capsys):
    db = tmp_path / "runs.sqlite"
    code, _, err = run_cli(
        "audit",
        "--dataset",
        "digits",
        "--model-param",
        "epochs=3",
        "--model-param",
        "hidden=[16]",
        "-k",
        "0",
        "--attacks",
        "loss",
        "--n-bootstrap",
        "20",
        "--out",
        str(tmp_path / "o"),
        "--no-progress",
        "--no-report",
        "--db",
        str(db),
        capsys=capsys,
    )
    assert code == 0, err
    rows = list_runs(db)
    results = json.loads((tmp_path / "o" / "results.json").read_text())
    assert [r["attack"] for r in rows] == ["loss"]
    assert rows[0]["auc"] == pytest.approx(results["attacks"]["loss"]["auc"])
