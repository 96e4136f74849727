"""The LLM audit end to end: the demo setting (small), the null test on the base model, results.json, CLI errors."""

from __future__ import annotations

import dataclasses
import json
import os
import warnings

import numpy as np
import pytest

pytest.importorskip("transformers", reason="needs the llm extra (transformers)")

from memberscope.llm.audit import audit_llm
from memberscope.llm.demo_setting import DEFAULT_FORTUNES_DIR, build_demo_setting
from tests.cli_helpers import run_cli
from tests.llm_helpers import CORPUS, make_tiny_lm, one_torch_thread, small_config
from tests.llm_helpers import small_setting as small_setting_for

_one_thread = pytest.fixture(autouse=True, scope="module")(one_torch_thread)

fortunes = pytest.mark.skipif(
    not os.path.isdir(os.environ.get("MEMBERSCOPE_FORTUNES_DIR", DEFAULT_FORTUNES_DIR)),
    reason="Debian package 'fortunes' not installed (scripts/setup.sh installs it)",
)

SMALL = small_config()


@pytest.fixture(scope="module")
def small_setting(tmp_path_factory):
    return small_setting_for(tmp_path_factory)


@fortunes
def test_demo_setting_is_seeded_cached_and_iid(small_setting):
    s = small_setting
    assert not s.cached and len(s.members) == 80 and len(s.nonmembers) == 80
    assert not set(s.members) & set(s.nonmembers)
    assert [c.repetitions for c in s.canaries] == [1, 1, 4, 4, 16, 16]
    again = build_demo_setting(SMALL, cache_dir=s.base_dir.parent.parent.parent)
    assert again.cached and again.members == s.members and again.target_dir == s.target_dir
    assert (s.base_dir / "config.json").is_file() and (s.target_dir / "tokenizer.json").is_file()


@fortunes
def test_finetuned_model_leaks_and_base_model_is_null(small_setting):
    s = small_setting
    kwargs = dict(members=s.members, nonmembers=s.nonmembers, max_length=SMALL.context, n_bootstrap=300, seed=1)
    target = audit_llm(
        model=s.target_dir,
        reference_model=s.base_dir,
        canaries=s.canaries,
        canary_digits=SMALL.canary_digits,
        canary_candidates=None,
        **kwargs,
    ).results
    assert target["kind"] == "llm"
    assert target["attacks"]["loss"]["auc_ci"][0] > 0.5
    assert target["attacks"]["reference"]["auc_ci"][0] > 0.5
    assert target["llm"]["canaries"]["16"]["exposure_mean"] > target["llm"]["canaries"]["1"]["exposure_mean"]
    validity = target["llm"]["validity"]
    assert validity["baseline_auc_ci"][0] <= 0.5 <= validity["baseline_auc_ci"][1] and validity["warning"] is None
    # Null test: the base model never saw the members.
    base = audit_llm(model=s.base_dir, attacks=["loss", "zlib", "min-k", "min-k++"], validity=False, **kwargs).results
    for name, entry in base["attacks"].items():
        assert entry["auc_ci"][0] <= 0.5 <= entry["auc_ci"][1], (name, entry["auc"], entry["auc_ci"])


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return make_tiny_lm(tmp_path_factory.mktemp("tiny-cli"))


