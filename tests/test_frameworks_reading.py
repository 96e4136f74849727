"""The frameworks section and the model card's "Reading" come from the same risk assessment as the headline: no
report text may call a run "not distinguishable from chance" while its risk level is elevated or high, and the
risk reason cites the strongest attack's figures (the new-user trial: rmia-online AUC 0.921, risk ELEVATED, yet
"not distinguishable from chance" everywhere, and a reason quoting lira-online's weaker AUC)."""

import itertools

import pytest

from memberscope.report.frameworks import facts_of
from memberscope.report.model import build_report
from memberscope.report.model_card import render_model_card
from memberscope.results.risk import distinguishable
from memberscope.results.schema import Results


def _attack(auc_ci, tpr01, ci01, tpr10, ci10):
    return {
        "auc": sum(auc_ci) / 2,
        "auc_ci": list(auc_ci),
        "tpr_at_fpr": {"0.1": tpr10, "0.01": tpr01},
        "tpr_at_fpr_ci": {"0.1": list(ci10), "0.01": list(ci01)},
        "fpr_resolvable": {"0.1": True, "0.01": True},
    }


def _results(strong_auc_ci, strong_ci01, strong_ci10, weak_auc_ci, strong_eps) -> Results:
    attacks = {
        # the weaker attack comes first, as lira-online did in the trial
        "lira-online": _attack(weak_auc_ci, 0.005, (0.0, 0.102), 0.05, (0.0, 0.09)),
        "rmia-online": _attack(strong_auc_ci, 0.38, strong_ci01, 0.12, strong_ci10),
    }
    epsilon = {
        "alpha": 0.05,
        "delta": 0.0,
        "claimed": None,
        "clopper_pearson": {"rmia-online": {"epsilon": strong_eps}, "lira-online": {"epsilon": 0.0}},
    }
    return Results.from_dict(
        {
            "schema_version": "2.0",
            "kind": "audit",
            "dataset": {"name": "pima"},
            "game": {"n_members": 384, "n_nonmembers": 288, "n_reference_models": 4},
            "target": {"train_accuracy": 1.0, "test_accuracy": 0.776},
            "attacks": attacks,
            "epsilon": epsilon,
        }
    )


GRID = list(
    itertools.product(
        [(0.884, 0.947), (0.45, 0.60)],  # the strongest attack's AUC CI: above 0.5, or not
        [(0.0, 0.527), (0.02, 0.527), (0.15, 0.6)],  # its TPR CI at the headline FPR 1%: chance, above, ≥ 10×
        [(0.05, 0.2), (0.613, 0.848)],  # its TPR CI at FPR 10%
        [(0.751, 0.843), (0.40, 0.60)],  # the weaker attack's AUC CI
        [0.0, 2.56],  # the strongest attack's empirical ε lower bound
    )
)


@pytest.mark.parametrize(("strong_auc", "strong_ci01", "strong_ci10", "weak_auc", "strong_eps"), GRID)
def test_no_report_text_contradicts_the_risk_level(strong_auc, strong_ci01, strong_ci10, weak_auc, strong_eps):
    results = _results(strong_auc, strong_ci01, strong_ci10, weak_auc, strong_eps)
    assert results.strongest_attack() == "rmia-online"
    risk = results.risk()
    model = build_report(results)
    facts = facts_of(model)
    card = render_model_card(model)
    texts = [card, facts.verdict_text(), *(f.measured for f in model.frameworks)]
    texts += [step for f in model.frameworks for step in f.next_steps]
    strong_evidence = (
        strong_auc[0] > 0.5 or strong_ci01[0] > 0.01 or strong_ci10[0] > 0.1 or strong_eps > 0 or weak_auc[0] > 0.5
    )
    assert distinguishable(risk) == strong_evidence
    if distinguishable(risk):
        assert risk.level in ("elevated", "high")
        assert facts.verdict == "measurable"
        assert not any("not distinguishable" in t for t in texts), risk
        assert risk.reason in facts.verdict_text()
    else:
        assert facts.verdict == "not distinguishable"
        assert "not distinguishable" in facts.verdict_text()
    strongest_counts = strong_auc[0] > 0.5 or strong_ci01[0] > 0.01 or strong_ci10[0] > 0.1 or strong_eps > 0
    if strongest_counts:  # the strongest attack's own figures reach the level: the reason cites them
        assert risk.reason.startswith("rmia-online") or "rmia-online" in risk.reason.split(":")[0], risk.reason
        assert "lira-online" not in risk.reason


def test_the_trial_run_reads_as_measurable_and_cites_rmia_online():
    """The exact figures of the trial: rmia-online strongest (AUC 0.921 [0.884, 0.947], 38.0% [0.0%, 52.7%] at
    1% FPR, 72.9% [61.3%, 84.8%] at 10%, ε ≥ 2.56); lira-online's AUC CI [0.751, 0.843]."""
    results = _results((0.884, 0.947), (0.0, 0.527), (0.613, 0.848), (0.751, 0.843), 2.557)
    risk = results.risk()
    assert risk.level == "elevated"
    assert risk.reason.startswith("rmia-online at FPR 10%")
    assert "61.3%" in risk.reason
    card = render_model_card(build_report(results))
    reading = next(line for line in card.splitlines() if "**Reading:**" in line)
    assert "leakage is measurable" in reading and "rmia-online" in reading


def test_an_epsilon_bound_above_zero_alone_is_distinguishable():
    results = _results((0.45, 0.60), (0.0, 0.527), (0.05, 0.2), (0.40, 0.60), 0.8)
    risk = results.risk()
    assert risk.level == "elevated" and "ε lower bound, 0.80" in risk.reason and risk.reason.startswith("rmia")
    assert facts_of(build_report(results)).verdict == "measurable"
