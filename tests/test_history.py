"""Run history: rows per attack in SQLite, `memberscope history`, and audits recording by default."""

import json

import pytest
from cli_helpers import run_cli
from results_helpers import full_metrics

from memberscope.exceptions import InvalidInputError
from memberscope.report.history import default_history_db, list_runs, record_run
from memberscope.results import Results


def _results(seed, tpr):
    attack = full_metrics(auc=0.6, tpr_at_fpr={"0.01": tpr}, tpr_at_fpr_ci={"0.01": [tpr - 0.01, tpr + 0.01]})
    return Results.from_dict(
        {
            "created": f"2026-01-0{seed}",
            "config": {"model": "mlp", "seed": seed},
            "dataset": {"name": "digits"},
            "game": {"n_reference_models": 4},
            "attacks": {"loss": attack, "rmia-online": {**attack, "auc": 0.7}},
        }
    )


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


def test_history_command(tmp_path, capsys, monkeypatch):
    db = tmp_path / "h.sqlite"
    record_run(db, _results(3, 0.05), out_dir="runs/x")
    code, out, err = run_cli("history", "--db", str(db), capsys=capsys)
    assert code == 0, err
    assert "memberscope history" in out and "digits" in out
    code, out, err = run_cli("history", "--db", str(db), "--json", "--limit", "1", capsys=capsys)
    created = json.loads(out)[0]["created"]
    # At 80 columns every cell is folded, never cut: the whole timestamp and attack name survive.
    monkeypatch.setenv("COLUMNS", "80")
    code, narrow, err = run_cli("history", "--db", str(db), capsys=capsys)
    assert code == 0, err
    lines = narrow.splitlines()
    assert all(len(line) <= 80 for line in lines) and "…" not in narrow
    cells = "".join(line.split("│")[1].strip() for line in lines if line.count("│") > 2)
    assert created in cells
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
        "--model-name",
        "digits-mlp",
        "--model-version",
        "v1",
        capsys=capsys,
    )
    assert code == 0, err
    rows = list_runs(db)
    results = json.loads((tmp_path / "o" / "results.json").read_text())
    assert [r["attack"] for r in rows] == ["loss"]
    assert (rows[0]["model_name"], rows[0]["model_version"]) == ("digits-mlp", "v1")
    assert results["config"]["model_name"] == "digits-mlp" and results["config"]["model_version"] == "v1"
    assert rows[0]["auc"] == pytest.approx(results["attacks"]["loss"]["auc"])


def _versioned(version, tpr, ci, auc=0.6, auc_ci=(0.55, 0.65), name="fraud"):
    attack = full_metrics(auc=auc, auc_ci=list(auc_ci), tpr_at_fpr={"0.01": tpr}, tpr_at_fpr_ci={"0.01": list(ci)})
    return Results.from_dict(
        {
            "created": f"2026-02-{version}",
            "config": {"model": "mlp", "seed": 0, "model_name": name, "model_version": version},
            "dataset": {"name": "digits"},
            "game": {"n_reference_models": 4},
            "attacks": {"rmia-online": attack},
        }
    )


def test_compare_versions_flags_only_significant_increases(tmp_path):
    from memberscope.report.history import compare_versions

    db = tmp_path / "h.sqlite"
    record_run(db, _versioned("1", 0.05, (0.03, 0.07)))
    record_run(db, _versioned("2", 0.06, (0.04, 0.08)))  # within noise: no flag under either rule
    record_run(db, _versioned("3", 0.10, (0.085, 0.12)))  # CI disjoint from v2's (upper 0.08): flagged
    record_run(db, _versioned("4", 0.13, (0.11, 0.15)))  # point 0.13 > v3 upper 0.12, CIs overlap
    record_run(db, _versioned("1", 0.01, (0.0, 0.02), name="other"))
    cmp = compare_versions(db, "fraud")
    assert [v["version"] for v in cmp.versions] == ["1", "2", "3", "4"]
    flagged = [(v, a, c.metric) for v, a, c in cmp.regressions()]
    assert flagged == [("3", "rmia-online", "tpr_at_1pct")]
    assert not cmp.latest_regressed
    point = compare_versions(db, "fraud", rule="point")
    assert [v for v, _, _ in point.regressions()] == ["3", "4"] and point.latest_regressed
    first = cmp.versions[0]["attacks"]["rmia-online"]
    assert first["changes"] == [] and first["tpr_at_1pct_ci"] == (0.03, 0.07)
    # Re-auditing a version replaces its figures but keeps its place in the order.
    record_run(db, _versioned("2", 0.02, (0.01, 0.03)))
    again = compare_versions(db, "fraud")
    assert [v["version"] for v in again.versions] == ["1", "2", "3", "4"]
    assert again.versions[1]["attacks"]["rmia-online"]["tpr_at_1pct"] == 0.02
    with pytest.raises(InvalidInputError, match=r"no runs of model 'nope'.*fraud, other"):
        compare_versions(db, "nope")
    with pytest.raises(InvalidInputError, match="regression rule 'x'"):
        compare_versions(db, "fraud", rule="x")


