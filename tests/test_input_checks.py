"""Nonsense inputs are refused before any model is trained (exit 2, naming what is wrong), and what is odd but
auditable is said loudly: the new-user trial's single-class table, identical member and non-member files, a
string in a numeric column, members of one class against mixed non-members, and the Python API's gaps."""

import json

import numpy as np
import pandas as pd
import pytest
from cli_helpers import run_cli

from memberscope.api import audit_model
from memberscope.exceptions import InvalidInputError

FAST = dict(reference_models=2, n_bootstrap=50, progress=False, seed=0, attacks=["loss"])


def _patients(n: int = 240, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "patient_id": [f"PIMA-{i:04d}" for i in range(n)],
            "glucose": rng.normal(120, 30, n).round(1),
            "mass": rng.normal(32, 7, n).round(1),
            "age": rng.integers(21, 80, n).astype(float),
        }
    )
    frame["diabetes"] = np.where(frame["glucose"] + rng.normal(0, 20, n) > 125, "pos", "neg")
    return frame


@pytest.fixture(scope="module")
def pima(tmp_path_factory):
    """A fitted forest pipeline on named columns, its members and non-members, as frames and as files."""
    import joblib
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame = _patients()
    members, nonmembers = frame.iloc[:120], frame.iloc[120:]
    features = ["glucose", "mass", "age"]
    model = make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=10, random_state=0))
    model.fit(members[features], members["diabetes"])
    folder = tmp_path_factory.mktemp("pima")
    joblib.dump(model, folder / "model.joblib")
    members.to_csv(folder / "members.csv", index=False)
    nonmembers.to_csv(folder / "non.csv", index=False)
    return model, members, nonmembers, folder


def _cli(folder, members, nonmembers, *extra, capsys):
    return run_cli(
        "audit-model", "--model", str(folder / "model.joblib"), "--members", str(members), "--nonmembers",
        str(nonmembers), "--label-column", "diabetes", "--no-progress", "-k", "2", "--n-bootstrap", "50",
        "--attacks", "loss", "--db", str(folder / "history.sqlite"), *extra, capsys=capsys,
    )  # fmt: skip


# ------------------------------------------------------------------------------------------------ item 4: text


def test_a_string_in_a_numeric_column_names_column_value_and_ids(pima, tmp_path, capsys):
    model, members, nonmembers, folder = pima
    bad = members.copy()
    bad["glucose"] = bad["glucose"].astype(object)
    bad.loc[bad.index[[0, 1, 2]], "glucose"] = "high"
    with pytest.raises(InvalidInputError) as info:
        audit_model(model, members=bad, nonmembers=nonmembers, label_column="diabetes", id_column="patient_id", **FAST)
    message = str(info.value)
    assert "'glucose'" in message and "'high'" in message and "3 row" in message
    assert all(i in message for i in ("PIMA-0000", "PIMA-0001", "PIMA-0002"))
    bad.to_csv(tmp_path / "bad_str.csv", index=False)
    code, _, err = _cli(
        folder, tmp_path / "bad_str.csv", folder / "non.csv", "--id-column", "patient_id", capsys=capsys
    )
    assert code == 2 and "'glucose'" in err and "'high'" in err and "Traceback" not in err


def test_audit_dataset_names_the_stray_text_the_same_way(tmp_path, capsys):
    from memberscope.datasets import load_table

    frame = _patients(60)
    frame["glucose"] = frame["glucose"].astype(object)
    frame.loc[5, "glucose"] = "high"
    frame.to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(InvalidInputError, match=r"column 'glucose' .*'high' in 1 row.*records \['PIMA-0005'\]"):
        load_table(tmp_path / "t.csv", label_column="diabetes", id_column="patient_id")
    with pytest.raises(InvalidInputError, match=r"'high' in 1 row.*rows \[5\]"):
        load_table(tmp_path / "t.csv", label_column="diabetes", feature_columns=["glucose", "mass"])


def test_a_column_of_text_throughout_is_left_to_the_pipelines_encoding():
    from memberscope.datasets.tables import check_numeric_cells, holds_numbers

    frame = pd.DataFrame({"sex": ["F", "M", "F"], "age": ["31", "40", None]})
    assert not holds_numbers(frame["sex"]) and holds_numbers(frame["age"])
    check_numeric_cells(frame, ["age"], where="t")  # numbers written as text and missing values are not text


# ------------------------------------------------------------------------------------------------ item 3: nonsense


def test_the_same_file_as_members_and_nonmembers_is_refused(pima, capsys):
    model, members, _, folder = pima
    kwargs = dict(label_column="diabetes", **FAST)
    with pytest.raises(InvalidInputError, match=r"same records \(by id\).*120 non-members are also members"):
        audit_model(model, members=members, nonmembers=members, id_column="patient_id", **kwargs)
    with pytest.raises(InvalidInputError, match=r"same records \(features and label\)"):
        audit_model(model, members=members, nonmembers=members, drop_columns=["patient_id"], **kwargs)
    code, _, err = _cli(folder, folder / "members.csv", folder / "members.csv", "--id-column", "patient_id",
                        capsys=capsys)  # fmt: skip
    assert code == 2 and "same records" in err


def test_a_partial_id_overlap_is_a_warning_naming_the_ids():
    from memberscope.engine.inputs import _check_overlap, _Part

    def part(ids):
        return _Part("x", np.arange(len(ids) * 2, dtype=float).reshape(-1, 2), np.zeros(len(ids)), np.array(ids), None)

    warnings: list[str] = []
    _check_overlap(part(["a", "b", "c"]), part(["c", "d", "e"]), by_id=True, warnings=warnings)
    assert len(warnings) == 1 and "1 ids are both members and non-members (['c'])" in warnings[0]
    with pytest.raises(InvalidInputError):  # every member is also a non-member
        _check_overlap(part(["a", "b"]), part(["a", "b", "z"]), by_id=True, warnings=[])


