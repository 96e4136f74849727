"""Auditing the user's own model: their pipeline, their table, their ids, reference models of the same kind."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from cli_helpers import run_cli

from memberscope.api import audit_model
from memberscope.exceptions import InvalidInputError, LowFidelityWarning

FAST = dict(reference_models=4, n_bootstrap=200, progress=False, seed=0)
ATTACKS = ["lira-online", "lira-offline", "rmia-online", "rmia-offline", "loss"]


def clinical_table(seed: int = 0) -> pd.DataFrame:
    """A patient table as hospitals have them: numbers with missing values, strings, a boolean, diagnosis codes."""
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True)
    rng = np.random.default_rng(seed)
    frame = data.frame.iloc[:, :8].copy()
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    n = len(frame)
    malignant = data.target.to_numpy() == 0
    frame["sex"] = np.where(rng.random(n) < 0.9, "F", "M")
    frame["smoker"] = rng.choice(np.array(["yes", "no", "former"], dtype=object), size=n)
    frame.loc[rng.random(n) < 0.1, "smoker"] = np.nan
    frame["screened"] = rng.random(n) < 0.5
    for column in ("mean_radius", "mean_texture", "mean_smoothness"):
        frame.loc[rng.random(n) < 0.1, column] = np.nan
    frame["diagnosis"] = np.where(malignant, "C50", "D24")  # ICD-10: malignant / benign neoplasm of breast
    frame.insert(0, "patient_id", [f"P{1000 + i}" for i in range(n)])
    return frame


def clinical_pipeline(frame: pd.DataFrame):
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    categorical = ["sex", "smoker"]
    numeric = [c for c in frame.columns if c not in (*categorical, "patient_id", "diagnosis")]
    prep = ColumnTransformer(
        [
            ("num", SimpleImputer(), numeric),
            (
                "cat",
                make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")),
                categorical,
            ),
        ]
    )
    return Pipeline([("prep", prep), ("hgb", HistGradientBoostingClassifier(max_iter=150, random_state=0))])


@pytest.fixture(scope="module")
def clinic():
    frame = clinical_table()
    order = np.random.default_rng(1).permutation(len(frame))
    members, nonmembers = frame.iloc[order[:285]], frame.iloc[order[285:]]
    features = members.drop(columns=["patient_id", "diagnosis"])
    model = clinical_pipeline(frame).fit(features, members["diagnosis"])
    return model, members, nonmembers


@pytest.fixture(scope="module")
def forest():
    """The issue's case: a random forest (100 trees) on 600 digits."""
    from sklearn.datasets import load_digits
    from sklearn.ensemble import RandomForestClassifier

    X, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(y))
    mem, non = order[:600], order[600:1200]
    model = RandomForestClassifier(n_estimators=100, random_state=0).fit(X[mem], y[mem])
    return model, (X[mem], y[mem]), (X[non], y[non])


def _best_tpr(result, key="0.01"):
    best = result.results.strongest_attack(key)
    return result.results.attacks[best].metrics.tpr_at_fpr[key], result.results.attacks[best].metrics.tpr_at_fpr_ci[key]


def test_forest_with_cloned_references_is_strong_and_an_mlp_stand_in_warns(forest):
    model, members, nonmembers = forest
    kwargs = dict(members=members, nonmembers=nonmembers, attacks=ATTACKS, **FAST)
    cloned = audit_model(model, **kwargs)  # the default: clones of the forest
    by_hand = audit_model(
        model,
        recipe="sklearn",
        recipe_params={"estimator": "sklearn.ensemble.RandomForestClassifier", "params": {"n_estimators": 100}},
        **kwargs,
    )
    with pytest.warns(LowFidelityWarning, match="LOW FIDELITY"):
        mismatched = audit_model(model, recipe="mlp", **kwargs)
    tpr, _ = _best_tpr(cloned)
    _, (hand_lo, hand_hi) = _best_tpr(by_hand)
    mlp_tpr, _ = _best_tpr(mismatched)
    assert hand_lo <= tpr <= hand_hi
    assert tpr >= 3 * mlp_tpr and tpr > 0.3
    assert cloned.results.sections["fidelity"]["passed"] is True
    fidelity = mismatched.results.sections["fidelity"]
    assert fidelity["passed"] is False and fidelity["reasons"]
    assert mismatched.results.warnings[0].startswith("LOW FIDELITY")
    # The target is the user's forest, not a recipe; the references say what they were.
    target = cloned.results.to_dict()["target"]
    assert target["recipe"] is None and target["description"] == "RandomForestClassifier"
    assert target["reference_recipe"]["params"]["n_estimators"] == 100


