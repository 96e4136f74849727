"""Privacy gate: compare an audit's measured leakage with a budget.

By default the *point estimate* of each metric is compared with its budget; with
``use_upper_ci=True`` the upper end of its 95% confidence interval (by the method results.json records) is
compared instead, which fails a model whose leakage *could plausibly* exceed the budget (conservative, for release
gates).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from memberscope.exceptions import InvalidInputError
from memberscope.results import Results, read_results, strongest_attack

__all__ = ["GateResult", "Violation", "check_budget", "load_results", "parse_tpr_budget"]


@dataclass(frozen=True)
class Violation:
    """One attack whose measured metric exceeds its budget."""

    attack: str
    metric: str  # "auc" or "tpr@fpr=<key>"
    value: float  # point estimate
    ci: tuple[float, float] | None
    compared: float  # the number compared with the budget (point estimate or CI upper bound)
    budget: float

    def message(self) -> str:
        """``"rmia-online: TPR at FPR 0.01 = 0.0517 (95% CI 0.0435–0.0601) exceeds budget 0.05"``."""
        what = "AUC" if self.metric == "auc" else f"TPR at FPR {self.metric.removeprefix('tpr@fpr=')}"
        ci = f" (95% CI {self.ci[0]:.4g}–{self.ci[1]:.4g})" if self.ci is not None else ""
        basis = "" if self.compared == self.value else f"; CI upper bound {self.compared:.4g}"
        return f"{self.attack}: {what} = {self.value:.4g}{ci}{basis} exceeds budget {self.budget:.4g}"


@dataclass
class GateResult:
    """The gate's verdict: ``passed`` is true when no attack exceeds any budget."""

    violations: list[Violation] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)  # attack names that were checked
    use_upper_ci: bool = False
    strongest: str | None = None  # memberscope.results.strongest_attack: the attack every report names
    #: Why the run cannot be trusted to pass (a failed fidelity check), even if every attack is within budget.
    refusals: list[str] = field(default_factory=list)
    #: ``(how, n)`` when gated over the run's training draws (``--over-draws``), else None.
    over_draws: tuple[str, int] | None = None
    #: Budgets gated on anyway at an FPR the non-members cannot resolve (``allow_unresolved_fpr``): printed loudly.
    unresolved: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.violations and not self.refusals

    def summary(self) -> str:
        """A human-readable verdict, one line per exceeded budget."""
        basis = "CI upper bound" if self.use_upper_ci else "point estimate"
        if self.over_draws is not None:
            how, n = self.over_draws
            basis = f"{'mean' if how == 'mean' else 'worst'} of {n} training draws" + (
                ", its 95% t-interval's upper bound" if self.use_upper_ci else ""
            )
        strongest = f"; strongest attack: {self.strongest}" if self.strongest else ""
        loud = [f"WARNING: UNRESOLVED FPR gated anyway (--allow-unresolved-fpr): {u}" for u in self.unresolved]
        return "\n".join([*loud, self._verdict(basis, strongest)])

    def _verdict(self, basis: str, strongest: str) -> str:
        if self.refusals:
            lines = [f"FAIL: the run cannot pass the gate{strongest}:"] + [f"  {r}" for r in self.refusals]
            lines += [f"  {v.message()}" for v in self.violations]
            return "\n".join(lines)
        if self.passed:
            return (
                f"PASS: {len(self.checked)} attack(s) within budget ({basis} compared): {', '.join(self.checked)}"
                + strongest
            )
        lines = [f"FAIL: {len(self.violations)} budget(s) exceeded ({basis} compared){strongest}:"]
        lines += [f"  {v.message()}" for v in self.violations]
        return "\n".join(lines)


def load_results(path: str | Path) -> Results:
    """Typed results of a ``results.json`` (or its folder) that has attack metrics to gate on.

    Raises InvalidInputError for a missing, unreadable, non-JSON or wrong-schema file, or one without attacks.
    """
    results = read_results(path)
    if not results.attacks:
        raise InvalidInputError(f"results file {str(path)!r} has no 'attacks' entries")
    return results


def _check_rate(value: float, what: str) -> float:
    if not (isinstance(value, int | float) and math.isfinite(value) and 0 < value < 1):
        raise InvalidInputError(f"{what} {value!r} must be a number in (0, 1)")
    return float(value)


