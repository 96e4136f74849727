"""Text classifiers audited as classifiers: the target answers what the model computes, classes by name; labelled
texts read by column; reference fine-tunes are seeded; and an end-to-end audit of a tiny BERT fine-tuned on
labelled fortunes (CLI: results.json, scores.csv, ROC, report) that finds its members, with a null split that
does not."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

pytest.importorskip("transformers", reason="needs the llm extra (transformers)")

from memberscope.exceptions import InvalidInputError
from memberscope.llm.demo_setting import DEFAULT_FORTUNES_DIR
from memberscope.llm.finetune import TextClassifierRecipe
from memberscope.llm.loading import load_text_classifier
from memberscope.llm.text_audit import audit_text_classifier, default_attacks, label_codes
from memberscope.llm.texts import read_labelled_texts
from memberscope.targets import load_target, wrap
from memberscope.targets.language import TextClassifierTarget
from tests.cli_helpers import run_cli
from tests.llm_helpers import CORPUS, make_tiny_bert, one_torch_thread, small_classifier_setting

_one_thread = pytest.fixture(autouse=True, scope="module")(one_torch_thread)

fortunes = pytest.mark.skipif(
    not os.path.isdir(os.environ.get("MEMBERSCOPE_FORTUNES_DIR", DEFAULT_FORTUNES_DIR)),
    reason="Debian package 'fortunes' not installed (scripts/setup.sh installs it)",
)
NAMES = {0: "negative", 1: "neutral", 2: "positive"}


@pytest.fixture(scope="module")
def clf_dir(tmp_path_factory):
    return make_tiny_bert(
        tmp_path_factory.mktemp("tiny-clf"),
        head="BertForSequenceClassification",
        id2label=NAMES,
        label2id={v: k for k, v in NAMES.items()},
    )


def test_the_target_answers_the_models_logits_with_classes_by_name(clf_dir):
    import torch

    target = load_text_classifier(clf_dir, max_length=12, batch_size=4)
    assert isinstance(target, TextClassifierTarget) and target.output_kind == "logits"
    assert target.class_names == ["negative", "neutral", "positive"] and target.n_classes == 3
    logits = target.query(CORPUS)
    assert logits.shape == (len(CORPUS), 3) and target.queries_spent == len(CORPUS)
    for i, text in enumerate(CORPUS):  # one text at a time, no padding: the same answer
        enc = target.tokenizer(text, truncation=True, max_length=12, return_tensors="pt")
        with torch.inference_mode():
            direct = target.model(**enc).logits[0].double().numpy()
        np.testing.assert_allclose(logits[i], direct, rtol=1e-5, atol=1e-6)
    long = [len(target.tokenizer(t)["input_ids"]) > 12 for t in CORPUS]
    assert target.n_truncated == sum(long) > 0
    # The engine's records: an (n, 1) object array; a folder through load_target / wrap is the same target.
    column = np.array(CORPUS, dtype=object)[:, None]
    again = load_target(clf_dir)
    assert isinstance(again, TextClassifierTarget)
    np.testing.assert_allclose(wrap(again).query(column)[:, :], again.query(list(CORPUS)))
    assert target.column_of(np.array(["positive", "negative"], dtype=object)).tolist() == [2, 0]
    with pytest.raises(InvalidInputError, match="takes strings"):
        target.query([1.5, 2.0])


def test_folders_that_are_not_text_classifiers_are_refused_by_name(tmp_path):
    mlm = make_tiny_bert(tmp_path / "mlm", head="BertForMaskedLM")
    with pytest.raises(
        InvalidInputError, match=r"BertForMaskedLM \(a masked language model\), not a text classifier.*llm-audit"
    ):
        load_text_classifier(mlm)
    bare = make_tiny_bert(tmp_path / "bare", head="BertModel")
    with pytest.raises(InvalidInputError, match=r"BertModel \(a bare encoder.*not a text classifier"):
        load_text_classifier(bare)
    with pytest.raises(InvalidInputError, match=r"has no config\.json"):
        load_text_classifier(tmp_path)


def test_labelled_texts_are_read_by_column_and_blanks_are_refused_with_their_rows(tmp_path):
    csv = tmp_path / "m.csv"
    csv.write_text('id,body,y\n7,"Hello, world",positive\n8,"two\nlines",negative\n')
    read = read_labelled_texts(csv, what="members", text_column="body", label_column="y", id_column="id")
    assert read.texts == ["Hello, world", "two\nlines"] and read.labels == ["positive", "negative"]
    assert read.ids == ["7", "8"]
    jsonl = tmp_path / "m.jsonl"
    jsonl.write_text(json.dumps({"text": "a", "label": 2}) + "\n" + json.dumps({"text": "b", "label": 0}) + "\n")
    read = read_labelled_texts(jsonl, what="members")
    assert read.labels == ["2", "0"] and read.ids == ["m:1", "m:2"]
    (tmp_path / "blank.csv").write_text("text,label\na,1\nb,\nc,0\n")
    with pytest.raises(InvalidInputError, match=r"missing or unusable label\(s\) in 'label' at rows 2;"):
        read_labelled_texts(tmp_path / "blank.csv", what="members")
    with pytest.raises(InvalidInputError, match=r"has no column 'label'.*--label-column"):
        read_labelled_texts(csv, what="members", text_column="body")
    (tmp_path / "t.txt").write_text("a\nb\n")
    with pytest.raises(InvalidInputError, match="is plain text: a text classifier audit needs each text's label"):
        read_labelled_texts(tmp_path / "t.txt", what="members")


def test_labels_map_to_the_models_classes_by_name_or_index():
    names = ["negative", "neutral", "positive"]
    assert label_codes(["positive", "negative"], names, what="members").tolist() == [2, 0]
    assert label_codes(["2", "0", 1], names, what="members").tolist() == [2, 0, 1]
    with pytest.raises(InvalidInputError, match=r"members labels \['3', 'pos'\] are not classes of the model"):
        label_codes(["pos", "3", "neutral"], names, what="members")


def test_default_attacks_follow_what_the_run_can_serve():
    assert default_attacks(0, has_population=True) == ["loss", "confidence", "entropy", "modified-entropy"]
    with_refs = default_attacks(4, has_population=True)
    assert {"lira-online", "rmia-offline", "shadow"} <= set(with_refs) and "label-only" not in with_refs
    assert "rmia-online" not in default_attacks(4, has_population=False)


def test_reference_fine_tunes_are_seeded_and_survive_the_cache(tmp_path, clf_dir):
    import torch

    base = make_tiny_bert(tmp_path / "base", head="BertForMaskedLM", seed=3)
    recipe = TextClassifierRecipe(
        base, class_names=["a", "b"], epochs=2, learning_rate=1e-3, batch_size=4, max_length=16
    )
    y = np.array([0, 1, 0, 1, 1, 0])
    before = torch.random.get_rng_state()
    one = recipe.train(CORPUS, y, n_classes=2, seed=5)
    assert torch.equal(torch.random.get_rng_state(), before)  # the process's own stream is left alone
    two = recipe.train(np.array(CORPUS, dtype=object)[:, None], y, n_classes=2, seed=5)
    other = recipe.train(CORPUS, y, n_classes=2, seed=6)
    np.testing.assert_array_equal(one.query(CORPUS), two.query(CORPUS))
    assert not np.allclose(one.query(CORPUS), other.query(CORPUS))
    assert one.class_names == ["a", "b"] and recipe.inspect_base(2) == []
    one.save(tmp_path / "model.bin")
    loaded = recipe.load(tmp_path / "model.bin", n_classes=2, feature_shape=(1,))
    np.testing.assert_array_equal(loaded.query(CORPUS), one.query(CORPUS))
    assert recipe.config()["base_fingerprint"] != TextClassifierRecipe(clf_dir).config()["base_fingerprint"]
    with pytest.raises(InvalidInputError, match="learning_rate must be a number > 0"):
        TextClassifierRecipe(base, learning_rate=0)
    with pytest.raises(InvalidInputError, match="pass that folder as the base model"):
        TextClassifierRecipe(None).train(CORPUS, y, n_classes=2, seed=0)


@pytest.fixture(scope="module")
def setting(tmp_path_factory):
    return small_classifier_setting(tmp_path_factory)


def _write_csv(path, part):
    import pandas as pd

    pd.DataFrame({"body": part.texts, "y": part.labels}).to_csv(path, index=False)
    return path


@fortunes
def test_text_audit_end_to_end_finds_the_members_of_a_fine_tuned_bert(setting, tmp_path, capsys):
    members = _write_csv(tmp_path / "members.csv", setting.members)
    nonmembers = _write_csv(tmp_path / "nonmembers.csv", setting.nonmembers)
    out = tmp_path / "out"
    code, stdout, stderr = run_cli(
        "text-audit", "--model", str(setting.target_dir), "--members", str(members), "--nonmembers", str(nonmembers),
        "--text-column", "body", "--label-column", "y", "--base-model", str(setting.base_dir), "-k", "2",
        "--model-param", "epochs=8", "--model-param", "learning_rate=1e-3", "--max-length", "48",
        "--n-bootstrap", "200", "--seed", "1", "--out", str(out), "--no-progress", capsys=capsys,
    )  # fmt: skip
    assert code == 0, stderr
    r = json.loads((out / "results.json").read_text())
    assert r["kind"] == "audit" and r["game"]["n_members"] == len(setting.members)
    assert r["game"]["n_reference_models"] == 2 and r["reference_models"]["count"] == 2
    assert r["dataset"]["class_names"] == ["short", "long"] and r["dataset"]["feature_shape"] == [1]
    assert set(r["attacks"]) == {
        "lira-online", "lira-offline", "rmia-online", "rmia-offline", "loss", "confidence", "entropy",
        "modified-entropy", "shadow",
    }  # fmt: skip
    assert set(r["attacks"]["loss"]["per_class"]) == {"short", "long"}
    assert r["attacks"]["loss"]["auc_ci"][0] > 0.5 and r["attacks"]["rmia-offline"]["auc_ci"][0] > 0.5
    assert r["target"]["train_accuracy"] == 1.0 and r["target"]["text_classifier"]["classes"] == ["short", "long"]
    cut = r["target"]["text_classifier"]["n_truncated"]
    assert cut > 0 and [w for w in r["warnings"] if w.startswith(f"{cut} texts sent to BertForSequenceClassification")]
    assert r["config"]["model"] == "hf-text-classifier" and r["config"]["model_params"]["epochs"] == 8
    assert r["vulnerable_records"]["records"][0]["record"].startswith("members:")
    assert r["vulnerable_records"]["records"][0]["label"] in ("short", "long")
    assert {p.name for p in out.iterdir()} >= {"results.json", "scores.csv", "roc.png", "report.html"}
    scores = (out / "scores.csv").read_text().splitlines()
    assert scores[0].startswith("record,member,") and scores[1].startswith("members:1,1,")
    assert "strongest" in stdout
    code, stdout, _ = run_cli("report", str(out), "--format", "md", capsys=capsys)
    summary = (out / "summary.md").read_text()
    assert code == 0 and "| `loss` |" in summary and "train accuracy 100.0%" in summary


@fortunes
def test_text_audit_same_seed_same_numbers_and_a_null_split_is_at_chance(setting):
    kwargs = dict(
        base_model=setting.base_dir,
        reference_models=2,
        finetune={"epochs": 4, "learning_rate": 1e-3},
        max_length=48,
        n_bootstrap=200,
        seed=2,
        use_cache=False,
    )
    one = audit_text_classifier(setting.target_dir, members=setting.members, nonmembers=setting.nonmembers, **kwargs)
    two = audit_text_classifier(setting.target_dir, members=setting.members, nonmembers=setting.nonmembers, **kwargs)
    assert one.scores.keys() == two.scores.keys()
    for name in one.scores:
        np.testing.assert_array_equal(one.scores[name], two.scores[name], err_msg=name)
    # Two halves of texts the classifier never saw: whatever tells them apart is chance.
    texts, labels = setting.nonmembers.texts, setting.nonmembers.labels
    half = len(texts) // 2
    null = audit_text_classifier(
        setting.target_dir,
        members=(texts[:half], labels[:half]),
        nonmembers=(texts[half:], labels[half:]),
        max_length=48,
        n_bootstrap=300,
        seed=0,
    ).results
    lo, hi = null.attacks["loss"].metrics.auc_ci
    assert lo < 0.5 < hi, (lo, hi)


@fortunes
def test_text_audit_over_training_draws(setting):
    # --targets 2: reference fine-tune 0 plays the target too; the spread covers both draws, the membership
    # probability is calibrated on that draw (never on the target's own ground truth).
    result = audit_text_classifier(
        setting.target_dir,
        members=setting.members,
        nonmembers=setting.nonmembers,
        base_model=setting.base_dir,
        reference_models=2,
        targets=2,
        attacks=["loss", "rmia-online"],
        finetune={"epochs": 2, "learning_rate": 1e-3},
        max_length=48,
        n_bootstrap=50,
        use_cache=False,
    )
    draws = result.results.sections["draws"]
    assert draws["n_draws"] == 2 and [d["draw"] for d in draws["draws"]] == ["target", "reference model 0"]
    assert draws["attacks"]["loss"]["auc"]["values"][0] == pytest.approx(result.results.attacks["loss"].metrics.auc)
    assert result.results.sections["membership_probability"]["calibration_draws"] == 1
    p = result.columns["membership_probability"]
    assert p.shape == result.member.shape
    assert ((p >= 0) & (p <= 1)).all()


@fortunes
def test_text_audit_usage_errors_exit_2(setting, tmp_path, capsys):
    members = _write_csv(tmp_path / "members.csv", setting.members)
    code, _, stderr = run_cli(
        "text-audit", "--model", str(setting.target_dir), "--members", str(members), "--nonmembers", str(members),
        "--text-column", "body", "--label-column", "y", "-k", "2", "--no-report", capsys=capsys,
    )  # fmt: skip
    assert code == 2 and "pass that folder as the base model (--base-model DIR)" in stderr
    code, _, stderr = run_cli(
        "text-audit", "--model", str(setting.base_dir), "--members", str(members), "--nonmembers", str(members),
        "--text-column", "body", "--label-column", "y", "--no-report", capsys=capsys,
    )  # fmt: skip
    assert code == 2 and "not a text classifier" in stderr and "Traceback" not in stderr
    code, _, stderr = run_cli(
        "text-audit", "--model", str(setting.target_dir), "--members", str(members), "--nonmembers", str(members),
        "--text-column", "body", "--label-column", "y", "--attacks", "loss,label-only", "--no-report", capsys=capsys,
    )  # fmt: skip
    assert code == 2 and "'label-only' queries perturbed copies of numeric records" in stderr
    code, _, stderr = run_cli(
        "text-audit", "--model", str(setting.target_dir), "--members", str(members), "--nonmembers", str(members),
        "--text-column", "body", "--label-column", "y", "--base-model", str(setting.base_dir), "-k", "2",
        "--targets", "4", "--no-report", capsys=capsys,
    )  # fmt: skip
    assert code == 2 and "targets=4 needs at least 3 reference models" in " ".join(stderr.split())