def test_pipeline_on_a_dataframe_with_strings_missing_values_and_string_labels(clinic, tmp_path):
    model, members, nonmembers = clinic
    result = audit_model(
        model,
        members=members,
        nonmembers=nonmembers,
        label_column="diagnosis",
        id_column="patient_id",
        attacks=ATTACKS,
        out=str(tmp_path),
        **FAST,
    )
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["dataset"]["class_names"] == ["C50", "D24"]
    assert results["inputs"]["features"] == [str(c) for c in model.feature_names_in_]
    assert results["fidelity"]["passed"] is True
    scores = pd.read_csv(tmp_path / "scores.csv")
    assert set(scores["label"]) == {"C50", "D24"} and scores["record"].str.startswith("P").all()
    assert set(scores.loc[scores["set"] == "members", "record"]) == set(members["patient_id"])
    best = result.results.strongest_attack()
    assert result.results.attacks[best].auc > 0.6
    exposed = results["vulnerable_records"]["records"][0]
    assert exposed["record"] in set(members["patient_id"]) and exposed["label"] in ("C50", "D24")
    assert (tmp_path / "report.html").stat().st_size > 1000  # out= writes everything, the report too


def test_the_same_audit_from_the_command_line(clinic, tmp_path, capsys):
    import joblib

    model, members, nonmembers = clinic
    joblib.dump(model, tmp_path / "model.joblib")
    members.to_csv(tmp_path / "members.csv", index=False)
    nonmembers.to_csv(tmp_path / "nonmembers.csv", index=False)
    out = tmp_path / "run"
    code, _, err = run_cli(
        "audit-model", "--model", str(tmp_path / "model.joblib"), "--members", str(tmp_path / "members.csv"),
        "--nonmembers", str(tmp_path / "nonmembers.csv"), "--label-column", "diagnosis", "--id-column",
        "patient_id", "-k", "4", "--attacks", ",".join(ATTACKS), "--n-bootstrap", "200", "--out", str(out),
        "--no-progress", capsys=capsys,
    )  # fmt: skip
    assert code == 0, err
    results = json.loads((out / "results.json").read_text())
    assert results["inputs"]["files"]["members"].endswith("members.csv")
    assert (out / "report.html").stat().st_size > 1000 and "C50" in (out / "report.html").read_text()
    python = audit_model(
        model, members=members, nonmembers=nonmembers, label_column="diagnosis", id_column="patient_id",
        attacks=ATTACKS, **FAST,
    )  # fmt: skip
    for name in ATTACKS:
        assert results["attacks"][name]["auc"] == pytest.approx(python.results.attacks[name].auc, abs=1e-9)


def test_columns_are_matched_by_name(clinic):
    model, members, nonmembers = clinic
    kwargs = dict(label_column="diagnosis", id_column="patient_id", attacks=["loss", "lira-offline"], **FAST)
    right = audit_model(model, members=members, nonmembers=nonmembers, **kwargs)
    shuffled = list(reversed(members.columns))
    reordered = audit_model(model, members=members[shuffled], nonmembers=nonmembers[shuffled[::-1]], **kwargs)
    for name in ("loss", "lira-offline"):
        np.testing.assert_array_equal(reordered.scores[name], right.scores[name])
    with pytest.raises(InvalidInputError, match=r"lack the columns \['mean_area'\]"):
        audit_model(model, members=members.drop(columns=["mean_area"]), nonmembers=nonmembers, **kwargs)
    with pytest.raises(InvalidInputError, match=r"have the columns \['ward'\], which the model was not fitted on"):
        audit_model(model, members=members.assign(ward="A"), nonmembers=nonmembers.assign(ward="B"), **kwargs)
    # ... unless they are left out by name.
    dropped = audit_model(
        model, members=members.assign(ward="A"), nonmembers=nonmembers.assign(ward="B"), drop_columns=["ward"], **kwargs
    )
    np.testing.assert_array_equal(dropped.scores["loss"], right.scores["loss"])


