"""Training-draw variance (``--targets N``), membership probabilities and slices (issue 15)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from memberscope.api import audit, pool_sizes
from memberscope.attacks import ReferenceOutputs, TargetOutputs, create
from memberscope.config import AuditConfig
from memberscope.engine.draws import leave_one_out, membership_probability, summarize_draws
from memberscope.engine.run import AuditPlan, attack_inputs, obtain_outputs
from memberscope.exceptions import InvalidInputError
from memberscope.game import derive_seed, make_game, split_pool
from memberscope.progress import progress_bars

SMALL = dict(
    dataset="digits",
    model="mlp",
    model_params={"hidden": [32], "epochs": 12},
    reference_models=4,
    pool_size=400,
    population_size=200,
    attacks=["loss", "lira-online", "rmia-offline"],
    n_bootstrap=50,
    seed=5,
    use_cache=False,
)


def _tpr_at_fpr_by_brute_force(member: np.ndarray, score: np.ndarray, alpha: float) -> float:
    """The largest TPR over every threshold whose FPR does not exceed alpha (all thresholds tried)."""
    best = 0.0
    for t in np.r_[np.inf, np.unique(score)]:
        flagged = score >= t
        if flagged[~member].mean() <= alpha:
            best = max(best, flagged[member].mean())
    return best


@pytest.fixture(scope="module")
def four_draws():
    return audit(targets=4, progress=False, **SMALL)


def test_targets_4_equals_auditing_each_reference_model_by_hand(four_draws):
    from memberscope import datasets
    from memberscope.cache import ArtifactCache
    from memberscope.recipes import create as create_recipe

    config = AuditConfig(**SMALL)
    dataset = datasets.load(config.dataset, seed=config.seed)
    pool_size, population_size = pool_sizes(dataset.n_records, config)
    pool_idx, population_idx = split_pool(
        dataset.n_records,
        pool_size=pool_size,
        population_size=population_size,
        seed=derive_seed(config.seed, "split", 0),
    )
    plan = AuditPlan(
        config=config,
        dataset=dataset,
        pool_idx=pool_idx,
        population_idx=population_idx,
        game=make_game(pool_size, config.reference_models, seed=config.seed),
        recipe=create_recipe(config.model, **config.model_params),
    )
    with progress_bars(enabled=False) as bars:
        trained = obtain_outputs(plan, cache=ArtifactCache(None), bars=bars)
    inputs = attack_inputs(plan, trained)
    refs = inputs.references
    section = four_draws.results.sections["draws"]
    assert section["n_draws"] == 4
    assert [d["draw"] for d in section["draws"]] == [
        "target",
        "reference model 0",
        "reference model 1",
        "reference model 2",
    ]

    for j in range(3):  # reference model j as the target, the other three as its references, by hand
        others = [i for i in range(4) if i != j]
        target = TargetOutputs(
            logits=refs.logits[j],
            labels=refs.labels,
            population_logits=refs.population_logits[j],
            population_labels=refs.population_labels,
        )
        references = ReferenceOutputs(
            logits=refs.logits[others],
            masks=refs.masks[others],
            labels=refs.labels,
            population_logits=refs.population_logits[others],
            population_labels=refs.population_labels,
        )
        member = refs.masks[j]
        assert section["draws"][j + 1]["n_members"] == int(member.sum())
        for name in ("loss", "rmia-offline"):  # lira-online is not re-run on the draws (below)
            attack = create(name)  # none of these draws randomness
            score = attack.fit(references).score(target)
            recorded = section["attacks"][name]
            assert recorded["auc"]["values"][j + 1] == pytest.approx(roc_auc_score(member, score), abs=1e-6)
            for key in ("0.1", "0.01"):
                expected = _tpr_at_fpr_by_brute_force(member, score, float(key))
                assert recorded["tpr_at_fpr"][key]["values"][j + 1] == pytest.approx(expected, abs=1e-6)

    # Online attacks are not re-run on reference models' draws: every record is IN half of the reference models, so
    # a draw's members are IN one other model fewer than its non-members (a bias toward "no leakage").
    assert list(section["excluded"]) == ["lira-online"] and "lira-online" not in section["attacks"]
    masks = refs.masks
    for j in range(3):
        others = np.delete(masks, j, axis=0).sum(axis=0)
        assert set(others[masks[j]]) == {1} and set(others[~masks[j]]) == {2}  # the imbalance, K = 4

    # The first draw is the target, whose figures are the audit's own.
    for name, entry in four_draws.results.attacks.items():
        if name == "lira-online":
            continue
        assert section["attacks"][name]["auc"]["values"][0] == pytest.approx(entry.auc, abs=1e-6)
        values = section["attacks"][name]["auc"]["values"]
        assert section["attacks"][name]["auc"]["mean"] == pytest.approx(np.mean(values), abs=1e-6)
        assert section["attacks"][name]["auc"]["std"] == pytest.approx(np.std(values, ddof=1), abs=1e-6)
        assert section["attacks"][name]["auc"]["max"] == pytest.approx(max(values), abs=1e-6)


def test_targets_validated_before_training():
    with pytest.raises(InvalidInputError, match="targets=6 needs at least 5 reference models"):
        AuditConfig(**{**SMALL, "targets": 6})
    with pytest.raises(InvalidInputError, match="besides the one playing the target"):
        AuditConfig(**{**SMALL, "reference_models": 2, "targets": 2, "attacks": ["lira-online"]})
    with pytest.raises(InvalidInputError, match="targets must be an integer >= 1; got 0"):
        AuditConfig(**{**SMALL, "targets": 0})


def test_one_draw_says_so_and_writes_membership_probability(tmp_path):
    result = audit(out=str(tmp_path / "run"), progress=False, **SMALL)
    data = json.loads((tmp_path / "run" / "results.json").read_text())
    assert "draws" not in data  # the figures are for one training draw: the report says so (test_report_draws)
    block = data["membership_probability"]
    from memberscope.results import strongest_attack

    # The strongest attack that uses no IN reference model (an online attack's leave-one-out calibration is biased).
    offline = {k: v for k, v in result.results.attacks.items() if k not in ("lira-online", "rmia-online")}
    assert block["attack"] == strongest_attack(offline)
    assert block["calibration_draws"] == 1
    import pandas as pd

    frame = pd.read_csv(tmp_path / "run" / "scores.csv")
    p = frame["membership_probability"].to_numpy()
    assert ((p > 0) & (p < 1)).all()  # never "certainly (not) a member" from a finite calibration set
    # Monotone in the strongest attack's score, and informative: members are more probable on average.
    score = frame[block["attack"]].to_numpy()
    order = np.argsort(score, kind="stable")
    assert (np.diff(p[order]) >= -1e-12).all()
    member = frame["member"].to_numpy().astype(bool)
    assert p[member].mean() > p[~member].mean()


def test_membership_probability_is_calibrated_on_a_known_model():
    # Scores of members ~ N(1, 1), non-members ~ N(0, 1): P(member | s) = sigmoid(s - 1/2) at prior 1/2.
    rng = np.random.default_rng(0)
    n = 20_000
    member = rng.random(n) < 0.5
    score = rng.normal(member.astype(float), 1.0)
    test_score = np.array([-1.0, 0.0, 0.5, 1.0, 2.0])
    p = membership_probability(test_score, [(member, score)], prior=0.5)
    np.testing.assert_allclose(p, 1 / (1 + np.exp(-(test_score - 0.5))), atol=0.04)
    # At a prior of 1%, the odds shrink by 99: the same scores are far less likely members.
    p_rare = membership_probability(test_score, [(member, score)], prior=0.01)
    p = membership_probability(test_score, [(member, score)], prior=float(member.mean()))  # the calibration's own
    odds = p / (1 - p) * (0.01 / 0.99) / (member.mean() / (1 - member.mean()))
    np.testing.assert_allclose(p_rare, odds / (1 + odds), atol=1e-9)
    with pytest.raises(InvalidInputError, match="members and non-members"):
        membership_probability(test_score, [(np.ones(3, bool), np.zeros(3))], prior=0.5)
    with pytest.raises(InvalidInputError, match="prior"):
        membership_probability(test_score, [(member, score)], prior=1.0)


def test_leave_one_out_refuses_a_bad_index_and_summary_of_one_draw():
    refs = ReferenceOutputs(
        logits=np.zeros((2, 3, 1, 2)), masks=np.array([[1, 0, 1], [0, 1, 0]], bool), labels=np.array([0, 1, 0])
    )
    target = TargetOutputs(logits=np.zeros((3, 1, 2)), labels=np.array([0, 1, 0]))
    with pytest.raises(InvalidInputError, match=r"expected an index in \[0, 2\)"):
        leave_one_out(target, refs, 2)
    _, r, member = leave_one_out(target, refs, 1)
    assert r.n_models == 1 and member.tolist() == [False, True, False]
    assert summarize_draws([])["n_draws"] == 0


def test_slices_by_loss_percentile_and_prediction(four_draws):
    entry = four_draws.results.attacks["loss"]
    assert set(entry.per_slice) == {"loss_percentile", "prediction"}
    assert set(entry.per_slice["prediction"]) <= {"correct", "incorrect"}
    deciles = entry.per_slice["loss_percentile"]
    assert all(k.endswith("%") for k in deciles)
    # Written and read back.
    from memberscope.results import Results

    again = Results.from_dict(json.loads(json.dumps(four_draws.results.to_dict())))
    assert again.attacks["loss"].per_slice["prediction"]["correct"].auc == pytest.approx(
        entry.per_slice["prediction"]["correct"].auc
    )


def test_gate_over_draws_mean_worst_and_t_interval(four_draws, tmp_path):
    from scipy import stats

    from memberscope.report.gate import check_budget

    results = four_draws.results
    values = np.array(results.sections["draws"]["attacks"]["loss"]["auc"]["values"], dtype=float)
    assert len(values) == 4
    mean, worst = values.mean(), values.max()
    upper = mean + stats.t.ppf(0.975, 3) * values.std(ddof=1) / 2.0
    between = (mean + worst) / 2  # passes on the mean, fails on the worst draw (when the draws differ)
    assert worst > mean
    assert check_budget(results, max_auc=between, attacks=["loss"], over_draws="mean").passed
    failed = check_budget(results, max_auc=between, attacks=["loss"], over_draws="worst")
    assert not failed.passed and failed.violations[0].value == pytest.approx(worst)
    assert "worst of 4 training draws" in failed.summary()
    if upper < 1:
        just_below = check_budget(results, max_auc=upper - 1e-6, attacks=["loss"], over_draws="mean", use_upper_ci=True)
        assert not just_below.passed and just_below.violations[0].compared == pytest.approx(upper)
        assert check_budget(
            results, max_auc=upper + 1e-6, attacks=["loss"], over_draws="mean", use_upper_ci=True
        ).passed
    # TPR budgets read the draws' TPRs at the recorded FPR keys.
    tprs = results.sections["draws"]["attacks"]["loss"]["tpr_at_fpr"]
    key = next(iter(tprs))
    worst_tpr = max(tprs[key]["values"])
    if worst_tpr > 0:
        v = check_budget(results, max_tpr_at_fpr={float(key): worst_tpr * 0.999}, attacks=["loss"], over_draws="worst")
        assert not v.passed and v.violations[0].value == pytest.approx(worst_tpr)
    with pytest.raises(InvalidInputError, match="'median'"):
        check_budget(results, max_auc=0.9, over_draws="median")
    with pytest.raises(InvalidInputError, match="no interval"):
        check_budget(results, max_auc=0.9, over_draws="worst", use_upper_ci=True)


def test_gate_over_draws_refuses_a_single_draw_run():
    from memberscope.report.gate import check_budget

    one = audit(progress=False, **{**SMALL, "attacks": ["loss"], "reference_models": 0, "n_bootstrap": 0})
    with pytest.raises(InvalidInputError, match="several training draws"):
        check_budget(one.results, max_auc=0.9, over_draws="mean")


def test_gate_cli_over_draws(four_draws, tmp_path, capsys):
    from cli_helpers import run_cli

    four_draws.write(tmp_path)
    values = four_draws.results.sections["draws"]["attacks"]["loss"]["auc"]["values"]
    budget = str((np.mean(values) + max(values)) / 2)
    common = ["gate", str(tmp_path), "--max-auc", budget, "--attacks", "loss"]
    code, out, _ = run_cli(*common, "--over-draws", "mean", capsys=capsys)
    assert code == 0 and "mean of 4 training draws" in out
    assert run_cli(*common, "--over-draws", "worst", capsys=capsys)[0] == 1
    code, _, err = run_cli(*common, "--over-draws", "median", capsys=capsys)
    assert code == 2 and "'median'" in err


def test_reports_show_the_spread_slices_and_membership_probability(four_draws):
    from memberscope.report.html import render_html
    from memberscope.report.markdown import render_markdown
    from memberscope.report.model import build_report

    model = build_report(four_draws.results)
    assert [r.name for r in model.draws] == ["loss", "rmia-offline"]
    assert "Not re-run on the reference models' draws" in model.draw_note and "lira-online" in model.draw_note
    loss = four_draws.results.sections["draws"]["attacks"]["loss"]["auc"]
    assert model.draws[0].auc_mean == pytest.approx(np.mean(loss["values"]))
    assert model.draws[0].auc_worst == pytest.approx(max(loss["values"]))
    titles = [t for t, _ in model.slices]
    assert "target loss decile" in titles and "target prediction" in titles
    html, md = render_html(model), render_markdown(model)
    for text in (html, md):
        assert "Spread over training draws" in text and "membership_probability" in text
        assert f"{np.mean(loss['values']):.3f}" in text
    assert "0-10%" in html and "incorrect" in html

    one = audit(progress=False, **{**SMALL, "attacks": ["loss"], "reference_models": 0, "n_bootstrap": 0})
    one_model = build_report(one.results)
    assert one_model.draws == [] and "one training draw" in one_model.draw_note
    assert "one training draw" in render_html(one_model) and "one training draw" in render_markdown(one_model)


def test_member_prior_reweights_ppv_by_bayes_rule_and_reaches_the_reports(tmp_path, capsys):
    from cli_helpers import run_cli

    from memberscope.report.markdown import render_markdown
    from memberscope.report.model import build_report

    result = audit(progress=False, member_prior=0.01, **{**SMALL, "attacks": ["loss"], "reference_models": 0})
    section = result.results.sections["ppv"]
    assert section["member_prior"] == 0.01
    metrics = result.results.attacks["loss"].metrics
    entry = section["attacks"]["loss"]
    member = result.member
    score = result.scores["loss"]
    for key, tpr in metrics.tpr_at_fpr.items():
        fpr = metrics.operating_fpr[key]
        if not metrics.fpr_resolvable[key] or tpr + fpr == 0:  # no precision is claimed from no evidence
            assert entry["at_game_prior"][key] is None and entry["at_member_prior"][key] is None
            continue
        # At the game's prior: counted on the game at the operating threshold (brute force).
        threshold = min((t for t in np.unique(score) if (score[~member] >= t).mean() <= float(key)), default=np.inf)
        flagged = score >= threshold
        if flagged.any():
            assert entry["at_game_prior"][key] == pytest.approx(member[flagged].mean())
        expected = 0.01 * tpr / (0.01 * tpr + 0.99 * fpr)
        assert entry["at_member_prior"][key] == pytest.approx(expected)
    note = build_report(result.results).ppv_note
    assert note is not None and "if 1.0% of the people" in note
    assert "Precision (PPV)" in render_markdown(build_report(result.results))
    code, _, err = run_cli(
        "audit", "--dataset", "digits", "--member-prior", "1.5", "--out", str(tmp_path), capsys=capsys
    )
    assert code == 2 and "member_prior" in err and "1.5" in err


def test_the_model_card_shows_the_risk_level_and_the_spread_over_draws(four_draws):
    from memberscope.report.model import build_report
    from memberscope.report.model_card import render_model_card

    card = render_model_card(build_report(four_draws.results))
    assert f"**Risk: {four_draws.results.risk().level.upper()}**" in card
    worst = max(four_draws.results.sections["draws"]["attacks"]["loss"]["auc"]["values"])
    assert "worst AUC" in card and f"{worst:.3f}" in card
    assert "Spread over 4 training draws" in card and "lira-online" in card  # the online attack left out, said so
