"""Edge cases of LLM audits, with the right values: cut texts (zlib on the scored text, the max_length used, a
truncation warning), texts read from tables by column, blank texts refused by line, a missing tokenizer."""

from __future__ import annotations

import json
import zlib

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("transformers", reason="needs the llm extra (transformers)")

from memberscope.exceptions import InvalidInputError
from memberscope.llm import attacks as llm_attacks
from memberscope.llm.audit import audit_llm
from memberscope.llm.loading import load_language_model
from memberscope.llm.texts import read_texts
from tests.cli_helpers import run_cli
from tests.llm_helpers import CORPUS, make_tiny_lm, one_torch_thread

_one_thread = pytest.fixture(autouse=True, scope="module")(one_torch_thread)

# metrics need at least 5 members and 5 non-members: the six corpus lines and four lower-cased (all under 64 tokens)
MEMBER_TEXTS = [*CORPUS[:3], CORPUS[0].lower(), CORPUS[2].lower()]
NONMEMBER_TEXTS = [*CORPUS[3:], CORPUS[3].lower(), CORPUS[5].lower()]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return make_tiny_lm(tmp_path_factory.mktemp("tiny-edges"))


@pytest.fixture(scope="module")
def tiny(tiny_dir):
    return load_language_model(tiny_dir)


def test_texts_sharing_their_scored_tokens_get_the_same_loss_and_zlib(tiny):
    """Three texts whose first 15 scored tokens agree and which differ after them (cut at max_length 16)."""
    head = CORPUS[0] + " " + CORPUS[1]
    texts = [head + " and then one ending", head + "!!! a very different, much longer tail " * 3, head + "?"]
    ids = tiny.tokenizer(head, add_special_tokens=False)["input_ids"]
    assert len(ids) > 20  # the shared part is longer than what is scored
    scores = llm_attacks.score_attacks(tiny, texts, [llm_attacks.create("loss"), llm_attacks.create("zlib")],
                                       max_length=16)  # fmt: skip
    assert np.ptp(scores["loss"]) == 0 and np.ptp(scores["zlib"]) == 0
    # The right value: the loss over the 15 scored tokens divided by the zlib size of the text they spell.
    scored_text = tiny.tokenizer.decode(ids[:15])
    assert head.startswith(scored_text)
    assert scores["zlib"][0] == pytest.approx(scores["loss"][0] / len(zlib.compress(scored_text.encode())), rel=1e-12)
    whole = scores["loss"][0] / len(zlib.compress(texts[1].encode()))
    assert scores["zlib"][1] != pytest.approx(whole)  # what the old code computed


def test_results_record_the_max_length_used_and_warn_about_cut_texts(tiny):
    long = " ".join(CORPUS)  # > 64 tokens: the tiny model's positions
    members = [long, CORPUS[0], long + " more", *MEMBER_TEXTS[3:]]
    nonmembers = [CORPUS[1], long + " again", CORPUS[2], *NONMEMBER_TEXTS[3:]]
    results = audit_llm(
        model=tiny, members=members, nonmembers=nonmembers, attacks=["loss", "zlib"], max_length=128,
        n_bootstrap=20, validity=False,
    ).results  # fmt: skip
    assert results["llm"]["max_length"] == 64 and results["llm"]["max_length_requested"] == 128
    assert results["config"]["max_length"] == 64 and results["llm"]["n_truncated"] == 3
    warning = [w for w in results["warnings"] if "were cut" in w]
    assert len(warning) == 1
    assert warning[0].startswith("3 of 10 texts are longer than max_length 64 tokens (the model's limit; 128 was")
    assert "records 0, 2, 6" in warning[0]
    fits = audit_llm(model=tiny, members=MEMBER_TEXTS, nonmembers=NONMEMBER_TEXTS, attacks=["loss"], max_length=64,
                     n_bootstrap=20, validity=False).results  # fmt: skip
    assert fits["llm"]["max_length"] == 64 and fits["llm"]["n_truncated"] == 0
    assert not [w for w in fits["warnings"] if "were cut" in w]
    cut = audit_llm(model=tiny, members=MEMBER_TEXTS, nonmembers=NONMEMBER_TEXTS, attacks=["loss"], max_length=8,
                    n_bootstrap=20, validity=False).results  # fmt: skip
    assert cut["llm"]["max_length"] == 8 and cut["llm"]["n_truncated"] == 10
    assert [w for w in cut["warnings"] if w.startswith("10 of 10 texts are longer than max_length 8 tokens and were")]


def test_a_shorter_reference_model_is_named_in_a_warning(tiny, tmp_path):
    short_ref = load_language_model(make_tiny_lm(tmp_path / "ref", n_positions=16))
    results = audit_llm(
        model=tiny, reference_model=short_ref, members=MEMBER_TEXTS, nonmembers=NONMEMBER_TEXTS,
        attacks=["reference"], max_length=64, n_bootstrap=20, validity=False,
    ).results  # fmt: skip
    n_long = sum(len(tiny.tokenizer(t)["input_ids"]) > 15 for t in MEMBER_TEXTS + NONMEMBER_TEXTS)
    assert n_long > 0
    assert [w for w in results["warnings"] if w.startswith(f"{n_long} texts were cut further by the reference model")]


