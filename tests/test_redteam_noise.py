"""Output noise against an attacker who repeats queries and averages (issue 14, "noise is averaged").

Noise drawn afresh for every answer is averaged away by repeating a query: the averaging attack's TPR at 1% FPR
comes back within the noiseless attack's interval. Noise drawn from a keyed hash of the record (consistent noise)
gives every repeat the same answer, so averaging gains nothing and the TPR stays lower.
"""

import numpy as np
import pytest
from test_redteam_forest import _data

from memberscope.metrics import evaluate
from memberscope.redteam import ShadowModelAttack
from memberscope.redteam.recon import averaging_repeats, recon
from memberscope.targets import wrap
from memberscope.targets.postprocess import Averaged, parse_postprocessors

N = 300


@pytest.fixture(scope="module")
def forest():
    from sklearn.ensemble import RandomForestClassifier

    X, y = _data(3 * N + 600, seed=1)
    model = RandomForestClassifier(n_estimators=100, random_state=0, n_jobs=1).fit(X[:N], y[:N])
    return X, y, model


def _tpr(forest, post: str, repeats: int):
    X, y, model = forest
    attack = ShadowModelAttack(
        attack="rmia-offline", recipe="random-forest", n_shadow=4, postprocess=post, repeats=repeats, seed=0
    ).fit(X[3 * N :], y[3 * N :], n_classes=10)
    target = wrap(model, n_classes=10, postprocess=post, seed=3)
    member = np.r_[np.ones(N, bool), np.zeros(2 * N, bool)]
    scores = attack.score(target, X[: 3 * N], y[: 3 * N])
    m = evaluate(member, scores, fprs=(0.01,), n_bootstrap=200, seed=0)
    return next(iter(m.tpr_at_fpr.values())), next(iter(m.tpr_at_fpr_ci.values())), target.queries_spent


def test_averaging_recovers_the_noiseless_attack_and_consistent_noise_does_not(forest):
    _, (lo, hi), _ = _tpr(forest, "", 1)  # the noiseless attack's TPR interval
    single, _, _ = _tpr(forest, "gaussian:0.1", 1)
    averaged, _, queries = _tpr(forest, "gaussian:0.1", 30)
    consistent, _, _ = _tpr(forest, "consistent-gaussian:0.1", 30)
    assert queries == 30 * (3 * N + 120)  # every record and held-out record asked 30 times
    assert single < lo  # one noisy query per record understates the leakage
    assert lo <= averaged <= hi  # an attacker who averages gets it back
    assert consistent < lo  # a repeat returns the same answer: nothing to average


def test_recon_measures_noise_and_sets_the_repeats(forest):
    X, _, model = forest
    exposure = recon(wrap(model, n_classes=10, postprocess="gaussian:0.1", seed=0), X[:8], repeats=4)
    assert not exposure.deterministic and exposure.noise_std is not None
    assert averaging_repeats(exposure.noise_std) == int(np.ceil((exposure.noise_std / 0.01) ** 2))
    assert exposure.postprocess_spec().startswith("gaussian:")
    same = recon(wrap(model, n_classes=10, postprocess="consistent-gaussian:0.1"), X[:8], repeats=2)
    assert same.deterministic  # consistent noise looks deterministic: repeats cannot average it


def test_averaged_view_shrinks_fresh_noise_by_the_square_root_of_the_repeats():
    probs = np.full((2000, 4), 0.25)
    rng = np.random.default_rng(0)
    one = parse_postprocessors("gaussian:0.02")(probs, rng=rng)
    many = Averaged(parse_postprocessors("gaussian:0.02"), 25)(probs, rng=rng)
    assert many.std() == pytest.approx(one.std() / 5, rel=0.1)
    fixed = Averaged(parse_postprocessors("consistent-gaussian:0.02"), 25)
    np.testing.assert_array_equal(fixed(probs[:3]), parse_postprocessors("consistent-gaussian:0.02")(probs[:3]))


def test_the_red_team_averages_as_many_repeats_as_the_measured_noise_needs(forest):
    from memberscope.redteam import run_redteam

    X, y, model = forest
    target = wrap(model, n_classes=10, postprocess="gaussian:0.05", seed=1)
    result = run_redteam(
        target, X[:200], y[:200], X[3 * N :], y[3 * N :], attack="rmia-offline", recipe="random-forest", seed=0
    )
    rt = result.results["redteam"]
    repeats = rt["shadows"]["repeats"]
    assert not rt["exposure"]["deterministic"] and repeats == averaging_repeats(rt["exposure"]["noise_std"]) > 1
    assert rt["attack_params"]["repeats"] == repeats
    # recon's 8 probes twice, then every held-out attacker record and every candidate asked `repeats` times
    assert rt["target"]["queries_spent"] == 16 + repeats * (120 + 200)
