import os

import pytest


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own model cache and run history, so no test reuses another's or writes to $HOME."""
    monkeypatch.setenv("MEMBERSCOPE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("MEMBERSCOPE_HISTORY_DB", str(tmp_path_factory.mktemp("history") / "history.sqlite"))
    yield


@pytest.fixture(scope="session")
def fashion_mnist_available():
    return os.path.isdir(os.environ.get("MEMBERSCOPE_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist"))
