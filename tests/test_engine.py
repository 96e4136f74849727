"""One engine, one model interface: attacks run wherever their access needs are met; one rule for "strongest"."""

import json

import numpy as np
import pytest
from cli_helpers import run_cli

from memberscope.api import audit_model
from memberscope.exceptions import InvalidInputError

SMALL = dict(reference_models=4, n_bootstrap=0, progress=False, seed=0)


@pytest.fixture(scope="module")
def forest():
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier

    X, y = load_breast_cancer(return_X_y=True)
    X = ((X - X.mean(0)) / X.std(0)).astype(np.float32)
    clf = RandomForestClassifier(n_estimators=30, random_state=0).fit(X[:250], y[:250])
    return X, y, clf


def _kserve(model):
    """An httpx transport serving ``model``'s probabilities as KServe v1 (what `memberscope serve` answers)."""
    import httpx

    from memberscope.targets.wire import to_predictions

    def handle(request):
        body = json.loads(request.content)
        probs = model.predict_proba(np.asarray(body["instances"], dtype=np.float32))
        return httpx.Response(200, json={"predictions": to_predictions(probs)})

    return httpx.MockTransport(handle)


def test_lira_and_rmia_attack_a_model_behind_http(forest):
    from memberscope.targets import HttpTarget

    X, y, clf = forest
    kwargs = dict(
        members=(X[:250], y[:250]),
        nonmembers=(X[250:500], y[250:500]),
        recipe="sklearn",
        recipe_params={"estimator": "sklearn.ensemble.RandomForestClassifier", "params": {"n_estimators": 30}},
        attacks=["lira-offline", "rmia-offline", "loss"],
        **SMALL,
    )
    local = audit_model(clf, **kwargs)
    remote = HttpTarget("http://model.test/v1/models/m:predict", transport=_kserve(clf), batch_size=128)
    over_http = audit_model(remote, **kwargs)
    assert remote.queries_spent == len(X[:500])
    for name in kwargs["attacks"]:
        np.testing.assert_allclose(over_http.scores[name], local.scores[name], rtol=1e-6, atol=1e-9)
    assert over_http.results.attacks["lira-offline"].auc > 0.6


def test_attacks_declare_what_they_need():
    from memberscope.attacks import needs

    assert needs("label-only").queries and needs("label-only").outputs == "label"
    assert needs("shadow").reference_models == 2 and not needs("shadow").queries
    assert needs("rmia-online").population and needs("loss").reference_models == 0


def test_an_attack_whose_needs_are_not_met_is_refused_before_anything_runs(forest):
    X, y, clf = forest
    label_only = __import__("memberscope.targets", fromlist=["wrap"]).wrap(clf, postprocess="label-only")
    with pytest.raises(InvalidInputError, match="'loss' needs per-class scores"):
        audit_model(
            label_only,
            members=(X[:250], y[:250]),
            nonmembers=(X[250:500], y[250:500]),
            recipe="logreg",
            attacks=["loss", "label-only"],
            **SMALL,
        )
    assert label_only.queries_spent == 0


def test_label_only_and_shadow_run_in_an_audit_like_any_attack(forest):
    X, y, clf = forest
    result = audit_model(
        clf,
        members=(X[:250], y[:250]),
        nonmembers=(X[250:500], y[250:500]),
        recipe="sklearn",
        recipe_params={"estimator": "sklearn.ensemble.RandomForestClassifier", "params": {"n_estimators": 30}},
        attacks=["label-only", "shadow"],
        attack_params={"label-only": {"n_queries": 4}},
        **SMALL,
    )
    params = result.results.attacks["label-only"].params
    assert params["queries_per_record"] == 5 and params["calibration"].startswith("minus the mean share")
    assert result.results.attacks["shadow"].auc > 0.6  # a forest memorizes: its members look different


# --------------------------------------------------------------------------------------------- one rule


def _entry(tprs, auc, n=2000):
    from results_helpers import full_metrics

    return full_metrics(
        auc=auc,
        auc_ci=[auc - 0.01, auc + 0.01],
        tpr_at_fpr=tprs,
        tpr_at_fpr_ci={k: [max(v - 0.005, 0), v + 0.005] for k, v in tprs.items()},
        fpr_resolvable={k: True for k in tprs},
        n_members=n,
        n_nonmembers=n,
    )


