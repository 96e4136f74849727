"""Output post-processors against direct per-row references, and the shared wire format round trip."""

import numpy as np
import pytest

from memberscope.defenses import LabelOnly, Round, Temperature, TopK, parse_postprocessors
from memberscope.exceptions import InvalidInputError, UnknownNameError
from memberscope.targets.outputs import fill_withheld
from memberscope.targets.wire import from_predictions, to_predictions


@pytest.fixture
def probs():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(50, 5)) * 3
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)


def test_round_and_label_only_match_per_row_reference(probs):
    rounded = Round(1)(probs)
    for row, out in zip(probs, rounded, strict=True):
        assert out.tolist() == [round(v, 1) for v in row]
    onehot = LabelOnly()(probs)
    for row, out in zip(probs, onehot, strict=True):
        expected = [0.0] * 5
        expected[max(range(5), key=lambda c: row[c])] = 1.0
        assert out.tolist() == expected


def test_top_k_keeps_exactly_the_k_largest(probs):
    out = TopK(2)(probs)
    for row, obs in zip(probs, out, strict=True):
        kept = sorted(np.flatnonzero(~np.isnan(obs)).tolist())
        assert kept == sorted(sorted(range(5), key=lambda c: -row[c])[:2])
        assert np.allclose(obs[kept], row[kept])


def test_temperature_equals_dividing_logits(probs):
    logits = np.log(probs) + 7.0  # any shift of the logits gives the same softmax
    expected = np.exp(logits / 3.0)
    expected /= expected.sum(axis=1, keepdims=True)
    assert np.allclose(Temperature(3.0)(probs), expected)
    assert np.allclose(Temperature(1.0)(probs), probs)


def test_noise_is_seeded_and_stays_a_distribution(probs):
    pp = parse_postprocessors("gaussian:0.05")
    a = pp(probs, rng=np.random.default_rng(1))
    b = pp(probs, rng=np.random.default_rng(1))
    assert np.array_equal(a, b)
    assert np.allclose(a.sum(axis=1), 1.0) and (a >= 0).all()
    assert not np.allclose(a, probs)
    huge = parse_postprocessors("laplace:100")(probs, rng=np.random.default_rng(2))
    assert np.allclose(huge.sum(axis=1), 1.0)


def test_compose_order_and_granularity(probs):
    pp = parse_postprocessors("temperature:2, top-k:1, round:2")
    assert pp.spec == "temperature:2,top-k:1,round:2"
    assert pp.granularity == "top-k"
    out = pp(probs)
    assert (np.isnan(out).sum(axis=1) == 4).all()
    shown = out[~np.isnan(out)]
    assert np.allclose(shown, np.round(shown, 2))
    assert parse_postprocessors("round:2,label-only").granularity == "label"
    assert parse_postprocessors(None).spec == "identity"
    assert np.array_equal(parse_postprocessors("")(probs), probs)


@pytest.mark.parametrize("spec", ["identity", "round:3", "top-k:2", "label-only", "top-k:1,round:1"])
def test_wire_format_round_trip(probs, spec):
    pp = parse_postprocessors(spec)
    observed = pp(probs)
    preds = to_predictions(observed, granularity=pp.granularity)
    back = from_predictions(preds, n_classes=5)
    assert np.array_equal(np.isnan(back), np.isnan(observed))
    assert np.allclose(np.nan_to_num(back, nan=-1), np.nan_to_num(observed, nan=-1))


def test_fill_withheld_spreads_the_unshown_mass():
    obs = np.array([[0.7, np.nan, np.nan, np.nan], [0.25, 0.25, 0.25, 0.25]])
    filled = fill_withheld(obs)
    assert np.allclose(filled[0], [0.7, 0.1, 0.1, 0.1])
    assert np.array_equal(filled[1], obs[1])


@pytest.mark.parametrize(
    ("spec", "match"),
    [("round:-1", "decimals"), ("top-k:0", "k must"), ("temperature:0", "T must"), ("gaussian:x", "not a number")],
)
def test_bad_specs_name_the_value(spec, match):
    with pytest.raises(InvalidInputError, match=match):
        parse_postprocessors(spec)
    with pytest.raises(UnknownNameError, match="expected one of"):
        parse_postprocessors("blur:3")


@pytest.mark.parametrize(
    "bad", [[0.5, 0.5], 7, True, {"classes": [9], "probabilities": [1.0]}, "x", [0.1, None, 0, 0, 0]]
)
def test_bad_predictions_are_named(bad):
    with pytest.raises(InvalidInputError, match="prediction 0"):
        from_predictions([bad], n_classes=5)
