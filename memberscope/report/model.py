"""The report model: what every rendering of a run shows, computed once from typed results.

The HTML report, the Markdown summary and the console all render a :class:`ReportModel`; none of them reads
``results.json`` on its own, so the headline, the strongest attack (one rule:
:func:`memberscope.results.strongest_attack`), the tables and the warnings agree everywhere. Each part is
None (or empty) when the run has no such part, so every kind of run renders.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

import numpy as np

from memberscope.exceptions import InvalidInputError
from memberscope.results import AttackResult, Results, read_results, strongest_attack
from memberscope.results.risk import distinguishable

__all__ = [
    "AttackRow",
    "DefenseRow",
    "ReportModel",
    "SliceRow",
    "build_report",
    "ci_pct",
    "executive_summary",
    "grouped_warnings",
    "headline_sentence",
    "load_run",
    "pct",
    "recommendations",
    "slice_rows",
]

TITLES = {
    "audit": "Membership-inference audit",
    "defend": "Defenses against membership inference",
    "redteam": "Red-team membership assessment",
    "llm": "LLM membership-inference audit",
    "dataset-inference": "Dataset inference",
}
ASSUMPTIONS = {
    "loss": "the target's loss on the record, and population records to set the threshold",
    "confidence": "the target's confidence in the true label, and population records to set the threshold",
    "entropy": "the target's prediction entropy, and population records to set the threshold",
    "modified-entropy": "the target's modified prediction entropy (Song & Mittal 2021), and population records",
    "lira-online": "the training recipe and data distribution: K reference models, half trained WITH each record",
    "lira-offline": "the training recipe and data distribution: reference models trained WITHOUT the record",
    "rmia-online": "the training recipe, reference models (IN and OUT) and population records to compare against",
    "rmia-offline": "the training recipe, OUT reference models only, and population records to compare against",
    "label-only": "only predicted labels, and many queries of perturbed copies of each record",
    "shadow": "the training recipe and data distribution: a classifier trained on reference models' outputs",
}


# ------------------------------------------------------------------------------------------------ formatting


def pct(x: float) -> str:
    """A rate as a percentage: ``0.0123 -> "1.2%"`` (two significant digits below 0.1%)."""
    x = float(x)
    return f"{100 * x:.1f}%" if x >= 0.001 or x == 0 else f"{100 * x:.2g}%"


def _pct_or_dash(x: float | None) -> str:
    """:func:`pct` of ``x``, or ``"–"`` when it was not recorded."""
    return "–" if x is None else pct(x)


def ci_pct(ci: Any) -> str:
    """``" (1.0%–2.0%)"`` for an interval, else ``""``."""
    return f" ({pct(ci[0])}–{pct(ci[1])})" if _is_pair(ci) else ""


def _is_num(x: Any) -> TypeGuard[float]:
    """Whether ``x`` is a finite real number (int, float or numpy scalar; not bool), which ``float()`` accepts."""
    return isinstance(x, int | float | np.number) and not isinstance(x, bool) and math.isfinite(float(x))


def _is_pair(ci: Any) -> TypeGuard[Sequence[float]]:
    """Whether ``ci`` is a list or tuple of two finite numbers (an interval)."""
    return isinstance(ci, list | tuple) and len(ci) == 2 and all(_is_num(v) for v in ci)


def _as_pair(ci: Any) -> tuple[float, float] | None:
    """``ci`` as a ``(low, high)`` tuple when it is an interval (:func:`_is_pair`), else None."""
    return (ci[0], ci[1]) if _is_pair(ci) else None


# ------------------------------------------------------------------------------------------------ the model


@dataclass
class AttackRow:
    """One attack: its AUC and TPR at each reported FPR with CIs, and its empirical ε lower bounds."""

    name: str
    auc: float
    auc_ci: tuple[float, float] | None
    tprs: dict[str, float]
    tpr_cis: dict[str, tuple[float, float]]
    resolvable: dict[str, bool]
    epsilon: float | None = None
    epsilon_source: str | None = None  # "scores" or "metrics"
    one_run: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class SliceRow:
    """One class or group of the strongest attack; ``hot`` when its CI lies entirely above the overall TPR."""

    name: str
    n_members: Any
    n_nonmembers: Any
    auc: float | None
    tpr: float | None
    tpr_ci: tuple[float, float] | None
    hot: bool


@dataclass
class DrawRow:
    """One attack over the training draws of ``--targets N``: AUC and TPR at the headline FPR, mean ± sample
    standard deviation and the worst (leakiest) draw."""

    name: str
    auc_mean: float
    auc_std: float | None
    auc_worst: float
    tpr_mean: float | None
    tpr_std: float | None
    tpr_worst: float | None


@dataclass
class DefenseRow:
    """One defense: accuracy, claimed ε, the strongest attack's leakage and the empirical ε bound."""

    name: str
    test_accuracy: float | None
    epsilon: float | None
    delta: float | None
    attack: str | None
    fpr_key: str | None
    tpr: float | None
    tpr_ci: tuple[float, float] | None
    auc: float | None
    auc_ci: tuple[float, float] | None
    empirical_epsilon: float | None
    alarm: bool


