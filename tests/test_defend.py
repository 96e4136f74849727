"""`memberscope defend`: defense specs, adaptive observation of output defenses, the recommendation, the CLI."""

import json
import math

import numpy as np
import pytest
from cli_helpers import run_cli

from memberscope.attacks.label_only import calibrated_shares
from memberscope.defenses.evaluate import observe, parse_defenses, recommend
from memberscope.exceptions import InvalidInputError
from memberscope.signals import log_probabilities
from memberscope.targets.postprocess import parse_postprocessors


def test_parse_defenses_training_and_output():
    specs = {s.name: s for s in parse_defenses("none,l2:1e-3,dp-sgd:eps=1:clip=0.5,ensemble,temperature:2+round:2")}
    assert specs["none"].kind == "training" and specs["none"].params == {}
    assert specs["l2:1e-3"].params == {"weight_decay": 1e-3}
    assert specs["dp-sgd:eps=1:clip=0.5"].params == {"dp_epsilon": 1, "max_grad_norm": 0.5}
    assert specs["ensemble"].params == {"ensemble": 4}
    assert specs["temperature:2+round:2"].kind == "output"
    assert specs["temperature:2+round:2"].output == "temperature:2,round:2"


@pytest.mark.parametrize("spec, fragment", [("bogus", "unknown defense 'bogus'"), ("round:x", "not a number"),
                                            ("none,none", "more than once"), ("", "no defense")])  # fmt: skip
def test_bad_defense_specs_name_the_problem(spec, fragment):
    with pytest.raises(InvalidInputError, match=fragment):
        parse_defenses(spec)


def test_observe_is_finite_and_matches_the_policy():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(50, 1, 10)) * 8
    probs = np.exp(log_probabilities(logits[:, 0]))
    top1 = observe(logits, parse_postprocessors("top-k:1"), rng=rng)[:, 0]
    assert np.isfinite(top1).all()
    # The shown top probability is kept; the nine withheld classes share the rest equally.
    np.testing.assert_allclose(np.exp(top1).max(axis=1), probs.max(axis=1), rtol=1e-9)
    rest = np.sort(np.exp(top1), axis=1)[:, :-1]
    np.testing.assert_allclose(rest, np.repeat(rest[:, :1], 9, axis=1), rtol=1e-9)
    rounded = np.exp(log_probabilities(observe(logits, parse_postprocessors("round:2"), rng=rng)[:, 0]))
    expected = np.clip(np.round(probs, 2), 1e-30, None)  # memberscope.targets.outputs.PROBABILITY_FLOOR
    np.testing.assert_allclose(rounded, expected / expected.sum(axis=1, keepdims=True), rtol=1e-9)
    label = np.exp(observe(logits, parse_postprocessors("label-only"), rng=rng)[:, 0])
    assert (label.argmax(axis=1) == probs.argmax(axis=1)).all() and label.max() > 0.999


def test_label_only_score_calibrates_with_out_models():
    masks = np.array([[True, False, True], [False, True, True]])
    reference_correct = np.array([[9.0, 3.0, 5.0], [7.0, 1.0, 6.0]])
    score = calibrated_shares(np.array([10.0, 2.0, 4.0]), reference_correct, masks)
    # record 0: OUT model 1 (7); record 1: OUT model 0 (3); record 2: no OUT model, mean of all counts (31/6).
    np.testing.assert_allclose(score, [3.0, -1.0, 4.0 - 31 / 6])


def _entry(acc, upper):
    attack = {"tpr_at_fpr": {"0.01": upper / 2}, "tpr_at_fpr_ci": {"0.01": [0.0, upper]}, "auc": 0.5}
    return {"test_accuracy": acc, "accuracy_cost": 0.9 - acc, "attacks": {"a": attack}, "strongest_attack": "a"}


def test_recommendation_is_the_most_accurate_defense_within_budget():
    defenses = {"none": _entry(0.9, 0.2), "l2": _entry(0.88, 0.04), "dp": _entry(0.7, 0.011), "x": _entry(0.89, 0.06)}
    rec = recommend(defenses, (0.01, 0.05))
    assert rec["defense"] == "l2" and "l2" in rec["reason"]
    assert recommend(defenses, (0.01, 0.01))["defense"] is None


