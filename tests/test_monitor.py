"""Privacy per epoch, framework-free: the epoch auditor against independent references, the stopping rule on
hand-made curves, files and plot, and the early-stopping defense stopping at a given epoch."""

import json

import numpy as np
import pytest
from scipy.special import logsumexp
from sklearn.metrics import roc_auc_score

from memberscope.defenses.evaluate import parse_defenses
from memberscope.exceptions import InvalidInputError
from memberscope.monitor import EpochAuditor, EpochRecord, PrivacyCurve, default_attacks

N, C, POP = 200, 4, 300


def _logits(rng, labels, boost):
    out = rng.normal(size=(labels.size, C))
    out[np.arange(labels.size), labels] += boost
    return out


@pytest.fixture
def game():
    rng = np.random.default_rng(0)
    return rng, rng.integers(0, C, N), rng.integers(0, C, N), rng.integers(0, C, POP)


def test_loss_attack_matches_an_independent_cross_entropy(game):
    rng, ym, yn, _ = game
    auditor = EpochAuditor(ym, yn, n_bootstrap=50)
    assert [a.label for a in auditor.attacks] == ["loss"]
    mem, non = _logits(rng, ym, 3.0), _logits(rng, yn, 1.0)
    record = auditor.audit(1, mem, non)
    logits = np.concatenate([mem, non])
    labels = np.concatenate([ym, yn])
    loss = logsumexp(logits, axis=1) - logits[np.arange(labels.size), labels]
    member = np.r_[np.ones(N), np.zeros(N)]
    assert record.attacks["loss"]["auc"] == pytest.approx(roc_auc_score(member, -loss))
    assert record.train_accuracy == pytest.approx(np.mean(mem.argmax(1) == ym))
    assert record.test_accuracy == pytest.approx(np.mean(non.argmax(1) == yn))
    assert record.train_loss == pytest.approx(loss[:N].mean()) and record.test_loss == pytest.approx(loss[N:].mean())
    assert record.loss_gap > 0 and record.accuracy_gap > 0
    # the leakage is the strongest attack's TPR at 1% FPR, and the CI brackets it
    assert record.headline == "0.01" and record.tpr == record.attacks["loss"]["tpr_at_fpr"]["0.01"]
    assert record.tpr_ci[0] <= record.tpr <= record.tpr_ci[1]


def test_null_model_is_not_distinguishable(game):
    """Members and non-members from one distribution (a model that never saw the data): AUC ≈ 0.5 in the CI."""
    rng, ym, yn, yp = game
    refs = (rng.normal(size=(4, 2 * N, C)), rng.normal(size=(4, POP, C)))
    auditor = EpochAuditor(ym, yn, yp, reference_logits=refs, n_bootstrap=200)
    assert [a.label for a in auditor.attacks] == ["loss", "loss-calibrated", "rmia-offline"]
    record = auditor.audit(1, _logits(rng, ym, 1.0), _logits(rng, yn, 1.0), _logits(rng, yp, 1.0))
    for label, m in record.attacks.items():
        assert m["auc_ci"][0] <= 0.5 <= m["auc_ci"][1], label


def test_default_attacks_follow_what_is_given():
    assert [a.label for a in default_attacks(population=False, references=8)] == ["loss"]
    assert [a.label for a in default_attacks(population=True, references=1)] == ["loss", "loss-calibrated"]


def test_bad_inputs_are_named(game):
    _, ym, yn, yp = game
    with pytest.raises(InvalidInputError, match=r"50 non-members cannot resolve TPR at FPR 0\.01"):
        EpochAuditor(ym, yn[:50])
    with pytest.raises(InvalidInputError, match="needs population records"):
        EpochAuditor(ym, yn, attacks=[("cal", "loss", {"calibration": "class"})])
    with pytest.raises(InvalidInputError, match=r"needs at least \d+ reference models; got 0"):
        EpochAuditor(ym, yn, yp, attacks=["rmia-offline"])
    with pytest.raises(InvalidInputError, match="class indices"):
        EpochAuditor(ym + 0.5, yn)
    auditor = EpochAuditor(ym, yn, n_bootstrap=0)
    with pytest.raises(InvalidInputError, match=r"member logits must have shape \(200, n_classes\)"):
        auditor.audit(1, np.zeros((10, C)), np.zeros((N, C)))


def _record(epoch, tpr, test_accuracy):
    metrics = {
        "auc": 0.5 + tpr,
        "auc_ci": [0.4, 0.9],
        "tpr_at_fpr": {"0.01": tpr},
        "tpr_at_fpr_ci": {"0.01": [max(tpr - 0.01, 0), tpr + 0.01]},
        "fpr_resolvable": {"0.01": True},
        "n_members": 2000,
        "n_nonmembers": 2000,
    }
    return EpochRecord.from_metrics(
        epoch=epoch,
        step=None,
        attacks={"loss": metrics},
        headline="0.01",
        train_accuracy=1.0,
        test_accuracy=test_accuracy,
        train_loss=0.1,
        test_loss=1.0,
    )


def _curve(points):
    return PrivacyCurve(_record(e, t, a) for e, (t, a) in enumerate(points, start=1))


def test_stop_at_the_last_epoch_before_leakage_rises_with_accuracy_flat():
    # accuracy climbs to epoch 3, then is flat; leakage jumps at epoch 5
    curve = _curve([(0.01, 0.60), (0.02, 0.70), (0.03, 0.80), (0.035, 0.801), (0.09, 0.802), (0.2, 0.80)])
    stop = curve.suggest_stop(max_tpr_rise=0.02, min_accuracy_gain=0.005)
    assert (stop.epoch, stop.rose_at, stop.triggered) == (3, 5, True)
    assert (stop.tpr, stop.test_accuracy, stop.last_tpr, stop.last_epoch) == (0.03, 0.80, 0.2, 6)
    assert stop.defend_spec == "early-stopping:0:stop_epoch=3"
    assert "stop after epoch 3" in stop.reason


