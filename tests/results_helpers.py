"""Complete attack metrics for tests that set only the fields they check (typed results need every field)."""

from typing import Any


def full_metrics(**given: Any) -> dict[str, Any]:
    """An attack-metrics dictionary with every field of AttackMetrics: ``given`` plus neutral values for the rest."""
    tpr = given.get("tpr_at_fpr", {"0.01": 0.01})
    out: dict[str, Any] = {
        "auc": 0.5,
        "auc_ci": [given.get("auc", 0.5), given.get("auc", 0.5)],
        "tpr_at_fpr": tpr,
        "tpr_at_fpr_ci": {k: [v, v] for k, v in tpr.items()},
        "balanced_accuracy": 0.5,
        "balanced_accuracy_ci": [0.5, 0.5],
        "advantage": 0.0,
        "advantage_ci": [0.0, 0.0],
        "n_members": 1000,
        "n_nonmembers": 1000,
        "fpr_resolvable": {k: True for k in tpr},
        "warnings": [],
        "confidence": 0.95,
        "n_bootstrap": 0,
    }
    out.update(given)
    return out
