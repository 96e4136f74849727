"""Training jobs on joblib workers (loky, threads, a real local Ray cluster) give the in-process models."""

import contextlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from memberscope.api import run_audit
from memberscope.config import AuditConfig
from memberscope.engine.training import plan_jobs
from memberscope.exceptions import InvalidInputError
from memberscope.parallel import parse_bytes
from memberscope.recipes import create as create_recipe
from memberscope.training.vectorized import vectorized_bytes_per_model
from tests.cli_helpers import run_cli

ARGS = dict(
    dataset="digits",
    model_params={"hidden": [32], "epochs": 8},
    reference_models=4,
    attacks=["loss", "lira-online", "rmia-offline"],
    n_bootstrap=50,
    seed=3,
)


@contextlib.contextmanager
def one_torch_thread():
    """Workers run torch on one thread each; a float sum split over two threads can differ in the last bit."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="module")
def in_process():
    with one_torch_thread():
        return run_audit(AuditConfig(**ARGS, use_cache=False), progress=False)


def _models_in(cache) -> int:
    return len(list((cache / "models").glob("*.bin")))


def test_loky_workers_train_and_cache_the_same_models(in_process, tmp_path):
    cache = tmp_path / "cache"
    par = run_audit(AuditConfig(**ARGS, n_jobs=2, backend="loky", cache_dir=str(cache)), progress=False)
    assert par.results["timings"]["training_workers"] == 2
    assert par.results["timings"]["models_trained"] == 5
    for name, score in in_process.scores.items():
        np.testing.assert_array_equal(par.scores[name], score)
    assert _models_in(cache) == 5 and len(list((cache / "outputs").glob("*.npy"))) == 5  # written by the workers
    assert not list(cache.rglob("*.tmp")) and not list((cache / "scratch").iterdir())
    again = run_audit(AuditConfig(**ARGS, n_jobs=2, backend="threading", cache_dir=str(cache)), progress=False)
    assert again.results["timings"]["models_from_cache"] == 5
    np.testing.assert_array_equal(again.scores["lira-online"], in_process.scores["lira-online"])


def test_vectorized_batches_under_a_memory_budget_equal_one_batch(monkeypatch):
    """The target's batch (the target and the first TARGET_CHUNK references) is fixed, whatever the workers or the
    memory budget: the same numbers to the bit. References beyond it are batched as the budget and the workers
    allow (equal to float rounding)."""
    import memberscope.engine.training as engine_training

    common = dict(ARGS, train_mode="vectorized", use_cache=False, precision="fp32")
    recipe = create_recipe("mlp", **ARGS["model_params"])
    # digits: a 1,348-record pool, 674 records per reference model, ceil(674 / 128) = 6 steps per epoch.
    per_model = vectorized_bytes_per_model(recipe, feature_shape=(1, 8, 8), n_classes=10, n_steps=6 * 8)
    one = run_audit(AuditConfig(**common), progress=False)
    assert one.results["timings"]["vectorized_batches"] == 1  # the target and the 4 references, one call
    budget = run_audit(AuditConfig(**common, memory_budget=str(5 * per_model + 1)), progress=False)
    threads = run_audit(AuditConfig(**common, n_jobs=2, backend="threading"), progress=False)
    for other in (budget, threads):
        assert other.results["timings"]["vectorized_batches"] == 1
        for name, score in one.scores.items():
            np.testing.assert_array_equal(other.scores[name], score)

    monkeypatch.setattr(engine_training, "TARGET_CHUNK", 1)  # the target's batch: the target and reference 1
    one = run_audit(AuditConfig(**common), progress=False)
    split = run_audit(AuditConfig(**common, memory_budget=str(2 * per_model + 1)), progress=False)
    assert one.results["timings"]["vectorized_batches"] == 2  # the target's, references 2-4
    assert split.results["timings"]["vectorized_batches"] == 3  # the target's, references 2 per batch
    assert not any("target's float32 batch" in w for w in split.results["warnings"])
    np.testing.assert_array_equal(split.scores["loss"], one.scores["loss"])  # the target's alone: to the bit
    for name, score in one.scores.items():
        np.testing.assert_allclose(split.scores[name], score, rtol=1e-5, atol=1e-5)
    # A budget that cannot hold the target's batch trains the target alone, and says so.
    tight = run_audit(AuditConfig(**common, memory_budget=str(per_model + 1)), progress=False)
    assert tight.results["timings"]["vectorized_batches"] == 5  # the target alone, then each reference alone
    assert any("smaller than the target's float32 batch" in w for w in tight.results["warnings"])


def test_reduced_precision_references_do_not_depend_on_workers_or_memory(monkeypatch):
    """bfloat16 kernels may round differently for different batch sizes, so reduced-precision references are trained
    in fixed chunks (the first is the check's): the same numbers whatever the memory budget or the workers."""
    import memberscope.engine.training as engine_training

    monkeypatch.setattr(engine_training, "REDUCED_CHUNK", 4)  # 16 by default: 6 models would be one chunk
    common = dict(ARGS, reference_models=6, train_mode="vectorized", use_cache=False, precision="bf16")
    one = run_audit(AuditConfig(**common), progress=False)
    assert one.results["reference_models"]["precision"]["used"] == "bf16"
    assert one.results["timings"]["vectorized_batches"] == 2  # the target alone (float32), references 5-6 (1-4: check)
    with one_torch_thread():
        threads = run_audit(AuditConfig(**common, n_jobs=2, backend="threading", memory_budget="1MiB"), progress=False)
    for name, score in one.scores.items():
        np.testing.assert_array_equal(threads.scores[name], score)


def test_plan_jobs_and_memory_sizes():
    assert plan_jobs(10, per_model_bytes=100, budget=350, n_workers=1) == [3, 3, 2, 2]
    assert plan_jobs(10, per_model_bytes=100, budget=None, n_workers=1) == [10]
    assert plan_jobs(5, per_model_bytes=100, budget=None, n_workers=2) == [3, 2]
    assert plan_jobs(1, per_model_bytes=100, budget=None, n_workers=4) == [1]
    assert plan_jobs(8, per_model_bytes=100, budget=400, n_workers=2) == [2, 2, 2, 2]  # 200 bytes per worker
    with pytest.raises(InvalidInputError, match="memory budget 150 bytes is too small"):
        plan_jobs(3, per_model_bytes=100, budget=150, n_workers=2)
    assert parse_bytes("2GiB") == 2 * 2**30 and parse_bytes("1.5 GB") == 1_500_000_000 and parse_bytes(4096) == 4096
    for bad in ("two gigs", "5XB", "0"):
        with pytest.raises(InvalidInputError, match="memory size"):
            parse_bytes(bad)
    # Adam: parameters held 5 times (model, stacked, gradient, 2 moments) dominate a 784-256-256-10 MLP.
    recipe = create_recipe("mlp", hidden=[256, 256], batch_size=128)
    n_params = 784 * 256 + 256 + 256 * 256 + 256 + 256 * 10 + 10
    estimate = vectorized_bytes_per_model(recipe, feature_shape=(1, 28, 28), n_classes=10, n_steps=0)
    assert estimate == int(1.25 * (5 * n_params * 4 + 128 * 4 * (784 + 4 * (256 + 256 + 10))))


def test_parallel_settings_are_validated_at_the_cli(capsys):
    code, _, err = run_cli("audit", "--backend", "spark", "--no-progress", capsys=capsys)
    assert code == 2 and "backend must be one of 'loky'" in err and "got 'spark'" in err
    code, _, err = run_cli("audit", "--memory-budget", "lots", "--no-progress", capsys=capsys)
    assert code == 2 and "memory_budget must be a size such as '2GiB'" in err and "got 'lots'" in err
    code, _, err = run_cli("audit", "--n-jobs", "0", "--no-progress", capsys=capsys)
    assert code == 2 and "n_jobs must be a positive integer or -1" in err
    code, _, err = run_cli("audit", "--ray-address", "127.0.0.1:6379", "--no-progress", capsys=capsys)
    assert code == 2 and "needs backend 'ray'" in err


def test_reference_models_trained_on_a_local_ray_cluster(in_process, ray_cluster, tmp_path):
    assert ray_cluster.startswith("127.0.0.1:")
    config = tmp_path / "audit.json"
    config.write_text(json.dumps(ARGS))
    cache = tmp_path / "cache"
    out = tmp_path / "out"
    env = {**os.environ, "MEMBERSCOPE_CACHE_DIR": str(cache), "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    env.pop("RAY_ADDRESS", None)
    cli = [sys.executable, "-m", "memberscope.cli", "audit", "--config", str(config), "--no-progress", "--no-report"]
    cli += ["--n-jobs", "2", "--backend", "ray", "--ray-address", ray_cluster, "--out", str(out)]
    proc = subprocess.run(cli, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert results["timings"]["training_workers"] == 2 and results["timings"]["models_trained"] == 5
    assert _models_in(cache) == 5  # each worker cached its model
    expected = tmp_path / "expected"
    in_process.write(expected)
    assert (out / "scores.csv").read_text() == (expected / "scores.csv").read_text()
    for name, metrics in in_process.results["attacks"].items():
        assert results["attacks"][name]["auc"] == metrics["auc"]


def test_reference_models_trained_on_a_local_dask_cluster(in_process, tmp_path):
    pytest.importorskip("distributed", reason="the 'ray' extra (with dask.distributed) is not installed")
    cache = tmp_path / "cache"
    par = run_audit(AuditConfig(**ARGS, n_jobs=2, backend="dask", cache_dir=str(cache)), progress=False)
    assert par.results["timings"]["training_workers"] == 2 and _models_in(cache) == 5
    for name, score in in_process.scores.items():
        np.testing.assert_array_equal(par.scores[name], score)


def test_progress_counts_models_across_workers_and_is_silent_off_a_terminal(capsys):
    small = dict(ARGS, reference_models=2, attacks=["loss"], use_cache=False)
    run_audit(AuditConfig(**small, n_jobs=2, backend="threading"), progress=True)
    err = capsys.readouterr().err
    assert "models on 2 threading workers" in err and "3/3" in err
    run_audit(AuditConfig(**small, n_jobs=2, backend="threading"), progress=None)  # pytest's stderr is no terminal
    assert capsys.readouterr().err == ""


def test_the_models_bar_advances_as_each_worker_finishes(monkeypatch):
    """Worker jobs are seen as they finish, not at the end: each reference model's job is held until the parent's
    bar counts every model before it, so a parent that collected the results only after the last job would never
    see the bar move (the job would time out); the bar's total is known from the start."""
    import threading
    import time

    from rich.progress import Progress

    import memberscope.engine.run as engine_run
    import memberscope.engine.training as engine_training
    from memberscope.progress import progress_columns

    bars: dict[str, Progress] = {}
    seen: list[tuple[float, float | None]] = []

    @contextlib.contextmanager
    def recording(*, enabled=None):
        with Progress(*progress_columns(), disable=True) as progress:
            bars.setdefault("models", progress)  # the first display is the models' (metrics come later)
            yield progress

    def models_task():
        return next(t for t in bars["models"].tasks if t.id == 0)

    original = engine_training._run_job
    lock = threading.Lock()

    def held(specs, **kwargs):
        spec = specs[0]
        before = 0 if spec.role == "target" else spec.index + 1  # the target, then references 0, 1, ...
        deadline = time.monotonic() + 60
        while models_task().completed < before:
            assert time.monotonic() < deadline, f"the bar never counted {before} models while a job waited"
            time.sleep(0.005)
        with lock:
            seen.append((models_task().completed, models_task().total))
        return original(specs, **kwargs)

    monkeypatch.setattr(engine_run, "progress_bars", recording)
    monkeypatch.setattr(engine_training, "_run_job", held)
    small = dict(ARGS, reference_models=3, attacks=["loss"], n_bootstrap=0, use_cache=False)
    small["model_params"] = {"hidden": [8], "epochs": 2}
    with one_torch_thread():
        par = run_audit(AuditConfig(**small, n_jobs=2, backend="threading"), progress=False)
        assert sorted(seen) == [(0, 4), (1, 4), (2, 4), (3, 4)]
        assert models_task().completed == 4
        monkeypatch.undo()
        seq = run_audit(AuditConfig(**small), progress=False)
    np.testing.assert_array_equal(par.scores["loss"], seq.scores["loss"])


def test_defend_on_workers_equals_in_process_and_its_bar_counts_every_model(monkeypatch):
    """defend's models on two threads: the same scores and figures as in process, and its one bar over the run
    counts each model as its worker finishes."""
    from rich.progress import Progress

    import memberscope.progress as progress_module
    from memberscope.defenses.evaluate import DefendConfig, run_defenses
    from memberscope.progress import progress_columns

    counts = []

    class Counting(Progress):
        def update(self, task_id, **kwargs):
            super().update(task_id, **kwargs)
            if task_id == 0:
                counts.append(self.tasks[0].completed)

    @contextlib.contextmanager
    def counting(*, enabled=None):
        with Counting(*progress_columns(), disable=True) as bars:
            yield bars

    monkeypatch.setattr(progress_module, "progress_bars", counting)
    common = dict(defenses="none,l2:1e-2,round:1", dataset="digits", model="mlp", reference_models=2,
                  model_params={"hidden": [8], "epochs": 3}, pool_size=200, population_size=100, n_bootstrap=10,
                  attacks=["loss", "lira-online"], use_cache=False)  # fmt: skip
    with one_torch_thread():
        par = run_defenses(DefendConfig(**common, n_jobs=2, backend="threading"), progress=False)
        assert sorted(set(counts)) == list(range(3 + 3 + 1 + 1))  # every model, then the output defense
        seq = run_defenses(DefendConfig(**common), progress=False)
    for name, score in seq.scores.items():
        np.testing.assert_array_equal(par.scores[name], score)

    def figures(entry):  # everything but the seconds things took
        untimed = {k: v for k, v in entry.items() if not k.endswith("seconds")}
        untimed["attacks"] = {a: {k: v for k, v in r.items() if k != "timings"} for a, r in entry["attacks"].items()}
        return untimed

    for name, entry in seq.results.sections["defenses"].items():
        assert figures(par.results.sections["defenses"][name]) == figures(entry), name