def test_console_json_html_markdown_and_gate_name_the_same_strongest_attack(tmp_path, capsys):
    """lira-online wins at 0.1% FPR, rmia-online at 1% FPR, loss has the best AUC: the three rules that used to
    disagree (smallest resolvable FPR; 1% FPR; AUC) would name three attacks."""
    import pandas as pd

    from memberscope.report.console import results_table
    from memberscope.report.model import executive_summary
    from memberscope.results import Results, write_results_json

    attacks = {
        "lira-online": _entry({"0.01": 0.05, "0.001": 0.02}, 0.60),
        "rmia-online": _entry({"0.01": 0.07, "0.001": 0.01}, 0.62),
        "loss": _entry({"0.01": 0.02, "0.001": 0.001}, 0.70),
    }
    results = Results.from_dict({"schema_version": "2.0", "dataset": {"name": "t"}, "attacks": attacks})
    assert results.strongest_attack() == "rmia-online"
    write_results_json(results, tmp_path / "results.json")
    rng = np.random.default_rng(0)
    member = np.r_[np.ones(50), np.zeros(50)].astype(int)
    pd.DataFrame({"record": np.arange(100), "member": member, **{a: rng.normal(size=100) for a in attacks}}).to_csv(
        tmp_path / "scores.csv", index=False
    )
    saved = json.loads((tmp_path / "results.json").read_text())
    assert {k: saved["headline"][k] for k in ("fpr", "strongest_attack")} == {
        "fpr": "0.01",
        "strongest_attack": "rmia-online",
    }
    assert saved["headline"]["finding"] == executive_summary(results)
    assert saved["headline"]["risk"] == results.risk().to_dict()

    from rich.console import Console

    console = Console(width=200, record=True)
    console.print(results_table(results))
    assert "rmia-online (strongest)" in console.export_text()
    code, _, _ = run_cli("report", str(tmp_path), capsys=capsys)
    assert code == 0 and "(rmia-online, the strongest of 3 attacks" in (tmp_path / "report.html").read_text()
    code, _, _ = run_cli("report", str(tmp_path), "--format", "md", capsys=capsys)
    assert code == 0 and "(rmia-online, the strongest of 3 attacks" in (tmp_path / "summary.md").read_text()
    code, out, _ = run_cli("gate", str(tmp_path), "--max-auc", "0.9", capsys=capsys)
    assert code == 0 and "strongest attack: rmia-online" in out


def test_vulnerable_records_come_from_the_strongest_attack():
    from memberscope.engine.evaluation import vulnerable_records
    from memberscope.results import AttackResult

    attacks = {
        "lira-online": AttackResult.from_dict(_entry({"0.01": 0.05, "0.001": 0.02}, 0.60)),
        "rmia-online": AttackResult.from_dict(_entry({"0.01": 0.07, "0.001": 0.01}, 0.62)),
    }
    member = np.r_[np.ones(5), np.zeros(5)].astype(bool)
    scores = {"lira-online": np.arange(10.0), "rmia-online": -np.arange(10.0)}
    found = vulnerable_records(attacks, scores, np.arange(100, 110), member, None, [])
    assert found["attack"] == "rmia-online" and found["records"][0]["record"] == 100


# --------------------------------------------------------------------------------------------- schema


def test_schema_1_files_are_read_and_upgraded(tmp_path):
    from results_helpers import full_metrics

    from memberscope.results import SCHEMA_VERSION, read_results, write_results_json

    old = {
        "schema_version": "1.0",
        "dataset": {"name": "digits", "fingerprint": "abc"},
        "game": {"n_members": 10, "custom_key": 1},
        "attacks": {"loss": full_metrics(auc=0.55)},
        "something_new": {"kept": True},
    }
    (tmp_path / "results.json").write_text(json.dumps(old))
    results = read_results(tmp_path)
    assert results.kind == "audit" and results.attacks["loss"].auc == 0.55 and results.game.n_members == 10
    again = results.to_dict()
    assert again["schema_version"] == SCHEMA_VERSION == "2.0"
    assert again["game"]["custom_key"] == 1 and again["something_new"] == {"kept": True}
    # written before intervals named their method: the method reads as unrecorded, not as one never used
    loss = results.attacks["loss"].metrics
    assert (loss.auc_ci_method, loss.advantage_ci_method, loss.tpr_at_fpr_ci_method) == ("unrecorded", "unrecorded", {})
    assert np.isnan(loss.ppv_prior) and loss.ppv_at_fpr == {}
    write_results_json(results, tmp_path / "again.json")  # the unknown prior is written as null and read back
    assert np.isnan(read_results(tmp_path / "again.json").attacks["loss"].metrics.ppv_prior)
    # today's metrics keep their methods and PPV through results.json
    from memberscope.metrics import evaluate
    from memberscope.results import AttackResult

    rng = np.random.default_rng(0)
    member = np.r_[np.ones(300), np.zeros(300)].astype(bool)
    metrics = evaluate(member, rng.normal(size=600) + member, fprs=(0.1,), n_bootstrap=1000)
    back = AttackResult.from_dict(json.loads(json.dumps(AttackResult(metrics=metrics).to_dict()))).metrics
    assert back == metrics and back.auc_ci_method == "bootstrap" and back.advantage_ci_method == "dkw"
    (tmp_path / "results.json").write_text(json.dumps({**old, "schema_version": "0.9"}))
    with pytest.raises(InvalidInputError, match=r"schema_version '0\.9'"):
        read_results(tmp_path)


