"""Membership-inference metrics: ROC, AUC, TPR at low FPR, PPV, confidence intervals that keep their level.

Every attack gives each record a score, higher meaning "more likely a member"; ``member`` is the
ground truth (0/1 or boolean). :func:`evaluate` is the entry point; the rest are its parts. It
refuses games with fewer than :data:`MIN_MEMBERS` members or :data:`MIN_NONMEMBERS` non-members
(:func:`check_class_counts`, which the engine also calls before it trains anything).
"""

from memberscope.metrics._bootstrap import ReplicateMetrics, bootstrap_counts, bootstrap_replicates, replicate_metrics
from memberscope.metrics._evaluate import (
    DEFAULT_FPRS,
    AttackMetrics,
    check_class_counts,
    evaluate,
    evaluate_by_group,
    fpr_key,
)
from memberscope.metrics._intervals import (
    BOOTSTRAP_MAX_RECORDS,
    MIN_MEMBERS,
    MIN_NONMEMBERS,
    advantage_interval,
    auc_interval,
    clopper_pearson,
    delong_interval,
    tpr_interval,
    wilson_interval,
)
from memberscope.metrics._roc import (
    balanced_accuracy,
    membership_advantage,
    operating_point,
    positive_predictive_value,
    roc_auc,
    roc_curve,
    tpr_at_fpr,
)

__all__ = [
    "BOOTSTRAP_MAX_RECORDS",
    "DEFAULT_FPRS",
    "MIN_MEMBERS",
    "MIN_NONMEMBERS",
    "AttackMetrics",
    "ReplicateMetrics",
    "advantage_interval",
    "auc_interval",
    "balanced_accuracy",
    "bootstrap_counts",
    "bootstrap_replicates",
    "check_class_counts",
    "clopper_pearson",
    "delong_interval",
    "evaluate",
    "evaluate_by_group",
    "fpr_key",
    "membership_advantage",
    "operating_point",
    "positive_predictive_value",
    "replicate_metrics",
    "roc_auc",
    "roc_curve",
    "tpr_at_fpr",
    "tpr_interval",
    "wilson_interval",
]
