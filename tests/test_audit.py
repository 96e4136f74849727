"""End-to-end audits: null test, reproducibility, caching, bring-your-own target."""

import json

import numpy as np
import pytest

import memberscope
from memberscope.api import audit_model, run_audit
from memberscope.config import AuditConfig
from memberscope.exceptions import InvalidInputError, ModelOutputError

SMALL_MLP = {"hidden": [64], "epochs": 80}  # overfits digits: ~98% train, ~94% test


def _small(**overrides):
    values = dict(
        dataset="digits",
        model="mlp",
        model_params=SMALL_MLP,
        reference_models=4,
        attacks=["all"],
        seed=0,
        n_bootstrap=200,
    )
    values.update(overrides)
    return AuditConfig(**values)


def test_null_target_never_saw_the_pool_gives_auc_ci_containing_half():
    """A model trained on data disjoint from the audit pool: every attack must be at chance."""
    from memberscope.recipes import create

    ds = memberscope.datasets.load("purchase-synthetic", n_records=5000, seed=1)
    X, y = ds.X, ds.y
    outside, pool = np.arange(0, 1500), np.arange(1500, 5000)
    # overfit on purpose: a strongly memorizing model that simply never saw the audited records
    model = create("mlp", hidden=[128], epochs=30).train(X[outside], y[outside], n_classes=100, seed=0)
    rng = np.random.default_rng(0)
    fake = rng.permutation(pool)
    members, nonmembers = fake[:1500], fake[1500:]  # "members" the model never saw
    result = audit_model(
        model,
        members=(X[members], y[members]),
        nonmembers=(X[nonmembers], y[nonmembers]),
        recipe="logreg",
        recipe_params={"epochs": 10},
        reference_models=4,
        n_bootstrap=400,
        progress=False,
        use_cache=False,
    )
    for name, entry in result.results["attacks"].items():
        lo, hi = entry["auc_ci"]
        assert lo <= 0.5 <= hi, f"{name}: AUC CI {entry['auc_ci']} excludes 0.5 on a null target"


def test_audit_detects_an_overfit_target_and_writes_outputs(tmp_path):
    result = run_audit(_small(), progress=False)
    paths = result.write(tmp_path)
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["schema_version"] == "2.0" and results["kind"] == "audit"
    assert results["target"]["train_accuracy"] > results["target"]["test_accuracy"]
    assert set(results["attacks"]) == set(memberscope.attacks.names())
    for entry in results["attacks"].values():
        assert set(entry["tpr_at_fpr"]) == {"0.1", "0.01", "0.001", "0.0001"}
        assert entry["auc_ci"][0] <= entry["auc"] <= entry["auc_ci"][1]
        assert entry["per_class"]
    for name in ("lira-online", "rmia-online"):
        assert results["attacks"][name]["auc_ci"][0] > 0.5, name
    # too few non-members for 0.1% and 0.01% FPR on digits: flagged, not hidden
    assert not results["attacks"]["loss"]["fpr_resolvable"]["0.0001"]
    assert any("FPR 0.01% cannot be resolved" in w for w in results["warnings"])
    import pandas as pd

    scores = pd.read_csv(paths["scores"])
    assert list(scores.columns[:3]) == ["record", "member", "label"]  # the class by name
    assert set(scores.columns[3:]) == set(results["attacks"]) | {"membership_probability"}
    assert scores["member"].sum() == results["game"]["n_members"]
    assert (tmp_path / "roc.png").stat().st_size > 10_000
    assert results["vulnerable_records"]["records"]


def test_same_seed_same_numbers_and_cache_reuses_every_model(tmp_path, monkeypatch):
    monkeypatch.setenv("MEMBERSCOPE_CACHE_DIR", str(tmp_path / "cache"))
    cfg = _small(attacks=["loss", "lira-offline", "rmia-online"])
    first = run_audit(cfg, progress=False)
    assert first.results["timings"]["models_trained"] == 5
    second = run_audit(cfg, progress=False)
    assert second.results["timings"]["models_from_cache"] == 5
    assert second.results["timings"]["models_trained"] == 0
    for name in first.scores:
        np.testing.assert_array_equal(first.scores[name], second.scores[name])
        assert first.results["attacks"][name]["auc_ci"] == second.results["attacks"][name]["auc_ci"]
    # Lost outputs but kept models: outputs are recomputed from the cached models, nothing retrains.
    for p in sorted((tmp_path / "cache" / "outputs").glob("*.npy"))[:2]:
        p.unlink()
    third = run_audit(cfg, progress=False)
    assert third.results["timings"]["models_trained"] == 0
    for name in first.scores:
        np.testing.assert_array_equal(first.scores[name], third.scores[name])
    # An interrupted run: one model never finished (neither model nor outputs on disk) -> only it trains.
    for p in (tmp_path / "cache" / "models").glob("*.bin"):
        p.unlink()
    next(iter((tmp_path / "cache" / "outputs").glob("*.npy"))).unlink()
    fourth = run_audit(cfg, progress=False)
    assert fourth.results["timings"]["models_trained"] == 1
    assert fourth.results["timings"]["models_from_cache"] == 4
    for name in first.scores:
        np.testing.assert_array_equal(first.scores[name], fourth.scores[name])


