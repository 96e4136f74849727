"""Recon's exposure detection, the shadow-model attack on local targets, and FPR-calibrated verdicts."""

import numpy as np
import pytest
from redteam_server import one_torch_thread

from memberscope.datasets.purchase_synthetic import generate_purchase
from memberscope.exceptions import InvalidInputError
from memberscope.metrics import evaluate, roc_auc
from memberscope.privacy import clopper_pearson_interval as clopper_pearson
from memberscope.redteam.recon import Exposure, detect_exposure, recon
from memberscope.redteam.shadow import ShadowModelAttack, shadow_features
from memberscope.redteam.verdicts import calibrate_threshold, verdicts
from memberscope.targets import FakeTarget, wrap
from memberscope.targets.postprocess import parse_postprocessors

_one_thread = pytest.fixture(scope="module", autouse=True)(one_torch_thread)

SHADOW_RECIPE = {"hidden": (64,), "epochs": 30, "batch_size": 64}


def _dirichlet(X):
    rng = np.random.default_rng(abs(hash(np.asarray(X).tobytes())) % 2**32)
    return rng.dirichlet(np.ones(5), size=len(X))


@pytest.mark.parametrize(
    ("post", "mode", "k", "decimals"),
    [
        ("", "probabilities", None, None),
        ("round:2", "rounded", None, 2),
        ("top-k:2", "top-k", 2, None),
        ("top-k:3,round:1", "top-k", 3, 1),
        ("label-only", "label-only", None, None),
    ],
)
def test_detect_exposure(post, mode, k, decimals):
    probs = np.random.default_rng(0).dirichlet(np.ones(5), size=20)
    assert detect_exposure(parse_postprocessors(post)(probs)) == (mode, k, decimals)


def test_detect_logits_and_determinism():
    logits = np.random.default_rng(0).normal(size=(10, 4))
    assert detect_exposure(logits)[0] == "logits"
    noisy = FakeTarget(_dirichlet, n_classes=5, postprocess="gaussian:0.05")
    exposure = recon(noisy, np.zeros((4, 3)), repeats=2)
    assert exposure.mode == "probabilities" and not exposure.deterministic
    assert exposure.queries_spent == 8 and not exposure.rate_limited
    same = recon(FakeTarget(_dirichlet, n_classes=5, postprocess="round:1"), np.zeros((4, 3)), burst=3)
    assert same.deterministic and same.decimals == 1 and same.queries_spent == 11
    assert same.postprocess_spec() == "round:1"
    assert Exposure.from_dict(same.to_dict()) == same


def test_clopper_pearson_matches_scipy_exact_interval():
    from scipy.stats import binomtest

    for k, n in [(0, 10), (3, 10), (10, 10), (7, 1000)]:
        ref = binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
        assert clopper_pearson(k, n) == pytest.approx((ref.low, ref.high), abs=1e-12)


def test_threshold_flags_at_most_the_allowed_shadow_non_members():
    rng = np.random.default_rng(0)
    member = np.r_[np.ones(500), np.zeros(2000)].astype(bool)
    scores = np.r_[rng.normal(1, 1, 500), rng.normal(0, 1, 2000)].round(2)  # rounding makes ties
    cal = calibrate_threshold(scores, member, fpr=0.01, n_models=4)
    neg = scores[~member]
    # slow reference: the smallest observed score value whose rule "score >= t" flags <= 20 non-members
    allowed = [t for t in np.unique(neg) if (neg >= t).sum() <= 20]
    assert (neg >= cal.threshold).sum() == (neg >= min(allowed)).sum() <= 20
    assert cal.shadow_fpr == (neg >= cal.threshold).mean()
    assert cal.shadow_tpr == (scores[member] >= cal.threshold).mean()
    low, high = cal.threshold_band
    assert low <= cal.threshold <= high
    v = verdicts(scores, cal)
    assert set(v) <= {"member", "not-member", "inconclusive"}
    assert (v[scores >= high] == "member").all()
    # Not-member is read off the members' scores: at most floor(fnr * n1) shadow members fall below the threshold.
    pos = scores[member]
    assert cal.fnr_target == 0.01 and (pos < cal.not_member_threshold).sum() <= 5
    assert cal.shadow_fnr == (pos < cal.not_member_threshold).mean()
    u_low, u_high = cal.not_member_band
    assert u_low <= cal.not_member_threshold <= u_high
    assert (v[scores < min(u_low, low)] == "not-member").all()
    assert (v[(scores >= u_low) & (scores < high)] == "inconclusive").all()  # below the member threshold: unflagged
    assert (v[member] == "not-member").mean() <= 0.01
    with pytest.raises(InvalidInputError, match="fpr must be in"):
        calibrate_threshold(scores, member, fpr=1.5, n_models=4)


