"""One-run ε lower bounds (Steinke, Nasr & Jagielski 2023): closed form, brute force, monotonicity, soundness."""

import math

import numpy as np
import pytest
from scipy.stats import beta as beta_dist

from memberscope.exceptions import InvalidInputError
from memberscope.privacy.empirical import one_run_audit, one_run_epsilon, one_run_p_value


def _p_value_brute_force(m, r, v, eps, delta):
    """The theorem's p-value by explicit sums of binomial probabilities (exact rational arithmetic)."""
    q = math.exp(eps) / (1 + math.exp(eps))
    pmf = [math.comb(r, j) * q**j * (1 - q) ** (r - j) for j in range(r + 1)]
    tail = sum(pmf[v:])
    alpha = max((sum(pmf[v - i : v]) / i for i in range(1, v + 1)), default=0.0)
    return min(tail + 2 * m * delta * alpha, 1.0)


@pytest.mark.parametrize(
    "m,r,v,eps,delta",
    [
        (10, 6, 5, 0.5, 0.0),
        (50, 20, 17, 1.0, 1e-3),
        (200, 40, 40, 2.0, 1e-4),
        (30, 30, 0, 0.3, 0.01),
        (8, 4, 2, 0, 0.1),
    ],
)
def test_p_value_matches_brute_force(m, r, v, eps, delta):
    assert one_run_p_value(m, r, v, eps, delta) == pytest.approx(_p_value_brute_force(m, r, v, eps, delta), rel=1e-9)


@pytest.mark.parametrize("r,v", [(20, 18), (200, 150), (1000, 560), (50, 50)])
def test_pure_dp_bound_is_logit_of_clopper_pearson(r, v):
    # δ = 0: P[Bin(r, p) >= v] = β solves to the one-sided Clopper–Pearson lower bound p = Beta⁻¹(β; v, r − v + 1).
    p = beta_dist.ppf(0.05, v, r - v + 1)
    assert one_run_epsilon(10_000, r, v, beta=0.05) == pytest.approx(math.log(p / (1 - p)), abs=1e-5)


def test_no_better_than_chance_gives_zero():
    assert one_run_epsilon(100, 40, 20) == 0.0 and one_run_epsilon(100, 40, 0) == 0.0


def test_monotone_in_correct_guesses_delta_canaries_and_confidence():
    by_v = [one_run_epsilon(1000, 100, v) for v in (60, 70, 80, 90, 100)]
    assert by_v == sorted(by_v) and by_v[0] > 0
    by_delta = [one_run_epsilon(1000, 100, 90, delta=d) for d in (0.0, 1e-6, 1e-4, 1e-3)]
    assert by_delta == sorted(by_delta, reverse=True) and by_delta[-1] < by_delta[0]
    by_m = [one_run_epsilon(m, 100, 90, delta=1e-4) for m in (100, 1000, 10_000)]
    assert by_m == sorted(by_m, reverse=True)
    by_beta = [one_run_epsilon(1000, 100, 90, beta=b) for b in (0.001, 0.01, 0.05, 0.2)]
    assert by_beta == sorted(by_beta)


def _canaries(rng, m):
    return rng.random(m) < 0.5


def test_never_above_the_epsilon_of_a_dp_mechanism():
    # Laplace mechanism on each canary's inclusion bit: score = ±1 + Lap(2/ε) is ε-DP per canary.
    for eps in (0.5, 1.0, 2.0, 4.0):
        for seed in range(10):
            rng = np.random.default_rng(seed)
            member = _canaries(rng, 1000)
            score = np.where(member, 1.0, -1.0) + rng.laplace(scale=2 / eps, size=member.size)
            assert one_run_audit(member, score, seed=seed).epsilon <= eps
    # Randomized response is the tightest ε-DP mechanism: the bound exceeds ε in at most β of the runs.
    eps, exceed, runs = 1.0, 0, 200
    for seed in range(runs):
        rng = np.random.default_rng(1000 + seed)
        member = _canaries(rng, 400)
        keep = rng.random(member.size) < math.exp(eps) / (1 + math.exp(eps))
        exceed += one_run_audit(member, np.where(keep == member, 1.0, 0.0), seed=seed).epsilon > eps
    assert exceed <= 0.05 * runs


def test_delta_correction_keeps_approximate_dp_sound():
    # (ε, δ) mechanism: with probability δ reveal the bit, otherwise randomized response at ε.
    eps, delta = 0.5, 0.01
    for seed in range(10):
        rng = np.random.default_rng(seed)
        member = _canaries(rng, 500)
        reveal = rng.random(member.size) < delta
        keep = rng.random(member.size) < math.exp(eps) / (1 + math.exp(eps))
        noisy = np.where(keep == member, 0.5, -0.5) + rng.normal(scale=0.01, size=member.size)
        score = np.where(reveal, np.where(member, 10.0, -10.0), noisy)
        assert one_run_audit(member, score, delta=delta, seed=seed).epsilon <= eps


