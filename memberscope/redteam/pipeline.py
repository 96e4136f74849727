"""The red-team pipeline behind ``memberscope attack``: recon, shadows, calibration, scores, verdicts, findings."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from memberscope.exceptions import InvalidInputError
from memberscope.redteam.families import SHADOW_FAMILIES, FamilyContext, candidate_families, resolve_shadow_model
from memberscope.redteam.findings import build_results
from memberscope.redteam.fit import GRID_SHARE, Agreement, agreement, fit_check, on_grid_share, select_family
from memberscope.redteam.recon import Exposure, averaging_repeats, recon
from memberscope.redteam.shadow import API_ATTACKS, ShadowModelAttack, View
from memberscope.redteam.shadowset import MIN_ATTACKER_RECORDS, AttackerSplit, ShadowSet
from memberscope.redteam.verdicts import (
    CERTIFIED_FACTOR,
    VERDICTS,
    Calibration,
    Conclusion,
    TargetCheck,
    calibrate_threshold,
    check_on_target,
    cleared_members_bound,
    conclude,
    rate,
    verdicts,
)
from memberscope.results import AttackResult, Results
from memberscope.targets import Target, as_probabilities

__all__ = ["ATTACK_CHOICES", "RedteamResult", "read_records", "run_redteam", "save_answered", "select_shadows"]

ATTACK_CHOICES = ("auto", *API_ATTACKS)


@dataclass
class RedteamResult:
    """Scores, verdicts and the results dictionary of one red-team run."""

    scores: np.ndarray
    verdicts: np.ndarray
    record_ids: list[str]
    exposure: Exposure
    calibration: Calibration
    results: Results
    check: TargetCheck | None = None
    conclusion: Conclusion | None = None

    def write(self, out: str | Path) -> dict[str, str]:
        """Write ``verdicts.csv`` (record, score, verdict) and ``results.json`` into ``out``."""
        from memberscope.results import write_results_json

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        with open(out / "verdicts.csv", "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["record", "score", "verdict"])
            for rid, score, verdict in zip(self.record_ids, self.scores, self.verdicts, strict=True):
                writer.writerow([rid, f"{float(score):.6g}", verdict])
        write_results_json(self.results, out / "results.json")
        return {"verdicts": str(out / "verdicts.csv"), "results": str(out / "results.json")}


def read_records(
    path: str | Path,
    *,
    label_column: str = "label",
    member_column: str | None = None,
    id_column: str | None = None,
    classes: list[str] | None = None,
    feature_columns: list[str] | None = None,
    optional_columns: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, list[str]]:
    """``(X, y, member or None, record ids)`` from a CSV of numeric feature columns and a label column.

    Labels are the model's class indices (0 .. n_classes - 1) as the API numbers them, or, with ``classes`` (the
    class names in the API's output order), those names. The id and member columns are never features.
    ``feature_columns``: the feature columns to read, in this order (another table's, so both line up by name);
    with ``optional_columns`` an absent id or member column is ignored (a public table without them).

    Raises
    ------
    InvalidInputError
        A missing or unreadable file, an absent column, feature columns that are not numeric or not those of
        ``feature_columns`` (the extra and missing ones named), labels that are not class indices or names of
        ``classes`` (the unknown values named), missing or infinite feature values (their columns and first rows,
        by id when an id column is given).
    """
    import pandas as pd

    from memberscope.datasets.tables import _check_finite, check_numeric_cells, holds_numbers

    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(
            f"records file {str(path)!r} does not exist; expected a CSV with a {label_column!r} column"
        )
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"cannot read {str(path)!r} as CSV: {exc}") from None
    if optional_columns:
        member_column = member_column if member_column in frame.columns else None
        id_column = id_column if id_column in frame.columns else None
    for name, column in (("label", label_column), ("member", member_column), ("id", id_column)):
        if column is not None and column not in frame.columns:
            raise InvalidInputError(
                f"{str(path)!r} has no {name} column {column!r}; its columns are {_listing(list(frame.columns))}"
            )
    y = _class_indices(frame[label_column], path, label_column, classes)
    skip = {c for c in (label_column, member_column, id_column) if c is not None}
    names = [c for c in frame.columns if c not in skip]
    if feature_columns is not None:
        extra = [c for c in names if c not in feature_columns]
        missing = [c for c in feature_columns if c not in names]
        if extra or missing:
            raise InvalidInputError(
                f"{str(path)!r} does not have the feature columns of the records: "
                + "; ".join(
                    part
                    for part in (
                        f"extra columns {_listing(extra)}" if extra else "",
                        f"the records' columns {_listing(missing)} are not in it" if missing else "",
                    )
                    if part
                )
                + " (name id and ground-truth columns with --id-column / --member-column, or drop them)"
            )
        names = list(feature_columns)
    features = frame[names]
    bad = [c for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])]
    # A column of numbers with a few text cells: name the values and their rows (or ids), as audit does.
    id_values = frame[id_column].astype(str).to_numpy() if id_column else None
    check_numeric_cells(features, [c for c in bad if holds_numbers(features[c])], where=repr(str(path)), ids=id_values)
    if bad or features.shape[1] == 0:
        raise InvalidInputError(
            f"{str(path)!r}: feature columns must be numeric; not numeric: {bad[:5] or 'none found'}"
            + (" (an id column? name it with --id-column)" if bad else "")
        )
    X = features.to_numpy(dtype=np.float64)
    ids = frame[id_column].astype(str).tolist() if id_column else [str(i) for i in range(len(frame))]
    _check_finite(X, path, [str(c) for c in names], ids=ids if id_column else None)
    member = None
    if member_column is not None:
        member = frame[member_column].astype(int).to_numpy().astype(bool)
    return X, y, member, ids


def _listing(columns: list[Any], most: int = 40) -> str:
    """Column names for an error message: all of them up to ``most``, else the first ``most`` and how many more."""
    shown = ", ".join(repr(str(c)) for c in columns[:most])
    return f"[{shown}" + (f", … and {len(columns) - most} more]" if len(columns) > most else "]")


def _class_indices(labels: Any, path: Path, column: str, classes: list[str] | None) -> np.ndarray:
    """Labels ``(n,)`` as class indices: integers >= 0 as they are, or names of ``classes`` mapped to their place."""
    import pandas as pd

    if labels.isna().any():
        first = int(np.flatnonzero(labels.isna().to_numpy())[0])
        raise InvalidInputError(
            f"label column {column!r} of {str(path)!r} has {int(labels.isna().sum())} missing values (first at row "
            f"{first}); expected a label on every row"
        )
    if classes is not None and not pd.api.types.is_integer_dtype(labels):
        index = {name: i for i, name in enumerate(classes)}
        values = labels.astype(str)
        unknown = sorted(set(values) - set(index))
        if unknown:
            raise InvalidInputError(
                f"label column {column!r} of {str(path)!r} has values {unknown[:10]} not among --classes {classes}"
            )
        return values.map(index).to_numpy(dtype=np.int64)
    if not pd.api.types.is_integer_dtype(labels) or (labels < 0).any():
        values = sorted(set(labels.astype(str)))[:10]
        raise InvalidInputError(
            f"label column {column!r} of {str(path)!r} must hold class indices (integers >= 0), or class names "
            f"given in the API's output order with --classes; got values {values} (dtype {labels.dtype})"
        )
    return labels.to_numpy(dtype=np.int64)


def save_answered(target: Target, out: str | Path) -> Path | None:
    """Write every answer an HTTP target received to ``out/answered.npz`` (X, observed); None if none."""
    answered = getattr(target, "answered_records", lambda: None)()
    if answered is None:
        return None
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / "answered.npz", X=answered[0], observed=answered[1])
    return out / "answered.npz"


def _choose_attack(attack: str, exposure: Exposure) -> list[str]:
    """The attacks to try, in order: the one asked for, or under ``auto`` every attack the exposure allows
    (the label-only attack only on label-only APIs, where it is the one that applies: it costs many queries)."""
    if attack not in ATTACK_CHOICES:
        raise InvalidInputError(f"attack {attack!r} is not one of {ATTACK_CHOICES}")
    if attack != "auto":
        if attack != "label-only" and exposure.mode == "label-only":
            raise InvalidInputError(
                f"attack {attack!r} needs scores but the API answers labels only; use 'label-only' or 'auto'"
            )
        return [attack]
    return [a for a in exposure.attacks_possible if a != "label-only"] or ["label-only"]


def _power(attack: ShadowModelAttack, fpr: float) -> tuple[float, float]:
    """(TPR at ``fpr``, AUC) of an attack on its calibration shadows (models like the target, members known)."""
    from memberscope.metrics import roc_auc, roc_curve, tpr_at_fpr

    member, scores = attack.calibration_member_, attack.calibration_scores_
    fpr_, tpr_, _ = roc_curve(member, scores)
    return float(tpr_at_fpr(fpr_, tpr_, fpr)), float(roc_auc(member, scores))


def select_shadows(
    target: Target,
    X_shadow: np.ndarray,
    y_shadow: np.ndarray,
    *,
    exposure: Exposure,
    view: View,
    recipe: Any,
    recipe_params: dict[str, Any] | None,
    n_shadow: int,
    n_calibration: int,
    n_classes: int,
    seed: int,
    cache: Any = None,
    holdout: float = 0.2,
) -> tuple[ShadowSet, list[Agreement], np.ndarray]:
    """Train the shadow models of the family agreeing most with the target on the attacker's held-out records.

    Under ``recipe="auto"`` every candidate family (:func:`~memberscope.redteam.families.candidate_families`, the
    recon's family hint first) trains one shadow, which is compared with the target on the held-out records
    (:func:`~memberscope.redteam.fit.agreement`); the best becomes reference shadow 0 of the set. When recon found
    the target's answers on a natural ``1/n`` grid, only candidates answering on that grid (at least
    :data:`~memberscope.redteam.fit.GRID_SHARE` of their values) are eligible: a logistic regression never answers
    exact multiples of 1/100, whatever its agreement on held-out records (shadows train on far fewer records than
    the target, which moves their confidences more than their family does). Any other
    ``recipe`` is used as given (:func:`~memberscope.redteam.families.resolve_shadow_model`), its agreement
    still measured. Returns ``(shadows, agreements, target logits on the held-out records (h, q, C))``: the
    target is queried on the held-out records once, here.
    """
    from memberscope.game import derive_seed

    split = AttackerSplit.draw(len(X_shadow), holdout=holdout, seed=seed)
    context = FamilyContext(
        grid=exposure.grid,
        feature_shape=tuple(X_shadow.shape[1:]),
        params=recipe_params,
        n_classes=n_classes,
        n_records=len(split.reference) // 2,
    )
    if recipe == "auto" and recipe_params:
        raise InvalidInputError(
            "shadow-model parameters need a named shadow family (--shadow-model mlp, random-forest, ...); "
            "with 'auto' each family uses its own defaults"
        )
    if recipe == "auto":
        candidates = [
            (name, SHADOW_FAMILIES.get(name)(context)) for name in candidate_families(context, exposure.family_hint)
        ]
    else:
        candidates = [resolve_shadow_model(recipe, context)]
    X_hold = X_shadow[split.holdout]
    target_hold = view.observe_target(target, X_hold)
    labels_only = exposure.mode == "label-only"
    tried = []
    for name, family_recipe in candidates:
        shadows = ShadowSet(
            family_recipe,
            n_reference=n_shadow,
            n_calibration=n_calibration,
            n_classes=n_classes,
            seed=seed,
            cache=cache,
            name=name,
        ).for_training(X_shadow, y_shadow, split)
        first = shadows.train_one(split.reference[shadows.first_members(split)], seed=derive_seed(seed, "ref", 0))
        seen = view.observe(first, X_hold, seed=derive_seed(seed, "view", 0))
        found = agreement(name, target_hold, seen, labels_only=labels_only)
        if exposure.grid is not None:
            found.grid_share = on_grid_share(as_probabilities(first.query(X_hold), first.output_kind), exposure.grid)
        tried.append((found, shadows, first))
    # A target answering on a natural 1/n grid (a forest of n trees) is matched only by shadows answering on it.
    eligible = [a for a, _, _ in tried if a.grid_share is None or a.grid_share >= GRID_SHARE]
    best = select_family(eligible or [a for a, _, _ in tried])
    _, shadows, first = next(t for t in tried if t[0] is best)
    return shadows.train(X_shadow, y_shadow, split, first=first), [a for a, _, _ in tried], target_hold


def run_redteam(
    target: Target,
    X: np.ndarray,
    y: np.ndarray,
    X_shadow: np.ndarray,
    y_shadow: np.ndarray,
    *,
    n_classes: int | None = None,
    fpr: float = 0.01,
    fnr: float | None = None,
    member_prior: float | None = None,
    attack: str = "auto",
    n_shadow: int = 4,
    n_calibration: int = 2,
    recipe: Any = "auto",
    recipe_params: dict[str, Any] | None = None,
    attack_model: str = "logreg",
    n_queries: int = 16,
    repeats: int | None = None,
    member: np.ndarray | None = None,
    record_ids: list[str] | None = None,
    seed: int = 0,
    config: dict[str, Any] | None = None,
    cache: Any = None,
) -> RedteamResult:
    """Recon the target, train shadows like it on ``X_shadow``, calibrate at ``fpr``, score ``X``, check the
    threshold on the target and give verdicts that are never a false all-clear.

    1. Recon (:func:`~memberscope.redteam.recon.recon`): what the API shows, its noise, a model-family hint.
    2. Shadows (:func:`select_shadows`): the family agreeing most with the target (``recipe="auto"``) or the one
       given; reference shadows (OUT for every record scored) and calibration shadows (which play the target), all
       seen through the API's post-processing, noisy answers averaged over ``repeats`` queries (default: from the
       measured noise, :func:`~memberscope.redteam.recon.averaging_repeats`).
    3. The attack (``auto``: the strongest on the calibration shadows of ``lira-offline``, ``rmia-offline`` and
       ``shadow``; ``label-only`` on label-only APIs), its threshold calibrated at ``fpr`` on the calibration
       shadows (:func:`~memberscope.redteam.verdicts.calibrate_threshold`).
    4. The target scored on ``X`` and on the attacker's held-out records, which are known non-members: the share of
       them flagged is the target-side FPR (:func:`~memberscope.redteam.verdicts.check_on_target`).
    5. Verdicts and the one conclusion (:func:`~memberscope.redteam.verdicts.conclude`): "inconclusive" whenever
       the shadows fit the target poorly, the threshold is off on the target, the attack has no power shown, or
       the target's answers do not bound the leakage below what the run could detect; an inconclusive run clears no
       record (its low scores are inconclusive, not "not-member"). "Not-member" needs a score below the threshold
       calibrated on the calibration shadows' members at ``fnr``: a score merely not flagged is inconclusive.

    ``fnr`` (default ``fpr``): the share of members of models like the target that a "not-member" verdict may
    wrongly clear (:func:`~memberscope.redteam.verdicts.calibrate_threshold`).
    ``n_classes`` defaults to what recon sees in the target's answers; ``cache`` (an
    :class:`~memberscope.cache.ArtifactCache`) keeps the trained shadows for the next run; ``member`` (ground
    truth, when known) adds the usual metrics under ``attacks``.

    Raises
    ------
    InvalidInputError
        Too few attacker records (:data:`~memberscope.redteam.shadowset.MIN_ATTACKER_RECORDS`), shadow data of a
        single class, labels beyond the
        API's classes, an unknown attack or shadow model, an attack the exposure does not allow.
    """
    X, y, X_shadow, y_shadow = np.asarray(X), np.asarray(y), np.asarray(X_shadow), np.asarray(y_shadow)
    if len(X_shadow) < MIN_ATTACKER_RECORDS:
        raise InvalidInputError(
            f"shadow data has {len(X_shadow)} records; at least {MIN_ATTACKER_RECORDS} are needed (held-out "
            "non-members, reference and calibration shadows' training records)"
        )
    shadow_classes, shadow_counts = np.unique(y_shadow, return_counts=True)
    if len(shadow_classes) < 2:
        # Every shadow model is a classifier trained on part of this data: one class cannot train one.
        found = ", ".join(f"class {v}: {c} records" for v, c in zip(shadow_classes, shadow_counts, strict=True))
        raise InvalidInputError(
            f"shadow data has a single class ({found})"
            "; shadow models like the target need records of at least 2 classes, ideally of every class the "
            "target predicts"
        )
    if repeats is not None and (int(repeats) != repeats or repeats < 1):
        raise InvalidInputError(f"repeats must be an integer >= 1; got {repeats!r}")
    # 1. Recon with a few shadow records (the attacker's own), asked twice.
    exposure = recon(target, X_shadow[: min(8, len(X_shadow))], repeats=2)
    n_classes = exposure.n_classes if n_classes is None else n_classes
    if max(int(np.max(y)), int(np.max(y_shadow))) >= n_classes:
        raise InvalidInputError(
            f"labels go up to {max(int(np.max(y)), int(np.max(y_shadow)))} but {target.description} has "
            f"{n_classes} classes; labels must be the API's class indices"
        )
    names = _choose_attack(attack, exposure)
    n_repeats = (
        int(repeats)
        if repeats is not None
        else (1 if exposure.deterministic else averaging_repeats(exposure.noise_std))
    )
    view = View(exposure.postprocess_spec(), n_repeats)
    # 2. Shadows of the family that answers most like the target.
    shadows, agreements, target_hold = select_shadows(
        target,
        X_shadow,
        y_shadow,
        exposure=exposure,
        view=view,
        recipe=recipe,
        recipe_params=recipe_params,
        n_shadow=n_shadow,
        n_calibration=n_calibration,
        n_classes=n_classes,
        seed=seed,
        cache=cache,
    )
    fit = fit_check(
        shadows.name,
        target_hold,
        shadows.outputs("reference", "holdout", view),
        labels_only=exposure.mode == "label-only",
    )
    # 3. The attack strongest on the calibration shadows.
    candidates = {}
    for name in names:
        candidate = ShadowModelAttack(
            attack=name,
            n_shadow=n_shadow,
            n_calibration=n_calibration,
            postprocess=view.postprocess,
            repeats=view.repeats,
            attack_model=attack_model,
            n_queries=n_queries,
            fpr=fpr,
            seed=seed,
        ).fit(X_shadow, y_shadow, n_classes=n_classes, shadows=shadows)
        candidates[name] = (candidate, _power(candidate, fpr))
    name = max(candidates, key=lambda a: candidates[a][1])
    scorer = candidates[name][0]
    calibration = calibrate_threshold(
        scorer.calibration_scores_, scorer.calibration_member_, fpr=fpr, n_models=n_calibration, fnr=fnr
    )
    # 4. The target's records, and the attacker's held-out records (known non-members of the target).
    if name == "label-only":
        scores = scorer.score(target, X, y)
        hold_scores = scorer.holdout_scores_
    else:
        run = scorer.score_outputs(view.observe_target(target, X), y, target_hold, X=X)
        scores, hold_scores = run.scores[: len(X)], run.scores[len(X) :]
    check = check_on_target(hold_scores, calibration)
    labels = verdicts(
        scores, calibration, check=check, fit_ok=not fit.poor, nonmember_scores=hold_scores, member_prior=member_prior
    )
    cut = calibration.not_member_cut
    cleared_bound = cleared_members_bound(
        scores, hold_scores, cut, member_prior=member_prior, confidence=calibration.confidence
    )
    counts = {v: int((labels == v).sum()) for v in VERDICTS}
    conclusion = conclude(counts, calibration, check, attack=name, fit_reasons=fit.reasons)
    if conclusion.status == "inconclusive" and counts["not-member"]:
        # A run that cannot show the target safe clears no record either: low scores become inconclusive.
        labels[labels == "not-member"] = "inconclusive"
        counts = {v: int((labels == v).sum()) for v in VERDICTS}
        conclusion = conclude(counts, calibration, check, attack=name, fit_reasons=fit.reasons)
    params = scorer.params()
    events = getattr(target, "rate_limit_events", [])
    if events and not exposure.rate_limited:  # first seen during the attack rather than recon
        waits = [e["retry_after"] for e in events if e.get("retry_after") is not None]
        exposure.rate_limited, exposure.retry_after = True, max(waits) if waits else None
    attacks, notes = {}, []
    if member is not None and member.any() and not member.all():
        import warnings

        from memberscope.exceptions import UnresolvableFPRWarning
        from memberscope.metrics import evaluate

        fprs = sorted({0.1, fpr, 0.001}, reverse=True)
        with warnings.catch_warnings():
            # Unresolvable FPRs are reported in the metrics' own warnings and in results.json.
            warnings.simplefilter("ignore", UnresolvableFPRWarning)
            measured = evaluate(member, scores, fprs=fprs, n_bootstrap=200, seed=seed)
        notes.extend(measured.warnings)
        flagged = labels == "member"
        attacks[name] = AttackResult(
            metrics=measured,
            params=params,
            extra={
                "verdict_fpr": float(flagged[~member].mean()),
                "verdict_tpr": float(flagged[member].mean()),
                "threshold_fpr": float((scores[~member] >= calibration.threshold).mean()),
                "target_threshold_fpr": float((scores[~member] >= check.threshold).mean()),
            },
        )
    elif member is not None:
        n_in = int(member.sum())
        notes.append(
            f"the member column holds {n_in} members and {len(member) - n_in} non-members: ground truth needs both to "
            "score the attack (TPR, FPR, AUC), so none is reported; the verdicts stand on their own"
        )
    if conclusion.status != "leakage" and conclusion.status != "no measurable leakage":
        notes.append(conclusion.headline)
    if not counts["not-member"] and np.isfinite(cut) and cleared_bound > CERTIFIED_FACTOR * calibration.fnr:
        prior = "for any share of members among the records" if member_prior is None else f"at prior {member_prior:g}"
        notes.append(
            f"no record is called 'not-member': on the target itself, up to {rate(cleared_bound)} of its members "
            f"could score below the not-member threshold ({prior}; 95% bound), more than {CERTIFIED_FACTOR:g}x the "
            f"FNR {rate(calibration.fnr)}; low scores are inconclusive (state the records' member share with "
            "--member-prior to sharpen this)"
        )
    if name == "label-only" and scorer.run_params_.get("n_queries", n_queries) < n_queries:
        notes.append(
            f"the query budget allowed {scorer.run_params_['n_queries']} of {n_queries} perturbed queries per record"
        )
    results = build_results(
        url=target.description,
        queries_spent=target.queries_spent,
        query_budget=target.query_budget,
        exposure=exposure,
        attack=name,
        attack_params=params,
        calibration=calibration,
        verdict_labels=labels,
        config=config or {},
        attacks=attacks,
        warnings=notes,
        shadows={
            **shadows.describe(),
            "agreement": [a.to_dict() for a in agreements],
            "fit": fit.to_dict(),
            "repeats": view.repeats,
        },
        attack_candidates={
            a: {"shadow_tpr_at_fpr": round(p[0], 4), "shadow_auc": round(p[1], 4)} for a, (_, p) in candidates.items()
        },
        check=check,
        conclusion=conclusion,
    )
    results.sections["redteam"]["not_member_check"] = {
        "cleared_members_bound": cleared_bound,
        "allowed": CERTIFIED_FACTOR * calibration.fnr,
        "member_prior": member_prior,
    }
    ids = record_ids if record_ids is not None else [str(i) for i in range(len(X))]
    return RedteamResult(scores, labels, ids, exposure, calibration, results, check, conclusion)
