"""The evidence bundle (``report --format evidence`` / ``verify``), the frameworks section and the model card."""

import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from cli_helpers import run_cli
from report_fixtures import REDTEAM, llm_payload, write_audit_run

from memberscope.report.evidence import MANIFEST, verify_bundle, write_evidence
from memberscope.report.frameworks import FRAMEWORKS
from memberscope.report.model import build_report, load_run


def _digest(stdout: str) -> str:
    return re.search(r"manifest sha256: ([0-9a-f]{64})", stdout).group(1)


def _rewrite(bundle: Path, out: Path, change) -> Path:
    """A copy of ``bundle`` whose members pass through ``change(name, data) -> data or None (left out)``."""
    with zipfile.ZipFile(bundle) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = change(info.filename, src.read(info.filename))
            if data is not None:
                dst.writestr(info.filename, data)
    return out


def _flip(data: bytes, at: int | None = None) -> bytes:
    at = len(data) // 2 if at is None else at
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


@pytest.fixture
def synthetic(tmp_path):
    return write_audit_run(tmp_path / "run")


def test_the_bundle_verifies_and_fails_after_one_byte_of_any_listed_file_changes(synthetic, tmp_path, capsys):
    code, out, err = run_cli("report", str(synthetic), "--format", "evidence", capsys=capsys)
    assert code == 0, err
    bundle, digest = synthetic / "evidence.zip", _digest(out)
    with zipfile.ZipFile(bundle) as archive:
        names = archive.namelist()
        manifest = json.loads(archive.read(MANIFEST))
    listed = [f["name"] for f in manifest["files"]]
    assert set(names) == {*listed, MANIFEST}
    for name in ("results.json", "scores.csv", "report.html", "summary.md", "config.json", "seeds.json"):
        assert name in listed
    for name in ("environment.json", "inputs.json"):
        assert name in listed
    code, out, err = run_cli("verify", str(bundle), "--digest", digest, capsys=capsys)
    assert code == 0, err
    assert f"OK: {len(listed)} files" in out and digest in out

    for name in listed:  # one byte of each listed file, in a well-formed archive: verification fails naming it
        tampered = _rewrite(bundle, tmp_path / "t.zip", lambda n, d, name=name: _flip(d) if n == name else d)
        code, out, _ = run_cli("verify", str(tampered), capsys=capsys)
        assert code == 1 and "FAILED" in out and f"{name}: sha256" in out, (name, out)
    result = verify_bundle(bundle)
    assert result.ok and result.manifest_sha256 == digest


def test_raw_byte_flips_manifest_edits_and_added_or_removed_files_fail(synthetic, tmp_path, capsys):
    bundle = write_evidence(synthetic).path
    digest = verify_bundle(bundle).manifest_sha256
    raw = bytearray(bundle.read_bytes())
    with zipfile.ZipFile(bundle) as archive:
        info = archive.getinfo("results.json")
    raw[info.header_offset + 30 + len(info.filename) + 5] ^= 0xFF  # inside results.json's compressed bytes
    flipped = tmp_path / "flipped.zip"
    flipped.write_bytes(bytes(raw))
    result = verify_bundle(flipped)
    assert not result.ok and any(p.startswith("results.json") for p in result.problems)

    # A forger who also rewrites the manifest passes the internal check, but not the digest kept at writing time.
    def forge(name, data):
        return _flip(data) if name == "results.json" else data

    forged = _rewrite(bundle, tmp_path / "forged.zip", forge)
    with zipfile.ZipFile(forged) as archive:
        manifest = json.loads(archive.read(MANIFEST))
        import hashlib

        for entry in manifest["files"]:
            entry["sha256"] = hashlib.sha256(archive.read(entry["name"])).hexdigest()
    forged = _rewrite(
        forged, tmp_path / "forged2.zip", lambda n, d: json.dumps(manifest).encode() if n == MANIFEST else d
    )
    assert verify_bundle(forged).ok
    result = verify_bundle(forged, digest=digest)
    assert not result.ok and "manifest.json: sha256" in result.problems[0]
    code, _out, _ = run_cli("verify", str(forged), "--digest", digest, capsys=capsys)
    assert code == 1

    extra = _rewrite(bundle, tmp_path / "extra.zip", lambda n, d: d)
    with zipfile.ZipFile(extra, "a") as archive:
        archive.writestr("note.txt", b"added later")
    assert verify_bundle(extra).problems == ["note.txt: in the archive but not listed in the manifest"]
    removed = _rewrite(bundle, tmp_path / "removed.zip", lambda n, d: None if n == "scores.csv" else d)
    assert verify_bundle(removed).problems == ["scores.csv: listed in the manifest but missing from the archive"]


@pytest.mark.parametrize(
    ("make", "args", "message"),
    [
        (lambda p: p.write_bytes(b"not a zip"), (), "is not a zip archive"),
        (lambda p: zipfile.ZipFile(p, "w").writestr("a.txt", "x"), (), "holds no manifest.json"),
        (lambda p: p.write_bytes(b"x"), ("--digest", "abc"), "must be a SHA-256"),
        (lambda p: None, (), "does not exist"),
    ],
)
def test_verify_bad_input_exits_2(tmp_path, capsys, make, args, message):
    path = tmp_path / "bundle.zip"
    make(path)
    code, _, err = run_cli("verify", str(path), *args, capsys=capsys)
    assert code == 2 and message in err