def test_different_seed_different_game():
    a = run_audit(_small(attacks=["loss"], reference_models=0, use_cache=False), progress=False)
    b = run_audit(_small(attacks=["loss"], reference_models=0, seed=1, use_cache=False), progress=False)
    assert not np.array_equal(a.member, b.member)


def test_config_errors_name_bad_values():
    with pytest.raises(InvalidInputError, match="unknown attack 'lira'"):
        AuditConfig(attacks=["lira"])
    with pytest.raises(InvalidInputError, match=r"FPR 1\.5 is outside"):
        AuditConfig(fprs=(0.01, 1.5))
    with pytest.raises(
        InvalidInputError, match="'lira-online' needs at least 2 reference models; got reference_models=1"
    ):
        AuditConfig(attacks=["lira-online"], reference_models=1)
    with pytest.raises(InvalidInputError, match="unknown configuration keys"):
        AuditConfig.from_dict({"datset": "digits"})


def test_bring_your_own_sklearn_target_with_nan_outputs_is_rejected():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(200, 5)).astype(np.float32), rng.integers(0, 2, 200)

    def broken(batch):
        out = np.zeros((len(batch), 2))
        out[0, 0] = np.nan
        return out

    with pytest.raises(ModelOutputError, match="NaN or infinite"):
        audit_model(
            broken,
            members=(X[:100], y[:100]),
            nonmembers=(X[100:], y[100:]),
            recipe="logreg",
            recipe_params={"epochs": 2},
            reference_models=2,
            n_classes=2,
            progress=False,
            use_cache=False,
        )


def test_bring_your_own_target_shape_mismatch():
    X, y = np.zeros((10, 3), np.float32), np.zeros(9, int)
    with pytest.raises(InvalidInputError, match=r"members must be \(X, y\)"):
        audit_model(
            lambda b: np.zeros((len(b), 2)),
            members=(X, y),
            nonmembers=(X, np.zeros(10, int)),
            reference_models=0,
            attacks=["loss"],
            progress=False,
        )


def test_bring_your_own_torch_module_target():
    import torch

    from memberscope.recipes import create

    ds = memberscope.datasets.load("digits")
    recipe = create("mlp", hidden=[64], epochs=80)
    members = np.arange(0, 600)
    trained = recipe.train(ds.X[members], ds.y[members], n_classes=10, seed=0)
    assert isinstance(trained.net, torch.nn.Module)
    result = audit_model(
        trained.net,
        members=(ds.X[members], ds.y[members]),
        nonmembers=(ds.X[600:1400], ds.y[600:1400]),
        recipe=recipe,
        reference_models=4,
        attacks=["loss", "lira-online", "rmia-offline"],
        n_bootstrap=200,
        progress=False,
    )
    assert result.results["target"]["user_supplied"] is True
    assert result.results["attacks"]["loss"]["auc_ci"][0] > 0.5
    assert result.results["target"]["train_accuracy"] > result.results["target"]["test_accuracy"]


def test_reference_model_attacks_beat_loss_at_low_fpr_on_an_overfit_target():
    """The field's central claim at CI scale: LiRA and RMIA find far more members at 1% FPR."""
    cfg = AuditConfig(
        dataset="purchase-synthetic",
        n_records=12000,
        model="mlp",
        model_params={"hidden": [128], "epochs": 30},
        reference_models=8,
        n_bootstrap=300,
        attacks=["loss", "lira-online", "rmia-online"],
        seed=0,
    )
    results = run_audit(cfg, progress=False).results
    assert results["target"]["train_accuracy"] - results["target"]["test_accuracy"] > 0.2
    loss_hi = results["attacks"]["loss"]["tpr_at_fpr_ci"]["0.01"][1]
    for name in ("lira-online", "rmia-online"):
        assert results["attacks"][name]["tpr_at_fpr_ci"]["0.01"][0] > loss_hi, name
