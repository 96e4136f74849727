"""MLflow: an audit logged into a local file store, and the ``memberscope`` evaluator of ``mlflow.evaluate``."""

import json
import sys
import tomllib
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cli_helpers import run_cli

mlflow = pytest.importorskip("mlflow", reason="the 'mlflow' extra is not installed")
# MLflow's own code warns about its own type hints (mlflow.types.responses) and calls pandas in ways pandas 3
# deprecates (mlflow.data.digest_utils); neither is ours to fix, and nothing of memberscope's is hidden.
pytestmark = [
    pytest.mark.filterwarnings("ignore:.*Any type hint is inferred as AnyType:UserWarning"),
    pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning:mlflow.*"),
]

ROOT = Path(__file__).resolve().parents[1]
FAST = {"reference_models": 4, "n_bootstrap": 100, "seed": 0, "attacks": ["loss", "lira-offline", "rmia-offline"]}
EVALUATOR = "memberscope.integrations.mlflow_evaluator:MemberscopeEvaluator"


@pytest.fixture
def store(tmp_path, monkeypatch):
    """A local file store (MLflow 3 refuses one without MLFLOW_ALLOW_FILE_STORE), no telemetry, no network."""
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("DO_NOT_TRACK", "true")
    uri = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    yield uri
    mlflow.set_tracking_uri(None)


