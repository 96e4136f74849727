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


@pytest.fixture(scope="session")
def fashion_mnist_available():
    return os.path.isdir(os.environ.get("MEMBERSCOPE_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist"))
