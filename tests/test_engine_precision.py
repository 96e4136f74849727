"""The run's precision choice: checked against float32, falling back loudly, cached apart; the target in the batch."""

import numpy as np
import pytest

from memberscope import datasets, recipes
from memberscope.api import run_audit
from memberscope.config import AuditConfig
from memberscope.engine import precision as engine_precision
from memberscope.exceptions import InvalidInputError
from memberscope.training.precision import native_bf16

COMMON = dict(
    dataset="digits",
    model_params={"hidden": [64], "epochs": 40},
    reference_models=4,
    attacks=["lira-online", "rmia-online"],
    n_bootstrap=200,
    train_mode="vectorized",
)


def _audit(tmp_path=None, **changes):
    settings = {**COMMON, "use_cache": tmp_path is not None, "cache_dir": None if tmp_path is None else str(tmp_path)}
    return run_audit(AuditConfig(**{**settings, **changes}), progress=False).results


def _figures(attack: dict) -> dict:
    """An attack's results without its timings."""
    return {k: v for k, v in attack.items() if k != "timings"}


@pytest.fixture(scope="module")
def fp32_results():
    return _audit(precision="fp32")


@pytest.mark.parametrize("precision", ["bf16", "bf16-matmul"])
def test_reduced_precision_references_give_overlapping_attack_results(fp32_results, precision):
    reduced = _audit(precision=precision)
    choice = reduced["reference_models"]["precision"]
    assert choice["requested"] == precision and choice["used"] == precision
    (check,) = choice["checks"]
    assert check["passed"] and check["n_models"] == 4
    assert abs(check["accuracy_candidate"] - check["accuracy_fp32"]) <= check["accuracy_tolerance"]
    for name in ("lira-online", "rmia-online"):
        (a_lo, a_hi), (b_lo, b_hi) = fp32_results["attacks"][name]["auc_ci"], reduced["attacks"][name]["auc_ci"]
        assert a_lo <= b_hi and b_lo <= a_hi, (name, (a_lo, a_hi), (b_lo, b_hi))
    # the target is float32 whatever the references: the same model in both runs
    assert reduced["target"]["train_accuracy"] == fp32_results["target"]["train_accuracy"]
    assert reduced["target"]["test_accuracy"] == fp32_results["target"]["test_accuracy"]


def test_fp32_results_record_the_choice_without_a_check(fp32_results):
    assert fp32_results["reference_models"]["precision"] == {
        "requested": "fp32",
        "used": "fp32",
        "summary": "float32 throughout (the reference)",
        "checks": [],
    }
    assert fp32_results["config"]["precision"] == "fp32"


def test_auto_picks_the_fastest_precision_that_passes_on_this_machine():
    results = _audit(precision="auto")
    choice = results["reference_models"]["precision"]
    if native_bf16():
        assert choice["used"] == "bf16" and [c["candidate"] for c in choice["checks"]] == ["bf16"]
    else:
        assert choice["used"] == "fp32" and choice["checks"] == []


def _fail_the_check(monkeypatch):
    """Lower the candidate precision's accuracy by 0.2 (its figures come after fp32's 4, in check_precision's second
    pass), so the check refuses it; returns the real figures function."""
    real = engine_precision._figures
    calls = {"n": 0}

    def figures(model, X_eval, y_eval, member):
        calls["n"] += 1
        accuracy, auc = real(model, X_eval, y_eval, member)
        return (accuracy - 0.2, auc) if calls["n"] > 4 else (accuracy, auc)

    monkeypatch.setattr(engine_precision, "_figures", figures)
    return real


def test_a_failed_check_falls_back_to_fp32_with_a_warning(monkeypatch, fp32_results):
    """A precision that moved accuracy or the attack's AUC beyond noise is not trusted: float32, said loudly."""
    _fail_the_check(monkeypatch)
    results = _audit(precision="bf16")
    choice = results["reference_models"]["precision"]
    assert choice["used"] == "fp32" and not choice["checks"][0]["passed"]
    assert any("failed its check against float32" in w and "trained in float32" in w for w in results["warnings"])
    for name in ("lira-online", "rmia-online"):  # the fallback references are the float32 ones
        assert results["attacks"][name]["auc"] == fp32_results["attacks"][name]["auc"]