def _write(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return path


# metrics need at least 5 members and 5 non-members: the six corpus lines, plus pairs of them joined
MEMBER_TEXTS = [*CORPUS[:3], f"{CORPUS[0]} {CORPUS[1]}", f"{CORPUS[1]} {CORPUS[2]}"]
NONMEMBER_TEXTS = [*CORPUS[3:], f"{CORPUS[3]} {CORPUS[4]}", f"{CORPUS[4]} {CORPUS[5]}"]


def test_llm_audit_cli_writes_outputs(tiny_dir, tmp_path, capsys):
    members = _write(tmp_path / "members.txt", MEMBER_TEXTS)
    records = [json.dumps({"text": t, "id": i}) for i, t in enumerate(NONMEMBER_TEXTS)]
    nonmembers = _write(tmp_path / "non.jsonl", records)
    out = tmp_path / "run"
    code, _, stderr = run_cli(
        "llm-audit", "--model", str(tiny_dir), "--members", str(members), "--nonmembers", str(nonmembers),
        "--out", str(out), "--reference-model", str(tiny_dir), "--attack-param", "min-k.k=0.5",
        "--n-bootstrap", "50", "--threads", "1", "--no-report", capsys=capsys,
    )  # fmt: skip
    assert code == 0, stderr
    results = json.loads((out / "results.json").read_text())
    assert results["kind"] == "llm" and results["llm"]["n_members"] == 5 and results["llm"]["n_nonmembers"] == 5
    assert set(results["attacks"]) == {"loss", "zlib", "lowercase", "min-k", "min-k++", "reference"}
    assert results["attacks"]["min-k"]["params"] == {"k": 0.5}
    assert results["llm"]["canaries"] is None and set(results["llm"]["validity"]) >= {"baseline_auc", "warning"}
    header = (out / "scores.csv").read_text().splitlines()[0].split(",")
    assert header[:2] == ["record", "member"] and "min-k++" in header
    assert (out / "roc.png").stat().st_size > 0
    # The HTML report renders an llm results.json. (matplotlib warns when its legend placement takes over a
    # second, which happens on a busy machine; that timing warning is not what this checks.)

    from memberscope.report.html import write_html

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message='Creating legend with loc="best" can be slow', category=UserWarning)
        assert "min-k++" in write_html(out).read_text()
    # Same model as its own reference: the calibrated score is exactly 0 for every text.
    import pandas as pd

    assert np.all(pd.read_csv(out / "scores.csv")["reference"] == 0)


def test_llm_report_shows_the_vulnerable_texts_escaped_and_each_warning_once(tiny_dir, tmp_path):
    from memberscope.llm.audit import EXCERPT_CHARS
    from memberscope.report.html import write_html

    markup = "<b>bold & loud</b> " + CORPUS[0]
    members = [markup, *MEMBER_TEXTS[1:], " ".join(CORPUS) * 3]  # one text far longer than an excerpt
    result = audit_llm(model=tiny_dir, members=members, nonmembers=NONMEMBER_TEXTS, n_bootstrap=50, seed=0)
    texts = members + NONMEMBER_TEXTS
    rows = result.results.vulnerable_records["records"]
    assert len(rows) == len(members)
    for row in rows:  # each row names its record and shows (the start of) that record's text
        full = " ".join(texts[row["record"]].split())
        assert len(row["text"]) <= EXCERPT_CHARS
        assert row["text"] == full or (row["text"].endswith("…") and full.startswith(row["text"][:-1]))
    result.write(tmp_path)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message='Creating legend with loc="best" can be slow', category=UserWarning)
        page = write_html(tmp_path).read_text()
    assert "&lt;b&gt;bold &amp; loud&lt;/b&gt;" in page and "<b>bold" not in page
    # Five non-members resolve no FPR below 20%: every attack warns the same; the report says each once.
    unresolved = "FPR 1% cannot be resolved with 5 non-members"
    assert all(any(unresolved in w for w in a.metrics.warnings) for a in result.results.attacks.values())
    assert page.count(unresolved) == 1
    line = next(li for li in page.split("<li>") if unresolved in li)
    assert all(name in line for name in result.results.attacks)


