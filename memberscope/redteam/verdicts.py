"""Membership verdicts without ground truth: thresholds calibrated on shadow models to chosen error rates.

Two thresholds are read off the shadow models' out-of-fold scores, one for each verdict:

- the **member** threshold ``t`` on the shadows' *non-member* scores: the rule "member iff score >= t" flags at
  most ``floor(fpr · n0)`` of the ``n0`` shadow non-members. That count is a sample, so the threshold is uncertain:
  the number of non-members above the true (1 - fpr) quantile is Binomial(n0, fpr), and its ``confidence``
  interval ``[r_lo, r_hi]`` gives a band of thresholds ``[t_low, t_high]``;
- the **not-member** threshold ``u`` on the shadows' *member* scores, symmetrically: the rule "not-member iff
  score < u" calls at most ``floor(fnr · n1)`` of the ``n1`` shadow members non-members (``fnr``, the false-negative
  rate, defaults to ``fpr``), with its Binomial(n1, fnr) band ``[u_low, u_high]``.

A record is

- **member** if its score is at or above ``t_high`` (above the threshold even at its most conservative);
- **not-member** if its score is below ``u_low``: a score so low that members of models like the target score that
  low at most at rate ``fnr`` (below the threshold even at its most conservative). A score merely below the member
  threshold is *not flagged at this FPR*, which says nothing about non-membership: a random forest's members mostly
  score there too;
- **inconclusive** otherwise (everything between the two thresholds, and everything when the conditions below fail).

Shadows are not the target, so the threshold is also **checked on the target** (:func:`check_on_target`): the
attacker's held-out records are known non-members of the target (it cannot have seen them), and the share of them
the threshold flags estimates the target-side FPR, with its Clopper–Pearson interval. The verdicts then follow what
has been shown (:func:`verdicts`):

- a threshold that flags significantly *more* known non-members than ``fpr`` (the interval above it) is off: every
  verdict is inconclusive;
- *member* verdicts need a score above both the shadows' band and a threshold certified on the known non-members
  themselves (:func:`certified_threshold`: its FPR on the target at most :data:`CERTIFIED_FACTOR` times ``fpr`` at
  95% confidence, at most ``fpr`` on the known non-members), so a threshold the shadows set too low for the target
  is raised to what the target's own non-members allow; with too few known non-members to certify any threshold,
  no record is called a member;
- *not-member* needs a score below the not-member band and more: the shadows fit the target
  (:mod:`memberscope.redteam.fit`), the check agrees with ``fpr`` (a threshold far too strict on the target says the
  scores are not distributed as on the shadows), and the attack has power on the shadows (its TPR interval above
  ``fpr``). Otherwise a low score says nothing, and the record is inconclusive: the attack's power on this target is
  unknown.

:func:`conclude` turns the verdict counts into the one finding every output states: leakage, no measurable
leakage, or inconclusive. An all-clear needs more than "not leakage": the run must have been able to see leakage of
the size that matters (:func:`min_detectable_share`: the smallest share of records called members that it would call
leakage; the attack's TPR on models like the target clearly above it), and the target's own answers must bound the
leakage below it (the upper confidence bound of the share of records called members at most what false positives
explain). A target that leaks a little, with a few members called at a low true FPR but too few to separate from
false positives, is therefore inconclusive, never "no measurable leakage".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from memberscope.exceptions import InvalidInputError
from memberscope.privacy import clopper_pearson_interval

__all__ = [
    "CERTIFIED_FACTOR",
    "CONCLUSIONS",
    "VERDICTS",
    "Calibration",
    "Conclusion",
    "TargetCheck",
    "calibrate_threshold",
    "certified_threshold",
    "check_on_target",
    "cleared_members_bound",
    "conclude",
    "min_detectable_share",
    "rate",
    "verdicts",
]

VERDICTS = ("member", "not-member", "inconclusive")
CONCLUSIONS = ("leakage", "no measurable leakage", "inconclusive")


@dataclass
class Calibration:
    """A threshold at a target FPR and the evidence for it (the ``calibration`` block of results.json)."""

    fpr_target: float
    threshold: float
    threshold_band: tuple[float, float]
    shadow_tpr: float
    shadow_tpr_ci: tuple[float, float]
    shadow_fpr: float
    shadow_fpr_ci: tuple[float, float]
    n_shadow_models: int
    n_shadow_members: int
    n_shadow_nonmembers: int
    confidence: float = 0.95
    resolvable: bool = True
    fnr_target: float | None = None
    """The false-negative rate the not-member threshold allows on the shadows' members (None: no such threshold)."""
    not_member_threshold: float = -np.inf
    """``u``: "not-member" only for scores below the low end of ``not_member_band`` (``-inf``: never)."""
    not_member_band: tuple[float, float] = (-np.inf, -np.inf)
    shadow_fnr: float | None = None
    """Share of the shadows' members scoring below ``not_member_threshold`` (their FNR), with its interval."""
    shadow_fnr_ci: tuple[float, float] | None = None

    @property
    def power_shown(self) -> bool:
        """Whether the attack beats guessing on the shadows: its TPR interval lies above the FPR."""
        return bool(self.shadow_tpr_ci[0] > self.fpr_target)

    @property
    def fnr(self) -> float:
        """The FNR "not-member" verdicts are calibrated to (``fnr_target``, else the FPR)."""
        return self.fnr_target if self.fnr_target is not None else self.fpr_target

    @property
    def not_member_cut(self) -> float:
        """The score a "not-member" verdict must fall below: the low end of both the not-member and the member
        threshold's bands."""
        return min(self.not_member_band[0], self.threshold_band[0])

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("threshold_band", "shadow_tpr_ci", "shadow_fpr_ci", "not_member_band", "shadow_fnr_ci"):
            out[key] = None if out[key] is None else [_finite_or_none(v) for v in out[key]]
        out["not_member_threshold"] = _finite_or_none(self.not_member_threshold)
        out["power_shown"] = self.power_shown
        return out


