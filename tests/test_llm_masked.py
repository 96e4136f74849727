"""Masked LMs: pseudo-log-likelihood against a one-mask-at-a-time reference, the loading guards (heads named,
fresh weights refused, tokenizer files), and the small masked demo: the fine-tuned BERT leaks, its base does not."""

from __future__ import annotations

import json
import os
import zlib

import numpy as np
import pytest

pytest.importorskip("transformers", reason="needs the llm extra (transformers)")

from memberscope.exceptions import InvalidInputError
from memberscope.llm import attacks as llm_attacks
from memberscope.llm.audit import audit_llm
from memberscope.llm.demo_setting import DEFAULT_FORTUNES_DIR
from memberscope.llm.loading import describe_architecture, load_language_model
from memberscope.llm.scoring import score_texts
from tests.cli_helpers import run_cli
from tests.llm_helpers import CORPUS, make_tiny_bert, make_tiny_lm, one_torch_thread, small_setting

_one_thread = pytest.fixture(autouse=True, scope="module")(one_torch_thread)

fortunes = pytest.mark.skipif(
    not os.path.isdir(os.environ.get("MEMBERSCOPE_FORTUNES_DIR", DEFAULT_FORTUNES_DIR)),
    reason="Debian package 'fortunes' not installed (scripts/setup.sh installs it)",
)
TEXTS = [*CORPUS, "Short.", "x"]


@pytest.fixture(scope="module")
def mlm_dir(tmp_path_factory):
    return make_tiny_bert(tmp_path_factory.mktemp("tiny-mlm"))


@pytest.fixture(scope="module")
def mlm(mlm_dir):
    return load_language_model(mlm_dir)


def direct_pll(lm, text):
    """Slow reference: ``[CLS] text [SEP]``; for each text token, one unbatched pass with that token masked."""
    import torch

    tok = lm.tokenizer
    ids = [tok.cls_token_id, *tok(text, add_special_tokens=False)["input_ids"], tok.sep_token_id]
    lp, mu, sd = [], [], []
    for t in range(1, len(ids) - 1):
        masked = list(ids)
        masked[t] = tok.mask_token_id
        with torch.no_grad():
            logits = lm.model(input_ids=torch.tensor([masked])).logits[0, t].double().numpy()
        row = logits - logits.max()
        logp = row - np.log(np.exp(row).sum())
        p = np.exp(logp)
        m = float((p * logp).sum())
        lp.append(logp[ids[t]])
        mu.append(m)
        sd.append(np.sqrt((p * (logp - m) ** 2).sum()))
    return np.array(lp), np.array(mu), np.array(sd)


def test_pll_matches_one_mask_at_a_time(mlm):
    assert mlm.kind == "masked" and mlm.architecture == "BertForMaskedLM"
    stats = score_texts(mlm, TEXTS, batch_tokens=50)  # tiny batches: a text's masked copies span several
    assert stats.scored_texts == TEXTS and not stats.truncated.any()
    for i, text in enumerate(TEXTS):
        lp, mu, sd = direct_pll(mlm, text)
        sl = stats.text(i)
        np.testing.assert_allclose(stats.logprobs[sl], lp, atol=1e-4)
        np.testing.assert_allclose(stats.mu[sl], mu, atol=1e-4)
        np.testing.assert_allclose(stats.sigma[sl], sd, atol=1e-4)
    big = score_texts(mlm, TEXTS)  # one batch: same numbers
    np.testing.assert_allclose(big.logprobs, stats.logprobs, atol=1e-5)


def test_attacks_on_pll_match_direct(mlm):
    k = 0.3
    names = ["loss", "zlib", "min-k", "min-k++", "lowercase"]
    attacks = [llm_attacks.create(n, **({"k": k} if n.startswith("min-k") else {})) for n in names]
    scores = llm_attacks.score_attacks(mlm, TEXTS, attacks)
    for i, text in enumerate(TEXTS):
        lp, mu, sd = direct_pll(mlm, text)
        lower, _, _ = direct_pll(mlm, text.lower())
        m = max(1, int(k * len(lp)))
        expected = {
            "loss": lp.mean(),
            "zlib": lp.mean() / len(zlib.compress(text.encode())),
            "min-k": np.sort(lp)[:m].mean(),
            "min-k++": np.sort((lp - mu) / sd)[:m].mean(),
            "lowercase": lp.mean() - lower.mean(),
        }
        for name, value in expected.items():
            assert scores[name][i] == pytest.approx(value, abs=1e-4), (name, i)


