"""The CLI: outputs, and exit code 2 with a clear message on bad input."""

import json
import subprocess
import sys

import pytest
from cli_helpers import run_cli


@pytest.mark.parametrize(
    "args,message",
    [
        (["audit", "--dataset", "mnist"], "unknown dataset 'mnist'"),
        (["audit", "--attacks", "lira"], "unknown attack 'lira'"),
        (["audit", "--fpr", "0.01,2"], "FPR 2.0 is outside (0, 1)"),
        (["audit", "--fpr", "abc"], "--fpr 'abc' must be comma-separated numbers"),
        (["audit", "-k", "1", "--attacks", "lira-online"], "needs at least 2 reference models"),
        (["audit", "--config", "/nonexistent/config.yaml"], "cannot read config file"),
        (["audit", "--dataset", "/nonexistent/table.csv"], "/nonexistent/table.csv"),
        (["audit", "--model", "transformer"], "unknown model recipe 'transformer'"),
        (["audit", "--model-param", "epochs"], "is not of the form KEY=VALUE"),
    ],
)
def test_bad_input_exits_2_naming_the_value(args, message, capsys, tmp_path):
    code, out, err = run_cli(*args, "--out", str(tmp_path / "o"), capsys=capsys)
    assert code == 2, (out, err)
    assert message in err
    assert "Traceback" not in err


def test_bad_yaml_config_exits_2(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("dataset: [unclosed\n")
    code, _, err = run_cli("audit", "--config", str(cfg), capsys=capsys)
    assert code == 2 and "not valid YAML" in err


def test_unknown_config_key_exits_2(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("datset: digits\n")
    code, _, err = run_cli("audit", "--config", str(cfg), capsys=capsys)
    assert code == 2 and "unknown configuration keys ['datset']" in err


def test_user_table_missing_label_column_exits_2(tmp_path, capsys):
    table = tmp_path / "people.csv"
    table.write_text("a,b,outcome\n1,2,0\n3,4,1\n")
    code, _, err = run_cli("audit", "--dataset", str(table), "--attacks", "loss", "-k", "0", capsys=capsys)
    assert code == 2 and "label" in err


@pytest.mark.parametrize(("rows", "extra", "message"), [
    (4, [], "has 4 rows: too few to audit. An audit needs at least 13 rows"),
    (12, [], "has 12 rows: too few to audit. An audit needs at least 13 rows"),
    (12, ["--population-size", "5"], "has 12 rows: too few to audit. An audit needs at least 15 rows"),
])  # fmt: skip
def test_a_table_too_small_to_audit_says_its_row_count_and_the_minimum(rows, extra, message, tmp_path, capsys):
    table = tmp_path / "tiny.csv"
    table.write_text("a,b,label\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(rows)))
    code, _, err = run_cli(
        "audit", "--dataset", str(table), "--attacks", "loss", "-k", "0", "--out", str(tmp_path / "o"), *extra,
        capsys=capsys,
    )  # fmt: skip
    assert code == 2 and message in " ".join(err.split()), err
    assert "at least 5 members and 5 non-members" in " ".join(err.split())
    assert not (tmp_path / "o").exists()


def test_the_smallest_table_the_message_names_is_enough():
    from memberscope.api import check_pool_size, pool_sizes
    from memberscope.config import AuditConfig

    config = AuditConfig(dataset="tiny.csv")
    check_pool_size(13, pool_sizes(13, config)[0], config)  # the minimum the message above names: accepted


def test_usage_error_exits_2(capsys):
    code, _, _ = run_cli("audit", "--no-such-flag", capsys=capsys)
    assert code == 2


def test_audit_from_yaml_config_writes_outputs(tmp_path, capsys):
    cfg = tmp_path / "audit.yaml"
    cfg.write_text(
        "dataset: digits\nmodel: mlp\nmodel_params: {hidden: [32], epochs: 5}\nreference-models: 2\n"
        "attacks: [loss, lira-offline, rmia-offline]\nseed: 3\nn_bootstrap: 50\n"
    )
    out = tmp_path / "run"
    code, stdout, err = run_cli("audit", "--config", str(cfg), "--out", str(out), "--no-progress", capsys=capsys)
    assert code == 0, err
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["seed"] == 3 and results["config"]["reference_models"] == 2
    assert set(results["attacks"]) == {"loss", "lira-offline", "rmia-offline"}
    assert "TPR @ 1% FPR" in stdout
    assert (out / "scores.csv").exists() and (out / "roc.png").exists() and (out / "report.html").exists()
    assert "report.html" in stdout
    (out / "report.html").unlink()
    code, stdout, err = run_cli(
        "audit", "--config", str(cfg), "--out", str(out), "--no-progress", "--no-report", capsys=capsys
    )
    assert code == 0, err
    assert (out / "results.json").exists() and not (out / "report.html").exists()


def test_datasets_command_lists_builtins(capsys):
    code, out, _ = run_cli("datasets", "--json", capsys=capsys)
    assert code == 0
    names = {d["name"] for d in json.loads(out)}
    assert {"digits", "breast-cancer", "fashion-mnist", "purchase-synthetic"} <= names


def test_console_script_is_installed_and_import_is_light():
    code = (
        "import sys, memberscope; heavy = [m for m in ('torch', 'sklearn', 'matplotlib', 'pandas', 'scipy') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    help_text = subprocess.run([sys.executable, "-m", "memberscope.cli", "--help"], capture_output=True, text=True)
    assert help_text.returncode == 0 and "audit" in help_text.stdout


def test_demo_command_writes_every_output(tmp_path, capsys):
    out = tmp_path / "demo"
    code, stdout, err = run_cli("demo", "--out", str(out), "--no-progress", capsys=capsys)
    assert code == 0, err
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["dataset"] == "digits" and results["game"]["n_reference_models"] == 16
    assert results["target"]["train_accuracy"] == 1.0
    assert (out / "scores.csv").exists() and (out / "roc.png").stat().st_size > 10_000
    assert (out / "report.html").stat().st_size > 20_000
    assert "rmia-online" in stdout
