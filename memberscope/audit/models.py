"""Train (or fetch from the cache) the target and reference models and collect their outputs."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from memberscope.cache import ArtifactCache, hash_array, make_key
from memberscope.game import derive_seed
from memberscope.queries import model_outputs
from memberscope.recipes import Recipe, TrainedModel

__all__ = ["ModelRun", "cache_keys", "outputs_for_model"]


@dataclass
class ModelRun:
    """One model's outputs on the evaluation records and how it was obtained.

    ``logits`` has shape ``(n_eval, n_queries, n_classes)``.
    """

    logits: np.ndarray
    seed: int
    train_seconds: float
    cached: bool


def cache_keys(
    *,
    recipe: Recipe,
    data_fingerprint: str,
    train_indices: np.ndarray,
    eval_indices: np.ndarray,
    seed: int,
    queries: str,
) -> tuple[str, str]:
    """``(model_key, output_key)``: what identifies a trained model and its outputs in the cache."""
    model_key = make_key(
        role="model",
        recipe=recipe.config(),
        recipe_name=recipe.name,
        data=data_fingerprint,
        train=hash_array(np.asarray(train_indices, dtype=np.int64)),
        seed=seed,
    )
    output_key = make_key(
        role="outputs", model=model_key, eval=hash_array(np.asarray(eval_indices, dtype=np.int64)), queries=queries
    )
    return model_key, output_key


def outputs_for_model(
    *,
    recipe: Recipe,
    data_fingerprint: str,
    X: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    train_indices: np.ndarray,
    eval_indices: np.ndarray,
    seed: int,
    queries: str,
    cache: ArtifactCache,
    progress=None,
    model: TrainedModel | None = None,
    pretrained: tuple[TrainedModel, float] | None = None,
) -> ModelRun:
    """Outputs of a model trained by ``recipe`` on ``X[train_indices]``, on ``X[eval_indices]``.

    Outputs come from the cache when present; otherwise the model comes from the cache or is
    trained, and both are stored. A given ``model`` (a user's own target) is used as is.
    ``pretrained`` is ``(model, seconds)`` for a model just trained elsewhere (in a vectorized
    batch): it is stored and counted as trained instead of training again.
    """
    model_key, output_key = cache_keys(
        recipe=recipe,
        data_fingerprint=data_fingerprint,
        train_indices=train_indices,
        eval_indices=eval_indices,
        seed=seed,
        queries=queries,
    )
    timing = {"train": 0.0, "trained": False}

    def train() -> TrainedModel:
        if pretrained is not None:
            timing["train"], timing["trained"] = pretrained[1], True
            return pretrained[0]
        start = time.perf_counter()
        trained = recipe.train(X[train_indices], y[train_indices], n_classes=n_classes, seed=seed, progress=progress)
        timing["train"], timing["trained"] = time.perf_counter() - start, True
        return trained

    def compute() -> np.ndarray:
        fitted = cache.model(model_key, recipe, n_classes=n_classes, feature_shape=tuple(X.shape[1:]), train=train)
        return model_outputs(fitted, X[eval_indices], queries).astype(np.float32)

    if model is not None:
        logits = model_outputs(model, X[eval_indices], queries).astype(np.float32)
        return ModelRun(logits=logits, seed=seed, train_seconds=0.0, cached=False)
    logits = cache.array(output_key, compute)
    return ModelRun(logits=logits, seed=seed, train_seconds=timing["train"], cached=not timing["trained"])


def model_seed(seed: int, role: str, index: int = 0) -> int:
    return derive_seed(seed, role, index)
