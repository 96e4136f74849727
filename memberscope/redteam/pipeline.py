"""The red-team pipeline behind ``memberscope attack``: recon, shadows, calibration, scores, verdicts, findings."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from memberscope.exceptions import InvalidInputError
from memberscope.redteam.findings import build_results
from memberscope.redteam.label_only import LabelOnlyAttack
from memberscope.redteam.recon import Exposure, recon
from memberscope.redteam.shadow import ShadowModelAttack
from memberscope.redteam.verdicts import Calibration, calibrate_threshold, verdicts
from memberscope.results import AttackResult, Results
from memberscope.targets import Target, wrap

__all__ = ["ATTACK_CHOICES", "RedteamResult", "read_records", "run_redteam", "save_answered"]

ATTACK_CHOICES = ("auto", "shadow", "label-only")


@dataclass
class RedteamResult:
    """Scores, verdicts and the results dictionary of one red-team run."""

    scores: np.ndarray
    verdicts: np.ndarray
    record_ids: list[str]
    exposure: Exposure
    calibration: Calibration
    results: Results

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
    path: str | Path, *, label_column: str = "label", member_column: str | None = None, id_column: str | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, list[str]]:
    """``(X, y, member or None, record ids)`` from a CSV of numeric feature columns and an integer label column.

    Labels must be the model's class indices (0 .. n_classes - 1) as the API numbers them.
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(
            f"records file {str(path)!r} does not exist; expected a CSV with a {label_column!r} column"
        )
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"cannot read {str(path)!r} as CSV: {exc}") from None
    for name, column in (("label", label_column), ("member", member_column), ("id", id_column)):
        if column is not None and column not in frame.columns:
            raise InvalidInputError(
                f"{str(path)!r} has no {name} column {column!r}; its columns are {list(frame.columns)[:12]}"
            )
    labels = frame[label_column]
    if not pd.api.types.is_integer_dtype(labels) or (labels < 0).any():
        raise InvalidInputError(
            f"label column {label_column!r} of {str(path)!r} must hold class indices (integers >= 0); "
            f"got dtype {labels.dtype}"
        )
    skip = {c for c in (label_column, member_column, id_column) if c is not None}
    features = frame[[c for c in frame.columns if c not in skip]]
    bad = [c for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])]
    if bad or features.shape[1] == 0:
        raise InvalidInputError(
            f"{str(path)!r}: feature columns must be numeric; not numeric: {bad[:5] or 'none found'}"
        )
    X = features.to_numpy(dtype=np.float64)
    if not np.isfinite(X).all():
        raise InvalidInputError(f"{str(path)!r} has missing or infinite feature values")
    member = None
    if member_column is not None:
        member = frame[member_column].astype(int).to_numpy().astype(bool)
    ids = frame[id_column].astype(str).tolist() if id_column else [str(i) for i in range(len(frame))]
    return X, labels.to_numpy(dtype=np.int64), member, ids


def save_answered(target: Target, out: str | Path) -> Path | None:
    """Write every answer an HTTP target received to ``out/answered.npz`` (X, observed); None if none."""
    answered = getattr(target, "answered_records", lambda: None)()
    if answered is None:
        return None
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / "answered.npz", X=answered[0], observed=answered[1])
    return out / "answered.npz"


def _choose_attack(attack: str, exposure: Exposure) -> str:
    if attack not in ATTACK_CHOICES:
        raise InvalidInputError(f"attack {attack!r} is not one of {ATTACK_CHOICES}")
    if attack == "auto":
        return exposure.attacks_possible[0]
    return attack


def run_redteam(
    target: Target,
    X: np.ndarray,
    y: np.ndarray,
    X_shadow: np.ndarray,
    y_shadow: np.ndarray,
    *,
    n_classes: int | None = None,
    fpr: float = 0.01,
    attack: str = "auto",
    n_shadow: int = 4,
    recipe: str = "mlp",
    recipe_params: dict[str, Any] | None = None,
    attack_model: str = "logreg",
    n_queries: int = 16,
    member: np.ndarray | None = None,
    record_ids: list[str] | None = None,
    seed: int = 0,
    config: dict[str, Any] | None = None,
    cache: Any = None,
) -> RedteamResult:
    """Recon the target, train shadows on ``X_shadow``, calibrate at ``fpr``, score ``X`` and give verdicts.

    ``n_classes`` defaults to what recon sees in the target's answers; ``cache`` (an
    :class:`~memberscope.cache.ArtifactCache`) keeps the trained shadows for the next run.

    ``member`` (ground truth, when known) adds the usual metrics under ``attacks``.
    """
    if len(X_shadow) < 20:
        raise InvalidInputError(f"shadow data has {len(X_shadow)} records; at least 20 are needed")
    # 1. Recon with a few shadow records (the attacker's own), asked twice.
    exposure = recon(target, X_shadow[: min(8, len(X_shadow))], repeats=2)
    n_classes = exposure.n_classes if n_classes is None else n_classes
    if max(int(np.max(y)), int(np.max(y_shadow))) >= n_classes:
        raise InvalidInputError(
            f"labels go up to {max(int(np.max(y)), int(np.max(y_shadow)))} but {target.description} has "
            f"{n_classes} classes; labels must be the API's class indices"
        )
    name = _choose_attack(attack, exposure)
    # 2. Shadows, seen through the same output post-processing as the target.
    shadow = ShadowModelAttack(
        n_shadow=n_shadow,
        recipe=recipe,
        recipe_params=recipe_params,
        attack_model=attack_model,
        postprocess=exposure.postprocess_spec(),
        seed=seed,
        cache=cache,
    ).fit(X_shadow, y_shadow, n_classes=n_classes)
    if name == "shadow":
        cal_scores, cal_member = shadow.calibration_scores_, shadow.calibration_member_
        params = shadow.params()
        scorer = shadow
    else:
        # 3. Label-only: choose the noise on the shadows (local, no target queries), calibrate on them.
        lo = LabelOnlyAttack(n_queries=n_queries, seed=seed).fit(X_shadow)
        local = [
            (wrap(m, n_classes=n_classes, postprocess="label-only"), X_shadow, y_shadow, mem)
            for m, mem in zip(shadow.shadow_models_, shadow.shadow_members_, strict=True)
        ]
        lo.calibrate(local, fpr=fpr)
        cal_scores = np.concatenate([lo.score(t, Xs, ys) for t, Xs, ys, _ in local])
        cal_member = np.concatenate([mem for *_, mem in local])
        params = lo.params() | {"calibration": lo.calibration_}
        scorer = lo
    calibration = calibrate_threshold(cal_scores, cal_member, fpr=fpr, n_models=n_shadow)
    # 4. The target's records.
    scores = scorer.score(target, X, y)
    labels = verdicts(scores, calibration)
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
            },
        )
    if name == "label-only" and getattr(scorer, "n_queries_used_", n_queries) < n_queries:
        notes.append(f"the query budget allowed {scorer.n_queries_used_} of {n_queries} perturbed queries per record")
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
    )
    ids = record_ids if record_ids is not None else [str(i) for i in range(len(X))]
    return RedteamResult(scores, labels, ids, exposure, calibration, results)