@dataclass
class ReportModel:
    """Everything a report shows (see the module docstring)."""

    results: Results
    kind: str
    title: str
    subject: str
    summary: str
    headline_fpr: str | None
    strongest: str | None
    overall_tpr: float
    fpr_keys: list[str]
    attack_rows: list[AttackRow]
    claimed: dict[str, float] | None
    epsilon_delta: float
    one_run: dict[str, Any] | None
    slices: list[tuple[str, list[SliceRow]]]
    hot_slices: list[str]
    vulnerable: dict[str, Any]
    defenses: list[DefenseRow]
    defense_recommendation: dict[str, Any]
    redteam: dict[str, Any] | None
    llm: dict[str, Any] | None
    alarms: list[str]
    recommendations: list[str]
    warnings: list[str]
    assumptions: list[tuple[str, str]]
    member: np.ndarray | None = None
    scores: dict[str, np.ndarray] | None = None
    dataset_inference: dict[str, Any] | None = None
    #: A defend run's prioritized plan (``sections["plan"]``), and per defense its attacker views and, for
    #: ``minimize``, the undefended model on the same records and the removed / neighbour / other members.
    defense_plan: dict[str, Any] = field(default_factory=dict)
    defense_details: list[dict[str, Any]] = field(default_factory=list)
    frameworks: list[Any] = field(default_factory=list)  # FrameworkRow: what was measured, per framework item
    #: The spread over training draws (``audit --targets N``): :func:`draw_rows`; empty for one draw.
    draws: list[DrawRow] = field(default_factory=list)
    #: What the figures stand for: N training draws, or the one target (a sentence for every report).
    draw_note: str | None = None
    #: results.json ``membership_probability`` (the calibrated per-record column of scores.csv), if any.
    membership_probability: dict[str, Any] | None = None
    #: The strongest attack's precision (PPV) at the headline FPR, at the game's prior and a user's (a sentence).
    ppv_note: str | None = None

    @property
    def has_one_run(self) -> bool:
        return any(r.one_run for r in self.attack_rows)

    @property
    def epsilon_from_metrics(self) -> bool:
        return any(r.epsilon_source == "metrics" for r in self.attack_rows)

    @property
    def target(self):
        return self.results.target

    @property
    def game(self):
        return self.results.game


# ------------------------------------------------------------------------------------------------ loading


def _read_scores(run_dir: Path, attacks: dict[str, AttackResult], *, required: bool):
    """``(member, {attack: scores})`` from ``scores.csv``; None when absent and not ``required``."""
    import pandas as pd

    path = run_dir / "scores.csv"
    if not path.exists() and not required:
        return None
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise InvalidInputError(
            f"cannot read scores file {str(path)!r}: {exc}; the report's figures need the scores the run wrote "
            "next to results.json"
        ) from None
    missing = [c for c in (*attacks, "member") if c not in frame.columns]
    if missing:
        raise InvalidInputError(f"scores file {str(path)!r} lacks columns {missing}")
    member = frame["member"].to_numpy().astype(bool)
    return member, {name: frame[name].to_numpy(dtype=np.float64) for name in attacks}


def load_run(
    run_dir: str | Path, *, figures: bool = True
) -> tuple[Results, tuple[np.ndarray, dict[str, np.ndarray]] | None, Results | None]:
    """``(results, scores or None, defenses or None)`` of a run folder.

    ``results`` is its ``results.json`` (any kind, schema 1.0 or 2.0; a defend folder of schema 1.0 holds
    ``defenses.json`` only); ``scores`` come from ``scores.csv`` (required for an audit's ``figures``);
    ``defenses`` is a ``defenses.json`` written next to an audit's results by memberscope 0.1.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InvalidInputError(f"run directory {str(run_dir)!r} does not exist; expected a run's --out folder")
    results = read_results(run_dir)
    defenses = None
    if results.kind != "defend" and (run_dir / "defenses.json").exists():
        defenses = _read_defenses(run_dir / "defenses.json")
    if results.kind == "audit" and not results.attacks:
        raise InvalidInputError(f"results file {str(run_dir / 'results.json')!r} has no 'attacks' entries")
    required = figures and results.kind == "audit"
    scores = _read_scores(run_dir, results.attacks, required=required) if results.attacks else None
    return results, scores, defenses


def _read_defenses(path: Path) -> Results:
    """A ``defenses.json`` of memberscope 0.1 (a defense matrix written next to an audit) as a defend result."""
    import json

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"cannot read defenses file {str(path)!r}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"defenses file {str(path)!r} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("defenses"), dict):
        raise InvalidInputError(f"defenses file {str(path)!r} must hold an object with a 'defenses' mapping")
    for name, entry in data["defenses"].items():
        if not isinstance(entry, dict) or not isinstance(entry.get("attacks", {}), dict):
            raise InvalidInputError(f"defenses file {str(path)!r}: defense {name!r} must be an object with 'attacks'")
    return Results.from_dict({**data, "kind": "defend"}, where=f"defenses file {str(path)!r}")


# ------------------------------------------------------------------------------------------------ parts


def strongest_of(n_attacks: int) -> str:
    """How the strongest attack is named among ``n_attacks``: "the only attack run" or "the strongest of N attacks"."""
    return "the only attack run" if n_attacks == 1 else f"the strongest of {n_attacks} attacks"


def executive_summary(results: Results | dict[str, Any]) -> str:
    """One sentence: what the strongest attack achieves at the headline FPR, with its CI."""
    results = _typed(results)
    key, name = results.headline_fpr(), results.strongest_attack()
    if key is None or name is None:
        raise InvalidInputError("results have no 'tpr_at_fpr' entries to summarize")
    metrics = results.attacks[name].metrics
    tpr, ci = metrics.tpr_at_fpr[key], metrics.tpr_at_fpr_ci.get(key)
    sentence = (
        f"An attacker who accepts {pct(float(key))} false positives identifies {pct(tpr)}{ci_pct(ci)} "
        f"of training records ({name}, {strongest_of(len(results.attacks))}; chance is {pct(float(key))})."
    )
    if not metrics.fpr_resolvable.get(key, True):
        sentence += f" Too few non-members to resolve FPR {pct(float(key))}: this is the TPR at FPR 0."
    return sentence


def _typed(results: Results | dict[str, Any]) -> Results:
    return results if isinstance(results, Results) else Results.from_dict(results)


def slice_rows(slices: dict[str, Any], key: str, overall: float) -> list[SliceRow]:
    """Rows of a per-class or per-group table (:class:`SliceRow`), ``hot`` when the CI lies above ``overall``."""
    rows = []
    for name, m in slices.items():
        ci = m.tpr_at_fpr_ci.get(key)
        ci = tuple(ci) if _is_pair(ci) else None
        tpr = m.tpr_at_fpr.get(key)
        rows.append(
            SliceRow(
                name=str(name),
                n_members=m.n_members,
                n_nonmembers=m.n_nonmembers,
                auc=float(m.auc) if _is_num(m.auc) else None,
                tpr=float(tpr) if _is_num(tpr) else None,
                tpr_ci=ci,
                hot=ci is not None and ci[0] > overall,
            )
        )
    return rows


SLICING_TITLES = {"loss_percentile": "target loss decile", "prediction": "target prediction"}
"""Titles of :func:`memberscope.engine.evaluation.record_slices`'s slicings in the reports."""


