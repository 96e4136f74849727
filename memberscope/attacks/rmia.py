"""Robust Membership Inference Attack (Zarifzadeh, Liu, Shokri & Shokri, ICML 2024).

``LR(x) = Pr(x | target) / Pr(x)`` where ``Pr(x | model)`` is the probability the model gives
the true label (averaged over queries) and ``Pr(x)`` its average over reference models. The
score of ``x`` is the fraction of population records ``z`` it dominates:
``#{z : LR(x) / LR(z) > gamma} / |Z|``. Offline (OUT models only) approximates the missing IN
models by ``Pr(x) = ((1 + a) Pr_OUT(x) + (1 - a)) / 2``, i.e. ``Pr_IN(x) ~ a Pr_OUT(x) + 1 - a``,
with ``a`` chosen by letting reference models play the target.

With one reference model (K = 1) the paper's one-reference setting runs: ``a`` cannot be chosen
(no second model to play against), so it is fixed at :data:`FIXED_OFFLINE_A`, and for the records
that model trained on (it is IN for about half of them) ``Pr_OUT(x)`` is recovered from the same
linear approximation, ``Pr_OUT(x) = (Pr_IN(x) - (1 - a)) / a`` clipped to [0, 1], as the authors'
code does for one reference model.

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

__all__ = [
    "DEFAULT_A_GRID",
    "FIXED_OFFLINE_A",
    "RMIA",
    "RMIAOffline",
    "RMIAOnline",
    "pairwise_dominance",
    "true_label_probability",
]

DEFAULT_A_GRID = tuple(np.round(np.linspace(0.0, 1.0, 21), 2))
FIXED_OFFLINE_A = 0.33
"""Offline ``a`` when no reference model can play the target (K = 1, or fewer than 2 population
records): the value of the RMIA authors' released offline configuration for one reference model on
CIFAR-10 (Zarifzadeh et al. 2024; ``offline_a: 0.33`` in their ``rmia_offline_1_ref_models.yaml``).
The paper's sweep finds the best ``a`` between about 0.2 and 0.6 across its data sets; pass ``a`` to
override."""
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


def _mann_whitney_auc(positives: np.ndarray, negatives: np.ndarray) -> float:
    """AUC of members' scores (n1,) against non-members' (n0,): pairs won plus half the ties, over n1 n0."""
    negatives = np.sort(negatives)
    positives = np.sort(positives)  # sorted queries make the binary searches cache-friendly
    below = np.searchsorted(negatives, positives, side="left")
    upto = np.searchsorted(negatives, positives, side="right")
    return float((2 * int(below.sum()) + int((upto - below).sum())) / (2.0 * positives.size * negatives.size))


def _offline_log_ratio(log_p_x: np.ndarray, p_out_x: np.ndarray, a: float, out: np.ndarray) -> np.ndarray:
    """``log_p_x - _log(_offline_prior(p_out_x, a))`` (c,) written into ``out`` (c,) and returned.

    The same floating-point operations in the same order as the expression (so the same values to
    the last bit), without its temporaries: the choice of ``a`` evaluates it for every
    ``(game, a)`` and allocating them cost as much as the arithmetic. The floor of :func:`_log` is
    applied only where it can bind: for ``a < 1`` the prior is at least ``(1 - a) / 2``, whose log
    is far above :data:`LOG_FLOOR`.
    """
    np.multiply(p_out_x, 1.0 + a, out=out)
    np.add(out, 1.0 - a, out=out)
    np.multiply(out, 0.5, out=out)
    with np.errstate(divide="ignore"):
        np.log(out, out=out)
    if 0.5 * (1.0 - a) < 1e-290:
        np.maximum(out, LOG_FLOOR, out=out)
    return np.subtract(log_p_x, out, out=out)


class _Bins:
    """A non-decreasing map of scores to ``bins + 1`` bins, shared by a game's members and non-members.

    Equal widths between the 0.1% and 99.9% quantiles of a strided sample of both, the tails in
    the end bins. Equal scores share a bin and a higher score never gets a lower bin, whatever the
    data, so pairs in different bins are ordered by their bins. ``bins + 1 <= 65536`` (bin numbers
    fit 16 bits, which numpy sorts by radix).
    """

    def __init__(self, positives: np.ndarray, negatives: np.ndarray, bins: int):
        step = max(1, (positives.size + negatives.size) // 4096)
        sample = np.concatenate([positives[::step], negatives[::step]])
        low, high = len(sample) // 1000, len(sample) - 1 - len(sample) // 1000
        lo, hi = np.partition(sample, (low, high))[[low, high]]  # the sorted sample's entries, in O(sample)
        with np.errstate(over="ignore", divide="ignore"):
            scale = bins / (hi - lo) if hi > lo else 0.0
        # a spread too small to divide by (subnormal) puts everything in one bin: still non-decreasing
        self.lo, self.scale, self.bins = float(lo), (float(scale) if np.isfinite(scale) else 0.0), bins

    def __call__(self, scores: np.ndarray, position: np.ndarray, cell: np.ndarray) -> np.ndarray:
        """Bin numbers (c,) int64 of ``scores`` (c,) into ``cell``; ``position`` (c,) float64 is scratch."""
        np.subtract(scores, self.lo, out=position)
        np.multiply(position, self.scale, out=position)
        np.clip(position, 0.0, float(self.bins), out=position)
        np.copyto(cell, position, casting="unsafe")  # truncation: non-decreasing
        return cell

    def counts(self, cell: np.ndarray) -> np.ndarray:
        return np.bincount(cell, minlength=self.bins + 1)


class _Workspace:
    """Reused buffers (c,) for the scores and bins of one game's candidates, members first."""

    def __init__(self, c: int):
        self.scores, self.position, self.cell = np.empty(c), np.empty(c), np.empty(c, np.int64)


