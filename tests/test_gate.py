"""The privacy gate: verdicts on budgets, exit codes 0/1/2 at the CLI."""

import json

import pytest
from cli_helpers import run_cli

from memberscope.exceptions import InvalidInputError
from memberscope.report import check_budget, load_results, parse_tpr_budget


def _attack(auc, auc_ci, tpr01, tpr01_ci):
    return {
        "auc": auc,
        "auc_ci": auc_ci,
        "tpr_at_fpr": {"0.1": 0.3, "0.01": tpr01, "0.001": 0.01, "0.0001": 0.002},
        "tpr_at_fpr_ci": {"0.1": [0.28, 0.32], "0.01": tpr01_ci, "0.001": [0.005, 0.02], "0.0001": [0.0, 0.004]},
        "fpr_resolvable": {"0.1": True, "0.01": True, "0.001": True, "0.0001": True},
    }


@pytest.fixture
def results():
    return {
        "schema_version": "1.0",
        "attacks": {
            "rmia-online": _attack(0.62, [0.61, 0.63], 0.052, [0.043, 0.060]),
            "loss": _attack(0.55, [0.54, 0.56], 0.015, [0.010, 0.021]),
        },
    }


@pytest.fixture
def results_file(results, tmp_path):
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    return path


def test_point_estimate_within_and_above_budget(results):
    assert check_budget(results, max_tpr_at_fpr={0.01: 0.06}, max_auc=0.7).passed
    verdict = check_budget(results, max_tpr_at_fpr={0.01: 0.05}, max_auc=0.6)
    assert not verdict.passed
    assert {(v.attack, v.metric) for v in verdict.violations} == {
        ("rmia-online", "tpr@fpr=0.01"),
        ("rmia-online", "auc"),
    }
    tpr = next(v for v in verdict.violations if v.metric != "auc")
    assert (tpr.value, tpr.ci, tpr.compared, tpr.budget) == (0.052, (0.043, 0.060), 0.052, 0.05)


def test_upper_ci_is_conservative(results):
    # 0.052 is within 0.055 but its CI reaches 0.060.
    assert check_budget(results, max_tpr_at_fpr={0.01: 0.055}).passed
    verdict = check_budget(results, max_tpr_at_fpr={0.01: 0.055}, use_upper_ci=True)
    assert [(v.attack, v.compared) for v in verdict.violations] == [("rmia-online", 0.060)]
    assert "CI upper bound 0.06" in verdict.summary()


def test_attack_selection(results):
    assert check_budget(results, max_tpr_at_fpr={0.01: 0.05}, attacks=["loss"]).passed
    with pytest.raises(InvalidInputError, match="'lira' "):
        check_budget(results, max_auc=0.6, attacks=["lira"])


def test_unrecorded_fpr_and_missing_budget_are_rejected(results):
    with pytest.raises(InvalidInputError, match=r"FPR 0\.05 is not recorded .* expected one of: 0\.1, 0\.01"):
        check_budget(results, max_tpr_at_fpr={0.05: 0.1})
    with pytest.raises(InvalidInputError, match="no budget given"):
        check_budget(results)
    with pytest.raises(InvalidInputError, match=r"AUC budget 1\.5"):
        check_budget(results, max_auc=1.5)


def test_upper_ci_needs_an_interval(results):
    results["attacks"]["loss"]["tpr_at_fpr_ci"]["0.01"] = None
    with pytest.raises(InvalidInputError, match="no confidence interval"):
        check_budget(results, max_tpr_at_fpr={0.01: 0.5}, use_upper_ci=True)