def test_auc_regression_uses_auc_ci(tmp_path):
    from memberscope.report.history import compare_versions

    db = tmp_path / "h.sqlite"
    record_run(db, _versioned("a", 0.05, (0.03, 0.07), auc=0.60, auc_ci=(0.58, 0.62)))
    record_run(db, _versioned("b", 0.05, (0.03, 0.07), auc=0.66, auc_ci=(0.63, 0.69)))
    [(version, _, change)] = compare_versions(db, "fraud").regressions()
    assert (version, change.metric, change.previous_ci) == ("b", "auc", (0.58, 0.62))
    assert "AUC 0.66 (0.63–0.69) vs 0.6 (0.58–0.62) before" == change.describe()


def test_old_database_is_migrated(tmp_path):
    import sqlite3

    db = tmp_path / "old.sqlite"
    con = sqlite3.connect(db)
    con.execute(
        "CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, created TEXT, out_dir TEXT, dataset TEXT,"
        " model TEXT, seed INTEGER, reference_models INTEGER, attack TEXT, auc REAL, tpr_at_1pct REAL,"
        " tpr_at_1pct_low REAL, tpr_at_1pct_high REAL)"
    )
    con.execute("INSERT INTO runs (created, attack, auc) VALUES ('2025-12-31', 'loss', 0.55)")
    con.commit()
    con.close()
    record_run(db, _versioned("1", 0.05, (0.03, 0.07)))
    rows = list_runs(db)
    assert [(r["attack"], r["model_name"], r["model_version"]) for r in rows] == [
        ("rmia-online", "fraud", "1"),
        ("loss", None, None),
    ]
    assert rows[0]["auc_low"] == 0.55


def test_history_model_command_and_ci_exit_code(tmp_path, capsys):
    db = tmp_path / "h.sqlite"
    record_run(db, _versioned("1", 0.05, (0.03, 0.07)))
    record_run(db, _versioned("2", 0.06, (0.04, 0.08)))
    code, out, err = run_cli("history", "--db", str(db), "--model", "fraud", "--fail-on-regression", capsys=capsys)
    assert code == 0, err
    assert "memberscope history: fraud" in out and "REGRESSION" not in out
    record_run(db, _versioned("3", 0.12, (0.09, 0.15)))
    code, out, err = run_cli("history", "--db", str(db), "--model", "fraud", capsys=capsys)
    assert code == 0 and "REGRESSION fraud 3: rmia-online TPR at 1% FPR 0.12 (0.09–0.15)" in out
    code, out, err = run_cli("history", "--db", str(db), "--model", "fraud", "--fail-on-regression", capsys=capsys)
    assert code == 1 and "newest version of 'fraud'" in err
    code, out, _ = run_cli("history", "--db", str(db), "--model", "fraud", "--json", capsys=capsys)
    data = json.loads(out)
    assert data["latest_regressed"] and [v["version"] for v in data["versions"]] == ["1", "2", "3"]
    assert data["versions"][2]["attacks"]["rmia-online"]["regression"] is True
    code, _, err = run_cli("history", "--db", str(db), "--fail-on-regression", capsys=capsys)
    assert code == 2 and "needs --model" in err
    code, _, err = run_cli("history", "--db", str(db), "--model", "fraud", "--rule", "bogus", capsys=capsys)
    assert code == 2 and "regression rule 'bogus'" in err


def test_model_name_and_version_config():
    from memberscope.config import AuditConfig

    cfg = AuditConfig(model_name="fraud", model_version=3, reference_models=0, attacks="loss")
    assert cfg.to_dict()["model_version"] == "3"
    with pytest.raises(InvalidInputError, match="model_version is set without model_name"):
        AuditConfig(model_version="1", reference_models=0, attacks="loss")
    with pytest.raises(InvalidInputError, match="quote versions"):
        AuditConfig(model_name="fraud", model_version=1.1, reference_models=0, attacks="loss")
