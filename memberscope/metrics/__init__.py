"""Membership-inference metrics: ROC, AUC, TPR at low FPR, bootstrap confidence intervals.

Every attack gives each record a score, higher meaning "more likely a member"; ``member`` is the
ground truth (0/1 or boolean). :func:`evaluate` is the entry point; the rest are its parts.
"""

from memberscope.metrics._bootstrap import ReplicateMetrics, bootstrap_counts, replicate_metrics
from memberscope.metrics._evaluate import DEFAULT_FPRS, AttackMetrics, evaluate, evaluate_by_group, fpr_key
from memberscope.metrics._roc import balanced_accuracy, membership_advantage, roc_auc, roc_curve, tpr_at_fpr

__all__ = [
    "DEFAULT_FPRS",
    "AttackMetrics",
    "ReplicateMetrics",
    "balanced_accuracy",
    "bootstrap_counts",
    "evaluate",
    "evaluate_by_group",
    "fpr_key",
    "membership_advantage",
    "replicate_metrics",
    "roc_auc",
    "roc_curve",
    "tpr_at_fpr",
]
