"""Each distinct warning once in every rendering of a run (model card, Markdown), naming the attacks it applies to."""

import json

import numpy as np
import pytest

from memberscope.exceptions import UnresolvableFPRWarning
from memberscope.metrics import evaluate
from memberscope.report.markdown import render_markdown
from memberscope.report.model import build_report
from memberscope.report.model_card import privacy_section
from memberscope.results import Results
from tests.report_fixtures import write_audit_run

ATTACKS = ("loss", "confidence", "rmia-online")


def _few_nonmembers_run(tmp_path):
    """An audit run whose three attacks were scored on 50 non-members: none can resolve FPR 1%."""
    path = write_audit_run(tmp_path / "run", one_run=False)
    data = json.loads((path / "results.json").read_text())
    rng = np.random.default_rng(0)
    member = np.r_[np.ones(200), np.zeros(50)].astype(bool)
    with pytest.warns(UnresolvableFPRWarning):
        data["attacks"] = {
            name: evaluate(member, rng.normal(size=250) + shift * member, fprs=(0.1, 0.01), n_bootstrap=50).to_dict()
            for name, shift in zip(ATTACKS, (0.5, 1.0, 2.0), strict=True)
        }
    data["epsilon"] = None
    data["game"].update(n_members=200, n_nonmembers=50)
    (path / "results.json").write_text(json.dumps(data))
    return path


def test_the_unresolved_fpr_caveat_is_said_once_naming_the_attacks(tmp_path):
    results = Results.from_dict(json.loads((_few_nonmembers_run(tmp_path) / "results.json").read_text()))
    caveat = "FPR 1% cannot be resolved with 50 non-members"
    assert all(any(caveat in w for w in a.metrics.warnings) for a in results.attacks.values())
    model = build_report(results)
    for text in (privacy_section(model), render_markdown(model)):
        lines = [line for line in text.splitlines() if caveat in line]
        assert len(lines) == 1, lines
        assert all(name in lines[0] for name in ATTACKS), lines[0]
