"""One model interface: every kind of model behind ``Target.query``, one ``wrap``, one softmax."""

import numpy as np
import pytest

from memberscope.exceptions import InvalidInputError, ModelOutputError
from memberscope.targets import (
    CallableTarget,
    FakeTarget,
    Postprocessed,
    SklearnTarget,
    Target,
    TorchTarget,
    as_logits,
    as_probabilities,
    load_target,
    save_target,
    softmax,
    wrap,
)


@pytest.fixture(scope="module")
def data():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 5))
    y = rng.integers(0, 3, size=80)
    return X, y, LogisticRegression(max_iter=500).fit(X, y)


def test_wrap_picks_the_target_for_each_kind(data):
    import torch

    _X, _y, clf = data
    assert isinstance(wrap(clf), SklearnTarget)
    net = torch.nn.Linear(5, 3)
    assert isinstance(wrap(net), TorchTarget)
    assert isinstance(wrap(lambda Z: np.zeros((len(Z), 3))), CallableTarget)
    fake = FakeTarget(lambda Z: np.full((len(Z), 3), 1 / 3), n_classes=3)
    assert wrap(fake) is fake
    assert isinstance(wrap(clf, postprocess="top-k:1"), Postprocessed)
    with pytest.raises(InvalidInputError, match="cannot query a dict"):
        wrap({"a": 1})


def test_sklearn_answers_are_predict_proba_and_columns_follow_classes(data):
    X, _y, clf = data
    target = wrap(clf)
    np.testing.assert_allclose(target.query(X), clf.predict_proba(X))
    assert target.output_kind == "probabilities" and target.queries_spent == len(X)
    # Laid out over more classes than the estimator knows (a reference model whose subset lacked one).
    wide = SklearnTarget(clf, classes=np.arange(5))
    out = wide.query(X[:4])
    np.testing.assert_allclose(out[:, :3], clf.predict_proba(X[:4]))
    assert (out[:, 3:] == 0).all()
    np.testing.assert_array_equal(target.column_of(np.array([2, 0])), [2, 0])


def test_string_classes_map_to_columns_by_name():
    from sklearn.tree import DecisionTreeClassifier

    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 3))
    y = np.where(X[:, 0] > 0, "I10", "E11")
    target = wrap(DecisionTreeClassifier(random_state=0).fit(X, y))
    assert list(target.classes) == ["E11", "I10"]
    np.testing.assert_array_equal(target.column_of(np.array(["I10", "E11", "I10"])), [1, 0, 1])
    with pytest.raises(InvalidInputError, match=r"labels \['J45'\] are not classes"):
        target.column_of(np.array(["J45"]))


@pytest.mark.parametrize(
    "make, fragment",
    [
        (lambda: __import__("sklearn.svm", fromlist=["SVC"]).SVC(), "has no predict_proba"),
        (
            lambda: __import__("sklearn.linear_model", fromlist=["RidgeClassifier"]).RidgeClassifier(),
            "no predict_proba",
        ),
        (lambda: __import__("sklearn.linear_model", fromlist=["LinearRegression"]).LinearRegression(), "a regressor"),
    ],
)
def test_estimators_without_probabilities_are_refused_with_the_remedy(data, make, fragment):
    X, y, _ = data
    model = make().fit(X, y)
    with pytest.raises(InvalidInputError, match=fragment):
        wrap(model)


def test_unfitted_estimator_is_refused():
    from sklearn.linear_model import LogisticRegression

    with pytest.raises(InvalidInputError, match="not fitted"):
        wrap(LogisticRegression())


def test_callable_returning_probabilities_is_read_as_probabilities_with_a_note(data):
    X, _y, clf = data
    target = wrap(clf.predict_proba)
    out = target.query(X)
    assert target.output_kind == "probabilities" and "read as probabilities" in target.notes[0]
    # Read as logits, probabilities would be softmaxed a second time; read as probabilities they are kept.
    np.testing.assert_allclose(as_probabilities(out, target.output_kind), clf.predict_proba(X))
    logits = wrap(clf.decision_function)
    logits.query(X)
    assert logits.output_kind == "logits" and not logits.notes