def test_csv_is_read_as_a_table(tmp_path):
    frame = pd.DataFrame(
        {"id": [7, 8, 9], "body": ['He said "hi", then left.', "two\nlines", "NA"], "text": ["a", "b", "c"]}
    )
    frame.to_csv(tmp_path / "t.csv", index=False)
    assert read_texts(tmp_path / "t.csv", what="members", text_column="body") == frame["body"].tolist()
    assert read_texts(tmp_path / "t.csv", what="members") == ["a", "b", "c"]  # the header is not a text
    frame.to_csv(tmp_path / "t.tsv", index=False, sep="\t")
    assert read_texts(tmp_path / "t.tsv", what="members", text_column="body") == frame["body"].tolist()
    frame.to_parquet(tmp_path / "t.parquet")
    assert read_texts(tmp_path / "t.parquet", what="members", text_column="body") == frame["body"].tolist()
    with (tmp_path / "t.jsonl").open("w") as fh:
        for row in frame.to_dict("records"):
            fh.write(json.dumps(row) + "\n")
    assert read_texts(tmp_path / "t.jsonl", what="members", text_column="body") == frame["body"].tolist()
    with pytest.raises(InvalidInputError, match=r"has no column 'content' \(columns: 'id', 'body', 'text'\)"):
        read_texts(tmp_path / "t.csv", what="members", text_column="content")
    frame.drop(columns="text").to_csv(tmp_path / "u.csv", index=False)
    with pytest.raises(InvalidInputError, match=r"has no column .text.*pass --text-column NAME"):
        read_texts(tmp_path / "u.csv", what="members")
    with pytest.raises(InvalidInputError, match=r"holds non-text values at rows 1, 2, 3"):
        read_texts(tmp_path / "t.parquet", what="members", text_column="id")
    (tmp_path / "p.txt").write_text("one\ntwo\n")
    with pytest.raises(InvalidInputError, match="is plain text"):
        read_texts(tmp_path / "p.txt", what="members", text_column="body")


def test_blank_records_are_refused_with_their_numbers(tmp_path):
    (tmp_path / "b.txt").write_text("one\n\ntwo\n   \nthree\n")
    with pytest.raises(InvalidInputError, match=r"2 blank or empty text\(s\) at lines 2, 4"):
        read_texts(tmp_path / "b.txt", what="members")
    (tmp_path / "b.jsonl").write_text('{"text": "one"}\n{"text": ""}\n{"text": "three"}\n')
    with pytest.raises(InvalidInputError, match=r"at lines 2;"):
        read_texts(tmp_path / "b.jsonl", what="members")
    pd.DataFrame({"text": ["one", "", "three", None]}).to_parquet(tmp_path / "b.parquet")
    with pytest.raises(InvalidInputError, match=r"at rows 2, 4;"):
        read_texts(tmp_path / "b.parquet", what="members")
    (tmp_path / "b.csv").write_text('text\n"one"\n""\nthree\n')
    with pytest.raises(InvalidInputError, match=r"at rows 2;"):
        read_texts(tmp_path / "b.csv", what="members")
    (tmp_path / "ok.txt").write_text("one\ntwo\nthree\n")
    assert read_texts(tmp_path / "ok.txt", what="members") == ["one", "two", "three"]  # record k is line k


def test_llm_audit_cli_reads_a_csv_by_column(tiny_dir, tmp_path, capsys):
    pd.DataFrame({"id": [1, 2, 3, 4, 5], "review": MEMBER_TEXTS}).to_csv(tmp_path / "m.csv", index=False)
    pd.DataFrame({"id": [6, 7, 8, 9, 10], "review": NONMEMBER_TEXTS}).to_csv(tmp_path / "n.csv", index=False)
    code, _, stderr = run_cli(
        "llm-audit", "--model", str(tiny_dir), "--members", str(tmp_path / "m.csv"), "--nonmembers",
        str(tmp_path / "n.csv"), "--text-column", "review", "--attacks", "loss", "--n-bootstrap", "20",
        "--out", str(tmp_path / "o"), "--no-report", capsys=capsys,
    )  # fmt: skip
    assert code == 0, stderr
    results = json.loads((tmp_path / "o" / "results.json").read_text())
    assert results["llm"]["n_members"] == 5 and results["llm"]["n_nonmembers"] == 5


def test_missing_tokenizer_is_named_at_the_cli(tmp_path, capsys):
    model = make_tiny_lm(tmp_path / "model")
    tok = make_tiny_lm(tmp_path / "tok")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (model / name).unlink()
    (tmp_path / "m.txt").write_text("\n".join(MEMBER_TEXTS) + "\n")
    (tmp_path / "n.txt").write_text("\n".join(NONMEMBER_TEXTS) + "\n")
    args = ["llm-audit", "--model", str(model), "--members", str(tmp_path / "m.txt"), "--nonmembers",
            str(tmp_path / "n.txt"), "--attacks", "loss", "--n-bootstrap", "20", "--no-report"]  # fmt: skip
    code, _, stderr = run_cli(*args, "--out", str(tmp_path / "o1"), capsys=capsys)
    assert code == 2 and "has no tokenizer files" in stderr and "no token to score" not in stderr
    code, _, stderr = run_cli(*args, "--tokenizer", str(tok), "--out", str(tmp_path / "o2"), capsys=capsys)
    assert code == 0, stderr
    assert json.loads((tmp_path / "o2" / "results.json").read_text())["llm"]["tokenizer"] == str(tok)
