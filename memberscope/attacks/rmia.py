"""Robust Membership Inference Attack (Zarifzadeh, Liu, Shokri & Shokri, ICML 2024).

``LR(x) = Pr(x | target) / Pr(x)`` where ``Pr(x | model)`` is the probability the model gives
the true label (averaged over queries) and ``Pr(x)`` its average over reference models. The
score of ``x`` is the fraction of population records ``z`` it dominates:
``#{z : LR(x) / LR(z) > gamma} / |Z|``. Offline (OUT models only) approximates the missing IN
models by ``Pr(x) = ((1 + a) Pr_OUT(x) + (1 - a)) / 2``, with ``a`` chosen on reference models.

The pairwise comparison is computed by sorting the ``LR(z)`` once and binary-searching each
``LR(x)``: O((n + z) log z) time and O(n + z) memory, never an n × z matrix.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import rankdata

from memberscope.attacks._base import Attack, ReferenceOutputs, TargetOutputs
from memberscope.attacks.registry import ATTACKS
from memberscope.exceptions import InvalidInputError
from memberscope.signals import true_class_log_probability

__all__ = ["RMIA", "RMIAOffline", "RMIAOnline", "pairwise_dominance", "true_label_probability"]

DEFAULT_A_GRID = tuple(np.round(np.linspace(0.0, 1.0, 21), 2))
# Log-probabilities are floored so a record the target gives probability 0 stays comparable.
LOG_FLOOR = np.log(1e-300)


def true_label_probability(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``Pr(x | model)``: true-label probability averaged over queries; ``(..., n, A, C) -> (..., n)``."""
    return np.exp(true_class_log_probability(logits, labels[:, None])).mean(axis=-1)


def pairwise_dominance(
    log_ratio_x: np.ndarray, log_ratio_z: np.ndarray, *, gamma: float = 1.0, tie_break: bool = False
) -> np.ndarray:
    """Fraction of ``z`` with ``LR(x) / LR(z) > gamma``, from log-ratios of shapes (n,) and (m,).

    The fraction takes only ``m + 1`` values, so with few population records many members tie
    (often at 1.0), which costs TPR at low FPR. The count is non-decreasing in ``LR(x)``, so
    ``tie_break=True`` adds ``rank(LR(x)) / ((n + 1) m)``, less than one step ``1 / m``: records
    with different counts keep their order and tied records are ordered by ``LR(x)``.
    """
    sorted_z = np.sort(log_ratio_z)
    # LR(x)/LR(z) > gamma  <=>  log LR(z) < log LR(x) - log gamma
    counts = np.searchsorted(sorted_z, log_ratio_x - np.log(gamma), side="left").astype(np.float64)
    if tie_break:
        counts += rankdata(log_ratio_x, method="average") / (log_ratio_x.size + 1)
    return counts / sorted_z.size


