"""Dataset inference (Maini et al. 2024): the test against a closed form, its false-positive rate under the null,
and on the small demo setting: the fine-tuned model is caught with the documented number of suspect texts, and
the base model (which never saw them) gives uniform enough p-values over 50 seeded splits."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from scipy import stats

pytest.importorskip("transformers", reason="needs the llm extra (transformers)")

from memberscope.exceptions import InvalidInputError
from memberscope.llm.dataset_inference import (
    DEFAULT_FEATURES,
    MIN_TEXTS,
    RECOMMENDED_SUSPECT_TEXTS,
    aggregate_and_test,
    dataset_inference,
    parse_feature,
    text_features,
)
from memberscope.llm.demo_setting import DEFAULT_FORTUNES_DIR
from memberscope.llm.loading import load_language_model
from tests.cli_helpers import run_cli
from tests.llm_helpers import one_torch_thread, small_setting

_one_thread = pytest.fixture(autouse=True, scope="module")(one_torch_thread)

fortunes = pytest.mark.skipif(
    not os.path.isdir(os.environ.get("MEMBERSCOPE_FORTUNES_DIR", DEFAULT_FORTUNES_DIR)),
    reason="Debian package 'fortunes' not installed (scripts/setup.sh installs it)",
)


def _gaussian(rng, n, shift=0.0, f=5):
    cov = 0.5 * np.eye(f) + 0.5  # correlated features, as attack scores are
    return rng.multivariate_normal(np.full(f, shift), cov, size=n)


def test_welch_t_matches_the_closed_form_on_the_held_out_half():
    rng = np.random.default_rng(0)
    S, V = _gaussian(rng, 40, shift=0.3), _gaussian(rng, 50)
    out = aggregate_and_test(S, V, seed=4)
    split = out["split"]
    assert sorted(split["fit_suspect"] + split["test_suspect"]) == list(range(40))
    assert sorted(split["fit_validation"] + split["test_validation"]) == list(range(50))
    assert len(split["fit_suspect"]) == 20 and len(split["test_validation"]) == 25
    a = out["scores"]["suspect"][split["test_suspect"]]
    b = out["scores"]["validation"][split["test_validation"]]
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    t = (a.mean() - b.mean()) / np.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    assert out["statistic"] == pytest.approx(t, rel=1e-10) and out["df"] == pytest.approx(df, rel=1e-10)
    assert out["p_value"] == pytest.approx(stats.t.sf(t, df), rel=1e-9)
    same = aggregate_and_test(S, V, seed=4)
    assert same["p_value"] == out["p_value"] and same["split"] == split
    assert aggregate_and_test(S, V, seed=5)["split"] != split


def test_null_p_values_are_uniform_and_a_shift_is_found():
    rng = np.random.default_rng(1)
    null = np.array([aggregate_and_test(_gaussian(rng, 30), _gaussian(rng, 30), seed=s)["p_value"] for s in range(200)])
    assert 0.02 <= np.mean(null < 0.05) <= 0.09
    assert stats.kstest(null, "uniform").pvalue > 0.01
    shifted = [aggregate_and_test(_gaussian(rng, 30, 1.2), _gaussian(rng, 30), seed=s)["p_value"] for s in range(20)]
    assert np.mean(np.array(shifted) < 0.05) > 0.8


def test_bad_inputs():
    rng = np.random.default_rng(2)
    with pytest.raises(InvalidInputError, match=f"needs at least {MIN_TEXTS} per set"):
        aggregate_and_test(_gaussian(rng, MIN_TEXTS - 1), _gaussian(rng, 30))
    with pytest.raises(InvalidInputError, match="same columns"):
        aggregate_and_test(_gaussian(rng, 20, f=3), _gaussian(rng, 20, f=4))
    with pytest.raises(InvalidInputError, match="alpha"):
        aggregate_and_test(_gaussian(rng, 20), _gaussian(rng, 20), alpha=1.5)
    assert parse_feature("min-k@0.1").params() == {"k": 0.1} and parse_feature("loss").name == "loss"
    with pytest.raises(InvalidInputError, match="NAME@K"):
        parse_feature("min-k@lots")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return small_setting(tmp_path_factory)


@fortunes
def test_finetuned_demo_model_is_caught_with_the_documented_number_of_texts(demo):
    n = RECOMMENDED_SUSPECT_TEXTS
    assert n <= len(demo.members)
    result = dataset_inference(
        model=demo.target_dir,
        suspect=demo.members[:n],
        validation=demo.nonmembers[:n],
        max_length=demo.config.context,
        n_bootstrap=200,
    )
    r = result.results
    assert r["kind"] == "dataset-inference" and r["p_value"] < 0.01, r["p_value"]
    assert r["test"]["significant"] and "training data" in r["verdict"]
    assert r["counts"]["n_suspect"] == n and r["features"] == list(DEFAULT_FEATURES)
    assert not [w for w in r["warnings"] if w.startswith("only")]  # the documented number: no power warning
    again = dataset_inference(
        model=demo.target_dir, suspect=demo.members[:n], validation=demo.nonmembers[:n],
        max_length=demo.config.context, validity=False,
    ).results  # fmt: skip
    assert again["p_value"] == r["p_value"]  # same seed, same split, same p


@fortunes
def test_base_model_false_positive_rate_over_50_seeded_splits(demo):
    """The base model never saw any of the pool: any split of it into suspect and validation is a null case.
    Features are scored once; each seed draws a new suspect/validation partition and new halves."""
    texts = demo.members + demo.nonmembers
    n = RECOMMENDED_SUSPECT_TEXTS
    X, _, _ = text_features(load_language_model(demo.base_dir), texts, max_length=demo.config.context)
    p_values = []
    for seed in range(50):
        order = np.random.default_rng(seed).permutation(len(texts))
        p_values.append(aggregate_and_test(X[order[:n]], X[order[n : 2 * n]], seed=seed)["p_value"])
    p_values = np.array(p_values)
    assert np.mean(p_values < 0.05) <= 0.10, np.sort(p_values)[:8]
    assert stats.kstest(p_values, "uniform").pvalue > 0.001


@fortunes
def test_cli_writes_results_and_refuses_too_few_texts(demo, tmp_path, capsys):
    n = RECOMMENDED_SUSPECT_TEXTS
    (tmp_path / "suspect.txt").write_text("\n".join(demo.members[: n // 2]) + "\n")
    (tmp_path / "validation.jsonl").write_text("".join(json.dumps({"body": t}) + "\n" for t in demo.nonmembers[:n]))
    out = tmp_path / "di"
    code, stdout, stderr = run_cli(
        "dataset-inference", "--model", str(demo.target_dir), "--suspect", str(tmp_path / "suspect.txt"),
        "--validation", str(tmp_path / "validation.jsonl"), "--text-column", "body", "--out", str(out),
        "--features", "loss,zlib,min-k@0.2,min-k++@0.2", "--seed", "3", "--n-bootstrap", "100", capsys=capsys,
    )  # fmt: skip
    # --text-column applies to both files; a .txt file has no columns.
    assert code == 2 and "is plain text" in stderr
    (tmp_path / "suspect.jsonl").write_text("".join(json.dumps({"body": t}) + "\n" for t in demo.members[: n // 2]))
    code, stdout, stderr = run_cli(
        "dataset-inference", "--model", str(demo.target_dir), "--suspect", str(tmp_path / "suspect.jsonl"),
        "--validation", str(tmp_path / "validation.jsonl"), "--text-column", "body", "--out", str(out),
        "--features", "loss,zlib,min-k@0.2,min-k++@0.2", "--seed", "3", "--n-bootstrap", "100", capsys=capsys,
    )  # fmt: skip
    assert code == 0, stderr
    r = json.loads((out / "results.json").read_text())
    assert r["kind"] == "dataset-inference" and r["seed"] == 3
    assert r["features"] == ["loss", "zlib", "min-k@0.2", "min-k++@0.2"]
    assert set(r) >= {"p_value", "statistic", "test", "counts", "split", "warnings", "verdict", "validity"}
    assert r["counts"]["n_suspect"] == n // 2 and r["counts"]["n_validation"] == n
    assert r["counts"]["test"]["suspect"] + r["counts"]["fit"]["suspect"] == n // 2
    assert [w for w in r["warnings"] if w.startswith(f"only {n // 2} suspect texts")]
    assert "p = " in stdout and (out / "features.csv").is_file()
    import html

    assert r["verdict"][1:] in html.unescape(
        (out / "report.html").read_text()
    )  # written by default, like every command's
    (tmp_path / "few.txt").write_text("\n".join(demo.members[: MIN_TEXTS - 1]) + "\n")
    code, _, stderr = run_cli(
        "dataset-inference", "--model", str(demo.target_dir), "--suspect", str(tmp_path / "few.txt"),
        "--validation", str(tmp_path / "few.txt"), "--out", str(tmp_path / "few"), capsys=capsys,
    )  # fmt: skip
    assert code == 2 and f"needs at least {MIN_TEXTS} per set" in stderr and "Traceback" not in stderr


def test_a_large_p_value_is_reported_as_inconclusive_never_as_unused():
    from memberscope.llm.dataset_inference import WEAK_LEAK_SUSPECT_TEXTS, _verdict

    calm = _verdict({"p_value": 0.4, "alpha": 0.05, "significant": False}, 25, shifted=False)
    assert calm.startswith("inconclusive: p = 0.4 >= 0.05") and "does NOT show that it was not used" in calm
    assert f"needed {WEAK_LEAK_SUSPECT_TEXTS}" in calm
    fired = _verdict({"p_value": 0.001, "alpha": 0.05, "significant": True}, 25, shifted=True)
    assert "in the training data" in fired and "may be a shift" in fired


@fortunes
def test_sets_that_differ_without_the_model_are_flagged(demo):
    """Suspect texts marked differently from the validation texts: the bag-of-words guard sees it, loudly."""
    r = dataset_inference(
        model=demo.target_dir, suspect=[t + " -- from the 2024 edition" for t in demo.nonmembers[:20]],
        validation=demo.nonmembers[20:40], features=["loss", "zlib"], max_length=demo.config.context,
        n_bootstrap=200,
    ).results  # fmt: skip
    assert r["validity"]["baseline_auc_ci"][0] > 0.5
    assert [w for w in r["warnings"] if "separates suspect from validation texts" in w and "not training" in w]


@fortunes
def test_report_renders_a_dataset_inference_run(demo, tmp_path, capsys):
    """`memberscope report DIR` (HTML and Markdown) shows the verdict, p-value, statistic, counts, the recommended
    number of texts and the warnings; an inconclusive run says so, and a validity failure is an alarm."""
    from memberscope.llm.dataset_inference import WEAK_LEAK_SUSPECT_TEXTS, _verdict

    n = RECOMMENDED_SUSPECT_TEXTS
    result = dataset_inference(
        model=demo.target_dir, suspect=demo.members[: n // 2], validation=demo.nonmembers[:n],
        features=["loss", "zlib", "min-k@0.2"], max_length=demo.config.context, n_bootstrap=100,
    )  # fmt: skip
    out = tmp_path / "di"
    result.write(out)
    r = result.results
    assert run_cli("report", str(out), capsys=capsys)[0] == 0
    assert run_cli("report", str(out), "--format", "md", capsys=capsys)[0] == 0
    html, md = (out / "report.html").read_text(), (out / "summary.md").read_text()
    # The headline: the risk level, then the verdict (issue 18: one headline in every rendering).
    assert md.startswith("## memberscope dataset inference\n\n**Risk: ")
    assert f"{r['verdict'][:1].upper()}{r['verdict'][1:]}" in md.split("\n")[2]
    for text in (md, html):
        assert f"{r['p_value']:.3g}" in text and f"t = {r['statistic']:.3f}" in text
        assert f"{n // 2} suspect, {n} validation" in text and f"needed {WEAK_LEAK_SUSPECT_TEXTS}" in text
        assert f"at least {n} suspect texts" in text
        assert f"only {n // 2} suspect texts" in text  # the run's power warning
    assert "Aggregation weights" in html and "<td>min-k@0.2</td>" in html and "holds no attack metrics" not in html
    # An inconclusive result reads as inconclusive, with the advice to gather more texts.
    calm = {**r, "p_value": 0.41, "test": {**r["test"], "p_value": 0.41, "significant": False}}
    calm["verdict"] = _verdict(calm["test"], n // 2, shifted=False)
    calm["validity"] = {**r["validity"], "warning": "a bag-of-words classifier separates them"}
    (out / "results.json").write_text(json.dumps(calm))
    assert run_cli("report", str(out), "--format", "md", capsys=capsys)[0] == 0
    assert run_cli("report", str(out), capsys=capsys)[0] == 0
    md, html = (out / "summary.md").read_text(), (out / "report.html").read_text()
    assert "Inconclusive: p = 0.41" in md and "Inconclusive is not evidence that the set was unused" in md
    assert "**⚠ WARNING:** Dataset inference validity: a bag-of-words classifier separates them" in md
    assert "not training</h2>" in html and "not significant" in md
