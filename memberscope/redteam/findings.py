"""Red-team findings: the ``results.json`` of ``memberscope attack``, and recommendations from what was measured."""

from __future__ import annotations

from typing import Any

import numpy as np

from memberscope.redteam.recon import Exposure
from memberscope.redteam.verdicts import VERDICTS, Calibration

__all__ = ["build_results", "recommendations"]


def recommendations(
    exposure: Exposure, calibration: Calibration, attack: str, *, queries_spent: int, n_flagged: int
) -> list[str]:
    """One sentence per finding, each following from a measured value (exposure, power, verdicts)."""
    out: list[str] = []
    fpr = calibration.fpr_target
    tpr, (tpr_lo, _) = calibration.shadow_tpr, calibration.shadow_tpr_ci
    leaks = tpr_lo > fpr  # the attack beats guessing at this FPR, with confidence
    if exposure.mode in ("probabilities", "logits"):
        shown = "raw logits" if exposure.mode == "logits" else "full probability vectors"
        out.append(
            f"The API returns {shown}; return only the predicted label (or the top-1 class with its "
            "probability rounded to 1 decimal) to remove most of the signal the shadow attack uses."
        )
    elif exposure.mode == "top-k" and exposure.decimals is None:
        shown = "top-1 probability" if exposure.top_k == 1 else f"top-{exposure.top_k} probabilities"
        out.append(f"The API returns the {shown} at full precision; round to 1 decimal or return the label only.")
    if leaks:
        out.append(
            f"The {attack} attack identifies members with TPR {tpr:.1%} (95% CI from {tpr_lo:.1%}) at "
            f"{fpr:g} FPR on shadow models: the model memorises its training records. Output hardening alone "
            "does not remove this"
            + (" (the API already shows labels only)" if exposure.mode == "label-only" else "")
            + "; train with differential privacy (DP-SGD) or regularise (early stopping, weight decay, more data)."
        )
    else:
        out.append(
            f"The {attack} attack's TPR at {fpr:g} FPR on shadow models ({tpr:.1%}) is not clearly above the "
            "FPR: no measurable leakage with this attack. This is no proof of safety: its power depends on "
            "the shadow data resembling the training data."
        )
    if n_flagged:
        out.append(
            f"{n_flagged} of the queried records were judged members at {fpr:g} FPR; treat them as disclosed "
            "to anyone with API access and the same public data."
        )
    if not exposure.rate_limited:
        out.append(
            f"No rate limiting was observed while spending {queries_spent} queries; per-client rate limits "
            "and query budgets make query-hungry attacks (label-only) slower and easier to detect."
        )
    if not exposure.deterministic:
        out.append(
            "Answers vary between identical queries; noise only slows attackers down, as repeated queries "
            "average it out."
        )
    if not calibration.resolvable:
        out.append(
            f"Only {calibration.n_shadow_nonmembers} shadow non-members: FPR {fpr:g} is not resolved; "
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
):
    """The red team's typed :class:`~memberscope.results.Results` (``kind: "redteam"``): the ``redteam`` section
    (target, exposure, attack, calibration, verdict counts, recommendations) and, with ground truth, ``attacks``."""
    from memberscope.results import Results

    counts = {v: int((np.asarray(verdict_labels) == v).sum()) for v in VERDICTS}
    exposure_block = {
        k: v
        for k, v in exposure.to_dict().items()
        if k in ("mode", "top_k", "decimals", "deterministic", "rate_limited", "retry_after", "attacks_possible")
    }
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
                "recommendations": recommendations(
                    exposure, calibration, attack, queries_spent=queries_spent, n_flagged=counts["member"]
                ),
            }
        },
        warnings=list(warnings or []),
    )
