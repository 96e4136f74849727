"""Which arithmetic the reference models of a run are trained in: reduced precision only once a check trusts it.

:func:`choose_precision` takes the run's ``precision`` setting (``auto``, ``fp32``, ``bf16-matmul``, ``bf16``;
:mod:`memberscope.training.precision`) and returns a :class:`PrecisionChoice`. A reduced precision is used only
after :func:`check_precision` passes: the first few reference models of the run are trained both in float32 and in
the candidate precision (vectorized, same seeds, same steps), and for each pair

- the accuracy on the evaluation records the model did not train on, and
- the AUC of the loss attack (score = minus the cross-entropy of the true label) separating the model's own
  training records from the other pool records,

are compared. The candidate passes when the mean difference of each is within two standard errors of one model's
figure (binomial for accuracy, Hanley & McNeil 1982 for the AUC), i.e. within the noise of a single model's
measurement. Otherwise the run falls back to float32 with a warning (never silently: a precision that changed the
models could change the leakage measured). ``auto`` tries, fastest first, the reduced precisions this CPU runs
natively (bf16, then bf16-matmul) and picks the first that passes; without native bfloat16 it is float32 without
a check. The choice and the check's figures go into ``results.json`` (``reference_models.precision``).

bfloat16 kernels may round differently for different batch sizes, so a model trained in reduced precision may depend
on how many models share its batch: reduced-precision references are always trained in chunks of
:data:`REDUCED_CHUNK` in reference order, whatever the workers or memory budget, and the size of its chunk is part of
a model's cache key. The check trains the whole first chunk in the candidate precision (those are the run's first
reference models when it passes) and its first :data:`CHECK_MODELS` in float32, and compares those.

The verdict depends on the recipe, the data, the steps per epoch and the machine (CPU model, torch version,
bfloat16 instructions), not on the seed: it is kept in the run's cache (:class:`CheckVerdicts`, under
``verdicts/``), so a later run of the same recipe on the same data and machine trusts (or refuses) the precision
without training the float32 copies again; results.json says so (``cached: true`` on the check).

The target model is never trained in reduced precision: a user's own target is only queried, and a target that
memberscope trains is the model the audit is about. Beside float32 references it trains in their first batch; beside
reduced-precision ones, in a float32 batch of its own (:mod:`memberscope.engine.training`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "CHECK_MODELS",
    "REDUCED_CHUNK",
    "CheckVerdicts",
    "PrecisionCheck",
    "PrecisionChoice",
    "check_precision",
    "choose_precision",
    "machine_fingerprint",
]

CHECK_MODELS = 4
"""How many reference models are trained both ways by the check (fewer when the run has fewer)."""

REDUCED_CHUNK = 16
"""How many reference models share one reduced-precision batch (the last chunk of a run holds the rest)."""


@dataclass
class PrecisionCheck:
    """The comparison of ``candidate`` against float32 on ``n_models`` models (means over the models)."""

    candidate: str
    passed: bool
    n_models: int
    accuracy_fp32: float
    accuracy_candidate: float
    accuracy_tolerance: float
    auc_fp32: float
    auc_candidate: float
    auc_tolerance: float
    seconds: float
    #: Whether this verdict was read from the cache (then ``seconds`` is the original check's, not spent again).
    cached: bool = False


@dataclass
class PrecisionChoice:
    """The precision the run's reference models are trained in, what was asked, and the checks made."""

    requested: str
    used: str
    checks: list[PrecisionCheck] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: The models the passing check trained in ``used`` (they are the run's first reference models).
    trained: list[Any] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        from memberscope.training.precision import get_precision

        return {
            "requested": self.requested,
            "used": self.used,
            "summary": get_precision(self.used).summary,
            "checks": [asdict(c) for c in self.checks],
        }


def _loss(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Cross-entropy of each record's label; ``logits`` (n, c), ``labels`` (n,)."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return -log_softmax[np.arange(len(labels)), labels]


def _auc_standard_error(auc: float, n_pos: int, n_neg: int) -> float:
    """Hanley & McNeil (1982), eq. 2."""
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    var = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc**2) + (n_neg - 1) * (q2 - auc**2)) / (n_pos * n_neg)
    return float(np.sqrt(max(var, 0.0)))


