"""Content-addressed on-disk cache of trained models and their outputs.

Keys hash everything that determines an artifact (recipe config, data fingerprint, training
indices, seed, query set), so a re-run, or a run resumed after being killed, reuses every
finished model and recomputes nothing. Files are written to a temporary name and renamed into
place, so an interrupted write never leaves a truncated artifact behind.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from memberscope.recipes import Recipe
from memberscope.targets import Target

__all__ = ["ArtifactCache", "default_cache_dir", "hash_array", "make_key"]

CACHE_FORMAT = 1


def default_cache_dir() -> Path:
    """``$MEMBERSCOPE_CACHE_DIR``, else ``$XDG_CACHE_HOME/memberscope``, else ``~/.cache/memberscope``."""
    if env := os.environ.get("MEMBERSCOPE_CACHE_DIR"):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "memberscope"


def hash_array(array: np.ndarray) -> str:
    array = np.ascontiguousarray(array)
    h = hashlib.sha256(str((array.dtype.str, array.shape)).encode())
    h.update(array.tobytes())
    return h.hexdigest()


def make_key(**parts: Any) -> str:
    payload = json.dumps({"format": CACHE_FORMAT, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def _atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _save_npy(path: Path, value: np.ndarray) -> None:
    with open(path, "wb") as fh:  # a file object, so numpy does not append ".npy" to the temp name
        np.save(fh, value, allow_pickle=False)


class ArtifactCache:
    """Models under ``root/models/<key>.bin``, arrays under ``root/outputs/<key>.npy``, small records (such as
    precision verdicts) under ``root/<kind>/<key>.json``.

    ``root=None`` disables caching (everything is recomputed and nothing is written).
    """

    def __init__(self, root: Path | str | None):
        self.root = Path(root) if root is not None else None
        self.hits = 0
        self.misses = 0

    def _path(self, kind: str, key: str, suffix: str) -> Path | None:
        return None if self.root is None else self.root / kind / f"{key}{suffix}"

    def has(self, kind: str, key: str) -> bool:
        """Whether a model (``kind="models"``) or array (``kind="outputs"``) is stored under ``key``."""
        path = self._path(kind, key, ".bin" if kind == "models" else ".npy")
        return path is not None and path.exists()

    def model(
        self,
        key: str,
        recipe: Recipe,
        *,
        n_classes: int,
        feature_shape: tuple[int, ...],
        train: Callable[[], Target],
    ) -> Target:
        """The cached model under ``key``, else ``train()`` and store it."""
        path = self._path("models", key, ".bin")
        if path is not None and path.exists():
            try:
                model = recipe.load(path, n_classes=n_classes, feature_shape=feature_shape)
                self.hits += 1
                return model
            except Exception:  # a corrupt or stale file is retrained, never trusted
                path.unlink(missing_ok=True)
        self.misses += 1
        model = train()
        if path is not None:
            _atomic_write(path, model.save)
        return model

    def array(self, key: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
        """The cached array under ``key``, else ``compute()`` and store it."""
        path = self._path("outputs", key, ".npy")
        if path is not None and path.exists():
            try:
                return np.load(path, allow_pickle=False)
            except (OSError, ValueError):
                path.unlink(missing_ok=True)
        value = compute()
        if path is not None:
            _atomic_write(path, lambda p: _save_npy(p, value))
        return value

    def read_json(self, kind: str, key: str) -> dict[str, Any] | None:
        """The record stored under ``kind``/``key``; None when there is none or it is unreadable (then removed)."""
        path = self._path(kind, key, ".json")
        if path is None or not path.exists():
            return None
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            path.unlink(missing_ok=True)
            return None
        return record if isinstance(record, dict) else None

    def write_json(self, kind: str, key: str, record: dict[str, Any]) -> None:
        """Store ``record`` (JSON-serializable) under ``kind``/``key``, atomically; nothing when caching is off."""
        path = self._path(kind, key, ".json")
        if path is not None:
            _atomic_write(path, lambda p: p.write_text(json.dumps(record, sort_keys=True), encoding="utf-8"))
