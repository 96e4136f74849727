"""The label-only attack (Choquette-Choo et al. 2021) against local targets."""

import numpy as np
import pytest
from redteam_server import one_torch_thread

from memberscope.datasets.purchase_synthetic import generate_purchase
from memberscope.exceptions import InvalidInputError, QueryBudgetExceededError
from memberscope.metrics import evaluate, roc_auc
from memberscope.redteam import LabelOnlyAttack
from memberscope.redteam.label_only import _shift
from memberscope.targets import FakeTarget, wrap

_one_thread = pytest.fixture(scope="module", autouse=True)(one_torch_thread)


@pytest.fixture(scope="module")
def purchase():
    from memberscope.recipes import TorchRecipe

    X, y = generate_purchase(1800, seed=0)
    model = TorchRecipe(architecture="mlp", hidden=(32,), epochs=40, batch_size=64).train(
        X[:600], y[:600], n_classes=100, seed=0
    )
    return X, y, model


def test_scores_match_a_slow_per_record_loop(purchase):
    X, y, clf = purchase
    attack = LabelOnlyAttack(n_queries=5, noise_scale=0.05, seed=3).fit(X[1200:])
    target = wrap(clf, n_classes=100, postprocess="label-only")
    scores = attack.score(target, X[:20], y[:20])
    copies = attack.perturb(X[:20], 5)
    for i in range(20):
        labels = [clf.query(X[i : i + 1]).argmax(1)[0], *clf.query(copies[i]).argmax(1)]
        assert scores[i] == pytest.approx(np.mean(np.asarray(labels) == y[i]))
    assert target.queries_spent == 20 * 6


def test_members_are_more_robust_than_non_members(purchase):
    X, y, clf = purchase
    member = np.r_[np.ones(300), np.zeros(300)].astype(bool)
    records, labels = np.r_[X[:300], X[600:900]], np.r_[y[:300], y[600:900]]
    attack = LabelOnlyAttack(n_queries=8, noise_scale=0.1, seed=0).fit(X[1200:])
    assert attack.resolved_noise(records) == "bit-flip"
    scores = attack.score(wrap(clf, n_classes=100, postprocess="label-only"), records, labels)
    assert roc_auc(member, scores) > 0.8


def test_null_model_gives_chance(purchase):
    X, y, clf = purchase
    # Two sets of records the model never saw: the "members" are no members at all.
    member = np.r_[np.ones(300), np.zeros(300)].astype(bool)
    records, labels = X[600:1200], y[600:1200]
    scores = (
        LabelOnlyAttack(n_queries=8, noise_scale=0.1)
        .fit(X[1200:])
        .score(wrap(clf, n_classes=100, postprocess="label-only"), records, labels)
    )
    lo, hi = evaluate(member, scores, fprs=(0.1,), n_bootstrap=200).auc_ci
    assert lo < 0.5 < hi


def test_budget_shrinks_queries_then_refuses():
    target = FakeTarget(lambda X: np.full((len(X), 2), 0.5), n_classes=2, query_budget=35)
    attack = LabelOnlyAttack(n_queries=16, noise="gaussian")
    attack.score(target, np.zeros((10, 3)), np.zeros(10, int))
    assert attack.n_queries_used_ == 2 and target.queries_spent == 30
    with pytest.raises(QueryBudgetExceededError, match="at least 10 queries"):
        attack.score(target, np.zeros((10, 3)), np.zeros(10, int))


def test_gaussian_noise_scale_is_relative_to_feature_spread():
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(5000, 2)) * [1.0, 10.0]
    copies = LabelOnlyAttack(n_queries=4000, noise="gaussian", noise_scale=0.5).fit(ref).perturb(np.zeros((1, 2)))
    np.testing.assert_allclose(copies[0].std(axis=0), [0.5, 5.0], rtol=0.05)


def test_flip_shift_augments_images():
    img = np.arange(2 * 1 * 3 * 3, dtype=float).reshape(2, 1, 3, 3)
    np.testing.assert_array_equal(_shift(img, 1, 0)[0, 0], [[0, 0, 0], [0, 1, 2], [3, 4, 5]])
    np.testing.assert_array_equal(_shift(img, 0, -1)[0, 0], [[1, 2, 0], [4, 5, 0], [7, 8, 0]])
    attack = LabelOnlyAttack(n_queries=20, max_shift=1, noise_scale=0.0)
    copies = attack.perturb(img)
    assert copies.shape == (2, 20, 1, 3, 3)
    # 17 distinct flip/shift augmentations (18 minus the identity), then noise (scale 0 here: copies).
    distinct = {copies[0, j].tobytes() for j in range(17)}
    assert len(distinct) == 17 and img[0].tobytes() not in distinct
    np.testing.assert_array_equal(copies, attack.perturb(img))  # same seed, same copies


def test_calibrate_picks_the_best_scale(purchase):
    X, y, clf = purchase
    target = wrap(clf, n_classes=100, postprocess="label-only")
    member = np.r_[np.ones(100), np.zeros(100)].astype(bool)
    shadow = (target, np.r_[X[:100], X[600:700]], np.r_[y[:100], y[600:700]], member)
    attack = LabelOnlyAttack(n_queries=4).fit(X[1200:]).calibrate([shadow], grid=(0.0, 0.1))
    assert attack.calibration_["grid_auc"][0.1] > attack.calibration_["grid_auc"][0.0]
    assert attack.noise_scale == 0.1


def test_bad_parameters_are_named():
    with pytest.raises(InvalidInputError, match=r"n_queries must be an integer >= 0; got -1.*noise 'blur'"):
        LabelOnlyAttack(n_queries=-1, noise="blur")


def test_default_scale_depends_on_the_noise():
    rng = np.random.default_rng(0)
    binary = (rng.random((50, 400)) < 0.5).astype(float)
    copies = LabelOnlyAttack(n_queries=50).fit(binary).perturb(binary)
    assert np.mean(copies != binary[:, None]) == pytest.approx(0.05, abs=0.005)  # bit flips, p = 0.05
    real = rng.normal(size=(50, 400))
    copies = LabelOnlyAttack(n_queries=50).fit(real).perturb(real)
    assert np.std(copies - real[:, None]) == pytest.approx(0.5, rel=0.05)  # 0.5 feature std


def test_the_noise_scale_is_chosen_without_the_records_that_certify_the_threshold(monkeypatch):
    # The held-out records are the target's known non-members: the certified threshold's FPR bound holds only for a
    # score chosen without them. Chosen with them, the trial's 1-NN server had 4.0% of its non-members called
    # members for a bound of 1.96% (its held-out records kept low on the shadows, and so on the target).
    from memberscope.redteam.label_only import LabelOnlyAttack
    from memberscope.redteam.shadow import ShadowModelAttack

    rng = np.random.default_rng(0)
    X = rng.normal(size=(240, 5))
    y = (X[:, 0] + 0.5 * rng.normal(size=240) > 0).astype(int)
    seen = []
    calibrate = LabelOnlyAttack.calibrate

    def spy(self, shadows, **kwargs):
        seen.extend(np.asarray(records) for _, records, _, _ in shadows)
        return calibrate(self, shadows, **kwargs)

    monkeypatch.setattr(LabelOnlyAttack, "calibrate", spy)
    attack = ShadowModelAttack(
        attack="label-only", n_shadow=2, n_calibration=1, recipe="logreg", postprocess="label-only", n_queries=2
    ).fit(X, y, n_classes=2)
    held = {tuple(r) for r in X[attack.shadows_.rows("holdout")]}
    assert seen and all(tuple(r) not in held for records in seen for r in records)