def draw_rows(results: Results, key: str | None) -> tuple[list[DrawRow], str | None]:
    """Rows of the training-draw table and the sentence saying what the figures stand for.

    A run of one draw (the target alone) gets no rows and a note that its figures are for one training draw:
    a different training run of the same pipeline can leak more or less.
    """
    if results.kind != "audit":
        return [], None
    draws = results.sections.get("draws") or {}
    n = int(draws.get("n_draws") or 1)
    if n < 2:
        return [], (
            "These figures are for one training draw (the target as trained): another training run of the same "
            "pipeline on the same data can leak more or less. Run `audit --targets N` to measure the spread."
        )
    rows = []
    for name, per in (draws.get("attacks") or {}).items():
        tpr = (per.get("tpr_at_fpr") or {}).get(key) if key is not None else None
        rows.append(
            DrawRow(
                name=name,
                auc_mean=float(per["auc"]["mean"]),
                auc_std=per["auc"].get("std"),
                auc_worst=float(per["auc"]["max"]),
                tpr_mean=None if tpr is None else float(tpr["mean"]),
                tpr_std=None if tpr is None else tpr.get("std"),
                tpr_worst=None if tpr is None else float(tpr["max"]),
            )
        )
    excluded = list(draws.get("excluded") or {})
    left_out = (
        f" Not re-run on the reference models' draws (their figures are the target's alone): {', '.join(excluded)}"
        " — every record is IN half of the reference models, so a draw's members are IN one other model fewer"
        " than its non-members, which biases online attacks toward no leakage."
        if excluded
        else ""
    )
    return rows, (
        f"Spread over {n} training draws: the target and {n - 1} reference models each played the target, "
        "attacked by the same attacks with the other models as references. Gate on it with "
        "`gate --over-draws mean|worst`." + left_out
    )


def draw_cells(row: DrawRow) -> list[str]:
    """A draw row as text cells (attack, AUC mean ± std, worst AUC, TPR mean ± std, worst TPR) for any renderer."""

    def pm(mean: float | None, std: float | None, f) -> str:
        if mean is None:
            return "–"
        return f(mean) + (f" ± {f(std)}" if std is not None else "")

    num = lambda v: f"{v:.3f}"  # noqa: E731
    return [
        row.name,
        pm(row.auc_mean, row.auc_std, num),
        num(row.auc_worst),
        pm(row.tpr_mean, row.tpr_std, pct),
        "–" if row.tpr_worst is None else pct(row.tpr_worst),
    ]


def membership_probability_note(block: dict[str, Any] | None) -> str | None:
    """One sentence on scores.csv's ``membership_probability`` column (or why there is none)."""
    if not block or not block.get("attack"):
        return None
    if block.get("reason"):
        return str(block["reason"])
    return (
        f"scores.csv's membership_probability column: each record's probability of being a member given its "
        f"{block['attack']} score, calibrated on {block.get('calibration_draws', '?')} reference model(s) playing "
        f"the target ({block.get('calibration_records', '?')} records), at a member prior of "
        f"{float(block.get('prior', 0.5)):.3g}."
    )