@pytest.fixture(scope="module")
def patients():
    """A scikit-learn Pipeline trained on 200 of breast-cancer's records (members), 200 others held out."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    data = load_breast_cancer(as_frame=True)
    frame = data.frame.iloc[:, [0, 1, 2, 3, 4, 5, 6, 7, 30]].copy()
    frame.columns = [c.replace(" ", "_") for c in frame.columns[:-1]] + ["label"]
    order = np.random.default_rng(0).permutation(len(frame))
    members, nonmembers = frame.iloc[order[:200]], frame.iloc[order[200:400]]
    model = make_pipeline(StandardScaler(), LogisticRegression(C=100.0, max_iter=2000))
    model.fit(members.drop(columns="label"), members["label"])
    return model, members.reset_index(drop=True), nonmembers.reset_index(drop=True)


def _files(client, run_id, path="memberscope"):
    return sorted(Path(a.path).name for a in client.list_artifacts(run_id, path))


def test_an_audit_logged_into_a_file_store_has_its_metrics_params_and_artifacts(patients, store, tmp_path, capsys):
    import joblib

    model, members, nonmembers = patients
    joblib.dump(model, tmp_path / "model.joblib")
    members.to_csv(tmp_path / "members.csv", index=False)
    nonmembers.to_csv(tmp_path / "nonmembers.csv", index=False)
    client = mlflow.MlflowClient()
    experiment = client.create_experiment("training")
    existing = client.create_run(experiment).info.run_id
    out = tmp_path / "run"
    code, stdout, err = run_cli(
        "audit-model", "--model", str(tmp_path / "model.joblib"), "--members", str(tmp_path / "members.csv"),
        "--nonmembers", str(tmp_path / "nonmembers.csv"), "-k", "4", "--attacks", ",".join(FAST["attacks"]),
        "--n-bootstrap", "100", "--out", str(out), "--no-progress", "--mlflow-run", existing, capsys=capsys,
    )  # fmt: skip
    assert code == 0, err
    assert f"logged to MLflow run {existing}" in stdout
    results = json.loads((out / "results.json").read_text())
    run = client.get_run(existing)
    assert run.info.status == "RUNNING"  # the user's run is left to the user
    metrics = run.data.metrics
    best, key = results["headline"]["strongest_attack"], results["headline"]["fpr"]
    headline = metrics[f"memberscope/headline/tpr_at_fpr_{key}"]
    assert headline == pytest.approx(results["attacks"][best]["tpr_at_fpr"][key])
    for attack in FAST["attacks"]:
        entry = results["attacks"][attack]
        assert metrics[f"memberscope/{attack}/auc"] == pytest.approx(entry["auc"])
        assert metrics[f"memberscope/{attack}/auc_ci_low"] == pytest.approx(entry["auc_ci"][0])
        for fpr, tpr in entry["tpr_at_fpr"].items():
            assert metrics[f"memberscope/{attack}/tpr_at_fpr_{fpr}"] == pytest.approx(tpr)
            assert metrics[f"memberscope/{attack}/tpr_at_fpr_{fpr}_ci_high"] == pytest.approx(
                entry["tpr_at_fpr_ci"][fpr][1]
            )
        assert metrics[f"memberscope/{attack}/epsilon_lower_bound"] == pytest.approx(
            results["epsilon"]["clopper_pearson"][attack]["epsilon"]
        )
    assert metrics["memberscope/fidelity/passed"] in (0.0, 1.0)
    assert metrics["memberscope/fidelity/target_test_accuracy"] == pytest.approx(
        results["fidelity"]["target"]["test_accuracy"]
    )
    params = run.data.params
    assert params["memberscope.seed"] == "0" and params["memberscope.reference_models"] == "4"
    assert json.loads(params["memberscope.attacks"]) == FAST["attacks"]
    assert run.data.tags["memberscope.strongest_attack"] == best
    assert run.data.tags["memberscope.verdict"] in ("measurable", "not distinguishable")
    assert _files(client, existing) == ["report.html", "results.json", "roc.png"]
    copy = mlflow.artifacts.download_artifacts(
        run_id=existing, artifact_path="memberscope/results.json", dst_path=str(tmp_path / "dl")
    )
    logged = json.loads(Path(copy).read_text())
    assert logged["attacks"][best]["auc"] == results["attacks"][best]["auc"]

    # --mlflow-experiment starts (and ends) a run of its own; the audit is cached, so this is quick.
    code, stdout, err = run_cli(
        "audit-model", "--model", str(tmp_path / "model.joblib"), "--members", str(tmp_path / "members.csv"),
        "--nonmembers", str(tmp_path / "nonmembers.csv"), "-k", "4", "--attacks", ",".join(FAST["attacks"]),
        "--n-bootstrap", "100", "--no-progress", "--mlflow-experiment", "privacy audits", "--model-name", "clinic",
        capsys=capsys,
    )  # fmt: skip
    assert code == 0, err
    new = stdout.split("logged to MLflow run ")[1].split()[0]
    run = client.get_run(new)
    assert run.info.status == "FINISHED" and run.info.run_name == "clinic"
    assert client.get_experiment(run.info.experiment_id).name == "privacy audits"
    assert run.data.metrics[f"memberscope/{best}/auc"] == pytest.approx(results["attacks"][best]["auc"])
    assert _files(client, new) == ["report.html", "results.json", "roc.png"]  # written to a temporary folder


def test_mlflow_usage_errors_exit_2_before_the_audit(patients, store, tmp_path, capsys, monkeypatch):
    import joblib

    model, members, _ = patients
    joblib.dump(model, tmp_path / "model.joblib")
    members.to_csv(tmp_path / "members.csv", index=False)
    args = ["audit-model", "--model", str(tmp_path / "model.joblib"), "--members", str(tmp_path / "members.csv"),
            "--nonmembers", str(tmp_path / "members.csv"), "--no-progress"]  # fmt: skip
    code, _, err = run_cli(*args, "--mlflow-run", "abc", "--mlflow-experiment", "x", capsys=capsys)
    assert code == 2 and "not both" in err
    from memberscope.exceptions import InvalidInputError
    from memberscope.integrations.mlflow_logging import log_to_mlflow
    from memberscope.results import Results

    with pytest.raises(InvalidInputError, match="run 'no-such-run' does not exist"):
        log_to_mlflow(Results(), run_id="no-such-run")
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE")
    with pytest.raises(InvalidInputError, match=r"cannot open the MLflow tracking store.*MLFLOW_ALLOW_FILE_STORE"):
        log_to_mlflow(Results(), experiment="x", tracking_uri=(tmp_path / "other").as_uri())


def test_pyproject_registers_the_evaluator_entry_point():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["mlflow.model_evaluator"] == {"memberscope": EVALUATOR}
    assert any(req.startswith("mlflow") for req in project["optional-dependencies"]["mlflow"])


@pytest.fixture
def evaluator_registered(tmp_path, monkeypatch):
    """The entry point as pyproject.toml declares it, visible to MLflow's plugin discovery even when the installed
    metadata predates it (an editable install made before the entry point was added)."""
    from importlib import metadata

    if not any(e.name == "memberscope" for e in metadata.entry_points(group="mlflow.model_evaluator")):
        info = tmp_path / "site" / "memberscope_evaluator_plugin-0.0.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: memberscope-evaluator-plugin\nVersion: 0.0\n")
        (info / "entry_points.txt").write_text(f"[mlflow.model_evaluator]\nmemberscope = {EVALUATOR}\n")
        monkeypatch.syspath_prepend(str(info.parent))
    from mlflow.models.evaluation.evaluator_registry import _model_evaluation_registry

    _model_evaluation_registry.register_entrypoints()
    assert _model_evaluation_registry.is_registered("memberscope")
    yield


def _log_model(model, members):
    import mlflow.sklearn

    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            serialization_format="cloudpickle",  # skops' import scans all of scikit-learn: slow in a test
            pip_requirements=["scikit-learn"],  # skips inferring requirements in a subprocess
        )
    return run.info.run_id, info.model_uri


def test_mlflow_evaluate_audits_a_logged_pipeline(patients, store, evaluator_registered, tmp_path):
    from memberscope.api import audit_model

    model, members, nonmembers = patients
    _, uri = _log_model(model, members)
    with mlflow.start_run() as run:
        evaluation = mlflow.models.evaluate(
            uri,
            data=nonmembers,
            targets="label",
            model_type="classifier",
            evaluators=["memberscope"],
            evaluator_config={"memberscope": {"members": members, **FAST}},  # a list of evaluators: config by name
        )
    direct = audit_model(model, members=members, nonmembers=nonmembers, progress=False, **FAST)
    for attack in FAST["attacks"]:
        assert evaluation.metrics[f"memberscope/{attack}/auc"] == pytest.approx(direct.results.attacks[attack].auc)
    logged = mlflow.MlflowClient().get_run(run.info.run_id)
    headline = evaluation.metrics["memberscope/headline/auc"]
    assert logged.data.metrics["memberscope/headline/auc"] == pytest.approx(headline)
    assert _files(mlflow.MlflowClient(), run.info.run_id) == ["report.html", "results.json", "roc.png"]
    assert set(evaluation.artifacts) == {"memberscope_results", "memberscope_report", "memberscope_roc"}
    assert evaluation.artifacts["memberscope_results"].content["kind"] == "audit"

    # The same records as one table with a membership column: the same numbers, through MLflow 2's spelling.
    both = pd.concat([members.assign(member=1), nonmembers.assign(member=0)], ignore_index=True)
    with mlflow.start_run(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = mlflow.evaluate(
            uri,
            data=both,
            targets="label",
            model_type="classifier",
            evaluators="memberscope",
            evaluator_config={"member_column": "member", **FAST},  # one evaluator by name: its config alone
        )
    assert any(w.category is FutureWarning and "mlflow.models.evaluate" in str(w.message) for w in caught)
    assert not [w for w in caught if "memberscope" in w.filename]
    for attack in FAST["attacks"]:
        name = f"memberscope/{attack}/auc"
        assert again.metrics[name] == pytest.approx(evaluation.metrics[name])


def test_the_evaluator_stays_out_of_ordinary_evaluations_and_names_bad_config(patients, store, evaluator_registered):
    from memberscope.exceptions import InvalidInputError
    from memberscope.integrations.mlflow_evaluator import MemberscopeEvaluator

    assert not MemberscopeEvaluator.can_evaluate(model_type="classifier", evaluator_config={})
    assert not MemberscopeEvaluator.can_evaluate(model_type="regressor", evaluator_config={"members": "x.csv"})
    assert MemberscopeEvaluator.can_evaluate(model_type=None, evaluator_config={"member_column": "m"})
    model, members, nonmembers = patients
    _, uri = _log_model(model, members)
    for config, message in (
        ({"members": members, "referense_models": 2}, r"unknown .*evaluator_config key\(s\) \['referense_models'\]"),
        ({"member_column": "in_training"}, "member_column 'in_training' is not a column"),
    ):
        with mlflow.start_run(), pytest.raises(InvalidInputError, match=message):
            mlflow.models.evaluate(
                uri,
                data=nonmembers,
                targets="label",
                model_type="classifier",
                evaluators="memberscope",
                evaluator_config=config,
            )
    assert "memberscope.integrations.mlflow_evaluator" in sys.modules
