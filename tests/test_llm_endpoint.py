"""LLM audits over HTTP: an OpenAI-compatible completions server on 127.0.0.1 (tests/llm_server.py, a script around
a tiny local GPT-2, started by the fixture and stopped after) gives the same loss, zlib, lowercase and Min-K% scores
as the local model; a custom server is read through JSON paths; Min-K%++ is refused or left out with a warning;
keys, budgets and failures behave like the red team's; and how answers are read, pinned with a mock transport."""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("transformers", reason="needs the llm extra (transformers)")
pytest.importorskip("httpx", reason="needs the redteam extra (httpx)")

import httpx

from memberscope.exceptions import InvalidInputError, ModelOutputError, TargetResponseError
from memberscope.llm import attacks as llm_attacks
from memberscope.llm.audit import audit_llm
from memberscope.llm.endpoint import EndpointLanguageModel
from memberscope.llm.loading import load_language_model
from tests.cli_helpers import run_cli
from tests.llm_helpers import CORPUS, make_tiny_lm, one_torch_thread

_one_thread = pytest.fixture(autouse=True, scope="module")(one_torch_thread)

SERVER = Path(__file__).with_name("llm_server.py")
ROOT = Path(__file__).resolve().parents[1]
MEMBERS = [*CORPUS[:4], "Early to bed and early to rise."]
NONMEMBERS = [*CORPUS[4:], "A penny saved is a penny earned.", "Fortune favours the brave, they say.", "Hi there"]
ATTACKS = ["loss", "zlib", "lowercase", "min-k"]


