"""Train (or fetch from the cache) the target and reference models and collect their outputs."""

from __future__ import annotations

import contextlib
import sys
import time
from dataclasses import dataclass

import numpy as np

from memberscope.cache import ArtifactCache, hash_array, make_key
from memberscope.queries import model_outputs
from memberscope.recipes import Recipe
from memberscope.targets import Target
from memberscope.training.precision import precision_scope

__all__ = ["ModelRun", "cache_keys", "feature_shape", "outputs_for_model", "take"]


@dataclass
class ModelRun:
    """One model's outputs on the evaluation records and how it was obtained.

    ``logits`` has shape ``(n_eval, n_queries, n_classes)``.
    """

    logits: np.ndarray
    seed: int
    train_seconds: float
    cached: bool
    #: The model itself, when the caller asked to keep it (attacks that query the models need it).
    model: Target | None = None


def take(X, indices: np.ndarray):
    """Rows ``indices`` of records ``X``: an array ``(n, ...)`` or a pandas DataFrame (by position)."""
    return X.iloc[np.asarray(indices)] if hasattr(X, "iloc") else X[indices]


def feature_shape(X) -> tuple[int, ...]:
    """The shape of one record of ``X`` (``(n_columns,)`` for a DataFrame)."""
    return (X.shape[1],) if hasattr(X, "iloc") else tuple(X.shape[1:])


def cache_keys(
    *,
    recipe: Recipe,
    data_fingerprint: str,
    train_indices: np.ndarray,
    eval_indices: np.ndarray,
    seed: int,
    queries: str,
    precision: str = "fp32",
    batch: int | None = None,
    target_batch: int | None = None,
) -> tuple[str, str]:
    """``(model_key, output_key)``: what identifies a trained model and its outputs in the cache.

    A model trained in reduced ``precision`` (:mod:`memberscope.training.precision`) has its own keys, which include
    ``batch``, the number of models in its vectorized batch (bfloat16 kernels may round differently for different
    batch sizes); float32 models keep the keys they had before precisions existed, except those trained in the
    target's float32 batch (:mod:`memberscope.engine.training`): ``target_batch``, the size of that batch (the target
    first, then the first references), is part of their keys, so a model trained beside the target is never mistaken
    for the same model trained in another batch (they differ by float rounding).
    """
    extra: dict[str, object] = {} if precision == "fp32" else {"precision": precision, "batch": batch}
    if target_batch is not None:
        extra["target_batch"] = target_batch
    model_key = make_key(
        role="model",
        recipe=recipe.config(),
        recipe_name=recipe.name,
        data=data_fingerprint,
        train=hash_array(np.asarray(train_indices, dtype=np.int64)),
        seed=seed,
        **extra,
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
    model: Target | None = None,
    pretrained: tuple[Target, float] | None = None,
    keep_model: bool = False,
    precision: str = "fp32",
    batch: int | None = None,
    target_batch: int | None = None,
    eval_records=None,
) -> ModelRun:
    """Outputs of a model trained by ``recipe`` on ``X[train_indices]``, on ``X[eval_indices]``.

    Outputs come from the cache when present; otherwise the model comes from the cache or is
    trained, and both are stored. A given ``model`` (a user's own target) is used as is.
    ``pretrained`` is ``(model, seconds)`` for a model just trained elsewhere (in a vectorized
    batch): it is stored and counted as trained instead of training again. ``precision`` is the arithmetic it
    was trained in and ``batch`` the size of its vectorized batch (part of the cache keys in reduced precision; a
    model trained here is always float32); ``target_batch`` the size of the target's float32 batch when the model
    was trained in it (part of the cache keys, see :func:`cache_keys`). ``eval_records`` is
    ``take(X, eval_indices)`` when the caller already took it for several models (a copy of the evaluation records
    saved per model).
    """
    model_key, output_key = cache_keys(
        recipe=recipe,
        data_fingerprint=data_fingerprint,
        train_indices=train_indices,
        eval_indices=eval_indices,
        seed=seed,
        queries=queries,
        precision=precision,
        batch=batch,
        target_batch=target_batch,
    )
    timing = {"train": 0.0, "trained": False}
    kept: list[Target] = []

    def train() -> Target:
        if pretrained is not None:
            timing["train"], timing["trained"] = pretrained[1], True
            return pretrained[0]
        start = time.perf_counter()
        trained = recipe.train(
            take(X, train_indices), y[train_indices], n_classes=n_classes, seed=seed, progress=progress
        )
        timing["train"], timing["trained"] = time.perf_counter() - start, True
        return trained

    def fitted() -> Target:
        if not kept:
            kept.append(
                cache.model(model_key, recipe, n_classes=n_classes, feature_shape=feature_shape(X), train=train)
            )
        return kept[0]

    def compute() -> np.ndarray:
        # Float32 products even while another thread trains with bfloat16 ones (a process-wide torch flag).
        with precision_scope("fp32") if "torch" in sys.modules else contextlib.nullcontext():
            records = take(X, eval_indices) if eval_records is None else eval_records
            return model_outputs(fitted(), records, queries).astype(np.float32)

    if model is not None:
        logits = model_outputs(model, take(X, eval_indices), queries).astype(np.float32)
        return ModelRun(logits=logits, seed=seed, train_seconds=0.0, cached=False, model=model)
    logits = cache.array(output_key, compute)
    return ModelRun(
        logits=logits,
        seed=seed,
        train_seconds=timing["train"],
        cached=not timing["trained"],
        model=fitted() if keep_model else None,
    )
