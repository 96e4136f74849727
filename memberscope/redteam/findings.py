"""Red-team findings: the ``results.json`` of ``memberscope attack``, and recommendations from what was measured."""

from __future__ import annotations

from typing import Any

import numpy as np

from memberscope.redteam.recon import Exposure
from memberscope.redteam.verdicts import VERDICTS, Calibration, Conclusion, TargetCheck, rate

__all__ = ["build_results", "recommendations"]


EXPOSURE_FIELDS = (
    "mode",
    "top_k",
    "decimals",
    "deterministic",
    "rate_limited",
    "retry_after",
    "attacks_possible",
    "grid",
    "noise_std",
    "noise_scale",
    "family_hint",
)
"""What recon found that results.json keeps."""
TREE_FAMILIES = ("tree-ensemble", "neighbours-or-trees", "trees")


def _training_advice(exposure: Exposure, family: str | None) -> str:
    """What reduces memorisation for the kind of model the target appears to be."""
    trees = exposure.family_hint in TREE_FAMILIES or family in ("random-forest", "gradient-boosting")
    if trees:
        return (
            "limit what the trees memorise (min_samples_leaf of 5 or more, a maximum depth, fewer features per "
            "split, bootstrap samples smaller than the data) and train on more data"
        )
    return "train with differential privacy (DP-SGD) or regularise (early stopping, weight decay, more data)"


def recommendations(
    exposure: Exposure,
    calibration: Calibration,
    attack: str,
    *,
    queries_spent: int,
    n_flagged: int,
    conclusion: Conclusion | None = None,
    family: str | None = None,
) -> list[str]:
    """One sentence per finding, each following from a measured value (exposure, power, verdicts, conclusion)."""
    out: list[str] = []
    fpr = calibration.fpr_target
    tpr, (tpr_lo, _) = calibration.shadow_tpr, calibration.shadow_tpr_ci
    status = conclusion.status if conclusion is not None else None
    if exposure.mode in ("probabilities", "logits"):
        shown = "raw logits" if exposure.mode == "logits" else "full probability vectors"
        out.append(
            f"The API returns {shown}; return only the predicted label (or the top-1 class with its "
            "probability rounded to 1 decimal) to remove most of the signal score-based attacks use."
        )
    elif exposure.mode == "top-k" and exposure.decimals is None:
        shown = "top-1 probability" if exposure.top_k == 1 else f"top-{exposure.top_k} probabilities"
        out.append(f"The API returns the {shown} at full precision; round to 1 decimal or return the label only.")
    if status == "inconclusive":  # the conclusion itself is the report's headline: not repeated here
        out.append(
            "The run is inconclusive (see its conclusion): do not read the absence of member verdicts as safety; "
            "give the red team public data closer to the training data, or a shadow model of the target's family "
            "(--shadow-model)."
        )
    if calibration.power_shown:
        out.append(
            f"The {attack} attack identifies members with TPR {tpr:.1%} (95% CI from {tpr_lo:.1%}) at "
            f"{rate(fpr)} FPR on shadow models like the target: the model memorises its training records. "
            "Output hardening alone does not remove this"
            + (" (the API already shows labels only)" if exposure.mode == "label-only" else "")
            + f"; {_training_advice(exposure, family)}."
        )
    elif status != "inconclusive":
        out.append(
            f"The {attack} attack's TPR at {rate(fpr)} FPR on shadow models ({tpr:.1%}) is not clearly above the "
            "FPR: the attack's power is not shown, so the verdicts cannot clear anyone."
        )
    if n_flagged and status == "leakage":
        out.append(
            f"{n_flagged} of the queried records were judged members at {rate(fpr)} FPR (the threshold checked on the "
            "target's known non-members); treat them as disclosed to anyone with API access and the same public data."
        )
    elif n_flagged:
        out.append(
            f"{n_flagged} of the queried records were judged members at {rate(fpr)} FPR, not significantly more than "
            "false positives alone would give (the lower 95% bound of their share is within what false positives "
            "explain): none of them is shown to be disclosed."
        )
    if not exposure.rate_limited:
        out.append(
            f"No rate limiting was observed while spending {queries_spent} queries; per-client rate limits "
            "and query budgets make query-hungry attacks (label-only, averaging noisy answers) slower and easier to "
            "detect."
        )
    if not exposure.deterministic:
        out.append(
            "Answers vary between identical queries; noise drawn afresh for each query is averaged away by "
            "repeating it: draw the noise from a keyed hash of the record (the gateway's consistent noise) instead."
        )
    if not calibration.resolvable:
        out.append(
            f"Only {calibration.n_shadow_nonmembers} shadow non-members: FPR {rate(fpr)} is not resolved; "
            "give more shadow data or more shadow models."
        )
    return out


def build_results(
    *,
    url: str,
    queries_spent: int,
    query_budget: int | None,
    exposure: Exposure,
    attack: str,
    attack_params: dict[str, Any],
    calibration: Calibration,
    verdict_labels: np.ndarray,
    config: dict[str, Any],
    attacks: dict[str, Any] | None = None,
    warnings: list[str] | None = None,
    shadows: dict[str, Any] | None = None,
    attack_candidates: dict[str, Any] | None = None,
    check: TargetCheck | None = None,
    conclusion: Conclusion | None = None,
):
    """The red team's typed :class:`~memberscope.results.Results` (``kind: "redteam"``): the ``redteam`` section
    (target, exposure, attack, calibration, verdict counts, recommendations; the shadows' family, agreement and fit,
    every attack tried, the target-side check and the conclusion) and, with ground truth, ``attacks``."""
    from memberscope.results import Results

    counts = {v: int((np.asarray(verdict_labels) == v).sum()) for v in VERDICTS}
    exposure_block = {k: v for k, v in exposure.to_dict().items() if k in EXPOSURE_FIELDS}
    return Results(
        kind="redteam",
        config=config,
        seeds={"seed": config.get("seed")},
        attacks=dict(attacks or {}),
        sections={
            "redteam": {
                "target": {"url": url, "queries_spent": int(queries_spent), "query_budget": query_budget},
                "exposure": exposure_block,
                "attack": attack,
                "attack_params": attack_params,
                "calibration": calibration.to_dict(),
                "verdicts": counts,
                "shadows": shadows,
                "attack_candidates": attack_candidates,
                "target_check": None if check is None else check.to_dict(),
                "conclusion": None if conclusion is None else conclusion.to_dict(),
                "recommendations": recommendations(
                    exposure,
                    calibration,
                    attack,
                    queries_spent=queries_spent,
                    n_flagged=counts["member"],
                    conclusion=conclusion,
                    family=(shadows or {}).get("family"),
                ),
            }
        },
        warnings=list(warnings or []),
    )