@pytest.mark.parametrize(
    "spec,message",
    [
        ("0.01", "not of the form FPR:TPR"),
        ("x:y", "not of the form FPR:TPR with numbers"),
        ("0:0.05", "must be a number in (0, 1)"),
        ("0.01:1", "must be a number in (0, 1)"),
        ("0.01:nan", "must be a number in (0, 1)"),
    ],
)
def test_malformed_budget_spec(spec, message):
    with pytest.raises(InvalidInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_tpr_budget(spec)


def test_parse_budget():
    assert parse_tpr_budget("0.01:0.05") == (0.01, 0.05)


def test_load_results_accepts_folder(results_file):
    from_folder = load_results(results_file.parent)
    assert from_folder.attacks and from_folder.to_dict() == load_results(results_file).to_dict()


def test_cli_passes_with_exit_0(results_file, capsys):
    code, out, _ = run_cli(
        "gate", str(results_file), "--max-tpr-at-fpr", "0.01:0.06", "--max-auc", "0.7", capsys=capsys
    )
    assert code == 0 and out.startswith("PASS")


def test_cli_fails_with_exit_1_naming_attack_value_and_ci(results_file, capsys):
    code, out, err = run_cli(
        "gate", str(results_file), "--max-tpr-at-fpr", "0.1:0.9", "--max-tpr-at-fpr", "0.01:0.05", capsys=capsys
    )
    assert code == 1, (out, err)
    assert "rmia-online: TPR at FPR 0.01 = 0.052 (95% CI 0.043–0.06) exceeds budget 0.05" in out
    assert "loss" not in out.split("FAIL")[1]


def test_cli_upper_ci_and_attack_filter(results_file, capsys):
    args = ("gate", str(results_file), "--max-tpr-at-fpr", "0.01:0.055")
    assert run_cli(*args, capsys=capsys)[0] == 0
    assert run_cli(*args, "--use-upper-ci", capsys=capsys)[0] == 1
    assert run_cli(*args, "--use-upper-ci", "--attacks", "loss", capsys=capsys)[0] == 0


@pytest.mark.parametrize(
    "content,extra,message",
    [
        (None, ["--max-auc", "0.6"], "cannot read results file"),
        ("{not json", ["--max-auc", "0.6"], "is not valid JSON"),
        ('{"schema_version": "0.9", "attacks": {"a": {}}}', ["--max-auc", "0.6"], "schema_version '0.9'"),
        ("[1, 2]", ["--max-auc", "0.6"], "must hold a JSON object"),
        ("OK", ["--max-tpr-at-fpr", "0.02:0.1"], "FPR 0.02 is not recorded"),
        ("OK", ["--max-tpr-at-fpr", "0.01"], "'0.01' is not of the form FPR:TPR"),
        ("OK", ["--max-tpr-at-fpr", "x:y"], "'x:y' is not of the form FPR:TPR"),
        ("OK", ["--max-tpr-at-fpr", "0.01:1.2"], "must be a number in (0, 1)"),
        ("OK", ["--max-auc", "0"], "AUC budget 0.0 must be a number in (0, 1)"),
        ("OK", [], "no budget given"),
        ("OK", ["--max-auc", "0.6", "--attacks", "lira"], "'lira'"),
    ],
)
def test_cli_bad_input_exits_2(content, extra, message, results, tmp_path, capsys):
    path = tmp_path / "results.json"
    if content is not None:
        path.write_text(json.dumps(results) if content == "OK" else content)
    code, out, err = run_cli("gate", str(path), *extra, capsys=capsys)
    assert code == 2, (out, err)
    assert message in err and "Traceback" not in err


def test_gate_reads_the_schema_the_audit_writes(results_file):
    from memberscope.report.gate import load_results
    from memberscope.results import SCHEMA_VERSION, write_results_json

    old = load_results(results_file)  # schema 1.0, upgraded on reading
    write_results_json(old, results_file)
    assert json.loads(results_file.read_text())["schema_version"] == SCHEMA_VERSION == "2.0"
    assert load_results(results_file).to_dict()["attacks"] == old.to_dict()["attacks"]


@pytest.mark.parametrize("via", ["api", "cli"])
def test_a_budget_at_an_unresolvable_fpr_cannot_pass(results, via, tmp_path, capsys):
    """The trial: ``gate --max-tpr-at-fpr 0.001:0.3`` on 288 non-members passed on the TPR at FPR 0."""
    results["game"] = {"n_members": 384, "n_nonmembers": 288}
    for entry in results["attacks"].values():
        entry["fpr_resolvable"].update({"0.001": False, "0.0001": False})
    if via == "api":
        verdict = check_budget(results, max_tpr_at_fpr={0.001: 0.3})
        assert not verdict.passed and not verdict.violations
        assert "FPR 0.001 needs at least 1000 non-members" in verdict.summary() and "288" in verdict.summary()
        allowed = check_budget(results, max_tpr_at_fpr={0.001: 0.3}, allow_unresolved_fpr=True)
        assert allowed.passed and allowed.summary().startswith("WARNING: UNRESOLVED FPR")
        # resolvable budgets on the same run still pass; an AUC budget is not read from a point
        assert check_budget(results, max_tpr_at_fpr={0.01: 0.06}, max_auc=0.7).passed
        return
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    code, out, _ = run_cli("gate", str(path), "--max-tpr-at-fpr", "0.001:0.3", capsys=capsys)
    assert code == 1 and "FAIL" in out and "at least 1000 non-members" in out and "--allow-unresolved-fpr" in out
    code, out, _ = run_cli("gate", str(path), "--max-tpr-at-fpr", "0.001:0.3", "--allow-unresolved-fpr", capsys=capsys)
    assert code == 0 and "WARNING: UNRESOLVED FPR" in out and "PASS" in out