def test_masked_truncation_keeps_the_frame(mlm):
    long = " ".join(CORPUS)
    stats = score_texts(mlm, [long], max_length=10)  # [CLS] + 8 text tokens + [SEP]
    assert stats.lengths.tolist() == [8] and stats.truncated.tolist() == [True] and stats.max_length == 10
    ids = mlm.tokenizer(long, add_special_tokens=False)["input_ids"]
    assert stats.scored_texts[0] == mlm.tokenizer.decode(ids[:8])


@pytest.mark.parametrize(
    ("head", "words"),
    [
        ("BertForSequenceClassification", "a text classifier"),
        ("BertForTokenClassification", "a token classifier"),
        ("BertForQuestionAnswering", "an extractive question-answering model"),
        ("BertModel", "a bare encoder or decoder"),
    ],
)
def test_non_lm_heads_are_refused_by_name(head, words, tmp_path):
    folder = make_tiny_bert(tmp_path / head, head=head)
    with pytest.raises(InvalidInputError, match=f"holds a {head} \\({words}.*not a language model"):
        load_language_model(folder)


def test_kind_from_config():
    assert describe_architecture({"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2"})[0] == "causal"
    assert describe_architecture({"architectures": ["RobertaForMaskedLM"], "model_type": "roberta"})[0] == "masked"
    assert describe_architecture({"architectures": ["BertForPreTraining"], "model_type": "bert"})[0] == "masked"
    assert describe_architecture({"model_type": "bert"})[:2] == ("masked", "BertForMaskedLM")
    assert describe_architecture({"model_type": "bert", "is_decoder": True})[:2] == ("causal", "BertLMHeadModel")
    assert describe_architecture({"model_type": "gpt2"})[:2] == ("causal", "GPT2LMHeadModel")
    assert describe_architecture({"architectures": ["MyOwnForCausalLM"], "model_type": "custom"})[0] == "causal"
    kind, _, words = describe_architecture({"architectures": ["T5ForConditionalGeneration"], "model_type": "t5"})
    assert kind is None and "encoder-decoder" in words


def test_pretraining_heads_load_as_a_masked_lm_and_the_unused_head_is_reported(tmp_path):
    lm = load_language_model(make_tiny_bert(tmp_path / "pt", head="BertForPreTraining"))
    assert lm.kind == "masked" and any("cls.seq_relationship.weight | UNEXPECTED" in w for w in lm.load_warnings)


def test_weights_initialised_afresh_are_an_error(tmp_path):
    """A bare BERT whose config claims a masked-LM head: loading would invent the head, so it is refused."""
    folder = make_tiny_bert(tmp_path / "bare", head="BertModel")
    config = json.loads((folder / "config.json").read_text())
    config["architectures"] = ["BertForMaskedLM"]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(InvalidInputError, match=r"initialise \d+ weights at random \(cls\.predictions"):
        load_language_model(folder)