# --------------------------------------------------------------------------------------------- errors and config


def test_network_failures_exit_3_and_usage_errors_exit_2(capsys):
    from redteam_server import closed_port_url

    code, _, err = run_cli("recon", closed_port_url(), "--n-features", "3", capsys=capsys)
    assert code == 3 and "cannot reach" in err and "Traceback" not in err
    code, _, err = run_cli("recon", "ftp://nowhere", "--n-features", "3", capsys=capsys)
    assert code == 2 and "must start with http://" in err


def test_every_configuration_problem_is_named_at_once():
    from memberscope.config import AuditConfig
    from memberscope.defenses import DefendConfig

    with pytest.raises(InvalidInputError) as exc:
        AuditConfig(n_bootstrap=-1, confidence=2.0, train_mode="fast", backend="spark")
    text = str(exc.value)
    for fragment in (
        "n_bootstrap must be an integer >= 0; got -1",
        "confidence must be a number in (0, 1); got 2.0",
        "train_mode must be one of 'sequential', 'vectorized'; got 'fast'",
        "backend must be one of 'loky', 'threading', 'multiprocessing', 'ray', 'dask' (or None); got 'spark'",
    ):
        assert fragment in text
    with pytest.raises(InvalidInputError, match="reference_models must be an integer >= 2"):
        DefendConfig(reference_models=1)
    # The shared fields (label column, training mode, workers) are the same declaration for both commands.
    config = DefendConfig(label_column="outcome", train_mode="vectorized", n_jobs=2)
    assert (config.label_column, config.train_mode, config.n_jobs) == ("outcome", "vectorized", 2)


def test_defend_on_a_table_whose_label_column_is_outcome(tmp_path, capsys):
    import pandas as pd
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True)
    frame = pd.DataFrame(X[:, :8], columns=[f"f{i}" for i in range(8)])
    frame["outcome"] = y
    frame.to_csv(tmp_path / "people.csv", index=False)
    out = tmp_path / "run"
    code, _stdout, err = run_cli(
        "defend", "--dataset", str(tmp_path / "people.csv"), "--label-column", "outcome",
        "--defenses", "none,l2", "--attacks", "loss,lira-offline", "--model-param", "hidden=[16]",
        "--model-param", "epochs=5", "--model-param", "standardize=true", "-k", "2", "--n-bootstrap", "20",
        "--train-mode", "vectorized", "--out", str(out), "--no-progress", capsys=capsys,
    )  # fmt: skip
    assert code == 0, err
    results = json.loads((out / "results.json").read_text())
    assert results["kind"] == "defend" and results["config"]["label_column"] == "outcome"
    assert set(results["defenses"]) == {"none", "l2"}