def _finite_or_none(value: float) -> float | None:
    """JSON has no infinities: ``None`` stands for a threshold no score reaches."""
    return float(value) if np.isfinite(value) else None


TIE_TOLERANCE = 1e-9
"""Scores closer than this (relative to their size, at least absolute) count as tied: a discrete score computed
two ways (a share minus a mean of shares) differs in its last bits, and a threshold one float above a value must
not flag the same value computed with a rounding error upwards."""


def _threshold_allowing(sorted_desc: np.ndarray, allowed: int) -> float:
    """Smallest ``t`` with at most ``allowed`` of the scores ``>= t`` (scores sorted in descending order), above
    every score tied with the ``allowed + 1``-th largest (within :data:`TIE_TOLERANCE`)."""
    if allowed >= len(sorted_desc):
        return float(sorted_desc[-1])
    value = float(sorted_desc[allowed])
    return float(np.nextafter(value + TIE_TOLERANCE * max(1.0, abs(value)), np.inf))


def _threshold_below(sorted_asc: np.ndarray, allowed: int) -> float:
    """Largest ``u`` with at most ``allowed`` of the scores ``< u`` (scores sorted in ascending order)."""
    if allowed >= len(sorted_asc):
        return float(np.nextafter(sorted_asc[-1], np.inf))
    return float(sorted_asc[allowed])


def calibrate_threshold(
    scores: np.ndarray,
    member: np.ndarray,
    *,
    fpr: float,
    n_models: int,
    confidence: float = 0.95,
    fnr: float | None = None,
) -> Calibration:
    """Member threshold at ``fpr`` and not-member threshold at ``fnr`` (default ``fpr``) on shadow scores, with
    Clopper-Pearson CIs of the shadow TPR, FPR and FNR.

    ``scores`` ``(n,)`` and ``member`` ``(n,)`` are the out-of-fold shadow scores and membership (see the module
    docstring).

    Raises
    ------
    InvalidInputError
        ``fpr`` or ``fnr`` outside (0, 1), or scores without both shadow members and non-members.
    """
    from scipy.stats import binom

    scores, member = np.asarray(scores, dtype=np.float64), np.asarray(member, bool)
    fnr = fpr if fnr is None else fnr
    if not 0 < fpr < 1:
        raise InvalidInputError(f"fpr must be in (0, 1); got {fpr}")
    if not 0 < fnr < 1:
        raise InvalidInputError(f"fnr must be in (0, 1); got {fnr}")
    if scores.shape != member.shape or member.all() or not member.any():
        raise InvalidInputError("calibration needs scores of shadow members and non-members, one per record")
    neg = -np.sort(-scores[~member])
    n0, n1 = len(neg), int(member.sum())
    threshold = _threshold_allowing(neg, int(np.floor(fpr * n0)))
    r_lo, r_hi = binom.ppf([(1 - confidence) / 2, (1 + confidence) / 2], n0, fpr).astype(int)
    band = (_threshold_allowing(neg, int(r_hi)), _threshold_allowing(neg, int(r_lo)))
    fp, tp = int((neg >= threshold).sum()), int((scores[member] >= threshold).sum())
    # The not-member threshold, symmetric: at most floor(fnr * n1) shadow members score below it.
    pos = np.sort(scores[member])
    below = _threshold_below(pos, int(np.floor(fnr * n1)))
    m_lo, m_hi = binom.ppf([(1 - confidence) / 2, (1 + confidence) / 2], n1, fnr).astype(int)
    fn = int((pos < below).sum())
    return Calibration(
        fpr_target=float(fpr),
        threshold=threshold,
        threshold_band=band,
        shadow_tpr=tp / n1,
        shadow_tpr_ci=clopper_pearson_interval(tp, n1, confidence),
        shadow_fpr=fp / n0,
        shadow_fpr_ci=clopper_pearson_interval(fp, n0, confidence),
        n_shadow_models=int(n_models),
        n_shadow_members=n1,
        n_shadow_nonmembers=n0,
        confidence=confidence,
        resolvable=n0 * fpr >= 1,
        fnr_target=float(fnr),
        not_member_threshold=below,
        not_member_band=(_threshold_below(pos, int(m_lo)), _threshold_below(pos, int(m_hi))),
        shadow_fnr=fn / n1,
        shadow_fnr_ci=clopper_pearson_interval(fn, n1, confidence),
    )


