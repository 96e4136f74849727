"""Defense verdicts that never flatter: adaptive attacker views, tie-aware TPR, training draws, the prioritized plan."""

import numpy as np
import pytest

from memberscope.defenses.adaptive import attacker_views, break_ties
from memberscope.defenses.evaluate import DefendConfig, recommend, run_defenses
from memberscope.defenses.plan import assumption, defense_plan, epsilon_for_budget
from memberscope.exceptions import InvalidInputError
from memberscope.metrics import roc_curve, tpr_at_fpr
from memberscope.targets.postprocess import parse_postprocessors

LEAKY = {"dataset": "digits", "model": "mlp", "model_params": {"hidden": [64], "epochs": 30}, "reference_models": 2,
         "pool_size": 600, "population_size": 300, "n_bootstrap": 50, "budget": (0.1, 0.5),
         "use_cache": False}  # fmt: skip


def _strongest(entry, key="0.1"):
    attack = entry["attacks"][entry["strongest_attack"]]
    return attack["tpr_at_fpr"][key], attack["tpr_at_fpr_ci"][key]


def _view(entry, name):
    return next(b for b in entry["attacker_budgets"] if b["view"] == name)


def test_attacker_views_undo_average_and_buy_queries():
    views = {v.name: v for v in attacker_views("temperature:4", repeats=(1, 16))}
    assert set(views) == {"as shown", "undone"}
    probs = np.random.default_rng(0).dirichlet(np.ones(5), size=20)
    np.testing.assert_allclose(views["undone"].postprocessor(probs), probs, rtol=1e-9)  # temperature hides nothing
    noisy = [v.name for v in attacker_views("laplace:0.1", repeats=(1, 4, 20))]
    assert noisy == ["as shown", "averaged over 4", "averaged over 20"]
    label = attacker_views("label-only", label_queries=(16, 64, 256), default_label_queries=16)
    assert [v.name for v in label] == ["as shown", "label-only, 64 queries", "label-only, 256 queries"]
    assert label[2].attack_params == {"label-only": {"n_queries": 256}} and label[2].attacks == ("label-only",)
    # Temperature before rounding: the inverse is applied to what is shown, after the rounding.
    mixed = attacker_views("temperature:2,round:2")
    assert [v.name for v in mixed] == ["as shown", "undone"]
    assert mixed[1].postprocessor.spec == "temperature:2,round:2,temperature:0.5"
    assert [v.name for v in attacker_views("round:2")] == ["as shown"]
    assert parse_postprocessors("top-k:1").granularity == "top-k"


def test_break_ties_interpolates_the_roc_in_expectation():
    """A coarse score with one big tied group across the FPR: the tie-broken TPR at FPR 0.05 averages to the
    linear interpolation between the two ROC points around the group, not the lower point read without it."""
    member = np.r_[np.ones(200, bool), np.zeros(200, bool)]
    score = np.r_[np.full(40, 2.0), np.full(160, 1.0), np.full(200, 1.0)]  # 40 members above, then one tie
    fpr, tpr, _ = roc_curve(member, score)
    assert tpr_at_fpr(fpr, tpr, 0.05) == pytest.approx(0.2)  # no false positive allowed: the tie is skipped
    # Interpolated: 0.05 of the way from (0, 0.2) to (1, 1) along FPR is TPR 0.2 + 0.05 * 0.8 = 0.24.
    draws = [tpr_at_fpr(*roc_curve(member, break_ties(score, np.random.default_rng(s)))[:2], 0.05) for s in range(200)]
    assert np.mean(draws) == pytest.approx(0.24, abs=0.004)
    distinct = np.random.default_rng(1).normal(size=400)
    assert (np.argsort(break_ties(distinct, np.random.default_rng(0))) == np.argsort(distinct)).all()


def test_temperature_never_scores_below_none_and_averaging_recovers_the_noiseless_leakage():
    cfg = DefendConfig(defenses="none,temperature:2,temperature:100,temperature:0.5,laplace:0.1",
                       attacks=["lira-online", "loss", "rmia-online"], noise_repeats=(1, 256), **LEAKY)  # fmt: skip
    defenses = run_defenses(cfg, progress=False).results.sections["defenses"]
    none_tpr, none_ci = _strongest(defenses["none"])
    for name in ("temperature:2", "temperature:100", "temperature:0.5"):
        entry = defenses[name]
        assert entry["invertible"] and assumption(entry) == "none"
        # Undone, the view is the undefended model's: the same strongest leakage, never less.
        assert _view(entry, "undone")["tpr"] == pytest.approx(none_tpr, abs=0.01)
        assert _strongest(entry)[0] >= none_tpr - 0.01
    noisy = defenses["laplace:0.1"]
    averaged = _view(noisy, "averaged over 256")
    assert none_ci[0] <= averaged["tpr"] <= none_ci[1]  # 256 answers averaged: the noise is gone
    assert _view(noisy, "as shown")["queries_per_record"] == 1 and averaged["queries_per_record"] == 256
    assert assumption(noisy) == "slows"