def test_defend_cli_writes_results_json_and_report(tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, _ = run_cli(
        "defend", "--dataset", "digits", "--defenses", "none,label-smoothing:0.2,round:1,label-only",
        "--model-param", "hidden=[32]", "--model-param", "epochs=8", "-k", "2", "--pool-size", "500",
        "--population-size", "300", "--n-bootstrap", "50", "--budget", "0.1:0.5", "--out", str(out),
        "--no-progress", capsys=capsys,
    )  # fmt: skip
    assert code == 0, stdout
    results = json.loads((out / "results.json").read_text())
    # The console opens with the headline summary.md and report.html open with: the undefended model's risk level.
    level = results["headline"]["risk"]["level"].upper()
    assert f"Undefended model: Risk: {level}" in " ".join(stdout.split())
    assert results["kind"] == "defend" and (out / "frontier.png").stat().st_size > 1000
    assert (out / "report.html").stat().st_size > 1000
    assert set(results["defenses"]) == {"none", "label-smoothing:0.2", "round:1", "label-only"}
    for entry in results["defenses"].values():
        assert {"test_accuracy", "epsilon", "delta", "train_seconds", "attacks"} <= set(entry)
        assert 0.0 <= entry["test_accuracy"] <= 1.0
        assert {"lira-online", "rmia-online", "label-only"} <= set(entry["attacks"])
        for metrics in entry["attacks"].values():
            assert 0.0 <= metrics["auc"] <= 1.0 and "0.1" in metrics["tpr_at_fpr_ci"]
    # The same trained target behind every output defense, so its accuracy under label-only is the undefended one.
    assert results["defenses"]["label-only"]["test_accuracy"] == results["defenses"]["none"]["test_accuracy"]
    assert results["defenses"]["none"]["epsilon"] is None
    rec = results["recommendation"]
    assert set(rec) >= {"budget", "defense", "reason"} and rec["budget"]["fpr"] == 0.1
    if rec["defense"] is not None:
        chosen = results["defenses"][rec["defense"]]
        assert max(m["tpr_at_fpr_ci"]["0.1"][1] for m in chosen["attacks"].values()) <= 0.5
    assert "recommendation" in stdout and math.isfinite(results["timings"]["total_seconds"])
    # The plan is printed, written and rendered; the label-only defense is also attacked at larger query budgets.
    assert "plan:" in stdout and results["plan"]["verdict"] in stdout
    views = [v["view"] for v in results["defenses"]["label-only"]["attacker_budgets"]]
    assert views == ["as shown", "label-only, 64 queries", "label-only, 256 queries"]
    html = (out / "report.html").read_text()
    assert "What the attacker can do" in html and f"Plan: {results['plan']['verdict']}" in html


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--defenses", "none,bogus"], "unknown defense 'bogus'"),
        (["--defenses", "dp-sgd:eps=-1"], "dp_epsilon must be > 0"),
        (["--budget", "0.01"], "FPR:TPR"),
        (["-k", "1"], "reference_models"),
        (["--model", "sklearn", "--defenses", "none,l2"], "options of the torch recipes"),
    ],
)
def test_defend_cli_bad_input_exits_2(args, fragment, tmp_path, capsys):
    code, _, stderr = run_cli("defend", *args, "--out", str(tmp_path), "--no-progress", capsys=capsys)
    assert code == 2 and fragment in stderr and "Traceback" not in stderr


def test_uniqueness_and_neighbours_match_brute_force():
    from memberscope.defenses.minimization import nearest_same_class, rank_members, uniqueness

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 1, 2, 2)), rng.integers(0, 3, size=60)
    positions = np.arange(0, 60, 2)
    flat = X.reshape(60, -1)
    expected = []
    for p in positions:
        same = [q for q in positions if q != p and y[q] == y[p]]
        expected.append(min(np.linalg.norm(flat[p] - flat[q]) for q in same) if same else np.inf)
    np.testing.assert_allclose(uniqueness(X, y, positions), expected)
    near = nearest_same_class(X, y, np.array([1, 3]), positions, 3)
    for q, found in near.items():
        same = sorted((q2 for q2 in positions if y[q2] == y[q]), key=lambda q2: np.linalg.norm(flat[q] - flat[q2]))
        assert list(found) == same[:3]
    member = np.zeros(60, dtype=bool)
    member[positions] = True
    scores = rng.normal(size=60)
    order = rank_members("vulnerability", member=member, scores=scores)
    assert list(order) == list(positions[np.argsort(-scores[positions])])
    by_unique = rank_members("uniqueness", member=member, X=X, y=y)
    assert by_unique[0] == positions[np.argmax(expected)]


def test_minimize_defense_reports_the_onion_layers(tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, _ = run_cli(
        "defend", "--dataset", "digits", "--defenses", "none,minimize:0.1", "--attacks", "lira-online,loss",
        "--model-param", "hidden=[32]", "--model-param", "epochs=8", "-k", "2", "--pool-size", "400",
        "--population-size", "200", "--n-bootstrap", "20", "--out", str(out), "--no-progress", capsys=capsys,
    )  # fmt: skip
    assert code == 0, stdout
    entry = json.loads((out / "results.json").read_text())["defenses"]["minimize:0.1"]
    m = entry["minimization"]
    assert len(m["removed_records"]) == 20 and m["layers"]["removed"]["n_records"] == 20
    assert m["layers"]["neighbours"]["n_records"] + m["layers"]["others"]["n_records"] == 180
    assert m["layers"]["neighbours"]["after"] is not None and m["layers"]["removed"]["after"] is None
    # The attacks run on the 380 remaining pool records: 180 members, 200 non-members.
    assert entry["attacks"]["loss"]["n_members"] == 180 and entry["attacks"]["loss"]["n_nonmembers"] == 200


def test_noise_defenses_face_attackers_who_average_repeated_queries(tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, _ = run_cli(
        "defend", "--dataset", "digits", "--defenses", "none,gaussian:0.2,consistent-gaussian:0.2",
        "--attacks", "lira-online", "--model-param", "hidden=[32]", "--model-param", "epochs=8", "-k", "2",
        "--pool-size", "500", "--population-size", "300", "--n-bootstrap", "50", "--budget", "0.1:0.5",
        "--out", str(out), "--no-progress", capsys=capsys,
    )  # fmt: skip
    assert code == 0, stdout
    defenses = json.loads((out / "results.json").read_text())["defenses"]
    fresh, consistent = defenses["gaussian:0.2"]["attacks"], defenses["consistent-gaussian:0.2"]["attacks"]
    averaged = [f"lira-online (averaging {m} queries)" for m in (10, 20, 100)]  # DEFAULT_REPEATS beyond 1
    assert set(fresh) == {"lira-online", *averaged}
    # Averaging 100 answers brings the attack back to the undefended model's; one noisy answer understates it.
    none = defenses["none"]["attacks"]["lira-online"]["auc"]
    assert fresh[averaged[-1]]["auc"] > fresh["lira-online"]["auc"] and fresh[averaged[-1]]["auc"] >= none - 0.03
    assert defenses["gaussian:0.2"]["strongest_attack"] in averaged
    assert set(consistent) == {"lira-online"}  # a repeat gets the same answer: nothing to average