def ppv_note(results: Results, attack: str | None, key: str | None) -> str | None:
    """One sentence: the strongest attack's precision at the headline FPR, at the game's member share and at the
    audit's ``member_prior`` when one was given (results.json ``ppv``)."""
    if attack is None or key is None:
        return None
    entry = ((results.sections.get("ppv") or {}).get("attacks") or {}).get(attack)
    if not entry:
        return None
    at_game = entry["at_game_prior"].get(key)
    if not _is_num(at_game) or not math.isfinite(at_game):
        return None
    text = (
        f"Precision (PPV) of {attack} at {pct(float(key))} FPR: {pct(at_game)} of the records it flags are members "
        f"when {pct(entry['game_prior'])} of those scored are"
    )
    prior = (results.sections.get("ppv") or {}).get("member_prior")
    at_prior = (entry.get("at_member_prior") or {}).get(key)
    if prior is not None and _is_num(at_prior) and math.isfinite(at_prior):
        text += f"; if {pct(prior)} of the people it could be asked about were members: {pct(at_prior)}"
    return text + "."


def recommendations(results: Results, *, hot_slices: list[str], headline_key: str) -> list[str]:
    """Prioritized advice that follows from the measured numbers (most urgent first)."""
    fpr = float(headline_key)
    best = strongest_attack(results.attacks, headline_key)
    if best is None:
        raise InvalidInputError("recommendations need at least one attack in results.attacks; got none")
    metrics = results.attacks[best].metrics
    tpr = metrics.tpr_at_fpr[headline_key]
    ci = metrics.tpr_at_fpr_ci.get(headline_key) or (tpr, tpr)
    out: list[str] = []
    risk = results.risk()
    if ci[0] > fpr:
        out.append(
            f"Leakage is measurable: {best} reaches TPR {pct(tpr)} at {pct(fpr)} FPR, {tpr / fpr:.1f}× chance, "
            f"with the whole CI above chance. Add `memberscope gate --max-tpr-at-fpr {headline_key}:BUDGET` to CI "
            "so a model exceeding the accepted budget cannot ship."
        )
    elif distinguishable(risk):
        out.append(
            f"Leakage is measurable (risk {risk.level}: {risk.reason}), though {best}'s TPR interval at "
            f"{pct(fpr)} FPR reaches chance. Add `memberscope gate` with a budget to CI so a model exceeding the "
            "accepted budget cannot ship."
        )
    target = results.target
    train, test = target.train_accuracy, target.test_accuracy
    gap = target.generalization_gap
    if gap is None and _is_num(train) and _is_num(test):
        gap = train - test
    if gap is not None and gap > 0.05:
        out.append(
            f"The generalization gap is large ({pct(gap)}: train {_pct_or_dash(train)} vs test "
            f"{_pct_or_dash(test)}). "
            + (
                "Regularize the estimator (its own parameters, e.g. a smaller max_depth or a larger "
                "min_samples_leaf for trees, a smaller C for linear models) and compare the settings with "
                "`memberscope defend --defenses none,regularize:PARAM=VALUE`."
                if results.config.get("model") == "sklearn"
                else "Regularize (weight decay, early stopping, augmentation) or train with DP-SGD for a formal "
                "guarantee."
            )
        )
    if hot_slices:
        out.append(
            f"Leakage concentrates in {', '.join(hot_slices)}: minimize or aggregate the data kept for these slices, "
            "collect more records there, or audit them separately."
        )
    if not out:
        out.append(
            f"No attack's TPR at {pct(fpr)} FPR is distinguishable from chance in this audit; re-audit after "
            "changes to data or training, and with more reference models for stronger attacks."
        )
    return out


def claimed_epsilon(results: Results) -> dict[str, float] | None:
    """The (ε, δ) the target claims: the audit's ``epsilon.claimed``, else its recipe's epsilon/delta."""
    claimed = (results.epsilon or {}).get("claimed")
    if isinstance(claimed, dict) and _is_num(claimed.get("epsilon")):
        return {"epsilon": float(claimed["epsilon"]), "delta": float(claimed.get("delta") or 0.0)}
    recipe = results.target.recipe if isinstance(results.target.recipe, dict) else {}
    if _is_num(recipe.get("epsilon")):
        return {"epsilon": float(recipe["epsilon"]), "delta": float(recipe.get("delta") or 0.0)}
    return None


def _attack_rows(results: Results, scores, claimed) -> list[AttackRow]:
    """Per attack: metrics, the Clopper–Pearson ε bound (recorded by the audit, else from the scores, else from
    the summary metrics) and the one-run bound when the audit had canaries."""
    from memberscope.privacy.empirical import epsilon_from_metrics, epsilon_lower_bound

    section = results.epsilon or {}
    delta = section.get("delta", claimed["delta"] if claimed else 0.0)
    recorded = section.get("clopper_pearson") or {}
    one_run = (section.get("one_run") or {}).get("attacks") or {}
    rows = []
    for name, result in results.attacks.items():
        m = result.metrics
        eps, source = None, None
        if isinstance(recorded.get(name), dict) and _is_num(recorded[name].get("epsilon")):
            eps, source = float(recorded[name]["epsilon"]), "scores"
        elif scores is not None and name in scores[1]:
            eps, source = float(epsilon_lower_bound(scores[0], scores[1][name], delta=delta).epsilon), "scores"
        else:
            bound = epsilon_from_metrics(result.to_dict(), delta=delta)
            if bound is not None:
                eps, source = bound.epsilon, "metrics"
        rows.append(
            AttackRow(
                name=name,
                auc=float(m.auc),
                auc_ci=_as_pair(m.auc_ci),
                tprs=dict(m.tpr_at_fpr),
                tpr_cis={k: (v[0], v[1]) for k, v in m.tpr_at_fpr_ci.items() if _is_pair(v)},
                resolvable=dict(m.fpr_resolvable),
                epsilon=eps,
                epsilon_source=source,
                one_run=one_run.get(name) if isinstance(one_run.get(name), dict) else None,
                warnings=list(m.warnings),
            )
        )
    return rows