def test_label_only_leakage_does_not_decrease_with_more_queries():
    cfg = DefendConfig(defenses="none,label-only", attacks=["label-only", "loss"], label_only_budgets=(16, 64, 256),
                       **LEAKY)  # fmt: skip
    entry = run_defenses(cfg, progress=False).results.sections["defenses"]["label-only"]
    budgets = [b for b in entry["attacker_budgets"] if b["strongest_attack"] == "label-only"]
    by_queries = [_view(entry, "as shown")] + [_view(entry, f"label-only, {q} queries") for q in (64, 256)]
    assert budgets and [b["queries_per_record"] for b in by_queries] == [
        17,
        65,
        257,
    ]  # as shown: the run's 16 copies + the record
    shown_label_only = entry["attacks"]["label-only"]["tpr_at_fpr"]["0.1"]
    tprs = [shown_label_only] + [b["tpr"] for b in by_queries[1:]]
    lows = [entry["attacks"]["label-only"]["tpr_at_fpr_ci"]["0.1"][0]] + [b["tpr_ci"][0] for b in by_queries[1:]]
    for i in range(1, len(tprs)):
        assert tprs[i] >= lows[i - 1], f"{tprs} fell below the previous budget's CI {lows}"


def test_minimize_is_compared_on_the_same_records_over_several_draws():
    cfg = DefendConfig(**{**LEAKY, "model_params": {"hidden": [32], "epochs": 8}, "pool_size": 400,
                          "population_size": 200}, defenses="none,minimize:0.1", attacks=["loss"], draws=2)  # fmt: skip
    results = run_defenses(cfg, progress=False).results
    entry = results.sections["defenses"]["minimize:0.1"]
    assert len(entry["draws"]) == 2 and entry["draws"][0]["seed"] != entry["draws"][1]["seed"]
    same = entry["minimization"]["undefended_on_same_records"]
    assert 0.0 <= same["tpr"] <= 1.0 and set(entry["minimization"]["layers"]) == {"removed", "neighbours", "others"}
    row = next(r for r in results.sections["plan"]["ranking"] if r["defense"] == "minimize:0.1")
    assert row["compared_with"] == "the undefended model on the same records" and row["group"] == "tried"
    upper = max(d["upper_tpr"] for d in entry["draws"])
    assert results.sections["recommendation"]["upper_tpr"]["minimize:0.1"] == pytest.approx(upper)


def _entry(kind, tpr, ci, acc, *, epsilon=None, delta=None, auc_ci=(0.45, 0.55), **extra):
    attack = {"tpr_at_fpr": {"0.01": tpr}, "tpr_at_fpr_ci": {"0.01": list(ci)}, "auc": 0.5, "auc_ci": list(auc_ci)}
    return {"kind": kind, "test_accuracy": acc, "epsilon": epsilon, "delta": delta, "attacks": {"a": attack},
            "strongest_attack": "a", **extra}  # fmt: skip


def test_plan_ranks_by_leakage_removed_per_accuracy_point_and_groups_by_assumption():
    defenses = {
        "none": _entry("training", 0.08, (0.06, 0.10), 0.90, auc_ci=(0.6, 0.7)),
        "early-stopping": _entry("training", 0.04, (0.03, 0.05), 0.88),  # 4 points for 2: 2 per point
        "dp-sgd:eps=8": _entry("training", 0.02, (0.01, 0.03), 0.78, epsilon=8.0, delta=1e-5),  # 6 for 12: 0.5
        "temperature:2": _entry("output", 0.08, (0.06, 0.10), 0.90, invertible=True),
    }
    plan = defense_plan(defenses, (0.01, 0.05), n_test=2000)
    ranking = [r["defense"] for r in plan["ranking"]]
    assert ranking[:2] == ["early-stopping", "dp-sgd:eps=8"] and ranking[-1] == "none"
    first = plan["ranking"][0]
    assert first["removed_points"] == pytest.approx(4.0) and first["removed_per_point"] == pytest.approx(2.0)
    assert first["removed_points_ci"] == pytest.approx([1.0, 7.0]) and first["cost_points_ci"][0] < 2.0
    assert plan["groups"] == {"formal": ["dp-sgd:eps=8"], "adaptive": ["early-stopping"], "none": ["temperature:2"]}
    assert plan["verdict"] == "defenses within budget"