def test_llm_audit_cli_refuses_fewer_than_five_members_with_exit_2(tiny_dir, tmp_path, capsys):
    members = _write(tmp_path / "m.txt", CORPUS[:3])
    nonmembers = _write(tmp_path / "n.txt", CORPUS[3:])
    code, _, stderr = run_cli(
        "llm-audit", "--model", str(tiny_dir), "--members", str(members), "--nonmembers", str(nonmembers),
        "--out", str(tmp_path / "run"), "--attacks", "loss", "--n-bootstrap", "0", "--threads", "1", "--no-report",
        capsys=capsys,
    )  # fmt: skip
    assert code == 2
    assert "3 members and 3 non-members; at least 5 members and 5 non-members are needed" in stderr


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing-model", "is not a directory"),
        ("empty-members", "holds no records"),
        ("bad-jsonl", "not valid JSON"),
        ("jsonl-no-text", 'field "text"'),
        ("unknown-attack", "unknown llm attack"),
        ("reference-without-model", "need a reference model"),
        ("missing-file", "does not exist"),
        ("bad-attack-param", "ATTACK.KEY=VALUE"),
    ],
)
def test_llm_audit_cli_bad_input_exits_2(case, message, tiny_dir, tmp_path, capsys):
    members = _write(tmp_path / "m.txt", CORPUS[:3])
    nonmembers = _write(tmp_path / "n.txt", CORPUS[3:])
    model, extra = str(tiny_dir), []
    if case == "missing-model":
        model = str(tmp_path / "no-such-model")
    elif case == "empty-members":
        members = _write(tmp_path / "m.txt", ["", "  "])
    elif case == "bad-jsonl":
        nonmembers = _write(tmp_path / "n.jsonl", ['{"text": "ok"}', "{not json"])
    elif case == "jsonl-no-text":
        nonmembers = _write(tmp_path / "n.jsonl", ['{"body": "no text field"}'])
    elif case == "unknown-attack":
        extra = ["--attacks", "loss,nope"]
    elif case == "reference-without-model":
        extra = ["--attacks", "reference"]
    elif case == "bad-attack-param":
        extra = ["--attack-param", "k=0.1"]
    elif case == "missing-file":
        members = tmp_path / "absent.txt"
    code, _, stderr = run_cli(
        "llm-audit", "--model", model, "--members", str(members), "--nonmembers", str(nonmembers),
        "--out", str(tmp_path / "o"), "--no-report", "--n-bootstrap", "20", *extra, capsys=capsys,
    )  # fmt: skip
    assert code == 2, stderr
    assert message in stderr and "Traceback" not in stderr


@fortunes
def test_llm_demo_cli_audits_the_cached_setting(small_setting, monkeypatch, tmp_path, capsys):
    from memberscope.llm import demo_setting

    # The command's default setting takes minutes to build; run it on the small one the fixture cached.
    monkeypatch.setattr(demo_setting, "DemoConfig", lambda seed: dataclasses.replace(SMALL, seed=seed))
    cache = small_setting.base_dir.parent.parent.parent
    code, stdout, stderr = run_cli(
        "llm-demo", "--out", str(tmp_path / "demo"), "--seed", "3", "--cache-dir", str(cache),
        "--n-bootstrap", "50", "--no-report", capsys=capsys,
    )  # fmt: skip
    assert code == 0, stderr
    assert "demo models from cache" in stdout and "canary exposure" in stdout
    results = json.loads((tmp_path / "demo" / "results.json").read_text())
    assert results["llm"]["reference_model"] == str(small_setting.base_dir)
    assert set(results["llm"]["canaries"]) == {"1", "4", "16"}


@fortunes
def test_demo_setting_same_seed_same_weights(small_setting, tmp_path):
    again = build_demo_setting(SMALL, cache_dir=tmp_path / "other-cache")
    assert not again.cached
    for part in ("base", "target"):
        a = (getattr(small_setting, f"{part}_dir") / "model.safetensors").read_bytes()
        b = (getattr(again, f"{part}_dir") / "model.safetensors").read_bytes()
        assert a == b, part
    other = build_demo_setting(
        dataclasses.replace(SMALL, seed=4, pretrain_epochs=0, finetune_epochs=0), cache_dir=tmp_path
    )
    assert other.members != small_setting.members