def _epsilon_alarms(claimed: dict[str, float] | None, rows: list[AttackRow], *, where: str = "") -> list[str]:
    """Loud warnings for every empirical ε lower bound above the claimed ε (a broken DP implementation)."""
    if claimed is None:
        return []
    out = []
    for row in rows:
        for label, value in (("Clopper–Pearson", row.epsilon), ("one-run", (row.one_run or {}).get("epsilon"))):
            if _is_num(value) and value > claimed["epsilon"]:
                out.append(
                    f"{where}{row.name}: empirical ε ≥ {value:.2f} ({label}, 95% confidence) exceeds the claimed "
                    f"ε = {claimed['epsilon']:g} (δ = {claimed['delta']:g}). A correct DP implementation cannot leak "
                    "this much: the DP training or its privacy accounting is probably broken. Do not rely on the "
                    "claimed guarantee until this is explained. (Each bound holds at 95%; over many bounds a false "
                    "alarm is possible but unlikely.)"
                )
    return out


def defense_rows(defenses: Results, key: str = "0.01") -> list[DefenseRow]:
    """One row per defense of a defend run: test accuracy, claimed ε, the strongest attack's TPR at ``key`` FPR
    (the budget FPR when the run recorded one) and AUC with CIs, and the empirical ε lower bound from its
    metrics."""
    from memberscope.privacy.empirical import epsilon_from_metrics
    from memberscope.results.schema import headline_fpr

    budget = ((defenses.sections.get("recommendation") or {}).get("budget") or {}).get("fpr")
    if _is_num(budget):
        from memberscope.metrics import fpr_key

        key = fpr_key(budget)
    rows = []
    for name, entry in (defenses.sections.get("defenses") or {}).items():
        attacks = {a: AttackResult.from_dict(m) for a, m in (entry.get("attacks") or {}).items() if isinstance(m, dict)}
        value = {k: entry.get(k) if _is_num(entry.get(k)) else None for k in ("test_accuracy", "epsilon", "delta")}
        row = DefenseRow(
            name=name,
            test_accuracy=value["test_accuracy"],
            epsilon=value["epsilon"],
            delta=value["delta"],
            attack=None,
            fpr_key=None,
            tpr=None,
            tpr_ci=None,
            auc=None,
            auc_ci=None,
            empirical_epsilon=None,
            alarm=False,
        )
        if attacks:
            k = key if any(key in a.metrics.tpr_at_fpr for a in attacks.values()) else headline_fpr(attacks)
            best = strongest_attack(attacks, k)
            m = attacks[best].metrics
            tpr = m.tpr_at_fpr.get(k) if k is not None else None
            ci = m.tpr_at_fpr_ci.get(k) if k is not None else None
            row.attack, row.fpr_key = best, k
            row.tpr = float(tpr) if _is_num(tpr) else None
            row.tpr_ci = _as_pair(ci)
            row.auc = float(m.auc) if _is_num(m.auc) else None
            row.auc_ci = _as_pair(m.auc_ci)
            bounds = [epsilon_from_metrics(a.to_dict(), delta=row.delta or 0.0) for a in attacks.values()]
            found = [b.epsilon for b in bounds if b is not None]
            if found:
                row.empirical_epsilon = max(found)
                row.alarm = row.epsilon is not None and row.empirical_epsilon > row.epsilon
        rows.append(row)
    return rows


def _defense_details(defenses: Results | None) -> list[dict[str, Any]]:
    """Rows under each defense of a defend run: its attacker views (what the attacker can undo, average or buy
    with queries, and the leakage each gives) and, for ``minimize``, the undefended model on the same records and
    the onion layers before and after."""
    from memberscope.metrics import fpr_key

    if defenses is None:
        return []
    budget = ((defenses.sections.get("recommendation") or {}).get("budget") or {}).get("fpr")
    key = fpr_key(budget) if _is_num(budget) else "0.01"
    rows: list[dict[str, Any]] = []
    for name, entry in (defenses.sections.get("defenses") or {}).items():
        for view in entry.get("attacker_budgets") or []:
            rows.append({"defense": name, "row": f"{view['view']} ({view['queries_per_record']} queries/record)",
                         "assumes": view.get("assumes", ""), "attack": view["strongest_attack"],
                         "tpr": view["tpr"], "tpr_ci": view["tpr_ci"]})  # fmt: skip
        mini = entry.get("minimization") or {}
        same = mini.get("undefended_on_same_records")
        if same:
            rows.append({"defense": name, "row": "undefended model, same records", "assumes": same.get("records", ""),
                         "attack": same["strongest_attack"], "tpr": same["tpr"], "tpr_ci": same["tpr_ci"]})  # fmt: skip
        for layer, values in (mini.get("layers") or {}).items():
            for when in ("before", "after"):
                m = values.get(when)
                if m:
                    rows.append({"defense": name, "row": f"{layer} members ({values['n_records']}), {when}",
                                 "assumes": "", "attack": mini.get("attack", ""), "tpr": m["tpr_at_fpr"][key],
                                 "tpr_ci": m["tpr_at_fpr_ci"][key]})  # fmt: skip
    return rows


