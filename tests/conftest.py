import os
import sys

import pytest


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own model cache and run history, so no test reuses another's or writes to $HOME."""
    monkeypatch.setenv("MEMBERSCOPE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("MEMBERSCOPE_HISTORY_DB", str(tmp_path_factory.mktemp("history") / "history.sqlite"))
    yield


@pytest.fixture(autouse=True)
def _restore_process_state():
    """Undo what a test leaves behind process-wide: torch's thread count (``llm-demo --threads 1`` run
    in-process) and environment variables (Ray and Dask set OMP_NUM_THREADS=1 and more in the driver)."""
    before = sys.modules["torch"].get_num_threads() if "torch" in sys.modules else None
    environ = dict(os.environ)
    yield
    if os.environ != environ:
        os.environ.clear()
        os.environ.update(environ)
    if before is not None:
        sys.modules["torch"].set_num_threads(before)


@pytest.fixture(scope="module")
def ray_cluster():
    """A real one-node Ray cluster on 127.0.0.1 with two CPUs, shut down after the module."""
    ray = pytest.importorskip("ray", reason="the 'ray' extra is not installed (scripts/setup.sh installs it)")
    from ray._private import ray_constants

    # Ray replaces 127.0.0.1 by the machine's outward address unless its "no cluster" mode is on.
    mp = pytest.MonkeyPatch()
    mp.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # for the processes Ray starts
    mp.setattr(ray_constants, "ENABLE_RAY_CLUSTER", False)
    context = ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    try:
        yield context.address_info["address"]
    finally:
        ray.shutdown()
        mp.undo()


@pytest.fixture(scope="session")
def fashion_mnist_available():
    return os.path.isdir(os.environ.get("MEMBERSCOPE_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist"))