@pytest.fixture(scope="module")
def purchase():
    from memberscope.recipes import TorchRecipe

    X, y = generate_purchase(2500, seed=1)
    model = TorchRecipe(architecture="mlp", **SHADOW_RECIPE).train(X[:500], y[:500], n_classes=100, seed=7)
    return X, y, model


def test_shadow_attack_finds_members_and_calibrates(purchase):
    X, y, model = purchase
    member = np.r_[np.ones(500), np.zeros(500)].astype(bool)
    records, labels = X[:1000], y[:1000]
    attack = ShadowModelAttack(
        attack="shadow", n_shadow=3, recipe="mlp", recipe_params=SHADOW_RECIPE, postprocess="top-k:1"
    )
    attack.fit(X[1500:2500], y[1500:2500], n_classes=100)
    target = wrap(model, n_classes=100, postprocess="top-k:1")
    scores = attack.score(target, records, labels)
    # One query per record, and one per held-out attacker record (the target-side FPR check).
    assert roc_auc(member, scores) > 0.9 and target.queries_spent == 1000 + 200
    # Out-of-fold shadow scores separate too; features are sorted probabilities + true-class terms.
    assert roc_auc(attack.calibration_member_, attack.calibration_scores_) > 0.9
    F = shadow_features(np.array([[0.1, 0.7, 0.2]]), np.array([2]))
    np.testing.assert_allclose(F, [[0.7, 0.2, 0.1, 0.2, np.log(0.2), 0.0]])


def test_shadow_attack_null_model_gives_chance(purchase):
    X, y, model = purchase
    # "members" the model never saw: the attack must not tell them from non-members.
    member = np.r_[np.ones(400), np.zeros(400)].astype(bool)
    attack = ShadowModelAttack(n_shadow=2, recipe="mlp", recipe_params=SHADOW_RECIPE)
    attack.fit(X[1500:2500], y[1500:2500], n_classes=100)
    scores = attack.score(wrap(model, n_classes=100), X[600:1400], y[600:1400])
    lo, hi = evaluate(member, scores, fprs=(0.1,), n_bootstrap=200).auc_ci
    assert lo < 0.5 < hi


def test_shadow_attack_rejects_bad_settings():
    with pytest.raises(InvalidInputError, match=r"n_shadow must be an integer >= 2; got 1.*attack_model 'svm'"):
        ShadowModelAttack(n_shadow=1, attack_model="svm")


def test_pipeline_is_deterministic_in_its_seed(purchase):
    from memberscope.redteam.pipeline import run_redteam

    X, y, model = purchase
    member = np.r_[np.ones(200), np.zeros(200)].astype(bool)
    records, labels = np.r_[X[:200], X[600:800]], np.r_[y[:200], y[600:800]]

    def run(seed):
        target = wrap(model, n_classes=100, postprocess="round:1")
        return run_redteam(
            target, records, labels, X[1500:2100], y[1500:2100], n_classes=100, n_shadow=2,
            recipe="mlp", recipe_params=SHADOW_RECIPE, member=member, seed=seed,
        )  # fmt: skip

    a, b = run(0), run(0)
    np.testing.assert_array_equal(a.scores, b.scores)
    same, other = a.results.to_dict(), b.results.to_dict()
    assert same.pop("created") and other.pop("created")  # when each ran: the only thing that may differ
    assert same == other
    rt = a.results["redteam"]
    assert rt["exposure"]["mode"] == "rounded" and rt["exposure"]["decimals"] == 1
    # recon, the 120 held-out attacker records (the target-side check), the 400 records
    assert rt["target"]["queries_spent"] == 16 + 120 + 400 and rt["calibration"]["n_shadow_models"] == 2
    assert rt["attack"] in ("lira-offline", "rmia-offline", "shadow") and set(rt["attack_candidates"]) == {
        "lira-offline", "rmia-offline", "shadow"
    }  # fmt: skip
    assert rt["shadows"]["family"] == "mlp" and {"poor", "target_label_agreement"} <= set(rt["shadows"]["fit"])
    # The model memorises: never an all-clear.
    assert rt["conclusion"]["status"] != "no measurable leakage" and rt["target_check"]["n_nonmembers"] == 120
    assert a.results["attacks"][rt["attack"]]["auc"] > 0.8