def _defense_alarms(rows: list[DefenseRow]) -> list[str]:
    return [
        f"defense {r.name}: empirical ε ≥ {r.empirical_epsilon:.2f} (from its attacks' TPR at the recorded "
        f"FPRs, 95% confidence) exceeds its claimed ε = {r.epsilon:g}. A correct DP implementation cannot leak "
        "this much: the DP training or its privacy accounting is probably broken."
        for r in rows
        if r.alarm
    ]


def _exposure_words(exposure: dict[str, Any]) -> str:
    """What the API shows, in recon's words (a forest's natural 1/64 grid is not "rounded to 6 decimals")."""
    from memberscope.redteam.recon import Exposure

    defaults = {"top_k": None, "decimals": None, "deterministic": True, "rate_limited": False, "n_classes": 0}
    try:
        return Exposure.from_dict({**defaults, "attacks_possible": [], **exposure}).describe()
    except (KeyError, TypeError):  # an older or partial results.json: its mode, as written
        return str(exposure.get("mode") or "–")


def _redteam(results: Results) -> dict[str, Any] | None:
    """The red-team block of a red-team result, with missing fields as None."""
    if results.kind != "redteam":
        return None
    red = results.sections.get("redteam") or {}
    target, exposure = red.get("target") or {}, red.get("exposure") or {}
    calibration, verdicts = red.get("calibration") or {}, red.get("verdicts") or {}
    return {
        "url": target.get("url"),
        "queries_spent": target.get("queries_spent"),
        "query_budget": target.get("query_budget"),
        "exposure": {
            **{k: exposure.get(k) for k in ("mode", "top_k", "decimals", "deterministic", "rate_limited")},
            "shown": _exposure_words(exposure),
        },
        "attacks_possible": list(exposure.get("attacks_possible") or []),
        "attack": red.get("attack"),
        "calibration": calibration,
        "verdicts": {k: verdicts.get(k, 0) for k in ("member", "not-member", "inconclusive")},
        "recommendations": [str(r) for r in red.get("recommendations") or []],
        "conclusion": red.get("conclusion") or None,
    }


def headline_sentence(results: Results | dict[str, Any]) -> str:
    """The finding every rendering (console, ``results.json``, HTML, Markdown) opens with: the strongest attack's
    TPR with its CI, and for a red team its verdicts too (a headline of 0.0% beside 47 "member" verdicts read as
    a contradiction when the verdicts were left out)."""
    results = _typed(results)
    di = _dataset_inference(results)
    if di is not None:
        return _dataset_inference_summary(di)
    red = _redteam(results)
    if results.headline_fpr() is not None and results.strongest_attack() is not None:
        sentence = executive_summary(results)
        if red is None:
            return sentence
        # The attack metrics of a red team come from the member column the user supplied, which the verdicts
        # never see: said so, a high TPR beside "0 record(s) members" does not read as a contradiction.
        sentence = sentence[:1].lower() + sentence[1:]
        return f"Scored against the membership you supplied (ground truth), {sentence} {_redteam_summary(red)}"
    if red is not None:
        return _redteam_summary(red)
    return "This results file holds no attack metrics with ground truth to summarize."


def _redteam_summary(red: dict[str, Any]) -> str:
    cal = red["calibration"]
    tpr = cal.get("shadow_tpr")
    calib = ""
    if _is_num(tpr):
        calib = (
            f" calibrated on {cal.get('n_shadow_models', '?')} shadow models to FPR "
            f"{pct(cal['fpr_target']) if _is_num(cal.get('fpr_target')) else '?'}"
            f" (shadow TPR {pct(tpr)}{ci_pct(cal.get('shadow_tpr_ci'))})"
        )
    v = red["verdicts"]
    conclusion = red.get("conclusion") or {}
    return (
        f"Verdicts (without ground truth): against {red['url'] or 'the target'}, the {red['attack'] or '?'} "
        f"attack{calib} called {v['member']} "
        f"record(s) members, {v['not-member']} non-members and {v['inconclusive']} inconclusive, "
        f"spending {red['queries_spent'] if red['queries_spent'] is not None else '?'} "
        + (f"of {red['query_budget']} queries." if red["query_budget"] is not None else "queries (no budget set).")
        + (f" {conclusion['headline']}" if conclusion.get("headline") else "")
    )