def test_nan_outputs_are_refused():
    target = wrap(lambda Z: np.full((len(Z), 2), np.nan), output_kind="logits")
    with pytest.raises(ModelOutputError, match="NaN or infinite"):
        target.query(np.zeros((3, 2)))


def test_one_softmax_and_conversions_round_trip():
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(20, 4)) * 30
    probs = softmax(logits)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    # Logits of probabilities give them back through the softmax; withheld top-k entries share the rest.
    np.testing.assert_allclose(softmax(as_logits(probs, "probabilities")), probs, atol=1e-12)
    top1 = np.full_like(probs, np.nan)
    top1[np.arange(20), probs.argmax(1)] = probs.max(1)
    filled = as_probabilities(top1, "top-k")
    np.testing.assert_allclose(filled.sum(axis=1), 1.0)
    assert np.isfinite(as_logits(top1, "top-k")).all()


def test_postprocessed_shows_the_policy_and_counts(data):
    X, _y, clf = data
    target = wrap(clf, postprocess="label-only", query_budget=100)
    out = target.query(X)
    assert target.output_kind == "label" and set(np.unique(out)) == {0.0, 1.0}
    np.testing.assert_array_equal(out.argmax(1), clf.predict(X))
    assert target.queries_spent == 80 and target.queries_left == 20


def test_saved_models_load_as_targets(tmp_path, data):
    import joblib
    import torch

    X, y, clf = data
    joblib.dump(clf, tmp_path / "clf.joblib")
    np.testing.assert_allclose(load_target(tmp_path / "clf.joblib").query(X), clf.predict_proba(X))
    net = torch.nn.Sequential(torch.nn.Linear(5, 3)).eval()
    torch.save(net, tmp_path / "net.pt")
    with torch.no_grad():
        expected = net(torch.from_numpy(X.astype(np.float32))).numpy()
    np.testing.assert_allclose(load_target(tmp_path / "net.pt").query(X), expected, rtol=1e-5, atol=1e-6)

    from memberscope.recipes import TorchRecipe

    recipe = TorchRecipe(architecture="logreg", epochs=1)
    model = recipe.train(X.astype(np.float32), y, n_classes=3, seed=0)
    save_target(model, tmp_path / "ms.pt", recipe=recipe, feature_shape=(5,))
    np.testing.assert_allclose(load_target(tmp_path / "ms.pt").query(X), model.query(X), rtol=1e-6)


def test_a_new_target_kind_is_one_class():
    class Constant(Target):
        output_kind = "probabilities"
        n_classes = 2

        def _query(self, records):
            self.queries_spent += len(records)
            return np.tile([0.25, 0.75], (len(records), 1))

    target = wrap(Constant(query_budget=3))
    assert target.query(np.zeros((3, 1))).shape == (3, 2)
    with pytest.raises(Exception, match="exceed the query budget"):
        target.query(np.zeros((1, 1)))


def test_torch_model_standardizes_only_when_it_changes_the_records():
    """Scalars 0 and 1 (a recipe without ``standardize``) are skipped: the same logits to the bit as computing
    (x - 0) / 1; any other mean or std is applied."""
    import torch

    from memberscope.recipes.torch_nets import TorchModel

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(6, 3))
    X = np.random.default_rng(0).normal(size=(50, 6)).astype(np.float32)
    plain = TorchModel(net, n_classes=3, mean=torch.zeros(()), std=torch.ones(()))
    with torch.no_grad():
        by_hand = net((torch.from_numpy(X) - torch.zeros(())) / torch.ones(())).double().numpy()
    np.testing.assert_array_equal(plain.query(X), by_hand)
    mean, std = torch.full((6,), 0.5), torch.full((6,), 2.0)
    scaled = TorchModel(net, n_classes=3, mean=mean, std=std)
    with torch.no_grad():
        expected = net((torch.from_numpy(X) - mean) / std).double().numpy()
    np.testing.assert_array_equal(scaled.query(X), expected)
