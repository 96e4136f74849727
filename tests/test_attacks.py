"""Attacks against independent slow references (plain loops, dense matrices)."""

import numpy as np
import pytest
from scipy.stats import norm

from memberscope import attacks
from memberscope.attacks import ReferenceOutputs, TargetOutputs
from memberscope.attacks.rmia import pairwise_dominance
from memberscope.exceptions import InvalidInputError, UnknownNameError
from memberscope.game import paired_masks
from memberscope.signals import logit_confidence


def _outputs(seed=0, k=8, n=60, m=40, a=2, c=5):
    rng = np.random.default_rng(seed)
    labels, pop_labels = rng.integers(0, c, n), rng.integers(0, c, m)
    masks = paired_masks(n, k, seed=seed)
    ref_logits = rng.normal(size=(k, n, a, c))
    # reference models are more confident on their members, as real ones are
    for j in range(k):
        ref_logits[j, masks[j], :, labels[masks[j]]] += 2.0
    refs = ReferenceOutputs(
        logits=ref_logits,
        masks=masks,
        labels=labels,
        population_logits=rng.normal(size=(k, m, a, c)),
        population_labels=pop_labels,
    )
    target = TargetOutputs(
        logits=rng.normal(size=(n, a, c)),
        labels=labels,
        population_logits=rng.normal(size=(m, a, c)),
        population_labels=pop_labels,
    )
    return refs, target


def _lira_loop(refs, target, *, online, per_example):
    """One record at a time, straight from the paper."""
    phi_ref = logit_confidence(refs.logits, refs.labels[None, :, None])
    phi_t = logit_confidence(target.logits, target.labels[:, None])
    _k, n, a = phi_ref.shape
    out = np.zeros(n)
    glob = {}
    for side, sel in (("in", refs.masks), ("out", ~refs.masks)):
        vals = np.concatenate([phi_ref[sel[:, i], i, :] for i in range(n)])  # (count, a)
        glob[side] = vals.std(axis=0)
    for i in range(n):
        ins, outs = phi_ref[refs.masks[:, i], i, :], phi_ref[~refs.masks[:, i], i, :]
        s = 0.0
        for q in range(a):
            mu_o = outs[:, q].mean()
            sd_o = max(outs[:, q].std() if per_example else glob["out"][q], 1e-4)
            if online:
                mu_i = ins[:, q].mean()
                sd_i = max(ins[:, q].std() if per_example else glob["in"][q], 1e-4)
                s += norm.logpdf(phi_t[i, q], mu_i, sd_i) - norm.logpdf(phi_t[i, q], mu_o, sd_o)
            else:
                s += -np.log(norm.sf((phi_t[i, q] - mu_o) / sd_o))
        out[i] = s / a
    return out


@pytest.mark.parametrize("name,online", [("lira-online", True), ("lira-offline", False)])
@pytest.mark.parametrize("variance", ["per-example", "fixed"])
@pytest.mark.parametrize("seed", [0, 1])
def test_lira_matches_plain_per_record_loop(name, online, variance, seed):
    refs, target = _outputs(seed)
    attack = attacks.create(name, variance=variance).fit(refs)
    expected = _lira_loop(refs, target, online=online, per_example=variance == "per-example")
    np.testing.assert_allclose(attack.score(target), expected, rtol=1e-8, atol=1e-8)


def test_lira_auto_variance_switches_on_model_count():
    refs, _ = _outputs(k=8)
    assert attacks.create("lira-online").fit(refs).variance_ == "fixed"
    refs64, _ = _outputs(k=64, n=20)
    assert attacks.create("lira-online").fit(refs64).variance_ == "per-example"


def test_lira_needs_two_models_per_side_for_per_example_variance():
    refs, _ = _outputs(k=2)
    with pytest.raises(InvalidInputError, match="per-example variance needs at least 2 models per side"):
        attacks.create("lira-online", variance="per-example").fit(refs)


def _dense_rmia(log_ratio_x, log_ratio_z, gamma):
    ratio = np.exp(log_ratio_x)[:, None] / np.exp(log_ratio_z)[None, :]
    return (ratio > gamma).mean(axis=1)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("gamma", [1.0, 2.0, 0.5])
def test_rmia_sorting_equals_dense_matrix(seed, gamma):
    rng = np.random.default_rng(seed)
    x, z = rng.normal(size=700), rng.normal(size=300)
    np.testing.assert_array_equal(pairwise_dominance(x, z, gamma=gamma), _dense_rmia(x, z, gamma))