def _llm(results: Results) -> dict[str, Any] | None:
    """The LLM block of an LLM result: canary exposure rows and the validity check."""
    if results.kind != "llm":
        return None
    llm = results.sections.get("llm") or {}
    canaries = llm.get("canaries") or {}
    rows = []
    for reps, entry in sorted(canaries.items(), key=lambda kv: _number_or_inf(kv[0])):
        entry = entry if isinstance(entry, dict) else {}
        tprs = entry.get("tpr_at_fpr")
        rows.append(
            {
                "repetitions": reps,
                "exposure": entry.get("exposure_mean") if _is_num(entry.get("exposure_mean")) else None,
                "exposure_ci": entry.get("exposure_ci") if _is_pair(entry.get("exposure_ci")) else None,
                "tpr": ", ".join(f"{pct(float(v))} @ {pct(float(k))} FPR" for k, v in tprs.items() if _is_num(v))
                if isinstance(tprs, dict)
                else (f"{pct(tprs)}" if _is_num(tprs) else "–"),
            }
        )
    validity = llm.get("validity") or {}
    return {
        "model": llm.get("model"),
        "reference_model": llm.get("reference_model"),
        "n_members": llm.get("n_members"),
        "n_nonmembers": llm.get("n_nonmembers"),
        "canaries": rows,
        "baseline_auc": validity.get("baseline_auc") if _is_num(validity.get("baseline_auc")) else None,
        "baseline_auc_ci": validity.get("baseline_auc_ci") if _is_pair(validity.get("baseline_auc_ci")) else None,
        "validity_warning": validity.get("warning"),
    }


def _dataset_inference(results: Results) -> dict[str, Any] | None:
    """The dataset-inference block of a dataset-inference result (its top-level keys), with missing fields as None."""
    if results.kind != "dataset-inference":
        return None
    block = {**results.extra, **(results.sections.get("dataset_inference") or {})}
    test, counts = block.get("test") or {}, block.get("counts") or {}
    effect, validity = block.get("effect") or {}, block.get("validity") or {}
    model, aggregator = block.get("model") or {}, block.get("aggregator") or {}

    def num(mapping: dict[str, Any], key: str) -> float | None:
        value = mapping.get(key)
        return float(value) if _is_num(value) else None

    def count(mapping: dict[str, Any], key: str) -> int | None:
        value = mapping.get(key)
        return int(value) if _is_num(value) else None

    fit, held = counts.get("fit") or {}, counts.get("test") or {}
    weights = aggregator.get("weights") or {}
    p_value, statistic, alpha = num(block, "p_value"), num(block, "statistic"), num(test, "alpha")
    return {
        "verdict": block.get("verdict"),
        "significant": test.get("significant") if isinstance(test.get("significant"), bool) else None,
        "p_value": num(test, "p_value") if p_value is None else p_value,
        "statistic": num(test, "statistic") if statistic is None else statistic,
        "df": num(test, "df"),
        "alpha": num(results.config, "alpha") if alpha is None else alpha,
        "test": test.get("test"),
        "method": block.get("method"),
        "model": model.get("path"),
        "model_kind": model.get("kind"),
        "architecture": model.get("architecture"),
        "n_suspect": count(counts, "n_suspect"),
        "n_validation": count(counts, "n_validation"),
        "fit": {"suspect": count(fit, "suspect"), "validation": count(fit, "validation")},
        "held_out": {"suspect": count(held, "suspect"), "validation": count(held, "validation")},
        "recommended_suspect": count(counts, "recommended_suspect"),
        "needed_for_a_weak_leak": count(counts, "needed_for_a_weak_leak"),
        "minimum_per_set": count(counts, "minimum_per_set"),
        "n_truncated": count(counts, "n_truncated"),
        "features": [str(f) for f in block.get("features") or []],
        "weights": {str(k): float(v) for k, v in weights.items() if _is_num(v)},
        "aggregator": aggregator.get("model"),
        "auc_held_out": num(effect, "auc_held_out"),
        "mean_score_suspect": num(effect, "mean_score_suspect"),
        "mean_score_validation": num(effect, "mean_score_validation"),
        "baseline_auc": num(validity, "baseline_auc"),
        "baseline_auc_ci": validity.get("baseline_auc_ci") if _is_pair(validity.get("baseline_auc_ci")) else None,
        "validity_warning": validity.get("warning"),
    }


def _dataset_inference_summary(di: dict[str, Any]) -> str:
    verdict = di["verdict"] or "no verdict recorded"
    return verdict[:1].upper() + verdict[1:] + "."


def _dataset_inference_recommendations(di: dict[str, Any]) -> list[str]:
    """Advice that follows from a dataset-inference result: power when inconclusive, caution when significant."""
    n, recommended, weak = di["n_suspect"], di["recommended_suspect"], di["needed_for_a_weak_leak"]
    if di["significant"]:
        return [
            "The suspect set behaves like training data. Before acting on it, check that the suspect and validation "
            "texts come from one distribution (same source, period and length), since the test detects any difference "
            "between the two sets; the validity baseline above is a first check."
        ]
    if di["significant"] is False:
        more = (
            f" This run had {n} suspect texts; the demo model was caught reliably with {recommended} and a weakly "
            f"memorising one needed {weak}."
            if n is not None and recommended is not None and weak is not None
            else ""
        )
        return [
            "Inconclusive is not evidence that the set was unused: the test's power grows with the number of texts. "
            "Gather more suspect texts and as many validation texts from the same distribution, then re-run." + more
        ]
    return []