def parse_tpr_budget(spec: str) -> tuple[float, float]:
    """``"0.01:0.05"`` → ``(0.01, 0.05)``: at FPR 0.01 the TPR may be at most 0.05; both in (0, 1)."""
    fpr_text, sep, tpr_text = spec.partition(":")
    if not sep:
        raise InvalidInputError(f"--max-tpr-at-fpr {spec!r} is not of the form FPR:TPR (e.g. 0.01:0.05)")
    try:
        fpr, tpr = float(fpr_text), float(tpr_text)
    except ValueError:
        raise InvalidInputError(
            f"--max-tpr-at-fpr {spec!r} is not of the form FPR:TPR with numbers (e.g. 0.01:0.05)"
        ) from None
    return _check_rate(fpr, f"FPR in --max-tpr-at-fpr {spec!r}:"), _check_rate(
        tpr, f"TPR in --max-tpr-at-fpr {spec!r}:"
    )


def _ci(entry: dict[str, Any], value: Any) -> tuple[float, float] | None:
    if isinstance(value, list | tuple) and len(value) == 2 and all(isinstance(v, int | float) for v in value):
        if all(math.isfinite(v) for v in value):
            return float(value[0]), float(value[1])
    return None


def _over_draws(results: Results, recorded: dict[str, Any], how: str) -> dict[str, Any]:
    """Each attack's entry with its AUC and TPRs replaced by the mean (and its t-interval) or the worst over
    the run's training draws."""
    from scipy import stats

    draws = results.sections.get("draws") or {}
    n = int(draws.get("n_draws") or 0)
    if n < 2:
        raise InvalidInputError(
            f"--over-draws {how} needs a run with several training draws (`audit --targets N`, N >= 2); "
            f"these results have {max(n, 1)}"
        )
    t = float(stats.t.ppf(0.975, n - 1))

    def pick(spread: dict[str, Any]) -> tuple[float, list[float] | None]:
        values = [float(v) for v in spread["values"]]
        if how == "worst":
            return max(values), None
        mean, half = float(np.mean(values)), t * float(np.std(values, ddof=1)) / math.sqrt(len(values))
        return mean, [max(0.0, mean - half), min(1.0, mean + half)]

    out: dict[str, Any] = {}
    for name, entry in recorded.items():
        per = (draws.get("attacks") or {}).get(name)
        if per is None:  # not re-run on the draws (an online attack): the target's own figures
            out[name] = entry
            continue
        auc, auc_ci = pick(per["auc"])
        tprs = {k: pick(v) for k, v in per["tpr_at_fpr"].items()}
        out[name] = {
            **entry,
            "auc": auc,
            "auc_ci": auc_ci,
            "tpr_at_fpr": {k: v[0] for k, v in tprs.items()},
            "tpr_at_fpr_ci": {k: v[1] for k, v in tprs.items()},
        }
    return out