def test_high_leakage_gives_a_large_bound_and_null_gives_zero():
    rng = np.random.default_rng(0)
    member = _canaries(rng, 1000)
    strong = one_run_audit(member, member + rng.normal(scale=0.3, size=member.size))
    assert strong.epsilon > 3 and strong.correct == strong.guesses and strong.n_choices == 8
    assert strong.to_dict()["guesses"] == strong.k_plus + strong.k_minus
    zeros = sum(
        one_run_audit(_canaries(r := np.random.default_rng(s), 500), r.normal(size=500)).epsilon == 0 for s in range(40)
    )
    assert zeros >= 38


def test_ties_are_broken_without_looking_at_membership():
    # Constant scores carry no information: every guess is a coin flip, whatever the seed.
    member = np.r_[np.ones(100, bool), np.zeros(100, bool)]
    assert all(one_run_audit(member, np.zeros(200), seed=s).epsilon == 0 for s in range(5))


@pytest.mark.parametrize(
    "args,message",
    [
        ({"member": [1], "score": [0.0]}, "need both members and non-members"),
        ({"guess_fractions": [0.0]}, "guess_fractions"),
        ({"beta": 1.0}, "beta 1.0 must be in"),
        ({"delta": 1.0}, "delta 1.0 must be in"),
    ],
)
def test_bad_arguments(args, message):
    kwargs = {"member": [1, 0, 1, 0], "score": [0.4, 0.1, 0.9, 0.2], **args}
    with pytest.raises(InvalidInputError, match=message):
        one_run_audit(kwargs.pop("member"), kwargs.pop("score"), **kwargs)
    with pytest.raises(InvalidInputError, match="0 <= v <= r <= m"):
        one_run_p_value(10, 12, 3, 1.0)


def test_audit_reports_one_run_bounds_that_match_its_scores(tmp_path, capsys):
    import json

    import pandas as pd
    from cli_helpers import run_cli

    from memberscope.game import derive_seed, make_game

    out = tmp_path / "run"
    args = ["audit", "--dataset", "digits", "--model-param", "epochs=5", "--model-param", "hidden=[16]", "-k", "0"]
    args += ["--attacks", "loss,confidence", "--n-bootstrap", "20", "--one-run-canaries", "700", "--no-progress"]
    code, printed, err = run_cli(*args, "--no-report", "--out", str(out), capsys=capsys)
    assert code == 0, err
    results = json.loads((out / "results.json").read_text())
    section = results["epsilon"]
    one_run = section["one_run"]
    best = max(one_run["attacks"], key=lambda a: one_run["attacks"][a]["epsilon"])
    assert f"ε ≥ {one_run['attacks'][best]['epsilon']:.2f} at 95% confidence ({best}:" in " ".join(printed.split())
    assert results["game"]["one_run_canaries"] == one_run["canaries"] == len(one_run["records"]) == 700
    assert section["claimed"] is None and section["delta"] == 0.0
    scores = pd.read_csv(out / "scores.csv")
    table = scores.set_index("record").loc[one_run["records"]]
    assert one_run["canaries_included"] == int(table["member"].sum())
    for name in ("loss", "confidence"):
        bound = one_run_audit(table["member"].to_numpy(), table[name].to_numpy(), seed=derive_seed(0, "one-run", 0))
        assert one_run["attacks"][name] == pytest.approx(bound.to_dict())
        assert section["clopper_pearson"][name]["epsilon"] >= 0
    # Only the canaries' inclusion is re-drawn; every other pool record keeps the game's balanced mask.
    original = make_game(len(scores), 0, seed=0).target_mask
    is_canary = scores["record"].isin(one_run["records"]).to_numpy()
    assert np.array_equal(scores["member"].to_numpy()[~is_canary].astype(bool), original[~is_canary])
    assert not np.array_equal(scores["member"].to_numpy()[is_canary].astype(bool), original[is_canary])


def test_one_run_configuration_errors(capsys):
    from memberscope.api import audit_model
    from memberscope.config import AuditConfig

    with pytest.raises(InvalidInputError, match="one_run_canaries must be an integer >= 2"):
        AuditConfig(one_run_canaries=1, reference_models=0, attacks="loss")
    with pytest.raises(InvalidInputError, match="epsilon_delta must be a number"):
        AuditConfig(epsilon_delta=1.5, reference_models=0, attacks="loss")
    rng = np.random.default_rng(0)
    data = (rng.normal(size=(20, 4)), rng.integers(0, 2, 20))
    with pytest.raises(InvalidInputError, match="fixed members"):
        audit_model(lambda x: x, members=data, nonmembers=data, one_run_canaries=10, reference_models=0, attacks="loss")