@dataclass
class TargetCheck:
    """The shadow-calibrated threshold applied to the target's answers on attacker-known non-members.

    ``status``: ``ok`` when the requested FPR lies in the interval of the FPR observed, ``too-loose`` when the
    interval lies above it (more false positives than asked for), ``too-strict`` when below.
    """

    fpr_target: float
    n_nonmembers: int
    flagged: int
    fpr: float
    fpr_ci: tuple[float, float]
    status: str
    confidence: float = 0.95
    threshold: float = np.inf
    """The certified threshold on the target itself (:func:`certified_threshold`): "member" verdicts need a score at
    least this high too (:func:`verdicts`); ``inf`` when the known non-members are too few to certify any."""
    fpr_bound: float | None = None
    """Upper ``confidence`` bound of the FPR of ``threshold`` on the target's non-members (None: none certified)."""

    @property
    def certified(self) -> bool:
        """Whether "member" verdicts can be given: their FPR is bounded by :data:`CERTIFIED_FACTOR` times the FPR."""
        return self.fpr_bound is not None

    @property
    def resolvable(self) -> bool:
        return self.n_nonmembers * self.fpr_target >= 1

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["fpr_ci"] = [float(v) for v in self.fpr_ci]
        out["resolvable"] = self.resolvable
        return out


CERTIFIED_FACTOR = 2.0
""""Member" verdicts are given only when their FPR on the target is at most this many times the FPR asked for, at
95% confidence (:func:`certified_threshold`)."""


def certified_threshold(nonmember_scores: np.ndarray, fpr: float, *, confidence: float = 0.95) -> tuple[float, float]:
    """``(threshold, bound)``: a score threshold set on ``h`` known non-members' scores ``(h,)`` of the target, and
    the upper ``confidence`` bound of its FPR on all the target's non-members.

    The threshold flags ``k`` of the ``h`` records (ties aside): the largest ``k`` at most ``floor(fpr · h)`` whose
    order-statistic bound holds. A threshold just above the ``(k+1)``-th largest of ``h`` exchangeable scores has an
    FPR of law Beta(k + 1, h - k) (as in conformal prediction), so its FPR exceeds ``x`` with probability
    ``P(Binomial(h, x) <= k)``; the bound is the ``confidence`` quantile of that Beta law, and ``k`` is kept only
    while the bound is at most :data:`CERTIFIED_FACTOR` ``· fpr``. ``(inf, nan)`` when even ``k = 0`` does not hold
    (fewer than about ``3 / (CERTIFIED_FACTOR · fpr)`` records: 150 at 1%).
    """
    from scipy.stats import beta

    scores = -np.sort(-np.asarray(nonmember_scores, dtype=np.float64))
    h = len(scores)
    best = None
    for k in range(int(np.floor(fpr * h)) + 1):
        bound = float(beta.ppf(confidence, k + 1, h - k))
        if bound > CERTIFIED_FACTOR * fpr:
            break
        best = (_threshold_allowing(scores, k), bound)
    return best if best is not None else (np.inf, np.nan)


