"""Every reported 95% interval holds the true value in simulated games, from 5 to 1,000 non-members.

Seeded simulation (``memberscope.metrics.coverage``): for each game size and each score model (a
normal shift, one near AUC 1, Student t(2), Poisson counts with ties) 200 games are drawn and
evaluated as an audit would, with the default 1,000 bootstrap replicates, and we count the games
whose AUC, TPR@10%FPR and TPR@1%FPR intervals contain the true value. A TPR is checked where its
FPR is resolvable (``n_nonmembers * fpr >= 1``).

Two thresholds, both from the binomial law of 200 games: every (size, model) cell must reach 90%
(a method that truly covers 95% falls below that in 0.1% of cells), and for each number of
non-members the games pooled over member counts and models (800 or more) must reach 92%. Below
the minimum of 5 members or 5 non-members ``evaluate`` refuses (exit 2 at the CLI).
"""

import numpy as np
import pytest

from memberscope.exceptions import InvalidInputError
from memberscope.metrics import MIN_MEMBERS, MIN_NONMEMBERS, evaluate
from memberscope.metrics.coverage import SCORE_MODELS, simulate_coverage

GAMES = 200
FPRS = (0.1, 0.01)
CELL_FLOOR = 0.90
POOLED_FLOOR = 0.92
SIZES = {n0: [(n1, n0) for n1 in (50, 1000)] for n0 in (5, 10, 30, 100, 1000)}
SIZES[5] += [(5, 5)]  # the smallest game evaluate reports on


def _metrics(n_nonmembers):
    return ["auc"] + [f"tpr@{a}" for a in FPRS if n_nonmembers * a >= 1]


@pytest.mark.slow
@pytest.mark.parametrize("n_nonmembers", sorted(SIZES))
def test_reported_intervals_cover_the_truth(n_nonmembers):
    pooled: dict[str, list[float]] = {}
    table = []
    for n_members, n0 in SIZES[n_nonmembers]:
        for seed, name in enumerate(SCORE_MODELS):
            result = simulate_coverage(n_members, n0, name, games=GAMES, fprs=FPRS, seed=seed)
            cells = {"auc": result.auc, **{f"tpr@{a}": result.tpr_at_fpr[str(a)] for a in FPRS}}
            for metric in _metrics(n0):
                pooled.setdefault(metric, []).append(cells[metric])
                table.append((n_members, n0, name, metric, cells[metric], result.methods))
    failures = [row for row in table if row[4] < CELL_FLOOR]
    assert not failures, f"cells below {CELL_FLOOR}: {failures}"
    for metric, values in pooled.items():
        assert np.mean(values) >= POOLED_FLOOR, (metric, values)


@pytest.mark.parametrize("n_members,n_nonmembers", [(4, 4), (4, 1000), (1000, 4), (MIN_MEMBERS - 1, MIN_NONMEMBERS)])
def test_below_the_minimum_evaluate_refuses(n_members, n_nonmembers):
    member = np.r_[np.ones(n_members, bool), np.zeros(n_nonmembers, bool)]
    score = np.random.default_rng(0).normal(size=member.size)
    with pytest.raises(InvalidInputError, match=f"{n_members} members and {n_nonmembers} non-members"):
        evaluate(member, score, fprs=FPRS)
