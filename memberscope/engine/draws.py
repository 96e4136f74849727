"""Training-draw variance: reference models play the target in turn, and what their draws calibrate.

One audit attacks one trained target, which is one draw of the training randomness (which records it saw,
its initial weights, the order of its batches). Two draws of the same recipe on the same data can leak very
differently: on fashion-mnist the target's seed alone moved RMIA's TPR at 0.1% FPR from 0.26% to 4.1%, several
times the width of one draw's bootstrap interval. Following the evaluation of Carlini et al. (2022),
"Membership Inference Attacks From First Principles" (§ VI), each of ``targets - 1`` reference models plays
the target in turn: its outputs are attacked with the other ``K - 1`` reference models only (leave-one-out),
against its own training set as the ground truth, and every attack's AUC and TPR at each FPR are recorded per
draw, with their mean and spread (:func:`summarize_draws`).

The same leave-one-out draws calibrate a score into a membership probability (:func:`membership_probability`):
an isotonic regression of "was a member" on the score over records whose membership in a reference model is
known, moved to the target game's member prior. The target's own ground truth is never used.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from memberscope.attacks import ReferenceOutputs, TargetOutputs
from memberscope.exceptions import InvalidInputError

__all__ = [
    "DRAW_DESIGN",
    "Draw",
    "draw_metrics",
    "leave_one_out",
    "membership_probability",
    "run_draws",
    "summarize_draws",
]

DRAW_DESIGN = (
    "leave-one-out: besides the target, reference models play the target in turn, each attacked with the other "
    "reference models only, against its own training set (Carlini et al. 2022)"
)


@dataclass
class Draw:
    """One training draw attacked: the target itself or a reference model playing it.

    Attributes
    ----------
    name : str — ``"target"`` or ``"reference model i"`` (``i`` counted from 0, as in ``seeds.references``).
    reference : int or None — the reference model's index, None for the target.
    member : ndarray of bool, shape (n_pool,) — the draw's ground truth over the pool records.
    scores : dict of str to ndarray of shape (n_pool,) — each attack's scores.
    metrics : dict of str to dict — each attack's :func:`draw_metrics`.
    train_accuracy, test_accuracy : float — of the draw's model on its members and on its non-members.
    """

    name: str
    reference: int | None
    member: np.ndarray
    scores: dict[str, np.ndarray]
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    train_accuracy: float = float("nan")
    test_accuracy: float = float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {
            "draw": self.name,
            "reference_model": self.reference,
            "n_members": int(self.member.sum()),
            "n_nonmembers": int((~self.member).sum()),
            "train_accuracy": _round(self.train_accuracy),
            "test_accuracy": _round(self.test_accuracy),
        }


def uses_in_models(name: str) -> bool:
    """Whether attack ``name`` fits reference models that trained on the record (LiRA's and RMIA's online
    variants). Such attacks are not re-run on the draws of reference models playing the target: every record
    is IN exactly half of the reference models (:func:`memberscope.game.paired_masks`), so among the others the
    draw's members are IN one model fewer than its non-members, which biases an online attack toward "no
    leakage" (lira-online AUC 0.39–0.46 on the draws of a K = 4 digits audit whose target read 0.49). Offline
    attacks use OUT models only: the draw's members have one OUT model more, which changes the noise of their
    estimates, not their mean."""
    from memberscope.attacks import create

    return bool(getattr(create(name), "online", False))


ONLINE_EXCLUDED = (
    "not re-run on the reference models' draws: with every record IN half of the reference models, the draw's "
    "members are IN one other model fewer than its non-members, which biases online attacks toward no leakage; "
    "its figure is the target's alone"
)


def leave_one_out(
    target: TargetOutputs, references: ReferenceOutputs, index: int
) -> tuple[TargetOutputs, ReferenceOutputs, np.ndarray]:
    """Reference model ``index`` as the target, the other reference models as its references.

    Parameters
    ----------
    target : TargetOutputs — the real target's outputs; only its records (what querying attacks perturb) are used.
    references : ReferenceOutputs — ``K`` reference models' outputs on the same records.
    index : int — which reference model plays the target, in ``[0, K)``.

    Returns
    -------
    (TargetOutputs, ReferenceOutputs, member) — the draw's target outputs (the reference model's own, on the
    same records and population, with the model itself for querying attacks), the other ``K - 1`` reference
    models, and its ground truth ``member`` of shape (n_records,): the records it trained on.

    Raises
    ------
    InvalidInputError — ``index`` outside ``[0, K)``.
    """
    k = references.n_models
    if not 0 <= index < k:
        raise InvalidInputError(f"reference model {index} cannot play the target; expected an index in [0, {k})")
    others = np.array([i for i in range(k) if i != index], dtype=np.intp)
    models = references.models
    draw_target = replace(
        target,
        logits=references.logits[index],
        labels=references.labels,
        population_logits=None if references.population_logits is None else references.population_logits[index],
        population_labels=references.population_labels,
        model=None if models is None else models[index],
    )
    draw_references = ReferenceOutputs(
        logits=references.logits[others],
        masks=references.masks[others],
        labels=references.labels,
        population_logits=None if references.population_logits is None else references.population_logits[others],
        population_labels=references.population_labels,
        models=None if models is None else [models[i] for i in others],
    )
    return draw_target, draw_references, np.asarray(references.masks[index], dtype=bool)


def draw_metrics(member: np.ndarray, score: np.ndarray, fprs: Sequence[float]) -> dict[str, Any]:
    """Point metrics of one draw: ``{"auc": float, "tpr_at_fpr": {fpr_key: float}}``.

    TPR at an FPR is :func:`memberscope.metrics.tpr_at_fpr` (the largest TPR whose observed FPR does not exceed
    it); with fewer than ``1 / fpr`` non-members it is the TPR at no false positive.
    """
    from memberscope.metrics import fpr_key, roc_auc, roc_curve, tpr_at_fpr

    fpr, tpr, _ = roc_curve(member, score)
    return {"auc": roc_auc(member, score), "tpr_at_fpr": {fpr_key(a): tpr_at_fpr(fpr, tpr, a) for a in fprs}}


def run_draws(
    target: TargetOutputs,
    references: ReferenceOutputs,
    *,
    target_member: np.ndarray,
    target_scores: dict[str, np.ndarray],
    n_draws: int,
    attacks: Sequence[str],
    attack_params: dict[str, dict[str, Any]],
    seed: int,
    fprs: Sequence[float],
    accuracy: Callable[[np.ndarray, np.ndarray], float],
    on_draw: Callable[[int], None] | None = None,
) -> list[Draw]:
    """The target and ``n_draws - 1`` reference models (0, 1, ...) attacked as targets, leave-one-out.

    Parameters
    ----------
    target, references : the audit's outputs over the pool records (and population).
    target_member : ndarray of bool, shape (n_pool,) — the target's ground truth.
    target_scores : dict of str to ndarray — the audit's scores of the target (not recomputed).
    n_draws : int — draws in all, the target included; at most ``K + 1``.
    attacks, attack_params, seed : as for :func:`~memberscope.engine.evaluation.run_attacks` (the same seed as
        the audit, so a draw is what auditing that reference model by hand with the others would give).
    fprs : the FPRs of :func:`draw_metrics`.
    accuracy : ``accuracy(logits, labels)`` of a model's outputs.
    on_draw : called with the number of draws finished.

    Raises
    ------
    InvalidInputError — ``n_draws`` is below 1 or above ``K + 1``.
    """
    from memberscope.engine.evaluation import run_attacks

    k = references.n_models if references is not None else 0
    if not 1 <= n_draws <= k + 1:
        raise InvalidInputError(
            f"targets={n_draws} needs {n_draws - 1} reference models to play the target; the audit has {k}"
        )
    member = np.asarray(target_member, dtype=bool)
    first = Draw(
        "target",
        None,
        member,
        dict(target_scores),
        train_accuracy=accuracy(target.logits[member], target.labels[member]),
        test_accuracy=accuracy(target.logits[~member], target.labels[~member]),
    )
    first.metrics = {name: draw_metrics(member, s, fprs) for name, s in first.scores.items()}
    draws = [first]
    if on_draw is not None:
        on_draw(1)
    draw_attacks = [a for a in attacks if not uses_in_models(a)]
    for j in range(n_draws - 1):
        draw_target, draw_refs, draw_member = leave_one_out(target, references, j)
        runs = run_attacks(draw_attacks, draw_target, draw_refs, attack_params=attack_params, seed=seed)
        draw = Draw(
            f"reference model {j}",
            j,
            draw_member,
            {r.name: r.scores for r in runs},
            train_accuracy=accuracy(draw_target.logits[draw_member], draw_target.labels[draw_member]),
            test_accuracy=accuracy(draw_target.logits[~draw_member], draw_target.labels[~draw_member]),
        )
        draw.metrics = {name: draw_metrics(draw_member, s, fprs) for name, s in draw.scores.items()}
        draws.append(draw)
        if on_draw is not None:
            on_draw(len(draws))
    return draws


def _spread(values: Sequence[float]) -> dict[str, Any]:
    arr = np.asarray(values, dtype=np.float64)
    return {
        "mean": _round(float(arr.mean())),
        "std": _round(float(arr.std(ddof=1))) if arr.size > 1 else None,
        "min": _round(float(arr.min())),
        "max": _round(float(arr.max())),
        "values": [_round(float(v)) for v in arr],
    }


def _round(value: float) -> float:
    return float(value) if not np.isfinite(value) else round(float(value), 6)


def summarize_draws(draws: Sequence[Draw]) -> dict[str, Any]:
    """The ``draws`` section of ``results.json``: each draw, and per attack the mean and spread over draws.

    ``attacks[name]["auc"]`` and ``attacks[name]["tpr_at_fpr"][key]`` hold ``mean``, ``std`` (sample standard
    deviation; None for one draw), ``min``, ``max`` and ``values`` (one per draw, in the order of ``draws``).
    The worst draw for a metric is its ``max`` (the most leakage).
    """
    names = list(draws[0].metrics) if draws else []
    attacks: dict[str, Any] = {}
    excluded: dict[str, str] = {}
    for name in names:
        per = [d.metrics[name] for d in draws if name in d.metrics]
        if len(draws) > 1 and len(per) == 1:
            excluded[name] = ONLINE_EXCLUDED
            continue
        keys = list(per[0]["tpr_at_fpr"])
        attacks[name] = {
            "auc": _spread([m["auc"] for m in per]),
            "tpr_at_fpr": {k: _spread([m["tpr_at_fpr"][k] for m in per]) for k in keys},
        }
    return {
        "n_draws": len(draws),
        "design": DRAW_DESIGN if len(draws) > 1 else "one training draw: the target alone",
        "draws": [d.to_dict() for d in draws],
        "attacks": attacks,
        "excluded": excluded,
    }


def membership_probability(
    score: np.ndarray,
    calibration: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    prior: float,
) -> np.ndarray:
    """Each record's probability of being a member given its score, calibrated on reference draws.

    An isotonic (non-decreasing) regression of membership on the score is fitted on ``calibration`` — pairs
    ``(member, score)`` of draws whose ground truth is known (reference models playing the target) — and its
    output is moved from the calibration draws' member share ``π_c`` to ``prior`` by Bayes' rule on the odds:
    ``odds = odds_c · (prior / (1 - prior)) / (π_c / (1 - π_c))``.

    Parameters
    ----------
    score : ndarray of shape (n,) — the target's scores of one attack.
    calibration : sequence of (member, score) pairs, each of shape (m,) — at least one member and one non-member.
    prior : float in (0, 1) — the share of members among the records scored (the game's, or a user's guess).

    Returns
    -------
    ndarray of shape (n,), in (0, 1): the isotonic fit is clipped to ``[ε, 1 - ε]`` with ``ε = 0.5 / (m + 1)``
    for ``m`` calibration records before the prior shift, so no record is called certainly (not) a member.

    Raises
    ------
    InvalidInputError — no calibration draw, or one without members or non-members, or ``prior`` outside (0, 1).
    """
    from sklearn.isotonic import IsotonicRegression

    if not calibration:
        raise InvalidInputError("a membership probability needs at least one reference draw to calibrate on")
    member = np.concatenate([np.asarray(m, dtype=bool) for m, _ in calibration])
    scores = np.concatenate([np.asarray(s, dtype=np.float64) for _, s in calibration])
    if member.all() or not member.any():
        raise InvalidInputError("calibration draws need members and non-members")
    if not 0.0 < prior < 1.0:
        raise InvalidInputError(f"member prior must be in (0, 1); got {prior!r}")
    finite = np.isfinite(scores)
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
    iso.fit(scores[finite], member[finite].astype(np.float64))
    # A finite calibration set never shows a probability of exactly 0 or 1: clip by half a record of it.
    eps = 0.5 / (int(finite.sum()) + 1)
    p = np.clip(iso.predict(np.nan_to_num(np.asarray(score, dtype=np.float64), nan=-np.inf)), eps, 1.0 - eps)
    pi_c = float(member.mean())
    ratio = (prior / (1.0 - prior)) / (pi_c / (1.0 - pi_c))
    odds = p / (1.0 - p)
    return odds * ratio / (1.0 + odds * ratio)