def test_tokenizer_files(tmp_path, mlm_dir):
    bare = make_tiny_lm(tmp_path / "model")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (bare / name).unlink(missing_ok=True)
    with pytest.raises(InvalidInputError, match=r"has no tokenizer files.*--tokenizer PATH"):
        load_language_model(bare)
    tok_dir = make_tiny_lm(tmp_path / "tok")
    lm = load_language_model(bare, tokenizer=tok_dir)
    n_tokens = len(lm.tokenizer("hello there", add_special_tokens=False)["input_ids"])
    assert lm.tokenizer_path == str(tok_dir) and score_texts(lm, ["hello there"]).lengths.tolist() == [n_tokens]
    with pytest.raises(InvalidInputError, match=r"--tokenizer .* has no tokenizer files"):
        load_language_model(bare, tokenizer=tmp_path)
    # A 300-token tokenizer on a model with a 100-token vocabulary would index past its embeddings.
    from transformers import GPT2Config, GPT2LMHeadModel

    GPT2LMHeadModel(GPT2Config(vocab_size=100, n_positions=64, n_embd=16, n_layer=1, n_head=2)).save_pretrained(
        str(tmp_path / "small")
    )
    with pytest.raises(InvalidInputError, match=r"tokenizer .* has 300 tokens but the model's vocabulary has 100"):
        load_language_model(tmp_path / "small", tokenizer=tok_dir)


def test_llm_audit_cli_names_the_classifier_head(tmp_path, capsys):
    folder = make_tiny_bert(tmp_path / "clf", head="BertForSequenceClassification")
    members = tmp_path / "m.txt"
    members.write_text("\n".join(CORPUS[:3]) + "\n")
    code, _, stderr = run_cli(
        "llm-audit", "--model", str(folder), "--members", str(members), "--nonmembers", str(members),
        "--out", str(tmp_path / "o"), "--no-report", capsys=capsys,
    )  # fmt: skip
    assert code == 2 and "BertForSequenceClassification (a text classifier)" in stderr
    assert "audit it as a classifier" in stderr and "Traceback" not in stderr


@fortunes
def test_finetuned_masked_lm_leaks_and_its_base_is_null(tmp_path_factory):
    s = small_setting(tmp_path_factory, "bert")
    kwargs = dict(
        members=s.members,
        nonmembers=s.nonmembers,
        max_length=s.config.context,
        n_bootstrap=300,
        seed=1,
        attacks=["loss", "zlib", "min-k", "min-k++"],
        validity=False,
    )
    target = audit_llm(model=s.target_dir, **kwargs).results
    assert target["llm"]["model_kind"] == "masked" and target["llm"]["architecture"] == "BertForMaskedLM"
    assert "pseudo-log-likelihood" in target["llm"]["scoring"]
    for name in ("loss", "min-k", "min-k++"):
        assert target["attacks"][name]["auc_ci"][0] > 0.5, (name, target["attacks"][name]["auc_ci"])
    base = audit_llm(model=s.base_dir, **kwargs).results
    for name, entry in base["attacks"].items():
        assert entry["auc_ci"][0] <= 0.5 <= entry["auc_ci"][1], (name, entry["auc"], entry["auc_ci"])


@fortunes
def test_llm_demo_cli_builds_and_audits_the_bert_setting(tmp_path_factory, monkeypatch, tmp_path, capsys):
    import dataclasses

    from memberscope.llm import demo_setting
    from tests.llm_helpers import small_config

    s = small_setting(tmp_path_factory, "bert")
    small = small_config("bert")
    monkeypatch.setattr(  # the default setting takes minutes to build; run on the small one, cached
        demo_setting, "DemoConfig", lambda seed, architecture="gpt2": dataclasses.replace(small, seed=seed)
    )
    code, stdout, stderr = run_cli(
        "llm-demo", "--architecture", "bert", "--out", str(tmp_path / "demo"), "--seed", "3",
        "--cache-dir", str(s.base_dir.parent.parent.parent), "--n-bootstrap", "50", "--no-report", capsys=capsys,
    )  # fmt: skip
    assert code == 0, stderr
    assert "demo models from cache" in stdout and "canary exposure" in stdout
    results = json.loads((tmp_path / "demo" / "results.json").read_text())
    assert results["llm"]["model_kind"] == "masked" and results["llm"]["reference_model"] == str(s.base_dir)
    assert results["attacks"]["reference"]["auc_ci"][0] > 0.5
    code, _, stderr = run_cli("llm-demo", "--architecture", "t5", "--out", str(tmp_path / "x"), capsys=capsys)
    assert code == 2 and "unknown demo architecture 't5'" in stderr