def check_on_target(nonmember_scores: np.ndarray, calibration: Calibration) -> TargetCheck:
    """The FPR the calibrated threshold gives on the target, from its scores ``(h,)`` of known non-members, and the
    threshold certified on them (:func:`certified_threshold`)."""
    scores = np.asarray(nonmember_scores, dtype=np.float64)
    if scores.size == 0:
        raise InvalidInputError("the target-side check needs scores of known non-members; got none")
    k, n = int((scores >= calibration.threshold).sum()), int(scores.size)
    lo, hi = clopper_pearson_interval(k, n, calibration.confidence)
    fpr = calibration.fpr_target
    status = "too-loose" if lo > fpr else "too-strict" if hi < fpr else "ok"
    own, bound = certified_threshold(scores, fpr, confidence=calibration.confidence)
    return TargetCheck(
        fpr, n, k, k / n, (lo, hi), status, calibration.confidence, own, None if np.isnan(bound) else bound
    )


def cleared_members_bound(
    scores: np.ndarray,
    nonmember_scores: np.ndarray,
    cut: float,
    *,
    member_prior: float | None = None,
    confidence: float = 0.95,
) -> float:
    """Upper ``confidence`` bound of the share of the target's members whose score falls below ``cut``: the rate at
    which "not-member" verdicts would clear true members of the *target* (not of the shadows).

    The candidates' scores ``(n,)`` are a mixture, a share ``π`` (``member_prior``) of members and the rest
    non-members, and the attacker's known non-members ``(h,)`` show the non-members' side, so the members' share
    below the cut is ``F_M = (F_C - (1 - π)·F_N) / π`` (``F_C``, ``F_N``: the shares of candidates and of known
    non-members below it). Shadows that leak more than the target calibrate the cut too high, and this is what
    shows it: a target whose members score like its non-members gives ``F_M = F_N``, whatever the cut.

    ``member_prior=None`` (the default) assumes nothing about ``π``: the bound is then the one that holds for every
    prior, ``π = 1`` (``F_M <= F_C`` for any mixture in which members score lower than non-members at most as
    often), i.e. the share of candidates below the cut, since were every candidate a member, each one cleared
    would be a member. The upper bound is a normal one on the estimator (Clopper–Pearson on ``F_C`` when
    ``π = 1``).
    """
    from scipy.stats import norm

    scores = np.asarray(scores, dtype=np.float64)
    held = np.asarray(nonmember_scores, dtype=np.float64)
    n, h = scores.size, held.size
    if n == 0:
        return 0.0
    below_c = int((scores < cut).sum())
    prior = 1.0 if member_prior is None else float(member_prior)
    if prior >= 1.0 or h == 0:
        return float(clopper_pearson_interval(below_c, n, 2 * confidence - 1)[1])
    f_c, f_n = below_c / n, float((held < cut).sum()) / h
    estimate = (f_c - (1 - prior) * f_n) / prior
    # Variances of the two shares (at least one record's worth, so an empty cell is not certain).
    var_c = max(f_c * (1 - f_c), 1 / n) / n
    var_n = max(f_n * (1 - f_n), 1 / h) / h
    spread = float(np.sqrt(var_c + (1 - prior) ** 2 * var_n)) / prior
    return float(min(1.0, estimate + norm.ppf(confidence) * spread))


def verdicts(
    scores: np.ndarray,
    calibration: Calibration,
    *,
    check: TargetCheck | None = None,
    fit_ok: bool = True,
    nonmember_scores: np.ndarray | None = None,
    member_prior: float | None = None,
) -> np.ndarray:
    """``member`` / ``not-member`` / ``inconclusive`` per score (see the module docstring).

    Without ``check`` (and with ``fit_ok``) the shadow calibration alone decides, as when no known non-members of
    the target are available; ``not-member`` always needs the attack's power shown on the shadows and a score below
    both the not-member band's low end (members of models like the target score that low at most at ``fnr``) and
    the member band's: a score merely below the member threshold is ``inconclusive``. With ``nonmember_scores`` (the
    target's scores of known non-members), ``not-member`` also needs the target itself to clear few members at that
    cut (:func:`cleared_members_bound` at most :data:`CERTIFIED_FACTOR` times ``fnr``, for ``member_prior`` or, by
    default, for any prior): shadows that leak more than the target would otherwise clear its members.
    """
    scores = np.asarray(scores, dtype=np.float64)
    high = calibration.threshold_band[1]
    out = np.full(scores.shape, "inconclusive", dtype=object)
    # A member verdict needs a score above the shadows' band and above the threshold certified on the target's own
    # known non-members: its FPR on the target is then bounded (at most CERTIFIED_FACTOR x fpr, 95% confidence).
    out[scores >= max(high, check.threshold if check is not None else -np.inf)] = "member"
    if check is not None and check.status == "too-loose":
        return out
    if fit_ok and calibration.power_shown and calibration.resolvable and (check is None or check.status == "ok"):
        # Not-member: below the low end of the band of the threshold calibrated on the shadows' MEMBER scores, so
        # members of models like the target score that low at most at rate fnr. A score merely below the member
        # threshold is "not flagged", not evidence of non-membership: it stays inconclusive.
        below = calibration.not_member_cut
        if nonmember_scores is not None:
            bound = cleared_members_bound(
                scores, nonmember_scores, below, member_prior=member_prior, confidence=calibration.confidence
            )
            if bound > CERTIFIED_FACTOR * calibration.fnr:
                return out
        out[(scores < below) & (out != "member")] = "not-member"
    return out