def test_leakage_paid_for_by_accuracy_moves_the_candidate_on():
    curve = _curve([(0.01, 0.60), (0.10, 0.70), (0.20, 0.80), (0.21, 0.80)])
    stop = curve.suggest_stop(min_accuracy_gain=0.005)
    assert not stop.triggered and stop.epoch == 4 and stop.rose_at is None
    assert "not an all-clear" in stop.reason and "0.210" in stop.reason
    # a stricter accuracy rule sees epoch 2's gain of 0.10 as flat
    assert curve.suggest_stop(min_accuracy_gain=0.2).epoch == 1


def test_by_default_an_accuracy_gain_within_its_standard_error_is_flat():
    """2,000 non-members at 80% accuracy: SE = sqrt(0.8 * 0.2 / 2000) = 0.00894; a gain of 0.007 is noise and
    cannot pay for a TPR rise of 0.03, a gain of 0.010 can."""
    assert _record(1, 0.01, 0.80).accuracy_se == pytest.approx(np.sqrt(0.8 * 0.2 / 2000))
    noise = _curve([(0.01, 0.800), (0.04, 0.807)]).suggest_stop()
    assert (noise.epoch, noise.rose_at) == (1, 2)
    paid = _curve([(0.01, 0.800), (0.04, 0.810)]).suggest_stop()
    assert not paid.triggered and paid.epoch == 2
    assert _curve([(0.01, 0.800), (0.04, 0.807)]).suggest_stop(min_accuracy_gain=0.005).epoch == 2


def test_as_accurate_and_less_leaky_epoch_becomes_the_candidate():
    curve = _curve([(0.05, 0.80), (0.02, 0.80), (0.03, 0.80), (0.10, 0.80)])
    stop = curve.suggest_stop(min_accuracy_gain=0.005)
    assert (stop.epoch, stop.rose_at) == (2, 4)


def test_curve_checks_order_thresholds_and_emptiness():
    curve = _curve([(0.01, 0.5)])
    with pytest.raises(InvalidInputError, match="does not come after"):
        curve.append(_record(1, 0.02, 0.5))
    with pytest.raises(InvalidInputError, match="max_tpr_rise must be in"):
        curve.suggest_stop(max_tpr_rise=-0.1)
    with pytest.raises(InvalidInputError, match="curve is empty"):
        PrivacyCurve().suggest_stop()


def test_curve_files_round_trip_and_plot(tmp_path):
    curve = _curve([(0.01, 0.60), (0.02, 0.80), (0.2, 0.80)])
    path = curve.write_json(tmp_path / "curve.json")
    data = json.loads(path.read_text())
    assert data["suggested_stop"]["epoch"] == 2 and data["suggested_stop"]["defend_spec"].endswith("=2")
    again = PrivacyCurve.read_json(path)
    assert again.tprs == curve.tprs and again.epochs == [1, 2, 3]
    png = curve.plot(tmp_path / "curve.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = curve.records[-1].metrics()
    assert metrics["memberscope/tpr_at_fpr_0.01"] == 0.2 and metrics["memberscope/loss/tpr_at_fpr_0.01"] == 0.2


def test_defend_spec_parses_and_stops_training_at_that_epoch():
    from memberscope import datasets
    from memberscope.recipes import create

    (spec,) = parse_defenses("early-stopping:0:stop_epoch=3")
    assert spec.kind == "training" and spec.params == {"early_stopping": 0, "stop_epoch": 3}
    d = datasets.load("digits", seed=0)
    recipe = create("mlp", hidden=[16], epochs=20, **spec.params)
    model = recipe.train(d.X[:200], d.y[:200], n_classes=10, seed=0)
    assert model.epochs_run == 3
    # with a patience too, whichever comes first: stop_epoch 2 beats a patience of 5
    model = create("mlp", hidden=[16], epochs=20, early_stopping=5, stop_epoch=2).train(
        d.X[:200], d.y[:200], n_classes=10, seed=0
    )
    assert model.epochs_run == 2
    with pytest.raises(InvalidInputError, match="stop_epoch"):
        create("mlp", stop_epoch=0)


def test_public_names_are_pinned():
    import memberscope.monitor as monitor

    assert sorted(monitor.__all__) == sorted(
        [
            "DEFAULT_FPRS",
            "AttackSpec",
            "EpochAuditor",
            "EpochRecord",
            "PrivacyCurve",
            "StopSuggestion",
            "default_attacks",
            "suggested_stop_epoch",
        ]
    )
    assert all(hasattr(monitor, n) for n in monitor.__all__)


def test_defend_reads_the_suggested_stop_from_a_saved_curve(tmp_path):
    curve = _curve([(0.01, 0.60), (0.02, 0.80), (0.2, 0.80)])
    path = curve.write_json(tmp_path / "privacy_curve.json")
    (spec,) = parse_defenses(f"early-stopping:0:curve={path}")
    assert spec.params == {"early_stopping": 0, "stop_epoch": 2}
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(InvalidInputError, match=r"holds no suggested_stop\.epoch"):
        parse_defenses(f"early-stopping:0:curve={tmp_path / 'bad.json'}")
    with pytest.raises(InvalidInputError, match="does not exist"):
        parse_defenses(f"early-stopping:0:curve={tmp_path / 'missing.json'}")
    with pytest.raises(InvalidInputError, match="only early-stopping takes curve=PATH"):
        parse_defenses(f"l2:curve={path}")