def test_public_surface():
    import memberscope.redteam as rt

    assert sorted(rt.__all__) == [
        "Exposure", "LabelOnlyAttack", "RedteamResult", "ShadowModelAttack", "recon", "run_redteam",
    ]  # fmt: skip
    assert all(hasattr(rt, name) for name in rt.__all__)


def test_shadows_come_from_the_cache_on_a_rerun(purchase, tmp_path):
    from memberscope.cache import ArtifactCache

    X, y, model = purchase
    runs = []
    for _ in range(2):
        cache = ArtifactCache(tmp_path)
        attack = ShadowModelAttack(n_shadow=2, recipe="mlp", recipe_params=SHADOW_RECIPE, cache=cache)
        attack.fit(X[1500:1900], y[1500:1900], n_classes=100)
        runs.append((cache.hits, cache.misses, attack.score(wrap(model, n_classes=100), X[:50], y[:50])))
    assert runs[0][:2] == (0, 4) and runs[1][:2] == (4, 0)  # 2 reference + 2 calibration shadows
    np.testing.assert_allclose(runs[0][2], runs[1][2], atol=1e-6)


@pytest.fixture(scope="module")
def ten_class_shadows():
    X, y = generate_purchase(4000, seed=2)
    keep = y < 10  # 10 classes keep per-class classifiers fed
    X, y = X[keep], y[keep]
    base = ShadowModelAttack(n_shadow=2, recipe="mlp", recipe_params=SHADOW_RECIPE).fit(X, y, n_classes=10)
    return X, y, base


@pytest.mark.parametrize(("attack_model", "per_class"), [("gbdt", False), ("mlp", False), ("logreg", True)])
def test_attack_models_and_per_class_classifiers(ten_class_shadows, attack_model, per_class):
    X, y, base = ten_class_shadows
    attack = ShadowModelAttack(
        attack="shadow", n_shadow=2, attack_model=attack_model, per_class=per_class, min_per_class=5
    )
    attack.fit(X, y, n_classes=10, shadows=base)  # the same shadows, other attack classifiers
    assert attack.run_params_["per_class"] is per_class
    assert roc_auc(attack.calibration_member_, attack.calibration_scores_) > 0.75


def test_certified_threshold_bounds_the_fpr_on_fresh_non_members():
    from scipy.stats import binom

    from memberscope.redteam.verdicts import CERTIFIED_FACTOR, certified_threshold

    # Closed form: the bound x solves P(Binomial(h, x) <= k) = 5%, k the known non-members flagged.
    scores = np.random.default_rng(0).random(400)
    t, bound = certified_threshold(scores, 0.01)
    k = int((scores >= t).sum())
    assert k <= 4 and binom.cdf(k, 400, bound) == pytest.approx(0.05, abs=1e-9) and bound <= CERTIFIED_FACTOR * 0.01
    # Simulation: non-member scores uniform on [0, 1], so a threshold t has FPR 1 - t; it exceeds the bound in at
    # most 5% of draws (plus Monte Carlo error).
    rng = np.random.default_rng(1)
    over = [(1 - t) > b for t, b in (certified_threshold(rng.random(400), 0.01) for _ in range(2000))]
    assert np.mean(over) <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / 2000)
    assert certified_threshold(scores[:120], 0.01)[0] == np.inf  # too few to certify 1% (at most 2x)