def grouped_warnings(results: Results) -> list[str]:
    """The run's warnings, each distinct text once: one that attacks' metrics raised is prefixed with the attacks
    it applies to (``"loss, zlib: FPR 0.001 cannot be resolved ..."``) rather than repeated once per attack, and
    replaces a run-level copy of the same text."""
    by_text: dict[str, list[str]] = {}
    for name, attack in results.attacks.items():
        for text in attack.metrics.warnings:
            names = by_text.setdefault(str(text), [])
            if name not in names:
                names.append(name)
    out = [str(w) for w in results.warnings if str(w) not in by_text]
    out += [f"{', '.join(names)}: {text}" for text, names in by_text.items()]
    return list(dict.fromkeys(out))


def _number_or_inf(s: Any) -> float:
    try:
        value = float(s)
    except (TypeError, ValueError):
        return math.inf
    return value if math.isfinite(value) else math.inf


# ------------------------------------------------------------------------------------------------ build


def build_report(
    results: Results | dict[str, Any],
    *,
    scores: tuple[np.ndarray, dict[str, np.ndarray]] | None = None,
    defenses: Results | None = None,
) -> ReportModel:
    """The :class:`ReportModel` of ``results`` (with the run's ``scores`` and a separate defend run's results)."""
    results = _typed(results)
    if results.kind == "defend" and defenses is None:
        defenses = results
    attacks = results.attacks
    key = results.headline_fpr()
    best = results.strongest_attack()
    overall = float(attacks[best].metrics.tpr_at_fpr[key]) if best is not None and key is not None else 0.0
    fpr_keys = list(dict.fromkeys(k for a in attacks.values() for k in a.metrics.tpr_at_fpr))
    claimed = claimed_epsilon(results)
    rows = _attack_rows(results, scores, claimed)
    alarms = _epsilon_alarms(claimed, rows)

    slices: list[tuple[str, list[SliceRow]]] = []
    hot: list[str] = []
    if best is not None and key is not None:
        parts = [("class", attacks[best].per_class), ("group", attacks[best].per_group)]
        parts += [(SLICING_TITLES.get(k, k), v) for k, v in attacks[best].per_slice.items()]
        for title, part in parts:
            if part:
                table = slice_rows(part, key, overall)
                slices.append((title, table))
                hot += [f"{title} {r.name}" for r in table if r.hot]

    defense_table = defense_rows(defenses) if defenses is not None else []
    alarms += _defense_alarms(defense_table)
    defense_rec = (defenses.sections.get("recommendation") or {}) if defenses is not None else {}
    red, llm, di = _redteam(results), _llm(results), _dataset_inference(results)
    if llm is not None and llm["validity_warning"]:
        alarms.append(f"LLM audit validity: {llm['validity_warning']}")
    if di is not None and di["validity_warning"]:
        alarms.append(f"Dataset inference validity: {di['validity_warning']}")

    summary = headline_sentence(results)
    recs: list[str] = []
    if alarms:
        recs.append(
            "An empirical ε lower bound exceeds a claimed ε (see the warning above): audit the DP-SGD implementation "
            "(per-example clipping, noise scale, sampling) and its accountant before releasing models trained with it."
        )
    if defense_rec.get("defense") or defense_rec.get("reason"):
        recs.append(
            f"Defense: {defense_rec.get('defense') or 'none meets the budget'} — {defense_rec.get('reason', '')}"
        )
    if red is not None:
        recs += red["recommendations"]
    if best is not None and key is not None and results.kind == "audit":
        recs += recommendations(results, hot_slices=hot, headline_key=key)
    if di is not None:
        recs += _dataset_inference_recommendations(di)

    warnings = grouped_warnings(results)
    said = ((red or {}).get("conclusion") or {}).get("headline")
    warnings = [w for w in warnings if w != said]  # a red team's conclusion is already the headline's last words
    draw_table, draw_note = draw_rows(results, key)
    probability = results.sections.get("membership_probability")
    subject = results.dataset.name
    if subject in (None, "?"):
        subject = (llm or {}).get("model") or (red or {}).get("url") or (di or {}).get("model") or "?"
    model = ReportModel(
        results=results,
        kind=results.kind,
        title=TITLES[results.kind],
        subject=str(subject),
        summary=summary,
        headline_fpr=key,
        strongest=best,
        overall_tpr=overall,
        fpr_keys=fpr_keys,
        attack_rows=rows,
        claimed=claimed,
        epsilon_delta=(results.epsilon or {}).get("delta", claimed["delta"] if claimed else 0.0),
        one_run=(results.epsilon or {}).get("one_run"),
        slices=slices,
        hot_slices=hot,
        vulnerable=results.vulnerable_records or {},
        defenses=defense_table,
        defense_recommendation=defense_rec,
        defense_plan=(defenses.sections.get("plan") or {}) if defenses is not None else {},
        defense_details=_defense_details(defenses),
        redteam=red,
        llm=llm,
        alarms=alarms,
        recommendations=recs,
        warnings=warnings,
        assumptions=[(a, ASSUMPTIONS.get(a, "see the attack's documentation")) for a in attacks],
        member=None if scores is None else scores[0],
        scores=None if scores is None else scores[1],
        dataset_inference=di,
        draws=draw_table,
        draw_note=draw_note,
        membership_probability=probability if isinstance(probability, dict) else None,
        ppv_note=ppv_note(results, best, key),
    )
    from memberscope.report.frameworks import framework_rows

    model.frameworks = framework_rows(model)
    return model