def _apart(a: float, b: float) -> tuple[str, str]:
    """``a`` and ``b`` as percentages with the fewest decimals (1 to 4) that tell them apart when they differ, so
    a sentence never says "up to 6.9%, more than the 6.9%"."""
    for digits in range(1, 5):
        first, second = f"{100 * a:.{digits}f}%", f"{100 * b:.{digits}f}%"
        if first != second or a == b:
            break
    return first, second


def rate(x: float) -> str:
    """A rate as the red team's sentences write it: a percentage to 3 significant digits (``0.01 -> "1%"``)."""
    return f"{100 * float(x):.3g}%"


def min_detectable_share(n: int, allowed: float, confidence: float = 0.95) -> float | None:
    """The smallest share ``m / n`` of ``n`` records called members that :func:`conclude` calls leakage: the
    Clopper–Pearson lower bound of ``m / n`` above ``allowed`` (the highest FPR the member verdicts can have).

    This is the minimum leakage the run could detect: were every record a member, a TPR of this share at the
    verdicts' threshold. ``None`` when no ``m <= n`` is enough (too few records, or ``allowed`` near 1).
    """
    from scipy.stats import beta

    if n <= 0 or not np.isfinite(allowed):
        return None
    m = np.arange(1, n + 1)
    lower = beta.ppf((1 - confidence) / 2, m, n - m + 1)  # the Clopper–Pearson lower bound of m / n
    above = np.flatnonzero(lower > allowed)
    return float(m[above[0]] / n) if above.size else None