@pytest.fixture(scope="module")
def user_run(tmp_path_factory):
    """An ``audit-model`` run from files (a saved Pipeline and two CSV tables), with its evidence written at once."""
    import joblib
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    base = tmp_path_factory.mktemp("user")
    frame = load_breast_cancer(as_frame=True).frame.iloc[:, [0, 1, 2, 3, 30]]
    frame.columns = ["radius", "texture", "perimeter", "area", "label"]
    order = np.random.default_rng(0).permutation(len(frame))
    members, nonmembers = frame.iloc[order[:200]], frame.iloc[order[200:400]]
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(members.drop(columns="label"), members["label"])
    joblib.dump(model, base / "model.joblib")
    members.to_csv(base / "members.csv", index=False)
    nonmembers.to_csv(base / "nonmembers.csv", index=False)
    return base


def test_audit_model_records_input_digests_and_the_bundle_checks_them(user_run, tmp_path, capsys):
    import hashlib

    members = tmp_path / "members.csv"
    members.write_bytes((user_run / "members.csv").read_bytes())
    out, bundle = tmp_path / "run", tmp_path / "evidence.zip"
    code, stdout, err = run_cli(
        "audit-model", "--model", str(user_run / "model.joblib"), "--members", str(members),
        "--nonmembers", str(user_run / "nonmembers.csv"), "-k", "2", "--attacks", "loss,rmia-offline",
        "--n-bootstrap", "50", "--out", str(out), "--no-progress", "--evidence", str(bundle), capsys=capsys,
    )  # fmt: skip
    assert code == 0, err
    digests = json.loads((out / "results.json").read_text())["inputs"]["file_digests"]
    assert digests["members"]["sha256"] == hashlib.sha256(members.read_bytes()).hexdigest()
    assert digests["model"]["bytes"] == (user_run / "model.joblib").stat().st_size
    with zipfile.ZipFile(bundle) as archive:
        inputs = {e["role"]: e for e in json.loads(archive.read("inputs.json"))}
        config = json.loads(archive.read("config.json"))
        seeds = json.loads(archive.read("seeds.json"))
        env = json.loads(archive.read("environment.json"))
    assert inputs["members"]["sha256"] == digests["members"]["sha256"]
    assert inputs["members"]["status"] == "matches the digest recorded at the run"
    assert config["reference_models"] == 2 and seeds["seed"] == 0 and len(seeds["references"]) == 2
    assert {"numpy", "scikit-learn", "torch"} <= set(env["libraries"])
    code, out_text, _ = run_cli("verify", str(bundle), "--check-inputs", "--digest", _digest(stdout), capsys=capsys)
    assert code == 0, out_text

    members.write_bytes(members.read_bytes() + b"\n")  # the data changed after the audit
    result = verify_bundle(bundle, check_inputs=True)
    assert not result.ok and any("members" in p and "sha256 differs" in p for p in result.problems)
    assert verify_bundle(bundle).ok  # the bundle itself is intact
    later = write_evidence(out, out=tmp_path / "later.zip")
    assert [e["role"] for e in later.changed_inputs] == ["members"]
    code, _, err = run_cli("report", str(out), "--format", "evidence", "--out", str(tmp_path / "l2.zip"), capsys=capsys)
    assert code == 0 and "CHANGED since the run" in err


def test_include_digests_extra_files(synthetic, tmp_path, capsys):
    extra = tmp_path / "weights.bin"
    extra.write_bytes(b"\x00" * 100)
    bundle = write_evidence(synthetic, include=[extra])
    assert [(e["role"], e["bytes"]) for e in bundle.inputs] == [("included", 100)]
    code, _, err = run_cli(
        "report", str(synthetic), "--format", "evidence", "--include", str(tmp_path / "no"), capsys=capsys
    )
    assert code == 2 and "--include" in err
    code, _, err = run_cli("report", str(synthetic), "--format", "html", "--include", str(extra), capsys=capsys)
    assert code == 2 and "--format evidence only" in err


# ------------------------------------------------------------------------------------------------ frameworks


ITEMS = ("AML.T0024.000", "ML04:2023", "LLM02:2025", "Article 10", "Article 15", "Article 35")


def test_the_frameworks_section_is_in_html_and_markdown_with_sources(synthetic, capsys):
    assert run_cli("report", str(synthetic), capsys=capsys)[0] == 0
    assert run_cli("report", str(synthetic), "--format", "md", capsys=capsys)[0] == 0
    html, md = (synthetic / "report.html").read_text(), (synthetic / "summary.md").read_text()
    model = build_report(*load_run(synthetic)[:1])
    assert [f.item.split()[0] for f in model.frameworks] == [f.item.split()[0] for f in FRAMEWORKS]
    for item in ITEMS:
        assert item in html and item in md
    for source in (
        "MITRE ATLAS",
        "OWASP",
        "Regulation (EU) 2024/1689",
        "Regulation (EU) 2016/679",
        "EDPB Opinion 28/2024",
    ):
        assert source in html and source in md
    assert "not a compliance determination" in html and "not a compliance determination" in md
    for f in model.frameworks:  # every row says what was measured, what was not, and what to do next
        assert f.measured and f.not_measured and f.next_steps
        assert "rmia-online" in f.measured and "leakage is measurable" in f.measured
    assert "<details>" in md