def test_ids_round_trip_through_shuffling_and_subsets(tmp_path):
    from sklearn.datasets import load_breast_cancer

    from memberscope import datasets
    from memberscope.api import run_audit
    from memberscope.config import AuditConfig

    X, y = load_breast_cancer(return_X_y=True)
    features = [f"f{i}" for i in range(30)]
    frame = pd.DataFrame((X - X.mean(0)) / X.std(0), columns=features)
    frame["outcome"] = y
    frame["pid"] = [f"id-{i:04d}" for i in range(len(y))]
    shuffled = frame.sample(frac=1.0, random_state=3).reset_index(drop=True)
    path = tmp_path / "people.csv"
    shuffled.to_csv(path, index=False)
    by_id = shuffled.set_index("pid")
    loaded = datasets.load(str(path), label_column="outcome", id_column="pid", n_records=300, seed=0)
    np.testing.assert_allclose(loaded.X, by_id.loc[loaded.ids, features].to_numpy(), rtol=1e-6)
    np.testing.assert_array_equal(loaded.y, by_id.loc[loaded.ids, "outcome"].to_numpy())
    # Without an id column a record's id is its row in the file, through the subset too.
    rows = datasets.load(str(path), label_column="outcome", feature_columns=features, n_records=300, seed=0)
    np.testing.assert_allclose(rows.X, shuffled.loc[rows.ids, features].to_numpy(), rtol=1e-6)
    result = run_audit(
        AuditConfig(
            dataset=str(path), label_column="outcome", id_column="pid", n_records=300, model="logreg",
            attacks=["loss"], reference_models=0, n_bootstrap=0, seed=0, out=str(tmp_path / "run"),
        ),
        progress=False,
    )  # fmt: skip
    result.write(tmp_path / "run")
    scores = pd.read_csv(tmp_path / "run" / "scores.csv")
    assert scores["record"].isin(loaded.ids).all() and scores["record"].str.startswith("id-").all()
    np.testing.assert_array_equal(scores["label"].astype(str), by_id.loc[scores["record"], "outcome"].astype(str))


def test_row_numbers_are_the_ids_without_an_id_column(forest, tmp_path):
    model, (Xm, ym), (Xn, yn) = forest
    result = audit_model(model, members=(Xm, ym), nonmembers=(Xn, yn), attacks=["loss"], **FAST)
    sets = result.columns["set"]
    proba = {"members": (model.predict_proba(Xm), ym), "nonmembers": (model.predict_proba(Xn), yn)}
    for record, which, score in zip(result.records, sets, result.scores["loss"], strict=True):
        p, y = proba[which]
        assert score == pytest.approx(np.log(max(p[record, y[record]], 1e-30)), abs=1e-6)


def test_duplicates_across_members_and_nonmembers_are_counted_and_dropped(clinic):
    model, members, nonmembers = clinic
    copies = members.iloc[:7].assign(patient_id=[f"copy{i}" for i in range(7)])
    with_copies = pd.concat([nonmembers, copies])
    kwargs = dict(label_column="diagnosis", id_column="patient_id", attacks=["loss"], **FAST)
    kept = audit_model(model, members=members, nonmembers=with_copies, **kwargs)
    assert kept.results.sections["inputs"]["duplicates_of_members"]["nonmembers"] == 7
    assert any("7 of" in w and "exact copies of members" in w for w in kept.results.warnings)
    dropped = audit_model(model, members=members, nonmembers=with_copies, drop_duplicates=True, **kwargs)
    assert not any(str(r).startswith("copy") for r in dropped.records)


def test_an_id_like_feature_is_warned_about():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"customer_id": np.arange(400), "income": rng.normal(size=400), "debt": rng.normal(size=400)})
    frame["label"] = (frame["income"] > frame["debt"]).astype(int)
    model = LogisticRegression().fit(frame[["customer_id", "income", "debt"]][:200], frame["label"][:200])
    result = audit_model(model, members=frame[:200], nonmembers=frame[200:], attacks=["loss"], **FAST)
    assert result.results.sections["inputs"]["id_like_features"] == ["customer_id"]
    assert any("look like record ids" in w for w in result.results.warnings)