def _log(p: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.maximum(np.log(p), LOG_FLOOR)


def _offline_prior(p_out: np.ndarray, a: float) -> np.ndarray:
    return 0.5 * ((1.0 + a) * p_out + (1.0 - a))


class RMIA(Attack):
    """RMIA; subclasses fix ``online``."""

    online: bool
    needs_population = True

    def __init__(
        self,
        *,
        gamma: float = 1.0,
        a: float | None = None,
        a_grid: tuple[float, ...] = DEFAULT_A_GRID,
        calibration_models: int = 4,
        tie_break: bool = True,
    ):
        if not gamma > 0:
            raise InvalidInputError(f"gamma must be > 0; got {gamma}")
        if a is not None and not 0.0 <= a <= 1.0:
            raise InvalidInputError(f"a must be in [0, 1]; got {a}")
        self.gamma, self.a, self.a_grid, self.calibration_models = float(gamma), a, tuple(a_grid), calibration_models
        self.tie_break = tie_break

    def fit(self, references: ReferenceOutputs | None) -> RMIA:
        self.check_references(references)
        assert references is not None  # check_references: at least min_reference_models
        if references.population_logits is None or references.population_logits.shape[1] == 0:
            raise InvalidInputError(f"attack {self.name!r} needs reference outputs on population records")
        assert references.population_labels is not None  # ReferenceOutputs checks them with the logits
        masks = references.masks
        self.p_ref_ = true_label_probability(references.logits, references.labels)  # (K, n)
        self.p_ref_population_ = true_label_probability(references.population_logits, references.population_labels)
        self.masks_ = masks
        if self.online:
            self.prior_x_ = self.p_ref_.mean(axis=0)
            self.prior_z_ = self.p_ref_population_.mean(axis=0)
        else:
            n_out = (~masks).sum(axis=0)
            if n_out.min() < 1:
                raise InvalidInputError(
                    f"attack {self.name!r} needs at least one OUT reference model for every record; "
                    f"{int((n_out < 1).sum())} records have none (use at least 2 reference models)"
                )
            self.p_out_ = (self.p_ref_ * ~masks).sum(axis=0) / n_out
            self.a_ = self.a if self.a is not None else self._choose_a()
            self.prior_x_ = _offline_prior(self.p_out_, self.a_)
            self.prior_z_ = _offline_prior(self.p_ref_population_.mean(axis=0), self.a_)
        return self

    def _choose_a(self) -> float:
        """The ``a`` maximizing the mean AUC when each of a few reference models plays the target.

        Candidates are pool records with an OUT model among the other references (labelled by the
        pseudo-target's mask) plus half of the population records (non-members); the other half
        serves as ``z``. The real target's ground truth is never used.
        """
        from memberscope.metrics import roc_auc

        k, m = self.p_ref_.shape[0], self.p_ref_population_.shape[1]
        if k < 2 or m < 2:
            return 0.5
        z_half, cand_half = np.arange(0, m, 2), np.arange(1, m, 2)
        aucs = np.zeros(len(self.a_grid))
        used = 0
        for j in range(min(k, self.calibration_models)):
            others = np.arange(k) != j
            out = ~self.masks_[others]
            n_out = out.sum(axis=0)
            keep = n_out > 0
            p_out = (self.p_ref_[others] * out).sum(axis=0)[keep] / n_out[keep]
            p_out_z = self.p_ref_population_[others].mean(axis=0)
            member = np.concatenate([self.masks_[j, keep], np.zeros(cand_half.size, bool)])
            if member.all() or not member.any():
                continue
            log_p_x = _log(np.concatenate([self.p_ref_[j, keep], self.p_ref_population_[j, cand_half]]))
            p_out_x = np.concatenate([p_out, p_out_z[cand_half]])
            log_p_z = _log(self.p_ref_population_[j, z_half])
            for i, a in enumerate(self.a_grid):
                scores = pairwise_dominance(
                    log_p_x - _log(_offline_prior(p_out_x, a)),
                    log_p_z - _log(_offline_prior(p_out_z[z_half], a)),
                    gamma=self.gamma,
                    tie_break=self.tie_break,
                )
                aucs[i] += roc_auc(member, scores)
            used += 1
        if used == 0:
            return 0.5
        self.a_auc_ = dict(zip(map(float, self.a_grid), (aucs / used).round(4).tolist(), strict=True))
        return float(self.a_grid[int(np.argmax(aucs))])

    def score(self, target: TargetOutputs) -> np.ndarray:
        self.check_population(target)
        if not hasattr(self, "prior_x_"):
            raise RuntimeError(f"{self.name}: call fit() before score()")
        if target.logits.shape[0] != self.prior_x_.shape[0] or target.n_population != self.prior_z_.shape[0]:
            raise InvalidInputError(
                f"target outputs cover {target.logits.shape[0]} records and {target.n_population} population "
                f"records but the attack was fitted on {self.prior_x_.shape[0]} and {self.prior_z_.shape[0]}"
            )
        pop_logits, pop_labels = target.population_logits, target.population_labels
        assert pop_logits is not None and pop_labels is not None  # check_population (fit needs a population)
        log_ratio_x = _log(true_label_probability(target.logits, target.labels)) - _log(self.prior_x_)
        log_ratio_z = _log(true_label_probability(pop_logits, pop_labels)) - _log(self.prior_z_)
        return pairwise_dominance(log_ratio_x, log_ratio_z, gamma=self.gamma, tie_break=self.tie_break)

    def params(self) -> dict[str, Any]:
        out: dict[str, Any] = {"gamma": self.gamma, "tie_break": self.tie_break}
        if not self.online:
            out["a"] = getattr(self, "a_", self.a)
            out["a_chosen_on"] = "given" if self.a is not None else "reference models"
        return out


@ATTACKS.register("rmia-online")
class RMIAOnline(RMIA):
    """RMIA with all reference models (IN and OUT)."""

    name = "rmia-online"
    online = True
    min_reference_models = 1


@ATTACKS.register("rmia-offline")
class RMIAOffline(RMIA):
    """RMIA with OUT reference models and the offline ``a`` approximation."""

    name = "rmia-offline"
    online = False
    min_reference_models = 2
