import numpy as np
import pytest
from scipy.special import softmax

from memberscope.exceptions import InvalidInputError, ModelOutputError
from memberscope.signals import (
    SIGNALS,
    check_logits,
    confidence,
    entropy,
    logit_confidence,
    loss,
    modified_entropy,
)


def _slow_phi(logits, y):
    """log(p_y / (1 - p_y)) with exact rational arithmetic via Python floats on small logits."""
    p = softmax(np.asarray(logits, dtype=np.float64))
    return np.log(p[y]) - np.log(p.sum() - p[y])


def test_phi_matches_direct_formula_on_moderate_logits():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(200, 10)) * 3
    y = rng.integers(0, 10, 200)
    expected = np.array([_slow_phi(row, t) for row, t in zip(logits, y, strict=False)])
    np.testing.assert_allclose(logit_confidence(logits, y), expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("margin", [40.0, 100.0, 700.0])
def test_phi_stays_finite_when_probability_rounds_to_one(margin):
    # p_y = 1 - ~e^-margin: in probability space log(p/(1-p)) is inf; from logits it is the margin.
    logits = np.array([[margin, 0.0, 0.0]])
    phi = logit_confidence(logits, np.array([0]))
    assert np.isfinite(phi).all()
    np.testing.assert_allclose(phi, margin - np.log(2.0), rtol=1e-12)
    # and symmetric for p_y near 0
    np.testing.assert_allclose(logit_confidence(logits, np.array([1])), -margin, rtol=1e-9)


def test_signals_agree_with_probability_formulas():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(50, 4))
    y = rng.integers(0, 4, 50)
    p = softmax(logits, axis=1)
    py = p[np.arange(50), y]
    np.testing.assert_allclose(loss(logits, y), -np.log(py))
    np.testing.assert_allclose(confidence(logits, y), py)
    np.testing.assert_allclose(entropy(logits), -(p * np.log(p)).sum(1))
    mentr = []
    for row, t in zip(p, y, strict=False):
        val = -(1 - row[t]) * np.log(row[t])
        val -= sum(row[i] * np.log(1 - row[i]) for i in range(4) if i != t)
        mentr.append(val)
    np.testing.assert_allclose(modified_entropy(logits, y), mentr, rtol=1e-10)


def test_modified_entropy_finite_for_extreme_logits():
    logits = np.array([[800.0, 0.0], [0.0, 800.0]])
    values = modified_entropy(logits, np.array([0, 0]))
    assert np.isfinite(values).all()
    assert values[0] < 1e-12 < values[1]


def test_signals_broadcast_over_queries():
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(7, 3, 5))
    y = rng.integers(0, 5, 7)
    for fn in SIGNALS.values():
        out = fn(logits, y[:, None])
        assert out.shape == (7, 3)
        np.testing.assert_allclose(out[:, 1], fn(logits[:, 1], y))


def test_member_orientation_higher_is_member():
    confident = np.array([[10.0, 0.0]])
    unsure = np.array([[0.1, 0.0]])
    y = np.array([0])
    for name, fn in SIGNALS.items():
        assert fn(confident, y) > fn(unsure, y), name


def test_check_logits_rejects_nan_and_bad_labels():
    with pytest.raises(ModelOutputError, match="NaN or infinite"):
        check_logits(np.array([[0.0, np.nan]]))
    with pytest.raises(ModelOutputError, match="first at index"):
        check_logits(np.array([[0.0, 1.0], [np.inf, 0.0]]))
    with pytest.raises(InvalidInputError, match=r"labels must lie in \[0, 1\]"):
        check_logits(np.zeros((2, 2)), np.array([0, 2]))


def test_loss_keeps_precision_for_confident_predictions():
    # margins of 40, 50 and 60: p_y rounds to 1.0, but the losses must differ and stay ordered
    logits = np.array([[40.0, 0.0], [50.0, 0.0], [60.0, 0.0]])
    y = np.zeros(3, dtype=int)
    values = loss(logits, y)
    np.testing.assert_allclose(values, np.exp([-40.0, -50.0, -60.0]), rtol=1e-12)
    assert (
        SIGNALS["confidence"](logits, y)[0] < SIGNALS["confidence"](logits, y)[1] < SIGNALS["confidence"](logits, y)[2]
    )
    assert len(np.unique(SIGNALS["loss"](logits, y))) == 3


def test_log_probabilities_match_scipy_where_scipy_is_accurate():
    from scipy.special import log_softmax

    from memberscope.signals import log_probabilities

    logits = np.random.default_rng(3).normal(size=(100, 7)) * 4
    np.testing.assert_allclose(log_probabilities(logits), log_softmax(logits, axis=1), rtol=1e-12, atol=1e-12)
