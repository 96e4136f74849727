"""Train the target and reference models as independent jobs, in-process or on joblib workers.

A job is one model (sequential mode) or one vectorized batch of models sized to a memory budget.
Each job trains its models, writes each model and its outputs to the cache atomically, and
returns the outputs; the driver copies each model's outputs into one on-disk array as they
arrive, so reference outputs are never all held in memory as separate arrays. Which worker ran a
job never changes a model: each one depends only on its seed, its training records and the
recipe (and, in vectorized mode, on the steps per epoch, fixed for the whole run, and the precision).

In vectorized mode with float32 references, the target (when memberscope trains it) is one more model of the
references' training call: it trains first in one fixed batch with the first :data:`TARGET_CHUNK` reference models
(one job; the other references are batched as the memory budget and the workers allow). A model's weights change
(by about 1e-7) with the size of its batch and its place in it, even in float32 (measured on 784-256-10 and
64-32-10 MLPs), so that batch never follows the workers or the memory budget: the same seed gives the same numbers
whatever ``n_jobs``, and the batch's size is part of its models' cache keys (``target_batch`` of
:func:`~memberscope.engine.models.cache_keys`), so a model trained beside the target is never read back as the same
model trained in another batch. Under a memory budget that batch runs first, on its own; a budget too small to hold
it trains the target in a batch of its own, with a warning. Reference models may be trained in reduced precision
once :mod:`memberscope.engine.precision` has checked it on the run's first few of them; they are then trained in
fixed chunks of :data:`~memberscope.engine.precision.REDUCED_CHUNK`, whose size is part of their cache keys. The
target is never trained in reduced precision: beside reduced-precision references it trains in a float32 batch of
its own (K=1), as with a user's own target, which is only queried.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np

from memberscope.cache import ArtifactCache
from memberscope.engine.models import ModelRun, cache_keys, outputs_for_model, take
from memberscope.engine.precision import REDUCED_CHUNK
from memberscope.game import derive_seed

if TYPE_CHECKING:
    from ray import ObjectRef

#: The training records and labels ``(X, y)``, or a Ray reference to them (put in the object store once).
TrainingData: TypeAlias = "tuple[np.ndarray, np.ndarray] | ObjectRef[tuple[np.ndarray, np.ndarray]]"

__all__ = ["TARGET_CHUNK", "ModelSpec", "TrainedRuns", "plan_jobs", "train_models"]

TARGET_CHUNK = 8
"""How many reference models (the first ones) share the target's float32 vectorized batch: 8, so that with two
workers and 16 references the target's batch (9 models) and the other 8 references train side by side (one batch of
17 would leave the second worker idle; at one thread a model costs the same in a batch of 9 or 17)."""


@dataclass(frozen=True)
class ModelSpec:
    """One model to obtain: ``role`` ("target"/"reference"), its index, training records and seed."""

    role: str
    index: int
    train_indices: np.ndarray
    seed: int


#: A job: its models, whether vectorized, its precision, the ``(role, index)`` whose outputs are wanted (None: all)
#: and the size of the target's float32 batch when it is that batch (part of its models' cache keys), else None.
_Job: TypeAlias = "tuple[list[ModelSpec], bool, str, frozenset[tuple[str, int]] | None, int | None]"


@dataclass
class RunInfo:
    """What the results keep of a model once its outputs are in the shared array."""

    seed: int
    train_seconds: float
    cached: bool
    train_accuracy: float = float("nan")
    test_accuracy: float = float("nan")
    model: Any = None


@dataclass
class TrainedRuns:
    """Target outputs ``(n_eval, q, c)``, reference outputs ``(K, n_eval, q, c)`` (on disk) and run details."""

    target: ModelRun
    reference_logits: np.ndarray | None
    references: list[RunInfo] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    n_jobs: int = 1
    n_batches: int = 0
    precision: dict[str, Any] = field(default_factory=lambda: {"requested": "fp32", "used": "fp32", "checks": []})


def _run_job(
    specs: Sequence[ModelSpec],
    *,
    data: TrainingData,
    recipe,
    data_fingerprint: str,
    n_classes: int,
    eval_indices: np.ndarray,
    queries: str,
    cache_root: str | None,
    vectorized: bool,
    steps_per_epoch: int | None,
    progress: Callable[[], None] | None = None,
    keep_models: bool = False,
    precision: str = "fp32",
    wanted: frozenset[tuple[str, int]] | None = None,
    batch: int | None = None,
    target_batch: int | None = None,
) -> list[tuple[str, int, ModelRun]]:
    """Train ``specs`` (one vectorized batch, or one after another), caching each; ``[(role, index, run)]``.

    ``precision`` is the vectorized batch's arithmetic (float32 for a sequential job); ``wanted`` (role, index)
    pairs, when given, are the only models whose outputs are computed and returned (the others only complete a
    batch whose size the models' numbers depend on). ``batch`` is the size of the batch the models were trained in,
    part of their cache keys in reduced precision (default: ``len(specs)``; given for a cached model read back).
    ``target_batch`` is the size of the target's float32 batch when ``specs`` were trained in it (part of their
    cache keys, :func:`~memberscope.engine.models.cache_keys`), else None."""
    if not isinstance(data, tuple):  # a Ray object reference: the dataset is put in the object store once
        import ray

        data = ray.get(data)
    X, y = data
    cache = ArtifactCache(cache_root)
    common = dict(
        recipe=recipe,
        data_fingerprint=data_fingerprint,
        X=X,
        y=y,
        n_classes=n_classes,
        eval_indices=eval_indices,
        queries=queries,
        cache=cache,
    )
    pretrained: dict[int, tuple] = {}
    if vectorized:
        from memberscope.training.vectorized import train_vectorized

        start = time.perf_counter()
        trained = train_vectorized(
            recipe,
            X,
            y,
            subsets=[s.train_indices for s in specs],
            seeds=[s.seed for s in specs],
            n_classes=n_classes,
            steps_per_epoch=steps_per_epoch,
            progress=progress,
            precision=precision,
        )
        models = [recipe.model(t, n_classes=n_classes) for t in trained]
        share = (time.perf_counter() - start) / max(len(specs), 1)
        pretrained = {i: (m, share) for i, m in enumerate(models)}
        common["eval_records"] = take(X, eval_indices)  # once for the batch's models
    return [
        (
            s.role,
            s.index,
            outputs_for_model(
                **common,
                train_indices=s.train_indices,
                seed=s.seed,
                progress=progress,
                pretrained=pretrained.get(i),
                keep_model=keep_models or s.role == "target",  # the target's privacy accounting is reported
                precision=precision,
                batch=None if precision == "fp32" else batch or len(specs),
                target_batch=target_batch,
            ),
        )
        for i, s in enumerate(specs)
        if wanted is None or (s.role, s.index) in wanted
    ]


def plan_jobs(n_models: int, *, per_model_bytes: int | None, budget: int | None, n_workers: int) -> list[int]:
    """Sizes of the vectorized batches: as few as the memory budget and the workers allow, near-equal.

    With ``n_workers`` batches running at once, each gets ``budget / n_workers``; there are at least
    ``n_workers`` batches (when there are that many models) so every worker has one.
    """
    from memberscope.exceptions import InvalidInputError

    if n_models == 0:
        return []
    cap = n_models
    if budget is not None and per_model_bytes is not None:
        cap = (budget // max(n_workers, 1)) // per_model_bytes
        if cap < 1:
            raise InvalidInputError(
                f"memory budget {budget:,} bytes is too small: one model of this recipe needs about "
                f"{per_model_bytes:,} bytes per worker ({n_workers} workers); raise memory_budget or lower n_jobs"
            )
    n_batches = max(math.ceil(n_models / cap), min(n_workers, n_models))
    base, extra = divmod(n_models, n_batches)
    return [base + (1 if b < extra else 0) for b in range(n_batches)]


def _accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float((logits[:, 0, :].argmax(axis=1) == labels).mean()) if len(labels) else float("nan")


def train_models(
    *,
    config,
    recipe,
    dataset,
    pool_idx: np.ndarray,
    eval_idx: np.ndarray,
    game,
    target_model,
    cache: ArtifactCache,
    bars,
    keep_models: bool = False,
    on_model: Callable[[], None] | None = None,
) -> TrainedRuns:
    """Obtain the target's and every reference model's outputs on the records ``eval_idx`` of ``dataset``.

    Cached outputs are read back; the rest are trained as jobs on the joblib backend in effect.
    ``keep_models`` also returns the models (``TrainedRuns.target.model``, ``RunInfo.model``), for
    attacks that query them. ``bars`` gets a task advanced as each model's outputs arrive (from a worker as soon
    as its job finishes), and ``on_model()`` is called then too (a caller's own progress over several runs).
    """
    import joblib

    from memberscope.parallel import backend_context, parse_bytes
    from memberscope.queries import n_views
    from memberscope.training.vectorized import supports_vectorized, vectorized_bytes_per_model

    fingerprint = dataset.fingerprint()
    n_pool = len(pool_idx)
    labels = dataset.y[pool_idx]
    cache_root = None if cache.root is None else str(cache.root)
    job_kwargs = dict(
        recipe=recipe,
        data_fingerprint=fingerprint,
        n_classes=dataset.n_classes,
        eval_indices=eval_idx,
        queries=config.queries,
        cache_root=cache_root,
        keep_models=keep_models,
    )
    run_warnings: list[str] = []
    specs = [ModelSpec("target", 0, pool_idx[game.target_mask], derive_seed(config.seed, "target", 0))]
    specs += [
        ModelSpec("reference", k, pool_idx[game.reference_masks[k]], derive_seed(config.seed, "reference", k))
        for k in range(game.n_reference)
    ]

    vectorized = config.train_mode == "vectorized"
    if vectorized and not supports_vectorized(recipe):
        run_warnings.append(
            f"train_mode 'vectorized' supports torch mlp/cnn/logreg recipes without dropout; "
            f"trained {recipe.name} {getattr(recipe, 'architecture', '')} models sequentially"
        )
        vectorized = False
    steps_per_epoch = None
    if vectorized and game.n_reference:
        steps_per_epoch = math.ceil(float(np.mean([m.sum() for m in game.reference_masks])) / recipe.batch_size)
    budget = parse_bytes(config.memory_budget) if config.memory_budget is not None else None
    per_model = None
    if steps_per_epoch is not None:
        per_model = vectorized_bytes_per_model(
            recipe,
            feature_shape=tuple(dataset.feature_shape),
            n_classes=dataset.n_classes,
            n_steps=steps_per_epoch * recipe.epochs,
        )
    # The target's float32 batch: the target and the first TARGET_CHUNK references, whatever the workers.
    beside = min(TARGET_CHUNK, game.n_reference) if target_model is None and per_model is not None else 0
    too_small = budget is not None and per_model is not None and (beside + 1) * per_model > budget
    refused_beside = beside if too_small else 0
    beside = 0 if too_small else beside

    def keys_of(spec: ModelSpec, precision: str) -> dict[str, Any]:
        """The :func:`cache_keys` arguments ``precision``, ``batch`` and ``target_batch`` of ``spec`` when the
        reference models are trained in ``precision`` (the target is always float32, and in a batch with the first
        references only when they are float32; reduced-precision references train in chunks of REDUCED_CHUNK)."""
        own = "fp32" if spec.role == "target" else precision
        batch = None
        if own != "fp32":
            first = spec.index - spec.index % REDUCED_CHUNK
            batch = min(REDUCED_CHUNK, game.n_reference - first)
        with_target = beside and precision == "fp32" and (spec.role == "target" or spec.index < beside)
        return {"precision": own, "batch": batch, "target_batch": beside + 1 if with_target else None}

    def is_cached(spec: ModelSpec, precision: str = "fp32") -> bool:
        model_key, output_key = cache_keys(
            recipe=recipe,
            data_fingerprint=fingerprint,
            train_indices=spec.train_indices,
            eval_indices=eval_idx,
            seed=spec.seed,
            queries=config.queries,
            **keys_of(spec, precision),
        )
        return cache.has("outputs", output_key) or cache.has("models", model_key)

    models_task = bars.add_task("models", total=len(specs))
    epochs = getattr(recipe, "epochs", 1)
    epoch_task = bars.add_task("  epochs", total=epochs, visible=False)
    target_run: ModelRun | None = None
    reference_logits: np.ndarray | None = None
    infos: dict[int, RunInfo] = {}
    scratch: list[str] = []

    def collect(role: str, index: int, run: ModelRun) -> None:
        nonlocal target_run, reference_logits
        bars.advance(models_task)
        if on_model is not None:
            on_model()
        if role == "target":
            target_run = run
            return
        if reference_logits is None:
            reference_logits = _scratch_array(cache_root, (game.n_reference, *run.logits.shape), scratch)
        reference_logits[index] = run.logits
        mask = game.reference_masks[index]
        pool_logits = run.logits[:n_pool]
        infos[index] = RunInfo(
            seed=run.seed,
            train_seconds=run.train_seconds,
            cached=run.cached,
            train_accuracy=_accuracy(pool_logits[mask], labels[mask]),
            test_accuracy=_accuracy(pool_logits[~mask], labels[~mask]),
            model=run.model,
        )

    # 1. The target (a user's own model is only queried) and every cached model, in this process.
    if target_model is not None:
        bars.update(models_task, description="target model")
        with _answers_counted(target_model, bars, total=len(eval_idx) * n_views(config.queries)):
            run = outputs_for_model(
                **{k: v for k, v in job_kwargs.items() if k not in ("cache_root", "keep_models")},
                X=dataset.X,
                y=dataset.y,
                cache=cache,
                train_indices=specs[0].train_indices,
                seed=specs[0].seed,
                model=target_model,
            )
        collect("target", 0, run)
        specs = specs[1:]
    refs_all = [s for s in specs if s.role == "reference"]
    choice, pretrained = _choose_precision(
        config,
        recipe,
        dataset,
        refs_all,
        eval_idx,
        vectorized,
        steps_per_epoch,
        is_cached,
        ArtifactCache(cache_root),
        fingerprint,
    )
    run_warnings += choice.warnings
    if refused_beside and choice.used == "fp32":
        assert per_model is not None
        run_warnings.append(
            f"memory budget {budget:,} bytes is smaller than the target's float32 batch (the target and the first "
            f"{refused_beside} reference models, about {(refused_beside + 1) * per_model:,} bytes): the target was "
            "trained in a batch of its own, so its weights differ by float rounding (about 1e-7) from a run with a "
            "larger budget"
        )

    todo = [s for s in specs if not is_cached(s, choice.used)]
    for spec in (s for s in specs if is_cached(s, choice.used)):
        for role, index, run in _run_job(
            [spec],
            data=(dataset.X, dataset.y),
            vectorized=False,
            steps_per_epoch=None,
            **keys_of(spec, choice.used),
            **job_kwargs,
        ):
            collect(role, index, run)
    # The models the passing precision check trained are the run's first chunk of reference models.
    pending = {(s.role, s.index) for s in todo}
    done = set()
    eval_records = take(dataset.X, eval_idx) if pretrained else None
    for spec, model, precision, seconds in pretrained:
        if (spec.role, spec.index) not in pending:
            continue
        done.add((spec.role, spec.index))
        collect(
            spec.role,
            spec.index,
            outputs_for_model(
                **{k: v for k, v in job_kwargs.items() if k not in ("cache_root", "keep_models")},
                X=dataset.X,
                y=dataset.y,
                cache=cache,
                train_indices=spec.train_indices,
                seed=spec.seed,
                pretrained=(model, seconds),
                keep_model=keep_models or spec.role == "target",
                **keys_of(spec, precision),
                eval_records=eval_records,
            ),
        )
    todo = [s for s in todo if (s.role, s.index) not in done]

    # 2. The rest as jobs: one per model, or vectorized batches (the target in a fixed float32 batch with the first
    # references, or alone beside reduced-precision ones). (No cluster is started or joined when every model came
    # from the cache.)
    context = backend_context(config.backend, n_jobs=config.n_jobs, ray_address=config.ray_address)
    with context if todo else contextlib.nullcontext():
        n_workers = max(1, min(joblib.effective_n_jobs(None), len(todo) or 1))
        targets = [s for s in todo if s.role == "target"]
        refs = [s for s in todo if s.role == "reference"]
        jobs: list[_Job] = []
        if vectorized and steps_per_epoch is not None and choice.used != "fp32":
            # bfloat16 kernels may round differently for different batch sizes: reduced-precision references are
            # always trained in fixed chunks of REDUCED_CHUNK (the check's is the first), whatever workers or memory.
            # The target is never trained in reduced precision: a float32 batch of its own.
            jobs += [([s], True, "fp32", None, None) for s in targets]
            wanted_refs = {s.index for s in refs}
            for first in range(0, len(refs_all), REDUCED_CHUNK):
                chunk = refs_all[first : first + REDUCED_CHUNK]
                kept = frozenset(("reference", s.index) for s in chunk if s.index in wanted_refs)
                if kept:
                    jobs.append((chunk, True, choice.used, kept if len(kept) < len(chunk) else None, None))
        elif vectorized and steps_per_epoch is not None and (refs or targets):
            batched = refs
            if beside:
                # The target and the first references: one fixed batch (trained whole when any of them is missing).
                chunk = [spec for spec in specs if spec.role == "target"] + refs_all[:beside]
                missing = {(s.role, s.index) for s in todo}
                kept = frozenset((s.role, s.index) for s in chunk if (s.role, s.index) in missing)
                if kept:
                    jobs.append((chunk, True, "fp32", kept if len(kept) < len(chunk) else None, beside + 1))
                batched = [s for s in refs if s.index >= beside]
            else:
                jobs += [([s], True, "fp32", None, None) for s in targets]
            start = 0
            for size in plan_jobs(len(batched), per_model_bytes=per_model, budget=budget, n_workers=n_workers):
                jobs.append((batched[start : start + size], True, "fp32", None, None))
                start += size
        else:
            jobs += [([s], False, "fp32", None, None) for s in targets + refs]
        n_batches = sum(1 for job in jobs if job[1])
        # Under a memory budget the target's batch (which may exceed one worker's share) runs first, on its own.
        first_here = [job for job in jobs if n_workers == 1 or (budget is not None and job[4] is not None)]
        on_workers = [job for job in jobs if not any(job is other for other in first_here)]
        for job, vec, precision, wanted, target_batch in first_here:
            what = f"{len(job)} models (vectorized, {precision})" if vec else _describe(job[0])
            bars.update(models_task, description=what)
            bars.reset(epoch_task, total=epochs, visible=True)
            for result in _run_job(
                job,
                data=(dataset.X, dataset.y),
                vectorized=vec,
                steps_per_epoch=steps_per_epoch,
                progress=lambda: bars.advance(epoch_task),
                precision=precision,
                wanted=wanted,
                target_batch=target_batch,
                **job_kwargs,
            ):
                collect(*result)
        if on_workers:
            bars.update(
                models_task,
                description=f"models on {n_workers} {config.backend or 'joblib'} workers",
            )
            records = (dataset.X, dataset.y)
            data: TrainingData = records
            if config.backend == "ray":
                import ray

                data = ray.put(records)
            calls = [
                joblib.delayed(_run_job)(
                    job,
                    data=data,
                    vectorized=vec,
                    steps_per_epoch=steps_per_epoch,
                    precision=precision,
                    wanted=wanted,
                    target_batch=target_batch,
                    **job_kwargs,
                )
                for job, vec, precision, wanted, target_batch in on_workers
            ]
            by_key = {(s.role, s.index): s for s in todo}
            for results in _as_completed(calls, n_workers):
                for role, index, run in results:
                    if cache_root is not None:  # a worker on another machine may not share the cache folder
                        _store_outputs(
                            cache,
                            by_key[role, index],
                            run,
                            recipe=recipe,
                            fingerprint=fingerprint,
                            eval_idx=eval_idx,
                            queries=config.queries,
                            **keys_of(by_key[role, index], choice.used),
                        )
                    collect(role, index, run)
    bars.update(epoch_task, visible=False)
    for path in scratch:
        with contextlib.suppress(OSError):
            os.unlink(path)
    assert target_run is not None
    return TrainedRuns(
        target=target_run,
        reference_logits=reference_logits,
        references=[infos[k] for k in range(game.n_reference)],
        warnings=run_warnings,
        n_jobs=n_workers,
        n_batches=n_batches,
        precision=choice.to_dict(),
    )


def _choose_precision(
    config, recipe, dataset, refs, eval_idx, vectorized, steps_per_epoch, is_cached, cache, fingerprint
):
    """The precision of the reference models (:func:`memberscope.engine.precision.choose_precision`); a reduced
    precision all of whose models are cached (so it passed its check before) is reused without a new check, and a
    verdict cached in ``cache`` for this recipe, data and machine is reused without training.

    ``refs`` are all reference specs in order. Returns the choice and the reference models the passing check
    trained in its precision, as ``[(spec, model, precision, seconds)]``.
    """
    from memberscope.engine.precision import CheckVerdicts, PrecisionChoice, choose_precision
    from memberscope.training.precision import PRECISIONS

    requested = getattr(config, "precision", "fp32")
    if vectorized and refs and requested != "fp32":
        candidates = ("bf16", "bf16-matmul") if requested == "auto" else (requested,)
        for name in candidates:
            if PRECISIONS.get(name).available() or requested != "auto":
                if all(is_cached(s, name) for s in refs):
                    return PrecisionChoice(requested=requested, used=name), []
    # The check trains the first chunk of REDUCED_CHUNK references (the chunks reduced precision trains in).
    pending = refs[:REDUCED_CHUNK] if requested != "fp32" and not all(is_cached(s) for s in refs) else []
    verdicts = CheckVerdicts(
        cache,
        recipe=recipe.config(),
        recipe_name=recipe.name,
        data=fingerprint,
        steps_per_epoch=steps_per_epoch,
        n_eval=len(eval_idx),
    )
    choice = choose_precision(
        requested,
        vectorized=vectorized,
        recipe=recipe,
        X=dataset.X,
        y=dataset.y,
        subsets=[s.train_indices for s in pending],
        seeds=[s.seed for s in pending],
        eval_indices=eval_idx,
        n_classes=dataset.n_classes,
        steps_per_epoch=steps_per_epoch,
        verdicts=verdicts,
    )
    seconds = sum(c.seconds for c in choice.checks if not c.cached) / max(len(choice.trained), 1)
    return choice, [(spec, model, choice.used, seconds) for spec, model in zip(pending, choice.trained, strict=False)]


@contextlib.contextmanager
def _answers_counted(target, bars, *, total: int):
    """A task on ``bars`` counting the records a user's ``target`` answers (``total``: records × views), for
    targets that report answers through an ``on_answer`` hook (HTTP APIs, text classifiers); a hook already set
    is still called. Others (no hook) are queried without it."""
    if not hasattr(target, "on_answer"):
        yield
        return
    task = bars.add_task("records answered", total=total)
    before = target.on_answer

    def counted(n: int) -> None:
        bars.advance(task, n)
        if before is not None:
            before(n)

    target.on_answer = counted
    try:
        yield
    finally:
        target.on_answer = before
        bars.update(task, visible=False)


def _describe(spec: ModelSpec) -> str:
    return f"reference model {spec.index + 1}" if spec.role == "reference" else "target model"


def _as_completed(calls: list, n_workers: int):
    """Each job's result as soon as it is done; in rounds of ``n_workers`` where the backend cannot stream."""
    import joblib

    try:
        yield from joblib.Parallel(return_as="generator_unordered")(calls)
        return
    except ValueError as exc:  # e.g. Ray's backend returns lists only
        if "does not support return_as" not in str(exc):
            raise
    with joblib.Parallel() as parallel:
        for start in range(0, len(calls), n_workers):
            yield from parallel(calls[start : start + n_workers])


def _store_outputs(
    cache: ArtifactCache,
    spec: ModelSpec,
    run: ModelRun,
    *,
    recipe,
    fingerprint,
    eval_idx,
    queries,
    precision,
    batch,
    target_batch,
):
    """Write a job's outputs into this machine's cache if its worker could not (a node of a remote cluster)."""
    from memberscope.cache import _atomic_write, _save_npy

    _, output_key = cache_keys(
        recipe=recipe,
        data_fingerprint=fingerprint,
        train_indices=spec.train_indices,
        eval_indices=eval_idx,
        seed=spec.seed,
        queries=queries,
        precision=precision,
        batch=batch,
        target_batch=target_batch,
    )
    if cache.root is None:  # caching is off: nothing to store
        return
    path = cache.root / "outputs" / f"{output_key}.npy"
    if not path.exists():
        _atomic_write(path, lambda p: _save_npy(p, run.logits))


def _scratch_array(cache_root: str | None, shape: tuple[int, ...], paths: list[str]) -> np.ndarray:
    """A float32 array of ``shape`` backed by a file (in the cache folder, else the temp folder)."""
    folder = os.path.join(cache_root, "scratch") if cache_root is not None else tempfile.gettempdir()
    os.makedirs(folder, exist_ok=True)
    fd, path = tempfile.mkstemp(prefix="reference-outputs-", suffix=".f32", dir=folder)
    os.close(fd)
    array = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=shape)
    try:
        os.unlink(path)  # the mapping stays valid; the space is freed when it closes, even if the run is killed
    except OSError:  # a platform that cannot delete a mapped file: delete it after training
        paths.append(path)
    return array