def _figures(model, X_eval: np.ndarray, y_eval: np.ndarray, member: np.ndarray) -> tuple[float, float]:
    """(held-out accuracy, loss-attack AUC) of one model; ``member`` marks its training records among ``X_eval``."""
    from sklearn.metrics import roc_auc_score

    logits = np.asarray(model.query(X_eval), dtype=np.float64)
    accuracy = float((logits.argmax(axis=1) == y_eval)[~member].mean())
    auc = float(roc_auc_score(member, -_loss(logits, y_eval)))
    return accuracy, auc


def check_precision(
    candidate: str,
    recipe,
    X: np.ndarray,
    y: np.ndarray,
    *,
    subsets: Sequence[np.ndarray],
    seeds: Sequence[int],
    eval_indices: np.ndarray,
    n_classes: int,
    steps_per_epoch: int,
) -> tuple[PrecisionCheck, list[Any]]:
    """Train the models ``(subsets[k], seeds[k])`` in ``candidate`` (one batch) and the first :data:`CHECK_MODELS`
    of them in float32, and compare those (see module).

    ``X`` (n, ...) and ``y`` (n,) are all records, ``subsets`` dataset rows each model trains on, ``eval_indices``
    the rows its accuracy and AUC are measured on (its training rows among them are the members). Returns the
    check and the candidate's trained models (as ``recipe.model`` targets, in the order of ``subsets``).
    """
    from memberscope.training.vectorized import train_vectorized

    start = time.perf_counter()
    n_compared = min(CHECK_MODELS, len(subsets))
    X_eval, y_eval = X[eval_indices], np.asarray(y)[eval_indices]
    batches = {"fp32": (subsets[:n_compared], seeds[:n_compared]), candidate: (subsets, seeds)}
    trained: dict[str, list[Any]] = {}
    for name, (batch_subsets, batch_seeds) in batches.items():
        nets = train_vectorized(
            recipe,
            X,
            y,
            subsets=batch_subsets,
            seeds=batch_seeds,
            n_classes=n_classes,
            steps_per_epoch=steps_per_epoch,
            precision=name,
        )
        trained[name] = [recipe.model(t, n_classes=n_classes) for t in nets]
    figures: dict[str, list[tuple[float, float]]] = {name: [] for name in trained}
    members = [np.isin(eval_indices, subset) for subset in subsets[:n_compared]]
    for name, models in trained.items():
        for model, member in zip(models[:n_compared], members, strict=True):
            figures[name].append(_figures(model, X_eval, y_eval, member))
    reference = np.array(figures["fp32"])  # (n_compared, 2)
    reduced = np.array(figures[candidate])
    acc, auc = reference.mean(axis=0)
    n_heldout = float(np.mean([(~m).sum() for m in members]))
    n_pos = int(np.mean([m.sum() for m in members]))
    acc_tol = 2 * float(np.sqrt(max(acc * (1 - acc), 1e-4) / n_heldout))
    auc_tol = 2 * _auc_standard_error(auc, n_pos, len(eval_indices) - n_pos)
    delta = np.abs((reduced - reference).mean(axis=0))
    check = PrecisionCheck(
        candidate=candidate,
        passed=bool(delta[0] <= acc_tol and delta[1] <= auc_tol),
        n_models=n_compared,
        accuracy_fp32=float(acc),
        accuracy_candidate=float(reduced[:, 0].mean()),
        accuracy_tolerance=acc_tol,
        auc_fp32=float(auc),
        auc_candidate=float(reduced[:, 1].mean()),
        auc_tolerance=auc_tol,
        seconds=round(time.perf_counter() - start, 3),
    )
    return check, trained[candidate]


def machine_fingerprint() -> dict[str, Any]:
    """What a precision verdict depends on besides the recipe and data: the CPU model, torch's version and whether
    the CPU has bfloat16 instructions (:func:`~memberscope.training.precision.native_bf16`)."""
    import platform

    import torch

    from memberscope.training.precision import native_bf16

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            cpu = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), cpu)
    return {"cpu": cpu, "torch": torch.__version__, "native_bf16": native_bf16()}


