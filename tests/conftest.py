import os

import pytest


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own model cache, so no test reuses another's models."""
    monkeypatch.setenv("MEMBERSCOPE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    yield


@pytest.fixture(scope="session")
def fashion_mnist_available():
    return os.path.isdir(os.environ.get("MEMBERSCOPE_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist"))