def test_null_audit_of_a_pipeline_whose_members_it_never_saw(clinic):
    """Call half of the records the pipeline never trained on "members": no attack may find them."""
    model, _, nonmembers = clinic
    half = len(nonmembers) // 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LowFidelityWarning)
        null = audit_model(
            model, members=nonmembers.iloc[:half], nonmembers=nonmembers.iloc[half:], label_column="diagnosis",
            id_column="patient_id", attacks=ATTACKS, reference_models=4, n_bootstrap=300, progress=False, seed=0,
        )  # fmt: skip
    for name in ATTACKS:
        lo, hi = null.results.attacks[name].metrics.auc_ci
        assert lo <= 0.5 <= hi, (name, lo, hi)


@pytest.mark.parametrize(
    "make, message",
    [
        ("svc", "has no predict_proba"),
        ("ridge", "has no predict_proba"),
        ("regressor", "is a regressor"),
    ],
)
def test_models_without_probabilities_exit_2_with_the_remedy(make, message, tmp_path, capsys):
    import joblib
    from sklearn.linear_model import LinearRegression, RidgeClassifier
    from sklearn.svm import SVC

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(120, 3)), columns=["a", "b", "c"])
    frame["label"] = (frame["a"] > 0).astype(int)
    model = {"svc": SVC(), "ridge": RidgeClassifier(), "regressor": LinearRegression()}[make]
    model.fit(frame[["a", "b", "c"]], frame["label"])
    joblib.dump(model, tmp_path / "m.joblib")
    frame.to_csv(tmp_path / "t.csv", index=False)
    code, _, err = run_cli(
        "audit-model", "--model", str(tmp_path / "m.joblib"), "--members", str(tmp_path / "t.csv"),
        "--nonmembers", str(tmp_path / "t.csv"), "--no-progress", capsys=capsys,
    )  # fmt: skip
    assert code == 2 and message in err and "Traceback" not in err


def test_other_bad_inputs_exit_2_naming_the_value(clinic, tmp_path, capsys):
    import torch

    model, members, nonmembers = clinic
    one_class = members[members["diagnosis"] == "D24"]
    with pytest.raises(InvalidInputError, match="every member and non-member has the label 'D24'"):
        audit_model(model, members=one_class, nonmembers=nonmembers[nonmembers["diagnosis"] == "D24"],
                    label_column="diagnosis", id_column="patient_id", **FAST)  # fmt: skip
    with pytest.raises(InvalidInputError, match=r"labels \['Z99'\] are not classes"):
        audit_model(model, members=members, nonmembers=nonmembers.assign(diagnosis="Z99"),
                    label_column="diagnosis", id_column="patient_id", **FAST)  # fmt: skip
    with pytest.raises(InvalidInputError, match="cannot build reference models like torch module"):
        audit_model(torch.nn.Linear(3, 2), members=(np.zeros((10, 3)), np.zeros(10)),
                    nonmembers=(np.zeros((10, 3)), np.ones(10)), **FAST)  # fmt: skip
    members.to_csv(tmp_path / "m.csv", index=False)
    import joblib

    joblib.dump(model, tmp_path / "model.joblib")
    code, _, err = run_cli(
        "audit-model", "--model", str(tmp_path / "model.joblib"), "--members", str(tmp_path / "m.csv"),
        "--nonmembers", str(tmp_path / "m.csv"), "--label-column", "outcome", "--no-progress", capsys=capsys,
    )  # fmt: skip
    assert code == 2 and "no label column 'outcome'" in err


