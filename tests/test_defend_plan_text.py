"""The defend plan's arithmetic and advice: a defense that cuts leakage and gains accuracy is dominant (no
+444-per-point ratio from a clamped denominator), and every recommended ``--defenses`` string is one ``defend``
accepts for the model kind (no DP-SGD for a scikit-learn model). Figures from the new-user trial."""

import re

import pytest

from memberscope.defenses.evaluate import DefendConfig
from memberscope.defenses.plan import defense_plan

FOREST = {"estimator": "sklearn.ensemble.RandomForestClassifier", "params": {"n_estimators": 30}}


def _entry(kind, tpr, ci, acc, **extra):
    attack = {"tpr_at_fpr": {"0.1": tpr}, "tpr_at_fpr_ci": {"0.1": list(ci)}, "auc": 0.8, "auc_ci": [0.75, 0.85]}
    return {"kind": kind, "test_accuracy": acc, "epsilon": None, "delta": None, "attacks": {"rmia-offline": attack},
            "strongest_attack": "rmia-offline", **extra}  # fmt: skip


TRIAL = {
    "none": _entry("training", 0.6910, (0.5298, 0.8491), 0.7646),
    "regularize:min_samples_leaf=10": _entry("training", 0.2465, (0.1726, 0.3668), 0.7729),
    "round:1": _entry("output", 0.6944, (0.5368, 0.8180), 0.7563),
    "label-only": _entry("output", 0.3125, (0.1883, 0.4384), 0.7646),
}


def test_a_defense_that_gains_accuracy_and_cuts_leakage_is_dominant_without_a_ratio():
    plan = defense_plan(TRIAL, (0.1, 0.2), n_test=240, model="sklearn")
    rows = {r["defense"]: r for r in plan["ranking"]}
    reg = rows["regularize:min_samples_leaf=10"]
    assert reg["trade"] == "dominant" and reg["removed_per_point"] is None and reg["cost_points"] < 0
    assert rows["label-only"]["trade"] == "dominant"  # no accuracy cost
    assert rows["round:1"]["trade"] == "no leakage removed" and rows["round:1"]["removed_per_point"] is None
    ranking = [r["defense"] for r in plan["ranking"]]
    assert ranking == ["regularize:min_samples_leaf=10", "label-only", "round:1", "none"]


def test_a_trade_off_keeps_its_ratio_and_ranks_after_dominant_ones():
    defenses = {**TRIAL, "regularize:max_depth=3": _entry("training", 0.10, (0.05, 0.15), 0.7446)}  # 59 for 2
    plan = defense_plan(defenses, (0.1, 0.2), n_test=240, model="sklearn")
    row = next(r for r in plan["ranking"] if r["defense"] == "regularize:max_depth=3")
    assert row["trade"] == "trade-off" and row["removed_per_point"] == pytest.approx(59.1 / 2.0, rel=1e-3)
    assert [r["defense"] for r in plan["ranking"]].index("regularize:max_depth=3") == 2


def test_the_console_plan_prints_dominant_rather_than_a_per_point_figure():
    from memberscope.cli.defend import plan_lines
    from memberscope.results.schema import Results

    results = Results.from_dict({"schema_version": "2.0", "kind": "defend", "attacks": {}})
    results.sections["plan"] = defense_plan(TRIAL, (0.1, 0.2), n_test=240, model="sklearn")
    text = "\n".join(plan_lines(results))
    assert "gains 0.83 accuracy points: dominant (no trade-off)" in text
    assert "per point" not in text.split("round:1")[0]


def _recommended_specs(plan) -> list[str]:
    return [m for step in plan["next_steps"] for m in re.findall(r"--defenses (\S+?)(?:[;,.]?\s|[;.]?$)", step)]


@pytest.mark.parametrize(
    ("model", "params", "extra"),
    [
        ("sklearn", FOREST, {}),
        ("mlp", {}, {}),
        ("sklearn", FOREST, {"regularize:min_samples_leaf=10": None}),  # without a measured regularize entry
    ],
)
def test_every_recommended_defenses_string_is_accepted_for_the_model_kind(model, params, extra):
    defenses = {k: v for k, v in TRIAL.items() if k not in extra}
    if model == "mlp":  # a torch run has no regularize: entries; l2 stands in
        defenses.pop("regularize:min_samples_leaf=10", None)
        defenses["l2"] = _entry("training", 0.2465, (0.1726, 0.3668), 0.7729)
    plan = defense_plan(defenses, (0.1, 0.2), n_test=240, model=model)
    assert plan["verdict"] == "none meets the budget"
    specs = _recommended_specs(plan)
    assert specs, plan["next_steps"]
    for spec in specs:
        DefendConfig(dataset="digits", model=model, model_params=params, defenses=spec)  # raises if not accepted
    if model == "sklearn":
        assert not any("dp-sgd" in s for s in specs)
        assert not any("combine it with dp-sgd" in s for s in plan["next_steps"])
    else:
        assert any(s.startswith("none,dp-sgd:eps=") for s in specs)