def test_rmia_tie_break_orders_ties_by_likelihood_ratio():
    x = np.array([5.0, 6.0, 0.5, 7.0])
    z = np.array([0.0, 1.0])
    pure = pairwise_dominance(x, z)
    assert pure[0] == pure[1] == pure[3] == 1.0
    broken = pairwise_dominance(x, z, tie_break=True)
    assert broken[0] < broken[1] < broken[3] and broken[2] < broken[0]


def test_rmia_sorting_handles_ties_like_dense():
    x = np.array([0.0, 1.0, 1.0, 2.0])
    z = np.array([1.0, 1.0, 0.0, 3.0])
    np.testing.assert_array_equal(pairwise_dominance(x, z), _dense_rmia(x, z, 1.0))


def _rmia_naive(refs, target, *, online, a, gamma):
    """RMIA written out with explicit loops over records and z."""

    def prob(logits, labels):
        from scipy.special import softmax

        p = softmax(logits, axis=-1)
        return np.take_along_axis(p, labels[:, None, None].repeat(p.shape[1], 1), -1)[..., 0].mean(-1)

    p_ref = np.stack([prob(refs.logits[j], refs.labels) for j in range(refs.n_models)])
    p_ref_z = np.stack([prob(refs.population_logits[j], refs.population_labels) for j in range(refs.n_models)])
    p_t, p_t_z = prob(target.logits, target.labels), prob(target.population_logits, target.population_labels)
    scores = []
    for i in range(len(p_t)):
        if online:
            pr_x = p_ref[:, i].mean()
        else:
            pr_x = 0.5 * ((1 + a) * p_ref[~refs.masks[:, i], i].mean() + (1 - a))
        count = 0
        for j in range(len(p_t_z)):
            pr_z = p_ref_z[:, j].mean() if online else 0.5 * ((1 + a) * p_ref_z[:, j].mean() + (1 - a))
            count += (p_t[i] / pr_x) / (p_t_z[j] / pr_z) > gamma
        scores.append(count / len(p_t_z))
    return np.array(scores)


@pytest.mark.parametrize("online", [True, False])
def test_rmia_attack_equals_naive_loops(online):
    refs, target = _outputs(3, n=40, m=30)
    name = "rmia-online" if online else "rmia-offline"
    attack = attacks.create(name, gamma=1.0, a=0.3, tie_break=False).fit(refs)
    naive = _rmia_naive(refs, target, online=online, a=0.3, gamma=1.0)
    np.testing.assert_allclose(attack.score(target), naive)
    # tie-breaking never reorders records whose dominance fractions differ
    broken = attacks.create(name, gamma=1.0, a=0.3).fit(refs).score(target)
    lower = naive[:, None] < naive[None, :]
    assert np.all((broken[:, None] < broken[None, :])[lower])
    assert np.all(
        np.floor(broken * len(target.population_labels) + 1e-9) == np.round(naive * len(target.population_labels))
    )


def test_rmia_offline_chooses_a_on_reference_models_only():
    refs, _target = _outputs(4, k=4, n=200, m=200)
    attack = attacks.create("rmia-offline").fit(refs)
    assert 0.0 <= attack.params()["a"] <= 1.0
    assert attack.params()["a_chosen_on"] == "reference models"
    # the choice cannot depend on the target: fitting never sees it
    assert attacks.create("rmia-offline").fit(refs).a_ == attack.a_


def test_threshold_attacks_are_signals_averaged_over_queries():
    _refs, target = _outputs(5)
    from memberscope.signals import SIGNALS

    for name in ("loss", "confidence", "entropy", "modified-entropy"):
        got = attacks.create(name).fit(None).score(target)
        np.testing.assert_allclose(got, SIGNALS[name](target.logits, target.labels[:, None]).mean(1))


def test_class_calibration_standardizes_per_class():
    _, target = _outputs(6, n=300, m=400, c=3)
    got = attacks.create("loss", calibration="class").score(target)
    from memberscope.signals import SIGNALS

    raw = SIGNALS["loss"](target.logits, target.labels[:, None]).mean(1)
    pop = SIGNALS["loss"](target.population_logits, target.population_labels[:, None]).mean(1)
    c = 1
    ref = pop[target.population_labels == c]
    sel = target.labels == c
    np.testing.assert_allclose(got[sel], (raw[sel] - ref.mean()) / (ref.std() + 1e-12))


def test_registry_errors_name_the_value():
    with pytest.raises(UnknownNameError, match="unknown attack 'nope'; expected one of: confidence"):
        attacks.create("nope")
    with pytest.raises(InvalidInputError, match="needs at least 2 reference models; got 1"):
        refs, _ = _outputs(k=1)
        attacks.create("lira-online").fit(refs)
    with pytest.raises(InvalidInputError, match="invalid parameters for attack 'loss'"):
        attacks.create("loss", bogus=1)