def test_public_surfaces_are_pinned():
    import importlib

    expected = {
        "memberscope": ["AuditConfig", "AuditResult", "__version__", "audit", "audit_model", "demo", "run_audit"],
        "memberscope.targets": [
            "OUTPUT_KINDS", "CallableTarget", "FakeTarget", "HttpTarget", "Postprocessed", "SklearnTarget", "Target",
            "TorchTarget", "as_logits", "as_probabilities", "load_target", "query_logits", "save_target", "softmax",
            "wrap",
        ],
        "memberscope.engine": [
            "AuditPlan", "MetricSettings", "Outputs", "attack_inputs", "evaluate_attack", "obtain_outputs",
            "run_attacks", "run_plan",
        ],
        "memberscope.results": [
            "KINDS", "SCHEMA_VERSION", "AttackResult", "AuditResult", "DatasetInfo", "GameInfo", "Results",
            "TargetInfo", "headline_fpr", "plot_roc", "read_results", "strongest_attack", "write_outputs",
            "write_results_json", "write_scores_csv",
        ],
        "memberscope.redteam": [
            "Exposure", "LabelOnlyAttack", "RedteamResult", "ShadowModelAttack", "recon", "run_redteam",
        ],
        "memberscope.attacks": [
            "ATTACKS", "Attack", "Needs", "ReferenceOutputs", "TargetOutputs", "create", "names", "needs",
        ],
        "memberscope.report": [
            "GateResult", "ReportModel", "Violation", "build_report", "check_budget", "load_results",
            "parse_tpr_budget", "write_html", "write_markdown",
        ],
        "memberscope.metrics": [
            "BOOTSTRAP_MAX_RECORDS", "DEFAULT_FPRS", "MIN_MEMBERS", "MIN_NONMEMBERS", "AttackMetrics",
            "ReplicateMetrics", "advantage_interval", "auc_interval", "balanced_accuracy", "bootstrap_counts",
            "bootstrap_replicates", "check_class_counts", "clopper_pearson", "delong_interval", "evaluate",
            "evaluate_by_group", "fpr_key", "membership_advantage", "operating_point", "positive_predictive_value",
            "replicate_metrics", "roc_auc", "roc_curve", "tpr_at_fpr", "tpr_interval", "wilson_interval",
        ],
        "memberscope.privacy": [
            "ACCOUNTANT", "EpsilonBound", "OneRunBound", "clopper_pearson", "clopper_pearson_interval",
            "compute_epsilon", "default_delta", "epsilon_from_metrics", "epsilon_lower_bound",
            "epsilon_lower_bounds_from_csv", "noise_multiplier", "one_run_audit", "one_run_epsilon",
            "one_run_p_value", "require_opacus",
        ],
        "memberscope.datasets": [
            "DATASETS", "Dataset", "DatasetInfo", "available", "load", "load_frame", "load_table", "read_frame",
        ],
        "memberscope.recipes": [
            "RECIPES", "Recipe", "SklearnModel", "SklearnRecipe", "TorchModel", "TorchRecipe", "create", "recipe_for",
        ],
        "memberscope.training": [
            "DEFENSES", "Option", "Streams", "TrainedEnsemble", "TrainedNetwork", "TrainingDefense", "active_defenses",
            "recipe_options", "register", "supports_vectorized", "train", "train_vectorized",
            "vectorized_bytes_per_model",
        ],
        "memberscope.defenses": [
            "AttackerView", "Compose", "DefendConfig", "GaussianNoise", "LabelOnly", "LaplaceNoise",
            "OutputPostprocessor", "POSTPROCESSORS", "Round", "Temperature", "TopK", "attacker_views", "break_ties",
            "defense_plan", "parse_defenses", "parse_postprocessors", "recommend", "run_defenses",
        ],
        "memberscope.gateway": ["create_app", "load_model", "load_policy"],
        "memberscope.config": [
            "AuditConfig", "DEFAULT_FPRS", "Interval", "Options", "RunConfig", "Satisfies", "load_config_file",
        ],
        "memberscope.exceptions": [
            "DataUnavailableError", "EXIT_CODES", "InvalidInputError", "LowFidelityWarning", "MemberscopeError",
            "MemberscopeWarning", "MissingDependencyError", "ModelOutputError", "QueryBudgetExceededError",
            "TargetAuthError", "TargetError", "TargetRateLimitedError", "TargetResponseError", "TargetUnreachableError",
            "UnknownNameError", "UnresolvableFPRWarning", "exit_code",
        ],
        "memberscope.signals": [
            "SIGNALS", "check_logits", "confidence", "entropy", "log_probabilities", "logit_confidence", "loss",
            "modified_entropy", "true_class_log_probability",
        ],
        "memberscope.game": ["MembershipGame", "derive_seed", "make_game", "paired_masks", "split_pool"],
        "memberscope.cli": ["app", "main"],
        "memberscope.api": [
            "DEMO_CONFIG", "audit", "audit_model", "check_pool_size", "demo", "pool_sizes", "run_audit", "write_run",
        ],
    }  # fmt: skip
    for name, names in expected.items():
        module = importlib.import_module(name)
        assert sorted(module.__all__) == sorted(names), name
        assert all(hasattr(module, n) for n in module.__all__), name


def _readme_blocks(heading: str) -> list[str]:
    import re
    from pathlib import Path

    text = Path(__file__).resolve().parents[1].joinpath("README.md").read_text()
    section = text.split(heading, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_the_readme_extension_examples_run(forest):
    """The README's worked examples: an attack in one file, a kind of target in one class."""
    from memberscope.attacks import ATTACKS

    attack_code, target_code = _readme_blocks("## Extending memberscope")[:2]
    X, y, clf = forest
    data = dict(members=(X[:250], y[:250]), nonmembers=(X[250:500], y[250:500]))

    class Stub:  # stands in for the README's gRPC client
        def Predict(self, rows):
            return clf.predict_proba(np.asarray(rows, dtype=np.float32)).tolist()

    namespace: dict = {}
    exec(attack_code, namespace)
    exec(target_code.split("\nmemberscope.audit_model")[0], namespace)
    try:
        result = audit_model(
            namespace["GrpcTarget"](Stub(), 2),
            recipe="sklearn",
            recipe_params={"estimator": "sklearn.ensemble.RandomForestClassifier", "params": {"n_estimators": 30}},
            attacks=["loss", "loss-gap"],
            **data,
            **SMALL,
        )
    finally:
        ATTACKS.unregister("loss-gap")
    # The calibrated attack, with reference models like the target, beats the plain loss threshold.
    attacks = result.results.attacks
    assert attacks["loss-gap"].auc > max(0.6, attacks["loss"].auc)