def test_audit_refuses_a_single_class_table_naming_the_counts(tmp_path, capsys):
    frame = _patients(200).assign(diabetes="neg")
    frame.to_csv(tmp_path / "oneclass.csv", index=False)
    code, _, err = run_cli(
        "audit", "--dataset", str(tmp_path / "oneclass.csv"), "--label-column", "diabetes", "--id-column",
        "patient_id", "--model", "sklearn", "--no-progress", "-k", "2", "--out", str(tmp_path / "run"), capsys=capsys,
    )  # fmt: skip
    assert code == 2 and "one class only" in err and "'neg': 200 records" in err
    assert not (tmp_path / "run" / "results.json").exists()


def test_a_moved_headline_fpr_says_why():
    from memberscope.results.schema import headline_fpr_note

    entry = {"auc": 0.5, "tpr_at_fpr": {"0.1": 0.1, "0.01": 0.0}, "fpr_resolvable": {"0.1": True, "0.01": False}}
    note = headline_fpr_note({"loss": entry}, 93)
    assert note is not None and "FPR 10%" in note and "93 non-members cannot resolve FPR 1%" in note
    entry["fpr_resolvable"]["0.01"] = True
    assert headline_fpr_note({"loss": entry}, 100) is None


# ------------------------------------------------------------------------------------------------ items 8-10


def test_label_shift_config_headline_history_and_fidelity_advice(pima, tmp_path):
    """All-`neg` members against mixed non-members: a loud label-shift warning (console, results.json, report);
    config names the id column and the output folder; ``db=`` records the run; ``sections["headline"]`` works;
    the fidelity advice never tells a user on the default recipe to switch to it."""
    from memberscope.report.history import list_runs

    model, members, nonmembers, _ = pima
    negatives = members[members["diabetes"] == "neg"]
    out, db = tmp_path / "run", tmp_path / "h.sqlite"
    result = audit_model(model, members=negatives, nonmembers=nonmembers, label_column="diabetes",
                         id_column="patient_id", out=str(out), db=str(db), **FAST)  # fmt: skip
    results = result.results
    shift = [w for w in results.warnings if w.startswith("LABEL SHIFT")]
    assert len(shift) == 1 and "neg 100%" in shift[0]
    block = results.sections["inputs"]["label_shift"]
    assert block["p_value"] < 0.01 and block["members"] == {"neg": len(negatives), "pos": 0}
    written = json.loads((out / "results.json").read_text())
    assert written["config"]["id_column"] == "patient_id" == written["inputs"]["id_column"]
    assert written["config"]["out"] == str(out)
    assert any(w.startswith("LABEL SHIFT") for w in written["warnings"])
    assert "LABEL SHIFT" in (out / "report.html").read_text()
    assert results.sections["headline"] == written["headline"] == results.headline
    assert len(list_runs(db)) >= 1
    assert not any("leave the recipe to its default" in w for w in results.warnings)


def test_no_label_shift_warning_for_matched_classes():
    from memberscope.engine.inputs import _label_shift

    rng = np.random.default_rng(0)
    same = _label_shift(rng.integers(0, 2, 400), rng.integers(0, 2, 400), ["neg", "pos"])
    assert same["warning"] is None and same["p_value"] > 0.01
    shifted = _label_shift(np.zeros(100, dtype=int), rng.integers(0, 2, 100), ["neg", "pos"])
    assert shifted["warning"] is not None and "chi-square" in shifted["warning"]


def test_fidelity_advice_applies_only_when_the_recipe_was_not_the_default():
    from memberscope.engine.fidelity import fidelity_warning

    block = {"passed": False, "reasons": ["accuracy on held-out records: ..."]}
    assert "leave the recipe to its default" in fidelity_warning(block)
    default = fidelity_warning(block, default_recipe=True)
    assert "leave the recipe to its default" not in default and "already built like the target" in default


def test_config_of_the_cli_names_the_out_folder_and_id_column(pima, tmp_path, capsys):
    _, _, _, folder = pima
    out = tmp_path / "cli"
    code, _, err = _cli(folder, folder / "members.csv", folder / "non.csv", "--id-column", "patient_id",
                        "--out", str(out), "--no-report", capsys=capsys)  # fmt: skip
    assert code == 0, err
    config = json.loads((out / "results.json").read_text())["config"]
    assert config["out"] == str(out) and config["id_column"] == "patient_id"


# ------------------------------------------------------------------------------------------------ item 9: API


def test_unknown_settings_and_glued_yaml_get_clear_errors(pima):
    from memberscope.cli._app import parse_params

    model, members, nonmembers, _ = pima
    with pytest.raises(InvalidInputError, match=r"unknown setting\(s\) \['dbx'\]"):
        audit_model(model, members=members, nonmembers=nonmembers, label_column="diabetes", dbx="h.sqlite", **FAST)
    with pytest.raises(InvalidInputError, match=r"space after the colon \('n_estimators: 10'\)"):
        parse_params(["params={n_estimators:10}"], "--model-param")
    assert parse_params(["params={n_estimators: 10}"], "--model-param") == {"params": {"n_estimators": 10}}
    assert parse_params(["url=http://x:80"], "--model-param") == {"url": "http://x:80"}


def test_a_missing_top_level_entry_of_sections_says_where_it_is():
    from memberscope.results.schema import Results

    results = Results.from_dict({"schema_version": "2.0", "kind": "audit", "attacks": {}})
    assert results.sections["headline"] is None
    with pytest.raises(KeyError, match=r"results\.attacks"):
        results.sections["attacks"]
