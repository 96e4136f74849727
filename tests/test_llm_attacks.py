"""Token-level LLM attacks against direct per-text implementations on a tiny random GPT-2."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

pytest.importorskip("transformers", reason="needs the llm extra (transformers)")

from memberscope.exceptions import InvalidInputError, MissingDependencyError
from memberscope.llm import attacks as llm_attacks
from memberscope.llm.loading import load_language_model
from memberscope.llm.scoring import score_texts
from tests.llm_helpers import CORPUS, make_tiny_lm, one_torch_thread

TEXTS = [*CORPUS, "Short.", "ANOTHER Upper Case Sentence With Numbers 12345 and more words to make it long"]


_one_thread = pytest.fixture(autouse=True, scope="module")(one_torch_thread)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return load_language_model(make_tiny_lm(tmp_path_factory.mktemp("tiny")))


@pytest.fixture(scope="module")
def tiny_ref(tmp_path_factory):
    return load_language_model(make_tiny_lm(tmp_path_factory.mktemp("tiny-ref"), seed=1))


def direct_token_stats(lm, text):
    """Slow reference: one unpadded pass on one text; log p, mu, sigma per token in float64 with numpy."""
    import torch

    ids = [lm.start_token_id, *lm.tokenizer(text, add_special_tokens=False)["input_ids"]][: lm.max_positions]
    with torch.no_grad():
        logits = lm.model(input_ids=torch.tensor([ids])).logits[0, :-1].double().numpy()
    out_lp, out_mu, out_sd = [], [], []
    for t in range(len(ids) - 1):
        row = logits[t] - logits[t].max()
        logp = row - np.log(np.exp(row).sum())
        p = np.exp(logp)
        mu = float((p * logp).sum())
        out_lp.append(logp[ids[t + 1]])
        out_mu.append(mu)
        out_sd.append(np.sqrt((p * (logp - mu) ** 2).sum()))
    return np.array(out_lp), np.array(out_mu), np.array(out_sd)


def test_token_stats_match_direct_pass(tiny):
    stats = score_texts(tiny, TEXTS, batch_tokens=64)  # small batches: several padded batches
    for i, text in enumerate(TEXTS):
        lp, mu, sd = direct_token_stats(tiny, text)
        sl = stats.text(i)
        np.testing.assert_allclose(stats.logprobs[sl], lp, atol=1e-4)
        np.testing.assert_allclose(stats.mu[sl], mu, atol=1e-4)
        np.testing.assert_allclose(stats.sigma[sl], sd, atol=1e-4)


def direct_scored_text(lm, text):
    """The characters of ``text`` its scored tokens cover: the decoded first ``max_positions - 1`` text tokens."""
    ids = lm.tokenizer(text, add_special_tokens=False)["input_ids"]
    return text if len(ids) < lm.max_positions else lm.tokenizer.decode(ids[: lm.max_positions - 1])


def _direct_scores(lm, ref, text, k):
    lp, mu, sd = direct_token_stats(lm, text)
    scored = direct_scored_text(lm, text)
    lower_lp, _, _ = direct_token_stats(lm, scored.lower())
    ref_lp, _, _ = direct_token_stats(ref, scored)
    m = max(1, int(k * len(lp)))
    z = (lp - mu) / sd
    return {
        "loss": lp.mean(),
        "zlib": lp.mean() / len(zlib.compress(scored.encode())),
        "lowercase": lp.mean() - lower_lp.mean(),
        "min-k": np.sort(lp)[:m].mean(),
        "min-k++": np.sort(z)[:m].mean(),
        "reference": lp.mean() - ref_lp.mean(),
    }


def test_the_long_text_is_cut(tiny):
    """TEXTS[-1] is longer than the tiny model's 64 positions, so the reference below checks the cut path too."""
    assert len(tiny.tokenizer(TEXTS[-1], add_special_tokens=False)["input_ids"]) >= tiny.max_positions
    assert direct_scored_text(tiny, TEXTS[-1]) != TEXTS[-1]


@pytest.mark.parametrize("k", [0.2, 0.5])
def test_each_attack_matches_direct_implementation(tiny, tiny_ref, k):
    attacks = [llm_attacks.create(n, **({"k": k} if n.startswith("min-k") else {})) for n in llm_attacks.LLM_ATTACKS]
    scores = llm_attacks.score_attacks(tiny, TEXTS, attacks, reference=tiny_ref)
    for i, text in enumerate(TEXTS):
        expected = _direct_scores(tiny, tiny_ref, text, k)
        for name, value in expected.items():
            assert scores[name][i] == pytest.approx(value, abs=1e-4), (name, i)


def test_shared_pass_equals_separate_passes(tiny, tiny_ref):
    attacks = [llm_attacks.create(n) for n in llm_attacks.LLM_ATTACKS]
    shared = llm_attacks.score_attacks(tiny, TEXTS, attacks, reference=tiny_ref, shared=True)
    separate = llm_attacks.score_attacks(tiny, TEXTS, attacks, reference=tiny_ref, shared=False)
    assert set(shared) == set(separate) == set(llm_attacks.LLM_ATTACKS)
    for name in shared:
        np.testing.assert_allclose(shared[name], separate[name], rtol=1e-6, atol=1e-7)


def test_max_length_cuts_scored_tokens(tiny):
    stats = score_texts(tiny, TEXTS, max_length=5)
    assert stats.lengths.max() == 4
    full = score_texts(tiny, TEXTS)
    np.testing.assert_allclose(stats.logprobs[stats.text(0)], full.logprobs[full.text(0)][:4], atol=1e-5)


def test_bad_inputs(tiny, tmp_path):
    with pytest.raises(InvalidInputError, match="no token to score"):
        score_texts(tiny, ["fine text", ""])
    with pytest.raises(InvalidInputError, match="k must be"):
        llm_attacks.create("min-k", k=1.5)
    with pytest.raises(InvalidInputError, match="reference model"):
        llm_attacks.score_attacks(tiny, TEXTS, [llm_attacks.create("reference")])
    with pytest.raises(InvalidInputError, match="does not exist"):
        load_language_model(tmp_path / "nope")
    with pytest.raises(InvalidInputError, match=r"config\.json"):
        load_language_model(tmp_path)


def test_missing_transformers_names_the_extra(monkeypatch):
    import builtins

    from memberscope.llm.loading import require_transformers

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "transformers":
            raise ImportError("no transformers")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(MissingDependencyError, match=r"memberscope\[llm\]"):
        require_transformers()