def check_budget(
    results: Results | dict[str, Any],
    *,
    max_tpr_at_fpr: dict[float, float] | None = None,
    max_auc: float | None = None,
    attacks: list[str] | None = None,
    use_upper_ci: bool = False,
    allow_low_fidelity: bool = False,
    over_draws: str | None = None,
    allow_unresolved_fpr: bool = False,
) -> GateResult:
    """Check every (selected) attack of ``results`` against the budgets.

    Parameters
    ----------
    results : Results (or the content of ``results.json``).
    max_tpr_at_fpr : dict of float to float — ``{fpr: max_tpr}``; each FPR must be among the recorded keys.
    max_auc : float or None — the largest acceptable AUC.
    attacks : list of str or None — attacks to check (default: all recorded).
    use_upper_ci : bool — compare the upper end of the 95% CI instead of the point estimate.
    allow_low_fidelity : bool — let a run whose reference models failed the fidelity check pass (its reference-model
        attacks may understate leakage, so by default such a run fails).
    over_draws : {"mean", "worst"} or None — gate on the training draws of ``audit --targets N`` (results.json
        ``draws``) instead of the one target: ``mean`` compares their average (with ``use_upper_ci``, the upper
        end of the 95% Student-t interval of that mean over draws), ``worst`` the leakiest draw.
    allow_unresolved_fpr : bool — gate on a TPR budget at an FPR too small for the run's non-members to resolve
        (fewer than ``ceil(1 / FPR)``; its TPR is read at an empirical FPR of 0, so the budget is not measured).
        By default such a budget fails the gate; allowed, it is checked and listed in ``unresolved``.

    Raises
    ------
    InvalidInputError
        No budget, a rate outside (0, 1), an unknown attack or FPR, no interval where ``use_upper_ci`` needs one,
        ``over_draws`` other than mean/worst, ``over_draws`` on results without several draws, or ``worst``
        with ``use_upper_ci`` (the worst of N draws has no interval of its own).
    """
    max_tpr_at_fpr = dict(max_tpr_at_fpr or {})
    if not max_tpr_at_fpr and max_auc is None:
        raise InvalidInputError("no budget given; expected --max-tpr-at-fpr FPR:TPR and/or --max-auc VALUE")
    for fpr, tpr in max_tpr_at_fpr.items():
        _check_rate(fpr, "budget FPR")
        _check_rate(tpr, f"TPR budget at FPR {fpr}:")
    if max_auc is not None:
        _check_rate(max_auc, "AUC budget")
    if over_draws is not None and over_draws not in ("mean", "worst"):
        raise InvalidInputError(f"--over-draws {over_draws!r} is not known; expected 'mean' or 'worst'")
    if over_draws == "worst" and use_upper_ci:
        raise InvalidInputError(
            "--over-draws worst already takes the leakiest training draw, which has no interval of its own; "
            "drop --use-upper-ci or use --over-draws mean"
        )
    if not isinstance(results, Results):
        results = Results.from_dict(results)
    if not results.attacks:
        raise InvalidInputError("results have no 'attacks' entries")
    recorded = {name: a.to_dict() for name, a in results.attacks.items()}
    if over_draws is not None:
        recorded = _over_draws(results, recorded, over_draws)
    names = list(recorded) if attacks is None else list(attacks)
    unknown = [a for a in names if a not in recorded]
    if not names:
        raise InvalidInputError(f"no attacks selected; expected some of: {', '.join(recorded)}")
    if unknown:
        raise InvalidInputError(
            f"attack(s) {', '.join(map(repr, unknown))} not in the results; expected some of: {', '.join(recorded)}"
        )

    out = GateResult(checked=names, use_upper_ci=use_upper_ci, strongest=strongest_attack(results.attacks))
    if over_draws is not None:
        out.over_draws = (over_draws, int(results.sections["draws"]["n_draws"]))
    fidelity = results.sections.get("fidelity") or {}
    if fidelity.get("passed") is False and not allow_low_fidelity:
        out.refusals.append(
            "LOW FIDELITY: the reference models do not behave like the target ("
            + "; ".join(fidelity.get("reasons") or ["see results.json 'fidelity'"])
            + "), so attacks may understate leakage; re-audit with reference models like the target, or pass "
            "--allow-low-fidelity to gate on these numbers anyway"
        )
    unresolved: dict[str, str] = {}
    for name in names:
        entry = recorded[name]
        checks: list[tuple[str, Any, Any, float]] = []
        if max_auc is not None:
            checks.append(("auc", entry.get("auc"), entry.get("auc_ci"), max_auc))
        tprs = entry.get("tpr_at_fpr") or {}
        keys = {float(k): k for k in tprs}
        for fpr, budget in max_tpr_at_fpr.items():
            key = keys.get(float(fpr))
            if key is None:
                raise InvalidInputError(
                    f"FPR {fpr} is not recorded for attack {name!r}; expected one of: {', '.join(tprs)}"
                )
            if (entry.get("fpr_resolvable") or {}).get(key) is False:
                unresolved[key] = _unresolved_message(key, results.game.n_nonmembers)
            checks.append((f"tpr@fpr={key}", tprs[key], (entry.get("tpr_at_fpr_ci") or {}).get(key), budget))
        for metric, value, ci_raw, budget in checks:
            if not isinstance(value, int | float) or not math.isfinite(value):
                raise InvalidInputError(f"attack {name!r} has no finite {metric} in the results (got {value!r})")
            ci = _ci(entry, ci_raw)
            if use_upper_ci and ci is None:
                raise InvalidInputError(
                    f"attack {name!r} has no confidence interval for {metric}; re-run with n_bootstrap > 0 "
                    "or drop --use-upper-ci"
                )
            compared = ci[1] if use_upper_ci and ci is not None else float(value)
            if compared > budget:
                out.violations.append(Violation(name, metric, float(value), ci, compared, budget))
    if allow_unresolved_fpr:
        out.unresolved = list(unresolved.values())
    else:
        out.refusals += [
            f"UNRESOLVED FPR: {text}; the budget cannot be measured, so it cannot pass. Re-audit with more "
            "non-members, gate at a larger FPR, or pass --allow-unresolved-fpr to gate on this figure anyway"
            for text in unresolved.values()
        ]
    return out


def _unresolved_message(key: str, n_nonmembers: int | None) -> str:
    """Why the TPR at FPR ``key`` is not measured: the non-members needed to resolve it, and how many there are."""
    from memberscope.metrics._validate import needed_nonmembers

    have = f"the run has {n_nonmembers}" if n_nonmembers is not None else "the run has fewer"
    return (
        f"FPR {key} needs at least {needed_nonmembers(float(key))} non-members to resolve and {have}; its TPR is "
        "read at an empirical FPR of 0"
    )