def test_reduced_precision_models_are_cached_apart_and_reused_without_a_new_check(tmp_path, fp32_results):
    first = _audit(tmp_path, precision="bf16")
    assert first["timings"]["models_trained"] == 5
    again = _audit(tmp_path, precision="bf16")
    assert again["timings"]["models_from_cache"] == 5
    assert again["reference_models"]["precision"]["used"] == "bf16"
    assert again["reference_models"]["precision"]["checks"] == []  # its models passed a check when first trained
    assert again["attacks"]["lira-online"]["auc"] == first["attacks"]["lira-online"]["auc"]
    # Float32 references are other models, and a float32 target trained beside them is another model than the one
    # trained alone beside bfloat16 references (its cache key holds its batch): all trained, none read back.
    as_fp32 = _audit(tmp_path, precision="fp32")
    assert as_fp32["timings"]["models_trained"] == 5 and as_fp32["timings"]["models_from_cache"] == 0
    assert as_fp32["attacks"]["lira-online"]["auc"] == fp32_results["attacks"]["lira-online"]["auc"]
    fp32_again = _audit(tmp_path, precision="fp32")
    assert fp32_again["timings"]["models_from_cache"] == 5
    assert _figures(fp32_again["attacks"]["lira-online"]) == _figures(as_fp32["attacks"]["lira-online"])


def test_precision_in_sequential_mode_warns_and_trains_fp32():
    results = _audit(precision="bf16", train_mode="sequential", reference_models=2, attacks=["lira-offline"])
    assert results["reference_models"]["precision"]["used"] == "fp32"
    assert any("applies to vectorized training only" in w for w in results["warnings"])


def test_unknown_precision_is_refused_by_the_config():
    with pytest.raises(InvalidInputError, match="precision must be one of 'auto', 'fp32', 'bf16-matmul', 'bf16'"):
        AuditConfig(precision="fp16")


@pytest.mark.parametrize("architecture", ["mlp", "cnn"])
def test_the_target_trained_in_the_batch_equals_the_target_trained_alone(architecture, monkeypatch):
    """Float32: the audit trains its target and references in one vectorized call, and the target it gets equals the
    target trained alone (same records, seed and steps per epoch) to float tolerance."""
    from memberscope.game import derive_seed
    from memberscope.training import vectorized

    calls = []
    real = vectorized.train_vectorized

    def recording(recipe, X, y, **kwargs):
        nets = real(recipe, X, y, **kwargs)
        calls.append((recipe, kwargs, nets))
        return nets

    monkeypatch.setattr(vectorized, "train_vectorized", recording)
    params = {"hidden": [16], "channels": [2, 4], "epochs": 2, "batch_size": 64}
    results = _audit(model=architecture, model_params=params, reference_models=3, seed=5, precision="fp32")
    assert results["timings"]["vectorized_batches"] == 1
    ((recipe, kwargs, nets),) = calls  # one training call for the target and the 3 references
    assert len(kwargs["subsets"]) == 4 and kwargs["precision"] == "fp32"
    assert kwargs["seeds"][0] == derive_seed(5, "target", 0)
    assert kwargs["seeds"][1:] == [derive_seed(5, "reference", k) for k in range(3)]
    ds = datasets.load("digits")
    alone = real(
        recipe,
        ds.X,
        ds.y,
        subsets=kwargs["subsets"][:1],
        seeds=kwargs["seeds"][:1],
        n_classes=10,
        steps_per_epoch=kwargs["steps_per_epoch"],
    )
    for a, b in zip(nets[0].net.state_dict().values(), alone[0].net.state_dict().values(), strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)


