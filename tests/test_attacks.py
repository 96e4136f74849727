"""Attacks against independent slow references (plain loops, dense matrices)."""

import numpy as np
import pytest
from rmia_reference import calibration_games
from scipy.stats import norm

from memberscope import attacks
from memberscope.attacks import ReferenceOutputs, TargetOutputs
from memberscope.attacks.rmia import FIXED_OFFLINE_A, _log, _offline_prior, pairwise_dominance
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


def _choose_a_slow(attack):
    """The a search as first written: every grid value, full pairwise dominance and roc_auc for each."""
    from memberscope.metrics import roc_auc

    games = calibration_games(attack)
    aucs, used = np.zeros(len(attack.a_grid)), 0
    for member, log_p_x, p_out_x, log_p_z, p_out_z in games:
        for i, a in enumerate(attack.a_grid):
            scores = pairwise_dominance(
                log_p_x - _log(_offline_prior(p_out_x, a)),
                log_p_z - _log(_offline_prior(p_out_z, a)),
                gamma=attack.gamma,
                tie_break=attack.tie_break,
            )
            aucs[i] += roc_auc(member, scores)
        used += 1
    return float(attack.a_grid[int(np.argmax(aucs))]), aucs / used


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("k", [2, 3, 4, 8])
@pytest.mark.parametrize("tie_break,gamma", [(True, 1.0), (True, 2.0), (False, 1.0)])
def test_rmia_fast_a_search_chooses_what_the_full_grid_search_chose(seed, k, tie_break, gamma):
    refs, _ = _outputs(seed, k=k, n=200, m=200)
    attack = attacks.create("rmia-offline", tie_break=tie_break, gamma=gamma).fit(refs)
    chosen, curve = _choose_a_slow(attack)
    assert attack.a_ == chosen
    # the AUCs it evaluated are the full search's (rounded as reported)
    for a, auc in attack.a_auc_.items():
        assert auc == pytest.approx(curve[list(attack.a_grid).index(a)], abs=1e-4)


def test_rmia_offline_runs_with_one_reference_model():
    refs, target = _outputs(7, k=1, n=300, m=200)
    attack = attacks.create("rmia-offline").fit(refs)
    assert attack.a_ == FIXED_OFFLINE_A == 0.33
    assert attack.params()["a_chosen_on"].startswith("fixed (0.33")
    scores = attack.score(target)
    assert scores.shape == (300,) and np.all(np.isfinite(scores))
    # OUT records use the model's probability; IN records invert Pr_IN = a Pr_OUT + 1 - a
    p = attack.p_ref_[0]
    inside = refs.masks[0]
    np.testing.assert_allclose(attack.p_out_[~inside], p[~inside])
    np.testing.assert_allclose(attack.p_out_[inside], np.clip((p[inside] - 0.67) / 0.33, 0, 1))
    # a given a is used as is; a = 0 cannot recover Pr_OUT from an IN model
    assert attacks.create("rmia-offline", a=0.5).fit(refs).a_ == 0.5
    with pytest.raises(InvalidInputError, match="a=0 cannot score the 150 records that every reference model"):
        attacks.create("rmia-offline", a=0.0).fit(refs)
    from memberscope.config import AuditConfig

    assert AuditConfig(reference_models=1, attacks=["loss", "rmia-offline"]).reference_models == 1


def _difficulty_game(seed, *, n=20_000, z=10_000, classes=10, shift=2.0, noise=0.7):
    """Model outputs of an overfit target and one reference model with per-record difficulty.

    Each record has a difficulty shared by every model trained on the same distribution (its
    true-class logit margin without training on it), training on a record raises its margin by
    ``shift``, and each model adds its own noise. This is the structure RMIA's likelihood ratio
    removes and a loss threshold cannot: an easy non-member has a lower loss than a hard member.
    """
    rng = np.random.default_rng(seed)
    labels, pop_labels = rng.integers(0, classes, n), rng.integers(0, classes, z)
    difficulty, pop_difficulty = rng.normal(0, 2, n), rng.normal(0, 2, z)
    member = rng.permutation(n) < n // 2
    reference_in = rng.permutation(n) < n // 2

    def logits(margin, lab):
        out = np.zeros((margin.size, 1, classes))
        out[np.arange(margin.size), 0, lab] = margin
        return out

    def outputs(trained_on):
        return (
            logits(difficulty + shift * trained_on + rng.normal(0, noise, n), labels),
            logits(pop_difficulty + rng.normal(0, noise, z), pop_labels),
        )

    target_logits, target_pop = outputs(member)
    ref_logits, ref_pop = outputs(reference_in)
    target = TargetOutputs(target_logits, labels, target_pop, pop_labels)
    refs = ReferenceOutputs(ref_logits[None], reference_in[None], labels, ref_pop[None], pop_labels)
    return member, refs, target


def test_rmia_offline_with_one_reference_model_beats_loss_on_an_overfit_target():
    from memberscope.metrics import evaluate

    member, refs, target = _difficulty_game(0)
    loss = evaluate(member, attacks.create("loss").fit(None).score(target), fprs=(0.1, 0.01))
    rmia = evaluate(member, attacks.create("rmia-offline").fit(refs).score(target), fprs=(0.1, 0.01))
    assert rmia.auc_ci[0] > loss.auc_ci[1]
    for key in ("0.1", "0.01"):
        assert rmia.tpr_at_fpr_ci[key][0] > loss.tpr_at_fpr_ci[key][1], key


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