def test_too_few_members_or_nonmembers_are_refused_before_any_training(clinic, tmp_path, capsys):
    from memberscope.api import audit
    from memberscope.metrics import evaluate

    model, members, nonmembers = clinic

    def never(X, y, seed):
        raise AssertionError("a reference model was trained for a game whose metrics are refused")

    columns = dict(label_column="diagnosis", id_column="patient_id", recipe=never, **FAST)
    # the message is evaluate's own, with the same minimum (5 members, 5 non-members); a quarter of the
    # non-members becomes the population
    n_nonmembers = len(nonmembers) - len(nonmembers) // 4
    with pytest.raises(InvalidInputError) as refused:
        evaluate(np.r_[np.ones(4), np.zeros(n_nonmembers)], np.arange(4.0 + n_nonmembers))
    with pytest.raises(InvalidInputError) as caught:
        audit_model(model, members=members.iloc[:4], nonmembers=nonmembers, **columns)
    assert str(caught.value) == str(refused.value)
    assert f"4 members and {n_nonmembers} non-members; at least 5 members and 5 non-members" in str(caught.value)
    # 5 non-members given: a quarter (1) becomes the population, leaving 4; the message says so
    with pytest.raises(InvalidInputError, match=r"285 members and 4 non-members; .* 1 of the 5 non-members given"):
        audit_model(model, members=members, nonmembers=nonmembers.iloc[:5], **columns)
    # with a population of its own, 5 + 5 is enough to start (and the recipe is called)
    with pytest.raises(AssertionError, match="a reference model was trained"):
        audit_model(model, members=members.iloc[:5], nonmembers=nonmembers.iloc[:5], population=nonmembers.iloc[5:],
                    **columns)  # fmt: skip
    # the engine checks every plan: a built-in audit with a pool of 8 records (4 members) is refused the same way
    with pytest.raises(InvalidInputError, match="4 members and 4 non-members; at least 5 members and 5 non-members"):
        audit(dataset="digits", model="logreg", pool_size=8, population_size=50, **FAST)
    members.iloc[:4].to_csv(tmp_path / "m.csv", index=False)
    nonmembers.to_csv(tmp_path / "n.csv", index=False)
    import joblib

    joblib.dump(model, tmp_path / "model.joblib")
    code, _, err = run_cli(
        "audit-model", "--model", str(tmp_path / "model.joblib"), "--members", str(tmp_path / "m.csv"),
        "--nonmembers", str(tmp_path / "n.csv"), "--label-column", "diagnosis", "--id-column", "patient_id",
        "--no-progress", capsys=capsys,
    )  # fmt: skip
    assert code == 2 and "4 members and" in err and "at least 5 members" in err and "Traceback" not in err


def test_gate_refuses_a_low_fidelity_run_unless_allowed(forest, tmp_path, capsys):
    model, members, nonmembers = forest
    with pytest.warns(LowFidelityWarning):
        audit_model(model, members=members, nonmembers=nonmembers, recipe="mlp", attacks=["loss", "lira-offline"],
                    out=str(tmp_path), **FAST)  # fmt: skip
    code, out, _ = run_cli("gate", str(tmp_path), "--max-auc", "0.99", capsys=capsys)
    assert code == 1 and "LOW FIDELITY" in out
    code, out, _ = run_cli("gate", str(tmp_path), "--max-auc", "0.99", "--allow-low-fidelity", capsys=capsys)
    assert code == 0 and out.startswith("PASS")


def test_the_readme_example_on_a_real_clinical_table(tmp_path, monkeypatch, capsys):
    """README "Audit your own model": the Pipeline on the original Wisconsin breast cancer table (r-cran-mlbench),
    saved, and audited with `memberscope audit-model` (fewer reference models and bootstrap replicates here)."""
    import re
    import shlex
    from pathlib import Path

    readme = Path(__file__).resolve().parents[1].joinpath("README.md").read_text()
    section = readme.split("## Audit your own model", 1)[1].split("\n## ", 1)[0]
    python = re.findall(r"```python\n(.*?)```", section, flags=re.S)[0]
    command = re.findall(r"```bash\n(.*?)```", section, flags=re.S)[0].replace("\\\n", " ")
    monkeypatch.chdir(tmp_path)
    exec(python, {})
    args = shlex.split(command)[1:]  # without .venv/bin/memberscope
    code, _, err = run_cli(*args, "-k", "4", "--n-bootstrap", "100", "--no-progress", capsys=capsys)
    assert code == 0, err
    results = json.loads((tmp_path / "runs" / "breast-cancer" / "results.json").read_text())
    assert results["dataset"]["class_names"] == ["benign", "malignant"]
    assert results["inputs"]["duplicates_of_members"]["nonmembers"] > 100  # the table's many repeated rows
    assert results["fidelity"]["passed"] is True
    assert results["headline"]["strongest_attack"] in results["attacks"]
