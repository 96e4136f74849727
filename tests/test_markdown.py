"""The Markdown summary: executive sentence with CI, one row per attack, warnings; `memberscope report`."""

import json

import numpy as np
import pandas as pd
import pytest
from cli_helpers import run_cli
from results_helpers import full_metrics

from memberscope.report.markdown import executive_summary, markdown_summary, write_markdown


def _attack(tpr01, ci, warnings=()):
    return full_metrics(
        auc=0.6,
        auc_ci=[0.59, 0.61],
        tpr_at_fpr={"0.1": 0.2, "0.01": tpr01, "0.001": 0.001},
        tpr_at_fpr_ci={"0.1": [0.19, 0.21], "0.01": ci, "0.001": [0.0, 0.003]},
        fpr_resolvable={"0.1": True, "0.01": True, "0.001": False},
        warnings=list(warnings),
        n_members=0,  # counts not recorded: no ε bound can be read off the TPRs alone
        n_nonmembers=0,
    )


@pytest.fixture
def results():
    return {
        "schema_version": "1.0",
        "dataset": {"name": "digits"},
        "target": {"train_accuracy": 1.0, "test_accuracy": 0.9},
        "game": {"n_members": 500, "n_nonmembers": 500, "n_reference_models": 4},
        "attacks": {
            "loss": _attack(0.02, [0.01, 0.03]),
            "rmia-online": _attack(0.052, [0.043, 0.060], warnings=["FPR 0.001 needs 1000 non-members"]),
        },
        "warnings": ["target overfits"],
    }


def test_executive_summary_names_strongest_attack_with_ci(results):
    assert executive_summary(results) == (
        "An attacker who accepts 1.0% false positives identifies 5.2% (4.3%–6.0%) of training records "
        "(rmia-online, the strongest of 2 attacks; chance is 1.0%)."
    )


def test_executive_summary_of_a_single_attack_says_it_is_the_only_one(results):
    del results["attacks"]["loss"]
    assert executive_summary(results).endswith("(rmia-online, the only attack run; chance is 1.0%).")


def test_summary_table_and_warnings(results):
    text = markdown_summary(results)
    assert (
        "| `rmia-online` | 0.600 (0.590–0.610) | 20.0% (19.0%–21.0%) | 5.2% (4.3%–6.0%) | 0.1% (0.0%–0.3%) † |" in text
    )
    assert "| `loss` |" in text and "ε lower bound" not in text
    assert "train accuracy 100.0%, test accuracy 90.0% (gap 10.0%)" in text
    assert "- target overfits" in text and "- rmia-online: FPR 0.001 needs 1000 non-members" in text
    assert "† too few non-members" in text


def _write_run(results, tmp_path):
    (tmp_path / "results.json").write_text(json.dumps(results))
    rng = np.random.default_rng(0)
    member = np.r_[np.ones(500), np.zeros(500)].astype(int)
    pd.DataFrame(
        {"record": np.arange(1000), "member": member, "loss": rng.normal(size=1000), "rmia-online": member * 3.0}
    ).to_csv(tmp_path / "scores.csv", index=False)


def test_report_command_writes_summary_with_epsilon(results, tmp_path, capsys):
    _write_run(results, tmp_path)
    code, out, err = run_cli("report", str(tmp_path), "--format", "md", capsys=capsys)
    assert code == 0, err
    text = (tmp_path / "summary.md").read_text()
    assert "summary.md" in out and executive_summary(results) in text
    rows = {line.split(" | ")[0]: line.split(" | ")[-1] for line in text.splitlines() if line.startswith("| `")}
    assert rows["| `loss`"] == "0.00 |" and float(rows["| `rmia-online`"].rstrip(" |")) > 1


def test_write_markdown_without_scores(results, tmp_path):
    (tmp_path / "results.json").write_text(json.dumps(results))
    assert "ε lower bound" not in write_markdown(tmp_path).read_text()


@pytest.mark.parametrize(
    "setup,extra,message",
    [
        ("none", [], "does not exist"),
        ("empty", [], "cannot read results file"),
        ("ok", ["--format", "pdf"], "--format 'pdf' is not supported"),
    ],
)
def test_report_bad_input_exits_2(setup, extra, message, results, tmp_path, capsys):
    run = tmp_path / "run"
    if setup != "none":
        run.mkdir()
    if setup == "ok":
        _write_run(results, run)
    code, out, err = run_cli("report", str(run), *extra, capsys=capsys)
    assert code == 2, (out, err)
    assert message in err