def _auc_bounds(
    positives: np.ndarray, negatives: np.ndarray, bins: int = 8192, work: _Workspace | None = None
) -> tuple[float, float]:
    """Bounds on the AUC of members' scores (n1,) against non-members' (n0,): ``(won, won + shared) / (n1 n0)``.

    A member and a non-member in different bins of :class:`_Bins` are ordered by their bins; those
    sharing a bin may go either way. Equal scores share a bin, so the bounds hold whatever the bins;
    finer bins only make them tighter. ``work`` (buffers of size n1 + n0) saves allocating.
    """
    n1 = positives.size
    work = _Workspace(n1 + negatives.size) if work is None else work
    binning = _Bins(positives, negatives, bins)
    pos = binning.counts(binning(positives, work.position[:n1], work.cell[:n1]))
    neg = binning.counts(binning(negatives, work.position[n1:], work.cell[n1:]))
    won = int(np.dot(pos, np.cumsum(neg) - neg))
    shared = int(np.dot(pos, neg))
    pairs = float(positives.size) * float(negatives.size)
    return won / pairs, (won + shared) / pairs


def _binned_auc(positives: np.ndarray, negatives: np.ndarray, bins: int = 32767, max_shared: float = 8.0) -> float:
    """:func:`_mann_whitney_auc` of ``positives`` (n1,) against ``negatives`` (n0,): the same float, no sort.

    Pairs in different bins of :class:`_Bins` are counted from the histograms; pairs sharing a bin
    (few with fine bins) are compared one by one, the non-members grouped by bin with a radix sort
    of their 16-bit bin numbers. When more than ``max_shared`` pairs per record share a bin (heavy
    ties), it sorts (:func:`_mann_whitney_auc`).
    """
    binning = _Bins(positives, negatives, bins)
    pos_bin = binning(positives, np.empty(positives.size), np.empty(positives.size, np.int64))
    neg_bin = binning(negatives, np.empty(negatives.size), np.empty(negatives.size, np.int64))
    pos, neg = binning.counts(pos_bin), binning.counts(neg_bin)
    won = int(np.dot(pos, np.cumsum(neg) - neg))
    shared = int(np.dot(pos, neg))
    if shared > max_shared * (positives.size + negatives.size):
        return _mann_whitney_auc(positives, negatives)
    by_bin = negatives[np.argsort(neg_bin.astype(np.uint16), kind="stable")]
    first_neg = np.cumsum(neg) - neg  # each bin's first non-member in by_bin
    sharing = neg[pos_bin]  # (n1,): non-members in each member's bin
    pair_pos = np.repeat(np.arange(positives.size), sharing)
    first_pair = np.cumsum(sharing) - sharing
    pair_neg = first_neg[pos_bin][pair_pos] + (np.arange(shared) - first_pair[pair_pos])
    mine, theirs = positives[pair_pos], by_bin[pair_neg]
    won += int(np.count_nonzero(mine > theirs))
    ties = int(np.count_nonzero(mine == theirs))
    return float((2 * won + ties) / (2.0 * positives.size * negatives.size))


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
            self.a_auc_: dict[float, float] | None = None
            self.a_ = self.a if self.a is not None else self._choose_a()
            self.p_out_ = self._out_probability(self.p_ref_, masks, self.a_)
            self.prior_x_ = _offline_prior(self.p_out_, self.a_)
            self.prior_z_ = _offline_prior(self.p_ref_population_.mean(axis=0), self.a_)
        return self

    def _out_probability(self, p_ref: np.ndarray, masks: np.ndarray, a: float) -> np.ndarray:
        """``Pr_OUT(x)`` (n,): the mean over OUT models, or from the IN models where there is none.

        A record every reference model trained on (with K = 1, half of them) gets the inverse of the
        offline approximation ``Pr_IN = a Pr_OUT + 1 - a`` applied to its mean IN probability.
        """
        out = ~masks
        n_out = out.sum(axis=0)
        p_out = (p_ref * out).sum(axis=0) / np.maximum(n_out, 1)
        only_in = n_out == 0
        if only_in.any():
            if a <= 0.0:
                raise InvalidInputError(
                    f"attack {self.name!r} with a=0 cannot score the {int(only_in.sum())} records that every "
                    "reference model trained on: a=0 says Pr_IN(x) = 1 whatever Pr_OUT(x), so Pr_OUT(x) cannot "
                    "be recovered; use a > 0 or more reference models"
                )
            p_in = p_ref[:, only_in].mean(axis=0)
            p_out[only_in] = np.clip((p_in - (1.0 - a)) / a, 0.0, 1.0)
        return p_out

    def _calibration_games(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        """Each of a few reference models as the target, the others as its OUT models.

        Candidates are pool records with an OUT model among the other references (labelled by the
        pseudo-target's mask) plus half of the population records (non-members); the other half
        serves as ``z``. The real target's ground truth is never used.

        Returns
        -------
        list of (member, log_p_x, p_out_x, log_p_z, p_out_z)
            Candidates' labels (c,), members first, log-probabilities under the pseudo-target (c,)
            and mean OUT probabilities (c,); the same for the ``z`` half (m/2,).
        """
        k, m = self.p_ref_.shape[0], self.p_ref_population_.shape[1]
        z_half, cand_half = np.arange(0, m, 2), np.arange(1, m, 2)
        games = []
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
            first = np.argsort(~member, kind="stable")  # members first: a game's two classes are two slices
            log_p_x = _log(np.concatenate([self.p_ref_[j, keep], self.p_ref_population_[j, cand_half]])[first])
            p_out_x = np.concatenate([p_out, p_out_z[cand_half]])[first]
            games.append((member[first], log_p_x, p_out_x, _log(self.p_ref_population_[j, z_half]), p_out_z[z_half]))
        return games

    def _calibration_scores(self, game, a: float, work: _Workspace | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Members' (n1,) and non-members' (n0,) scores in a calibration game, whose AUC stands for this ``a``'s.

        With ``tie_break`` the dominance score is a strictly increasing function of ``LR(x)`` (the
        count of dominated ``z`` never decreases in ``LR(x)`` and the tie-break adds its rank, less
        than one step), so its AUC is the AUC of ``LR(x)`` itself: no ``z`` and no second sort.
        The game's members come first (:meth:`_calibration_games`), so the two are slices of one
        array, written into ``work.scores`` when given.
        """
        member, log_p_x, p_out_x, log_p_z, p_out_z = game
        n1 = int(np.count_nonzero(member))
        scores = _offline_log_ratio(log_p_x, p_out_x, a, np.empty(log_p_x.size) if work is None else work.scores)
        if not self.tie_break:
            scores = pairwise_dominance(scores, log_p_z - _log(_offline_prior(p_out_z, a)), gamma=self.gamma)
        return scores[:n1], scores[n1:]

    def _choose_a(self) -> float:
        """The ``a`` maximizing the mean AUC when each of a few reference models plays the target.

        Exact over the whole grid, without sorting for every ``a``: each ``(game, a)`` AUC is first
        bracketed from a histogram of the scores (pairs in different bins are counted exactly,
        pairs sharing a bin may go either way), and only the ``a`` whose upper bound reaches the best
        lower bound are evaluated exactly (:func:`_binned_auc`, the Mann-Whitney count).
        ``a_auc_`` keeps those exact mean AUCs. :data:`FIXED_OFFLINE_A` when no reference model can
        play the target.

        Each ``(game, a)`` is one pass over reused buffers, nothing kept: the scores of the few
        ``a`` left are computed again.
        """
        k, m = self.p_ref_.shape[0], self.p_ref_population_.shape[1]
        games = self._calibration_games() if k >= 2 and m >= 2 else []
        if not games:
            return FIXED_OFFLINE_A
        grid = [float(a) for a in self.a_grid]
        bounds = np.zeros((len(grid), 2))  # summed over games, in game order
        for game in games:
            work = _Workspace(game[0].size)
            for i, a in enumerate(grid):
                bounds[i] += _auc_bounds(*self._calibration_scores(game, a, work), work=work)
        # a hair of slack for the float sums: more candidates, never fewer
        candidates = np.flatnonzero(bounds[:, 1] >= bounds[:, 0].max() - 1e-12)
        exact = {
            i: sum(_binned_auc(*self._calibration_scores(game, grid[i])) for game in games) for i in candidates.tolist()
        }
        best = max(exact, key=lambda i: (exact[i], -i))  # ties go to the first grid value, as np.argmax
        self.a_auc_ = {grid[i]: round(v / len(games), 4) for i, v in sorted(exact.items())}
        return grid[best]

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
            if self.a is not None:
                out["a_chosen_on"] = "given"
            elif getattr(self, "a_auc_", None) is None and hasattr(self, "a_"):
                out["a_chosen_on"] = f"fixed ({FIXED_OFFLINE_A}: no reference model can play the target)"
            else:
                out["a_chosen_on"] = "reference models"
        return out


PAPER = 'Zarifzadeh, Liu, Shokri & Shokri, "Low-Cost High-Power Membership Inference Attacks", ICML 2024'


@ATTACKS.register("rmia-online")
class RMIAOnline(RMIA):
    """RMIA with all reference models (IN and OUT)."""

    name = "rmia-online"
    paper = PAPER
    online = True
    min_reference_models = 1


@ATTACKS.register("rmia-offline")
class RMIAOffline(RMIA):
    """RMIA with OUT reference models and the offline ``a`` approximation; runs from one reference model."""

    name = "rmia-offline"
    paper = PAPER
    online = False
    min_reference_models = 1