def test_an_inconclusive_audit_is_never_worded_as_safe(tmp_path):
    from memberscope.metrics import evaluate
    from memberscope.results import AttackResult, Results

    rng = np.random.default_rng(0)
    member = np.r_[np.ones(300), np.zeros(300)].astype(bool)
    results = Results(
        attacks={
            "loss": AttackResult(metrics=evaluate(member, rng.normal(size=600), fprs=(0.1, 0.01), n_bootstrap=100))
        }
    )
    results.game.n_members = results.game.n_nonmembers = 300
    rows = build_report(results).frameworks
    for row in rows:
        assert "NOT evidence that the model does not leak" in row.measured
        assert any("Do not read this as 'safe'" in s for s in row.next_steps)
        if row.item.startswith(("AML", "ML04", "Article")):
            assert any("reference models" in s and "understate" in s for s in row.not_measured)


def test_frameworks_render_for_every_kind_of_run(tmp_path):
    from memberscope.results import Results

    for payload in (REDTEAM, llm_payload()):
        model = build_report(Results.from_dict(json.loads(json.dumps(payload))))
        assert len(model.frameworks) == len(FRAMEWORKS)
    llm_row = next(f for f in build_report(Results.from_dict(llm_payload())).frameworks if f.item.startswith("LLM02"))
    assert "regurgitation" in llm_row.not_measured[0] and "canaries" in llm_row.measured


# ------------------------------------------------------------------------------------------------ model card


def test_model_card_front_matter_holds_the_model_index(synthetic, capsys):
    code, _out, err = run_cli(
        "report", str(synthetic), "--format", "model-card", "--model-name", "clinic-v2", capsys=capsys
    )
    assert code == 0, err
    text = (synthetic / "model_card.md").read_text()
    front = yaml.safe_load(text.split("---\n")[1])
    results = json.loads((synthetic / "results.json").read_text())
    (entry,) = front["model-index"]
    assert entry["name"] == "clinic-v2"
    metrics = {(m["type"], m.get("config")): m for m in entry["results"][0]["metrics"]}
    best = "rmia-online"
    assert metrics[("membership-inference-auc", None)]["value"] == pytest.approx(
        results["attacks"][best]["auc"], abs=1e-4
    )
    tpr = metrics[("membership-inference-tpr", "fpr=0.01")]
    assert tpr["value"] == pytest.approx(results["attacks"][best]["tpr_at_fpr"]["0.01"], abs=1e-4)
    assert tpr["args"]["attack"] == best and len(tpr["args"]["ci95"]) == 2
    assert ("empirical-epsilon-lower-bound", None) in metrics
    assert "## Privacy: membership inference" in text and "ML04:2023" in text
    header = "| attack | AUC (95% CI) | TPR @ 1.0% FPR (95% CI) | ε lower bound |"
    assert f"{header}\n|---|---|---|---|\n| `rmia-online`" in text

    from huggingface_hub import ModelCard

    card = ModelCard.load(synthetic / "model_card.md")
    assert card.data.model_name == "clinic-v2"
    assert {r.metric_type for r in card.data.eval_results} == {
        "membership-inference-auc",
        "membership-inference-tpr",
        "empirical-epsilon-lower-bound",
    }


def test_merging_into_a_hugging_face_card_keeps_its_content_and_replaces_ours(synthetic, tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text(
        "---\nlicense: apache-2.0\ntags:\n- tabular\nmodel-index:\n- name: clinic\n  results:\n  - task:\n"
        "      type: tabular-classification\n    dataset:\n      type: clinic-data\n      name: Clinic\n    metrics:\n"
        "    - type: accuracy\n      value: 0.91\n---\n\n# Clinic model\n\nPredicts diagnoses.\n"
    )
    for _ in range(2):  # twice: the second merge replaces the first, it does not add to it
        code, out, err = run_cli(
            "report", str(synthetic), "--format", "model-card", "--merge-into", str(readme), capsys=capsys
        )
        assert code == 0 and "merged into" in out, err
    text = readme.read_text()
    assert text.count("## Privacy: membership inference") == 1 and "Predicts diagnoses." in text
    front = yaml.safe_load(text.split("---\n")[1])
    assert front["license"] == "apache-2.0" and "tabular" in front["tags"] and "membership-inference" in front["tags"]
    types = [m["type"] for r in front["model-index"][0]["results"] for m in r["metrics"]]
    assert types.count("accuracy") == 1 and types.count("membership-inference-auc") == 1
    assert front["model-index"][0]["name"] == "clinic"
    code, _, err = run_cli(
        "report", str(synthetic), "--format", "model-card", "--merge-into", str(tmp_path / "x.md"), capsys=capsys
    )
    assert code == 2 and "does not exist" in err