def test_plan_says_no_defense_needed_at_chance_and_names_next_steps_when_none_meets_the_budget():
    at_chance = {
        "none": _entry("training", 0.01, (0.0, 0.03), 0.9),
        "label-only": _entry("output", 0.0, (0, 0.02), 0.9),
    }
    assert defense_plan(at_chance, (0.01, 0.05))["verdict"] == "no defense needed"
    assert recommend(at_chance, (0.01, 0.05))["defense"] == "none"  # not "use label-only"
    leaky = {"none": _entry("training", 0.2, (0.15, 0.25), 0.9, auc_ci=(0.7, 0.8)),
             "dp-sgd:eps=8": _entry("training", 0.06, (0.04, 0.08), 0.8, epsilon=8.0, delta=1e-5),
             "l2": _entry("training", 0.1, (0.08, 0.12), 0.89)}  # fmt: skip
    plan = defense_plan(leaky, (0.01, 0.05))
    assert plan["verdict"] == "none meets the budget" and plan["closest"][0]["defense"] == "dp-sgd:eps=8"
    assert plan["closest"][0]["gap_points"] == pytest.approx(3.0)
    assert any("smaller ε than 8" in s for s in plan["next_steps"])
    assert any(f"ε <= {epsilon_for_budget(0.01, 0.05, 1e-5):.2f}" in s for s in plan["next_steps"])
    assert epsilon_for_budget(0.01, 0.05, 0.0) == pytest.approx(np.log(5)) and epsilon_for_budget(0.05, 0.05, 0) is None


def test_attacker_budgets_must_be_positive_counts():
    with pytest.raises(InvalidInputError, match="noise_repeats"):
        DefendConfig(noise_repeats="1,x")
    with pytest.raises(InvalidInputError, match="label_only_budgets"):
        DefendConfig(label_only_budgets=[0, 16])
    assert DefendConfig(noise_repeats="20,1,4").noise_repeats == (1, 4, 20)


def test_default_repeats_reach_the_gateways_repeat_threshold():
    from memberscope.defenses.adaptive import DEFAULT_REPEATS
    from memberscope.gateway.policy import ProbingConfig

    # The most an attacker repeats unflagged (the gateway's threshold) is among them, and more for one who spreads
    # its repeats over keys.
    assert ProbingConfig().repeat_threshold in DEFAULT_REPEATS and DefendConfig().noise_repeats == DEFAULT_REPEATS
    assert max(DEFAULT_REPEATS) > ProbingConfig().repeat_threshold


def test_a_random_forest_enters_its_own_regularization_as_a_defense():
    forest = {"estimator": "sklearn.ensemble.RandomForestClassifier", "params": {"n_estimators": 30}}
    cfg = DefendConfig(**{**LEAKY, "model": "sklearn", "model_params": forest},
                       defenses="none,regularize:max_depth=4:min_samples_leaf=20",
                       attacks=["lira-online", "loss", "rmia-online"])  # fmt: skip
    defenses = run_defenses(cfg, progress=False).results.sections["defenses"]
    entry = defenses["regularize:max_depth=4:min_samples_leaf=20"]
    assert entry["regularizes"] == {"max_depth": 4, "min_samples_leaf": 20}
    params = entry["recipe"]["params"]
    assert params["max_depth"] == 4 and params["min_samples_leaf"] == 20 and params["n_estimators"] == 30
    # Shallow trees with 20-record leaves memorize far less than fully grown ones.
    assert _strongest(entry)[1][1] < _strongest(defenses["none"])[1][0]
    assert assumption(entry) == "adaptive"


@pytest.mark.parametrize(
    ("spec", "model", "fragment"),
    [
        ("none,regularize:max_depth=4", "mlp", "--model must be sklearn"),
        ("none,regularize:bogus_param=3", "sklearn", "invalid parameters"),
        ("none,regularize:4", "sklearn", "is not KEY=VALUE"),
    ],
)
def test_bad_regularize_specs_name_the_problem(spec, model, fragment):
    with pytest.raises(InvalidInputError, match=fragment):
        DefendConfig(defenses=spec, model=model)


def test_label_only_only_slows_an_attacker_when_more_queries_leak_more():
    def label_entry(aucs):
        pairs = zip((64, 256), aucs, strict=True)
        views = [{"view": f"label-only, {q} queries", "tpr": 0.02, "auc": a} for q, a in pairs]
        attacks = {"label-only": {"tpr_at_fpr": {"0.01": 0.02}, "auc": 0.60}}
        return {"kind": "output", "stochastic": False, "attacker_budgets": views, "attacks": attacks}

    assert assumption(label_entry([0.62, 0.64]), "0.01") == "slows"
    assert assumption(label_entry([0.59, 0.60]), "0.01") == "adaptive"
    assert assumption({"kind": "output", "stochastic": True}) == "slows"
    assert assumption({"kind": "minimize"}) == "tried" and assumption({"epsilon": 1.0}) == "formal"