def test_the_audit_trains_its_target_beside_fp32_references_and_alone_beside_reduced_ones(fp32_results):
    """One training call for target and references in float32, the same numbers whatever the workers; beside
    bfloat16 references the target is a float32 batch of its own."""
    assert fp32_results["timings"]["vectorized_batches"] == 1  # the target and the 4 references
    with_bf16 = _audit(precision="bf16")
    assert with_bf16["timings"]["vectorized_batches"] == 1  # the target's (the references came from the check)
    threads = _audit(precision="fp32", n_jobs=2, backend="threading")
    assert threads["timings"]["vectorized_batches"] == 1
    assert threads["target"] == fp32_results["target"]
    for name in ("lira-online", "rmia-online"):
        assert _figures(threads["attacks"][name]) == _figures(fp32_results["attacks"][name])
    # the target beside bfloat16 references is the target trained alone: equal within float rounding
    assert abs(with_bf16["target"]["train_accuracy"] - fp32_results["target"]["train_accuracy"]) < 0.01


def test_the_check_s_verdict_is_cached_per_recipe_data_and_machine(tmp_path, monkeypatch):
    """A second audit of the same recipe and data on the same machine (new seed: new models) trusts the verdict
    without training the float32 copies again, and says so in results.json."""
    first = _audit(tmp_path, precision="bf16")
    (check,) = first["reference_models"]["precision"]["checks"]
    assert check["passed"] and not check["cached"]
    assert len(list((tmp_path / "verdicts").glob("*.json"))) == 1
    calls = []
    real = engine_precision.check_precision
    monkeypatch.setattr(engine_precision, "check_precision", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = _audit(tmp_path, precision="bf16", seed=1)
    assert calls == [] and again["timings"]["models_trained"] == 5  # new models, no check
    choice = again["reference_models"]["precision"]
    assert choice["used"] == "bf16" and choice["checks"] == [{**check, "cached": True}]
    # Another machine (CPU model, torch version or bfloat16 support) checks again.
    monkeypatch.setattr(engine_precision, "machine_fingerprint", lambda: {"cpu": "other", "torch": "x", "bf16": True})
    other = _audit(tmp_path, precision="bf16", seed=2)
    assert calls == [1] and not other["reference_models"]["precision"]["checks"][0]["cached"]


def test_a_cached_failed_verdict_falls_back_without_training(tmp_path, monkeypatch):
    """A refusal is cached too: the next run falls back to float32 at once, and still says why, loudly."""
    real = _fail_the_check(monkeypatch)
    _audit(tmp_path, precision="bf16")
    monkeypatch.setattr(engine_precision, "_figures", real)
    again = _audit(tmp_path, precision="bf16", seed=1)
    choice = again["reference_models"]["precision"]
    assert choice["used"] == "fp32" and choice["checks"][0]["cached"] and not choice["checks"][0]["passed"]
    assert any("failed its check" in w and "cached from an earlier run" in w for w in again["warnings"])


def test_reduced_precision_cache_keys_hold_the_chunk_size():
    """A bfloat16 model trained in a batch of 16 and one trained in a batch of 4 are different artifacts."""
    from memberscope.engine.models import cache_keys

    keys = dict(
        recipe=recipes.create("mlp", hidden=[8]),
        data_fingerprint="d",
        train_indices=np.arange(5),
        eval_indices=np.arange(9),
        seed=1,
        queries="none",
    )
    assert cache_keys(**keys, precision="bf16", batch=16) != cache_keys(**keys, precision="bf16", batch=4)
    assert cache_keys(**keys, precision="fp32", batch=16) == cache_keys(**keys)  # float32 keys never change


def test_references_beyond_the_target_s_batch_train_on_other_workers(monkeypatch):
    """The target's batch holds only the first TARGET_CHUNK references, so with two workers the others train beside
    it instead of leaving a worker idle; the target's numbers do not depend on the workers."""
    from memberscope.engine import training

    monkeypatch.setattr(training, "TARGET_CHUNK", 2)
    alone = _audit(precision="fp32")
    threads = _audit(precision="fp32", n_jobs=2, backend="threading")
    assert alone["timings"]["vectorized_batches"] >= 2 and threads["timings"]["vectorized_batches"] >= 2
    assert threads["target"] == alone["target"]