@contextlib.contextmanager
def llm_server(model_dir: Path, *args: str, timeout: float = 120.0):
    """``tests/llm_server.py`` on a free port of 127.0.0.1: yields its base URL; stopped on exit."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(
        [sys.executable, str(SERVER), "--model", str(model_dir), "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        ready, _, _ = select.select([proc.stdout], [], [], timeout)
        line = proc.stdout.readline() if ready else ""
        if not line.startswith("listening on "):
            proc.kill()
            raise RuntimeError(f"the LLM test server did not start: {line!r} {proc.stderr.read()[-2000:]}")
        yield line.split()[-1]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return make_tiny_lm(tmp_path_factory.mktemp("tiny-http-lm"), seed=2)


@pytest.fixture(scope="module")
def server(tiny_dir):
    with llm_server(tiny_dir) as url:
        yield url


def _audit(model, **kwargs):
    return audit_llm(model=model, members=MEMBERS, nonmembers=NONMEMBERS, n_bootstrap=50, validity=False, **kwargs)


def test_scores_over_http_equal_the_local_scores_on_the_same_model(tiny_dir, server):
    local = _audit(tiny_dir, attacks=ATTACKS)
    endpoint = EndpointLanguageModel(f"{server}/v1/completions", model_name="tiny", batch_size=3)
    remote = _audit(endpoint, attacks=ATTACKS)
    for name in ATTACKS:
        np.testing.assert_allclose(remote.scores[name], local.scores[name], rtol=1e-6, atol=1e-6, err_msg=name)
        assert remote.results.attacks[name].auc == pytest.approx(local.results.attacks[name].auc)
    # Token by token: the server prepends BOS, so every text token is scored, as locally.
    lm = load_language_model(tiny_dir)
    signals, _ = llm_attacks.compute_signals(lm, MEMBERS + NONMEMBERS, [llm_attacks.create("loss")])
    over_http = endpoint.token_stats(MEMBERS + NONMEMBERS)
    np.testing.assert_array_equal(over_http.offsets, signals.target.offsets)
    np.testing.assert_allclose(over_http.logprobs, signals.target.logprobs, rtol=1e-6, atol=1e-6)
    assert over_http.scored_texts == MEMBERS + NONMEMBERS
    # What the server returned is kept per text: its tokens (BOS first, unscored), log-probs and offsets.
    first = endpoint.returned[0]
    assert first["call"] == 1 and first["prompt"] == MEMBERS[0] and first["token_logprobs"][0] is None
    assert first["tokens"][0] == "<|endoftext|>" and "".join(first["tokens"][1:]) == MEMBERS[0]
    assert first["scored_from"] == 1 and len(first["text_offset"]) == len(first["tokens"])
    assert {r["call"] for r in endpoint.returned} == {1, 2, 3}  # texts, lowercased texts, then the direct pass
    llm = remote.results.sections["llm"]
    assert llm["model_kind"] == "endpoint" and llm["max_length"] is None and "server" in llm["scoring"]
    assert llm["endpoint"]["server_models"] == ["tiny"] and llm["endpoint"]["queries_spent"] == 2 * 10
    assert llm["endpoint"]["request_template"]["echo"] is True


def test_another_server_is_read_through_json_paths(tiny_dir, server):
    generic = EndpointLanguageModel(
        f"{server}/score", request_template={"texts": "$records"}, output_path="results", logprobs_path="logprobs"
    )
    local = _audit(tiny_dir, attacks=["loss", "min-k"])
    remote = _audit(generic, attacks=["loss", "min-k"])
    for name in ("loss", "min-k"):
        np.testing.assert_allclose(remote.scores[name], local.scores[name], rtol=1e-6, atol=1e-6)
    assert generic.returned[0]["tokens"] is None and generic.returned[0]["scored_from"] == 0


def test_max_tokens_1_cuts_the_generated_token_off_by_its_offset(tiny_dir, server):
    zero = EndpointLanguageModel(f"{server}/v1/completions").token_stats(MEMBERS)
    one = EndpointLanguageModel(f"{server}/v1/completions", max_tokens=1)
    stats = one.token_stats(MEMBERS)
    np.testing.assert_array_equal(stats.offsets, zero.offsets)
    np.testing.assert_allclose(stats.logprobs, zero.logprobs, rtol=1e-6, atol=1e-6)
    assert len(one.returned[0]["token_logprobs"]) == len(one.returned[0]["tokens"])  # the prompt's only


def test_llm_audit_cli_over_an_endpoint(server, tmp_path, capsys):
    (tmp_path / "m.txt").write_text("\n".join(MEMBERS) + "\n")
    (tmp_path / "n.txt").write_text("\n".join(NONMEMBERS) + "\n")
    common = ["--members", str(tmp_path / "m.txt"), "--nonmembers", str(tmp_path / "n.txt"), "--n-bootstrap", "50"]
    out = tmp_path / "out"
    code, _, stderr = run_cli(
        "llm-audit", "--endpoint", f"{server}/v1/completions", "--endpoint-model", "tiny", "--batch-size", "4",
        *common, "--out", str(out), capsys=capsys,
    )  # fmt: skip
    assert code == 0, stderr
    r = json.loads((out / "results.json").read_text())
    assert r["kind"] == "llm" and set(r["attacks"]) == {"loss", "zlib", "lowercase", "min-k"}
    assert any(
        "min-k++ needs the mean and spread of log p over the model's whole vocabulary" in w for w in r["warnings"]
    )
    assert r["llm"]["endpoint"]["tokens_file"] == "tokens.jsonl" and r["llm"]["endpoint"]["requests_sent"] == 6
    rows = [json.loads(line) for line in (out / "tokens.jsonl").read_text().splitlines()]
    assert len(rows) == 2 * (len(MEMBERS) + len(NONMEMBERS)) and rows[0]["token_logprobs"][0] is None
    assert f"{server}/v1/completions" in (out / "report.html").read_text()
    code, _, stderr = run_cli(
        "llm-audit", "--endpoint", f"{server}/v1/completions", "--attacks", "loss,min-k++", *common,
        "--out", str(tmp_path / "o2"), capsys=capsys,
    )  # fmt: skip
    assert code == 2 and "'min-k++' cannot run on" in stderr and "top_logprobs" in stderr
    code, _, stderr = run_cli(
        "llm-audit", "--model", f"{server}/v1/completions", *common, "--out", str(tmp_path / "o3"), capsys=capsys
    )
    assert code == 2 and "is a URL; audit an LLM API with --endpoint http://127.0.0.1" in stderr
    # A text longer than the served model's context: the server refuses it (as vLLM does), the endpoint failed.
    (tmp_path / "long.txt").write_text("\n".join([*MEMBERS, " ".join(CORPUS * 2)]) + "\n")
    code, _, stderr = run_cli(
        "llm-audit", "--endpoint", f"{server}/v1/completions", "--members", str(tmp_path / "long.txt"),
        "--nonmembers", str(tmp_path / "n.txt"), "--out", str(tmp_path / "o4"), capsys=capsys,
    )  # fmt: skip
    assert code == 3 and "400 Bad Request" in stderr and "maximum context length is 64 tokens" in stderr


def test_keys_budgets_and_failures_exit_3_and_keep_what_was_answered(tiny_dir, tmp_path, capsys, monkeypatch):
    (tmp_path / "m.txt").write_text("\n".join(MEMBERS) + "\n")
    (tmp_path / "n.txt").write_text("\n".join(NONMEMBERS) + "\n")
    with llm_server(tiny_dir, "--api-key", "sk-test", "--fail-after", "3") as url:
        args = ["llm-audit", "--endpoint", f"{url}/v1/completions", "--members", str(tmp_path / "m.txt"),
                "--nonmembers", str(tmp_path / "n.txt"), "--attacks", "loss", "--batch-size", "4"]  # fmt: skip
        code, _, stderr = run_cli(*args, "--out", str(tmp_path / "a"), capsys=capsys)
        assert code == 3 and "401" in stderr and "no API key was sent; pass --api-key-env VAR" in stderr
        monkeypatch.setenv("LLM_KEY", "sk-test")
        args += ["--api-key-env", "LLM_KEY"]
        code, _, stderr = run_cli(*args, "--query-budget", "5", "--out", str(tmp_path / "b"), capsys=capsys)
        assert code == 3 and "would exceed the query budget of 5" in stderr
        assert not (tmp_path / "b" / "tokens.jsonl").exists()  # refused before sending anything
        # 10 texts in requests of 4: the third request (the server's fourth, after the refused one) fails.
        code, _, stderr = run_cli(*args, "--max-retries", "0", "--out", str(tmp_path / "c"), capsys=capsys)
        assert code == 3 and "500" in stderr and "returned for 8 texts is in" in stderr
        rows = (tmp_path / "c" / "tokens.jsonl").read_text().splitlines()
        assert len(rows) == 8 and json.loads(rows[7])["prompt"] == NONMEMBERS[2]


# -- how answers are read (a mock transport stands in for the server) ------------------------------------


def _mock(choices_for):
    def handler(request):
        body = json.loads(request.content)
        return httpx.Response(200, json={"model": "m", "choices": choices_for(body["prompt"])})

    return httpx.MockTransport(handler)


def _choice(i, logprobs, offsets=None):
    return {"index": i, "logprobs": {"token_logprobs": logprobs, "tokens": ["t"] * len(logprobs),
                                     "text_offset": offsets or list(range(len(logprobs)))}}  # fmt: skip


def test_answers_are_put_back_in_prompt_order_and_leading_nulls_dropped():
    lm = EndpointLanguageModel(
        "http://x/v1/completions",
        transport=_mock(lambda prompts: [_choice(1, [None, -1.0, -3.0]), _choice(0, [None, None, -2.0], [0, 0, 3])]),
    )
    stats = lm.token_stats(["abcd", "efgh"])
    assert stats.lengths.tolist() == [1, 2] and stats.logprobs.tolist() == [-2.0, -1.0, -3.0]
    assert stats.scored_texts == ["d", "fgh"]  # from the first scored token's offset
    assert lm.architecture == "m"


@pytest.mark.parametrize(
    ("logprobs", "error", "message"),
    [
        ([None, -1.0, None], TargetResponseError, "token 2 has log-probability None after scored tokens"),
        ([None], InvalidInputError, "got no scored token"),
        ([None, 0.5], ModelOutputError, "expected a finite value <= 0"),
        ("oops", TargetResponseError, "is not a list"),
    ],
)
def test_malformed_answers_are_named(logprobs, error, message):
    lm = EndpointLanguageModel(
        "http://x/v1/completions",
        transport=_mock(lambda prompts: [{"index": 0, "logprobs": {"token_logprobs": logprobs}}]),
    )
    with pytest.raises(error, match=message):
        lm.token_stats(["ab"])


def test_endpoint_usage_errors():
    lm = EndpointLanguageModel("http://x/v1/completions", transport=_mock(lambda p: []))
    with pytest.raises(InvalidInputError, match="min-k\\+\\+ needs the mean and spread"):
        lm.token_stats(["ab"], vocab_stats=True)
    with pytest.raises(InvalidInputError, match="needs --logprobs-path"):
        EndpointLanguageModel("http://x/score", request_template={"texts": "$records"})
    with pytest.raises(InvalidInputError, match="need its --request-template"):
        EndpointLanguageModel("http://x/v1/completions", logprobs_path="lp")
    with pytest.raises(InvalidInputError, match="must start with http"):
        EndpointLanguageModel("localhost:8000")
    missing = EndpointLanguageModel(
        "http://x/v1/completions",
        max_tokens=1,
        transport=_mock(lambda p: [{"index": 0, "logprobs": {"token_logprobs": [None, -1.0]}}]),
    )
    with pytest.raises(TargetResponseError, match="must give token offsets"):
        missing.token_stats(["ab"])


def test_recon_and_attack_point_a_completions_url_to_llm_audit(tmp_path, capsys):
    # Both refuse before any request (nothing listens on port 9): numbers sent as a prompt would be scored as text.
    url = "http://127.0.0.1:9/v1/completions"
    code, _, stderr = run_cli("recon", url, "--n-features", "4", capsys=capsys)
    assert code == 2 and f"memberscope llm-audit --endpoint {url}" in " ".join(stderr.split())
    table = tmp_path / "records.csv"
    table.write_text("a,b,label\n0.1,0.2,0\n0.3,0.4,1\n")
    code, _, stderr = run_cli(
        "attack", "--target", f"{url}/", "--records", str(table), "--shadow-data", str(table),
        "--out", str(tmp_path / "out"), capsys=capsys,
    )  # fmt: skip
    assert code == 2 and "looks like an LLM completions API" in " ".join(stderr.split())


def test_dataset_inference_over_http_equals_the_local_run(tiny_dir, server, tmp_path, capsys):
    from memberscope.llm.dataset_inference import dataset_inference

    texts = [f"{CORPUS[i % len(CORPUS)]} No. {i}" for i in range(24)]
    sets = {"suspect": texts[::2], "validation": texts[1::2]}
    features = ["loss", "zlib", "lowercase", "min-k@0.2", "min-k@0.5"]
    local = dataset_inference(model=tiny_dir, **sets, features=features, n_bootstrap=50)
    endpoint = EndpointLanguageModel(f"{server}/v1/completions", batch_size=5)
    remote = dataset_inference(model=endpoint, **sets, features=features, n_bootstrap=50)
    np.testing.assert_allclose(remote.features, local.features, rtol=1e-6, atol=1e-6)
    assert remote.results["p_value"] == pytest.approx(local.results["p_value"], rel=1e-4)
    assert remote.results["model"]["kind"] == "endpoint" and remote.results["config"]["max_length"] is None
    assert remote.results["model"]["endpoint"]["queries_spent"] == 2 * len(texts)  # lowercase sends each again
    # The default features leave Min-K%++ out, saying why; asked for, it is refused.
    default = dataset_inference(model=EndpointLanguageModel(f"{server}/v1/completions"), **sets, n_bootstrap=50)
    assert "min-k@0.05" in default.results["features"]
    assert not [f for f in default.results["features"] if f.startswith("min-k++")]
    assert [w for w in default.results["warnings"] if "min-k++ needs" in w and "left out of the default set" in w]
    with pytest.raises(InvalidInputError, match=r"feature 'min-k\+\+@0.1' cannot be computed on http"):
        dataset_inference(model=endpoint, **sets, features=["loss", "min-k++@0.1"])
    # The CLI: --endpoint instead of --model, the server's tokens kept.
    for name, part in sets.items():
        (tmp_path / f"{name}.txt").write_text("\n".join(part) + "\n")
    out = tmp_path / "out"
    code, stdout, stderr = run_cli(
        "dataset-inference", "--endpoint", f"{server}/v1/completions", "--suspect", str(tmp_path / "suspect.txt"),
        "--validation", str(tmp_path / "validation.txt"), "--features", ",".join(features), "--n-bootstrap", "50",
        "--out", str(out), capsys=capsys,
    )  # fmt: skip
    assert code == 0, stderr
    assert "(endpoint LM)" in stdout and "p = " in stdout
    r = json.loads((out / "results.json").read_text())
    assert r["p_value"] == pytest.approx(local.results["p_value"], rel=1e-4)
    assert r["model"]["path"] == f"{server}/v1/completions" and r["model"]["endpoint"]["tokens_file"] == "tokens.jsonl"
    assert len((out / "tokens.jsonl").read_text().splitlines()) == 2 * len(texts)
    code, _, stderr = run_cli(
        "dataset-inference", "--endpoint", f"{server}/v1/completions", "--max-length", "32",
        "--suspect", str(tmp_path / "suspect.txt"), "--validation", str(tmp_path / "validation.txt"),
        "--out", str(tmp_path / "o2"), capsys=capsys,
    )  # fmt: skip
    assert code == 2 and "--max-length and --tokenizer apply to a local model" in " ".join(stderr.split())
