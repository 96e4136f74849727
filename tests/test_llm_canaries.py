"""Canary exposure against brute-force ranks, and the bag-of-words validity guard."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("transformers", reason="needs the llm extra (transformers)")

from memberscope.exceptions import InvalidInputError
from memberscope.llm.canaries import Canary, canary_exposure, make_canaries, sequence_logprob
from memberscope.llm.loading import load_language_model
from memberscope.llm.validity import bag_of_words_baseline
from tests.llm_helpers import make_tiny_lm, one_torch_thread

_one_thread = pytest.fixture(autouse=True, scope="module")(one_torch_thread)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return load_language_model(make_tiny_lm(tmp_path_factory.mktemp("tiny-canary"), seed=3))


def brute_force_logprob(lm, text):
    """Sum of log p over the text's tokens from one unpadded pass (independent of memberscope's batching)."""
    import torch

    ids = [lm.start_token_id, *lm.tokenizer(text, add_special_tokens=False)["input_ids"]]
    with torch.no_grad():
        logp = torch.log_softmax(lm.model(input_ids=torch.tensor([ids])).logits[0, :-1].double(), -1)
    return float(logp[torch.arange(len(ids) - 1), torch.tensor(ids[1:])].sum())


def test_make_canaries_distinct_and_seeded():
    a = make_canaries(repetitions=(1, 4, 16), per_repetition=3, n_digits=4, seed=7)
    assert [c.repetitions for c in a] == [1] * 3 + [4] * 3 + [16] * 3
    assert len({c.secret for c in a}) == 9
    assert all(len(c.secret.split()) == 4 and c.text.startswith("my PIN is ") for c in a)
    assert a == make_canaries(repetitions=(1, 4, 16), per_repetition=3, n_digits=4, seed=7)
    with pytest.raises(InvalidInputError, match="do not fit"):
        make_canaries(per_repetition=5, n_digits=1)


def test_exact_exposure_equals_brute_force_rank(tiny):
    n_digits = 2  # |R| = 100: enumerate every secret by hand
    canaries = make_canaries(repetitions=(1, 4), per_repetition=2, n_digits=n_digits, seed=1)
    report = canary_exposure(tiny, canaries, n_digits=n_digits, n_candidates=None, n_bootstrap=50)
    all_lp = {f"{i:02d}": brute_force_logprob(tiny, "my PIN is " + " ".join(f"{i:02d}")) for i in range(10**n_digits)}
    assert report["method"] == "exact" and report["space_size"] == 100
    for row in report["per_canary"]:
        own = all_lp[row["secret"].replace(" ", "")]
        rank = 1 + sum(v > own + 1e-6 for v in all_lp.values())
        assert row["rank"] == rank
        assert row["exposure"] == pytest.approx(math.log2(100) - math.log2(rank))
    for reps in ("1", "4"):
        block = report["by_repetitions"][reps]
        exps = [r["exposure"] for r in report["per_canary"] if str(r["repetitions"]) == reps]
        assert block["exposure_mean"] == pytest.approx(np.mean(exps))
        assert block["exposure_ci"][0] <= block["exposure_mean"] <= block["exposure_ci"][1]


def test_sampled_exposure_tracks_exact(tiny):
    n_digits = 3
    canaries = make_canaries(repetitions=(1,), per_repetition=6, n_digits=n_digits, seed=2)
    exact = canary_exposure(tiny, canaries, n_digits=n_digits, n_candidates=None, n_bootstrap=0)
    sampled = canary_exposure(tiny, canaries, n_digits=n_digits, n_candidates=400, n_bootstrap=0, seed=5)
    for e, s in zip(exact["per_canary"], sampled["per_canary"], strict=True):
        if e["rank"] >= 50:  # the sampling estimate is only meaningful away from the top of the ranking
            assert abs(e["exposure"] - s["exposure"]) < 1.0


def test_canary_above_every_candidate_is_extrapolated_from_skew_normal(tiny):
    from scipy.stats import skewnorm

    exact = canary_exposure(
        tiny,
        make_canaries(per_repetition=30, repetitions=(1,), n_digits=2),
        n_digits=2,
        n_candidates=None,
        n_bootstrap=0,
    )
    top = min(exact["per_canary"], key=lambda r: r["rank"])  # the most likely of 30 secrets
    canary = Canary(secret=top["secret"], repetitions=1)
    report = canary_exposure(tiny, [canary], n_digits=2, n_candidates=5, n_bootstrap=0, seed=3)
    row = report["per_canary"][0]
    assert row["method"] == "extrapolated", row  # seeded: no sampled candidate beats the top secret
    cands = report["n_candidates"]
    assert cands == 5
    rng = np.random.default_rng(3)
    pool = rng.choice(100, size=6, replace=False)
    idx = [i for i in pool if i != int(top["secret"].replace(" ", ""))][:5]
    lp = sequence_logprob(tiny, ["my PIN is " + " ".join(f"{i:02d}") for i in idx])
    expected = -math.log2(max(skewnorm(*skewnorm.fit(-lp)).cdf(-row["log_likelihood"]), 1 / 100))
    assert row["exposure"] == pytest.approx(min(expected, math.log2(100)))
    assert 0.0 <= row["exposure"] <= math.log2(100)


def test_validity_guard_null_and_shifted_split():
    rng = np.random.default_rng(0)
    words = ["alpha", "beta", "gamma", "delta", "omega", "sigma", "kappa", "theta"]
    texts = [" ".join(rng.choice(words, size=8)) for _ in range(200)]
    member = rng.permutation(np.r_[np.ones(100, bool), np.zeros(100, bool)])
    iid = bag_of_words_baseline(texts, member, n_bootstrap=200)
    assert iid["baseline_auc_ci"][0] <= 0.5 <= iid["baseline_auc_ci"][1]
    assert iid["warning"] is None
    shifted = [t + (" published 2024" if m else " published 2019") for t, m in zip(texts, member, strict=True)]
    shift = bag_of_words_baseline(shifted, member, n_bootstrap=200)
    assert shift["baseline_auc_ci"][0] > 0.5
    assert "distribution shift" in shift["warning"]