class CheckVerdicts:
    """Precision checks kept in an :class:`~memberscope.cache.ArtifactCache`, keyed by the candidate, ``context``
    (recipe, data, steps per epoch) and :func:`machine_fingerprint`; a cache without a folder keeps nothing."""

    def __init__(self, cache, **context: Any):
        self.cache = cache
        self.context = context

    def _key(self, candidate: str) -> str:
        from memberscope.cache import make_key

        return make_key(
            role="precision-check",
            candidate=candidate,
            check_models=CHECK_MODELS,
            chunk=REDUCED_CHUNK,
            machine=machine_fingerprint(),
            **self.context,
        )

    def get(self, candidate: str) -> PrecisionCheck | None:
        """The stored check of ``candidate``, marked ``cached``; None when there is none (or it is unreadable)."""
        record = self.cache.read_json("verdicts", self._key(candidate))
        if record is None:
            return None
        try:
            return PrecisionCheck(**{**record, "cached": True})
        except TypeError:  # written by another version: check again
            return None

    def put(self, check: PrecisionCheck) -> None:
        self.cache.write_json("verdicts", self._key(check.candidate), asdict(check))


def choose_precision(
    requested: str,
    *,
    vectorized: bool,
    recipe,
    X: np.ndarray,
    y: np.ndarray,
    subsets: Sequence[np.ndarray],
    seeds: Sequence[int],
    eval_indices: np.ndarray,
    n_classes: int,
    steps_per_epoch: int | None,
    verdicts: CheckVerdicts | None = None,
) -> PrecisionChoice:
    """The precision of the run's reference models for the setting ``requested`` (see the module).

    ``subsets``/``seeds`` are the run's first chunk of reference models, in order (up to :data:`REDUCED_CHUNK`; the
    first :data:`CHECK_MODELS` are compared); ``vectorized`` says whether they are trained in vectorized batches
    (reduced precision needs it). A verdict found in ``verdicts`` is used without training; a new one is stored
    there.
    """
    from memberscope.training.precision import PRECISIONS, get_precision

    choice = PrecisionChoice(requested=requested, used="fp32")
    if requested == "fp32" or not subsets:
        return choice
    if not vectorized:
        if requested != "auto":
            choice.warnings.append(
                f"precision {requested!r} applies to vectorized training only; reference models were trained in "
                "float32 (use train_mode 'vectorized')"
            )
        return choice
    if requested == "auto":
        candidates = [name for name in ("bf16", "bf16-matmul") if PRECISIONS.get(name).available()]
    else:
        candidates = [requested]
        if not get_precision(requested).available():
            choice.warnings.append(
                f"precision {requested!r} is emulated on this CPU (no bfloat16 instructions): slower than float32"
            )
    assert steps_per_epoch is not None
    for name in candidates:
        check = verdicts.get(name) if verdicts is not None else None
        if check is None:
            check, models = check_precision(
                name,
                recipe,
                X,
                y,
                subsets=subsets,
                seeds=seeds,
                eval_indices=eval_indices,
                n_classes=n_classes,
                steps_per_epoch=steps_per_epoch,
            )
            if verdicts is not None:
                verdicts.put(check)
            if check.passed:
                choice.trained = models
        choice.checks.append(check)
        if check.passed:
            choice.used = name
            return choice
        choice.warnings.append(
            f"precision {name!r} failed its check against float32 on {check.n_models} reference models "
            f"(accuracy {check.accuracy_candidate:.4f} vs {check.accuracy_fp32:.4f}, tolerance "
            f"{check.accuracy_tolerance:.4f}; loss-attack AUC {check.auc_candidate:.4f} vs {check.auc_fp32:.4f}, "
            f"tolerance {check.auc_tolerance:.4f})"
            + (" (a verdict cached from an earlier run on this machine)" if check.cached else "")
            + ("; trying the next" if name != candidates[-1] else "; reference models trained in float32")
        )
    return choice