@dataclass
class Conclusion:
    """What the verdicts show about the target, in one status and one sentence (the headline of every output).

    ``min_detectable``: the smallest share of records called members the run would call leakage
    (:func:`min_detectable_share`; None: none); ``member_share_upper``: the upper confidence bound of the share of
    records called members; ``false_positive_bound``: the most false positives can explain (the member verdicts'
    certified FPR bound).
    """

    status: str
    headline: str
    reasons: list[str] = field(default_factory=list)
    power: str = "unknown"
    min_detectable: float | None = None
    member_share_upper: float | None = None
    false_positive_bound: float | None = None
    member_share_lower: float | None = None
    """The lower confidence bound of the share of records called members (what the risk level reads without ground
    truth: :func:`memberscope.results.risk.verdict_risk`)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def conclude(
    counts: dict[str, int],
    calibration: Calibration,
    check: TargetCheck | None,
    *,
    attack: str,
    fit_reasons: list[str] | None = None,
) -> Conclusion:
    """The finding the verdict ``counts`` support.

    - ``leakage``: the share of records called members has a Clopper–Pearson lower bound above the highest FPR the
      member verdicts can have (the certified bound of the target-side check): more members than false positives
      can explain.
    - ``no measurable leakage``: not that, and the run shown able to detect the leakage that matters, with the
      target's answers bounding it below that: the shadows fit the target, the check agrees with the FPR, the
      attack's TPR on the shadows has its lower bound above :func:`min_detectable_share` (had the target leaked as
      its shadows do, the run would have called leakage), and the upper bound of the share of records called
      members is at most the false positives' bound (every member verdict compatible with a false positive, so at
      most that share of records are members the attack identifies).
    - ``inconclusive``: otherwise, with the reasons and the minimum leakage the run could have detected.
    """
    n = sum(counts.values())
    m = counts.get("member", 0)
    fpr = calibration.fpr_target
    tpr, (tpr_lo, tpr_hi) = calibration.shadow_tpr, calibration.shadow_tpr_ci
    power_text = f"TPR {tpr:.1%} (95% CI {tpr_lo:.1%}–{tpr_hi:.1%}) at FPR {rate(fpr)} on shadow models"
    if check is not None and check.certified:
        assert check.fpr_bound is not None  # certified means a bound was found
        allowed = float(check.fpr_bound)  # the member verdicts' FPR, certified on the known non-members
    else:
        allowed = check.fpr_ci[1] if check is not None else calibration.shadow_fpr_ci[1]
    lower, upper = clopper_pearson_interval(m, n, calibration.confidence) if n else (0.0, 1.0)
    detectable = min_detectable_share(n, allowed, calibration.confidence)
    checked = (
        f"{check.flagged} of {check.n_nonmembers} known non-members flagged ({check.fpr:.1%}, 95% CI "
        f"{check.fpr_ci[0]:.1%}–{check.fpr_ci[1]:.1%})"
        if check is not None
        else "no known non-members of the target to check the threshold on"
    )
    reasons = list(fit_reasons or [])
    if check is not None and check.status == "too-loose":
        reasons.append(f"the threshold is too loose on the target: {checked}, against FPR {rate(fpr)} asked for")
    elif check is not None and check.status == "too-strict":
        reasons.append(f"the threshold is too strict on the target: {checked}, against FPR {rate(fpr)} asked for")
    if check is not None and not check.certified:
        reasons.append(
            f"only {check.n_nonmembers} known non-members of the target: too few to certify a threshold at FPR "
            f"{rate(fpr)} (at most {CERTIFIED_FACTOR:g}x at 95% confidence), so no record is called a member; give "
            "more public data"
        )
    if not calibration.power_shown:
        reasons.append(f"the {attack} attack does not beat guessing on shadow models ({power_text})")
    if not calibration.resolvable:
        reasons.append(f"only {calibration.n_shadow_nonmembers} shadow non-members: FPR {rate(fpr)} is not resolved")
    power = (
        "shown"
        if calibration.power_shown and not reasons
        else "not shown"
        if not calibration.power_shown
        else "unknown"
    )
    numbers = {
        "min_detectable": detectable,
        "member_share_upper": float(upper),
        "false_positive_bound": allowed,
        "member_share_lower": float(lower),
    }
    if m and lower > allowed:
        low_text, allowed_text = _apart(lower, allowed)
        return Conclusion(
            "leakage",
            f"Leakage: {m} of {n} records are called members at FPR {rate(fpr)} ({checked}); false positives explain "
            f"at most {allowed_text} of records, the members called are at least {low_text} (95% confidence).",
            reasons,
            power,
            **numbers,
        )
    # An all-clear needs the power to see the leakage that matters, and the target's answers bounding it below that.
    detect_text = (
        f"the minimum leakage this run could detect: {detectable:.1%} of the {n} records called members (a member "
        f"TPR of {detectable:.1%} at the verdicts' threshold, were every record a member)"
        if detectable is not None
        else f"with {n} records no share of member verdicts separates from the {allowed:.1%} false positives explain, "
        "so this run could not detect leakage of any size"
    )
    if not reasons and calibration.power_shown:
        if detectable is None or tpr_lo <= detectable:
            reasons.append(
                f"the attack's power on shadow models ({power_text}) is not clearly above the minimum detectable "
                f"leakage ({'none' if detectable is None else f'{detectable:.1%}'})"
            )
        if upper > allowed:
            up, fp = _apart(upper, allowed)
            reasons.append(
                f"the target's answers do not rule out leakage: {m} of {n} records called members, up to "
                f"{up} at 95% confidence, more than the {fp} false positives explain"
            )
        power = "unknown" if reasons else power
    if not reasons:
        return Conclusion(
            "no measurable leakage",
            f"No measurable leakage with the {attack} attack: {m} of {n} records called members at FPR {rate(fpr)} (at "
            f"most {upper:.1%} at 95% confidence), no more than the {allowed:.1%} false positives explain "
            f"({checked}); {detect_text}, and the attack has {power_text} like the target. This bounds what this "
            "attack finds, not what a stronger attacker could.",
            reasons,
            power,
            **numbers,
        )
    return Conclusion(
        "inconclusive",
        f"Inconclusive: the {attack} attack cannot show this target safe ({'; '.join(reasons)}). {m} of {n} "
        f"records are called members"
        + (" (their FPR checked on the target)" if m else "")
        + f"; {counts.get('inconclusive', 0)} are inconclusive and none is cleared by a low score; {detect_text}.",
        reasons,
        power,
        **numbers,
    )
