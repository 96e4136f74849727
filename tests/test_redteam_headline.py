"""The red team's headline without ground truth: the risk level follows the verdicts, and the report says what recon
found.

A trial run without ``--member-column`` printed "Risk: INCONCLUSIVE (no attack metrics with ground truth…)" beside
"Leakage: 73 of 600 records are called members … at least 9.7%", and its report called a forest's natural 1/64
probability grid "probabilities, rounded to 6 decimals". The numbers below are that run's.
"""

from html import unescape

import numpy as np
import pytest

from memberscope.redteam.findings import build_results
from memberscope.redteam.recon import Exposure
from memberscope.redteam.verdicts import Calibration, TargetCheck, conclude
from memberscope.report.console import headline_text
from memberscope.report.html import render_html
from memberscope.report.markdown import render_markdown
from memberscope.report.model import build_report

FPR = 0.01
EXPOSURE = Exposure(
    mode="probabilities", top_k=None, decimals=6, deterministic=True, rate_limited=False, n_classes=6,
    attacks_possible=["lira-offline", "rmia-offline", "shadow", "label-only"], grid=64, noise_std=0.0,
    family_hint="tree-ensemble",
)  # fmt: skip
CALIBRATION = Calibration(
    fpr_target=FPR, threshold=1.0, threshold_band=(0.99, 1.01), shadow_tpr=0.242, shadow_tpr_ci=(0.218, 0.267),
    shadow_fpr=0.01, shadow_fpr_ci=(0.0064, 0.0148), n_shadow_models=2, n_shadow_members=1200,
    n_shadow_nonmembers=2400,
)  # fmt: skip
CHECK = TargetCheck(FPR, 600, 4, 4 / 600, (0.0018, 0.017), "ok", 0.95, 1.2, 0.0196)


def _results(members: int, n: int = 600):
    counts = {"member": members, "not-member": 0, "inconclusive": n - members}
    conclusion = conclude(counts, CALIBRATION, CHECK, attack="rmia-offline")
    labels = np.array(["member"] * members + ["inconclusive"] * (n - members))
    return build_results(
        url="http://127.0.0.1:1/rf/v2", queries_spent=1216, query_budget=None, exposure=EXPOSURE,
        attack="rmia-offline", attack_params={}, calibration=CALIBRATION, verdict_labels=labels,
        config={"seed": 0, "fpr": FPR}, check=CHECK, conclusion=conclusion,
    )  # fmt: skip


@pytest.mark.parametrize(("members", "level"), [(73, "elevated"), (150, "high"), (6, "inconclusive")])
def test_without_ground_truth_the_risk_follows_the_verdicts_everywhere(members, level):
    results = _results(members)
    status = results.sections["redteam"]["conclusion"]["status"]
    assert status == {"elevated": "leakage", "high": "leakage", "inconclusive": "inconclusive"}[level]
    risk = results.risk()
    assert risk.level == level and "no attack metrics" not in risk.reason
    headline = results.to_dict()["headline"]
    assert headline["risk"]["level"] == level and headline["fpr"] == "0.01"
    assert headline["strongest_attack"] == "rmia-offline"
    assert f"Risk: {level.upper()}" in headline_text(results).plain
    model = build_report(results)
    assert f"Risk: {level.upper()}" in render_html(model)
    assert level.upper() in render_markdown(model).upper()


def test_the_report_describes_the_exposure_as_recon_found_it():
    model = build_report(_results(73))
    words = "full probability vectors on a grid of 1/64 (the model's own steps, not rounding)"
    html = unescape(render_html(model))
    assert words in html and "rounded to 6 decimals" not in html
    assert words in render_markdown(model)
