"""Validity guard: can a bag-of-words classifier, with no access to the model, tell members from non-members?

Membership audits of LLMs are often run on members and non-members collected differently (before
and after a cutoff date, from different sources). An attack then measures the shift between the
two sets, not what the model memorized (Duan et al. 2024; Das et al. 2024). This baseline fits a
TF-IDF bag-of-words logistic regression on the split itself, with stratified cross-validation,
and scores every record out of fold; if its AUC's confidence interval excludes 0.5, the split is
distinguishable without the model and the audit's results carry a warning.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from memberscope.exceptions import UnresolvableFPRWarning

__all__ = ["bag_of_words_baseline"]


def bag_of_words_baseline(
    texts: list[str],
    member: np.ndarray,
    *,
    seed: int = 0,
    n_folds: int = 5,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """Out-of-fold AUC (with bootstrap CI) of a bag-of-words member/non-member classifier.

    Returns
    -------
    ``{"baseline_auc", "baseline_auc_ci", "warning" (str or None), "n_folds", "method", "scores"}``;
    ``scores`` (shape (n,)) are the out-of-fold member probabilities.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline

    from memberscope.metrics import evaluate

    member = np.asarray(member, dtype=bool)
    folds = max(2, min(n_folds, int(member.sum()), int((~member).sum())))
    pipe = make_pipeline(
        TfidfVectorizer(lowercase=True, ngram_range=(1, 2), min_df=1, sublinear_tf=True),
        LogisticRegression(C=1.0, max_iter=1000),
    )
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    proba = cross_val_predict(pipe, list(texts), member.astype(int), cv=cv, method="predict_proba")[:, 1]
    with warnings.catch_warnings():  # only the AUC is used; an unresolvable FPR is irrelevant here
        warnings.simplefilter("ignore", UnresolvableFPRWarning)
        metrics = evaluate(member, proba, fprs=(0.1,), n_bootstrap=n_bootstrap, confidence=confidence, seed=seed)
    lo, hi = metrics.auc_ci
    warning = None
    if lo > 0.5 or hi < 0.5:
        warning = (
            f"a bag-of-words classifier with no access to the model separates members from non-members "
            f"(AUC {metrics.auc:.3f}, {int(100 * confidence)}% CI [{lo:.3f}, {hi:.3f}] excludes 0.5): the attacks may "
            "measure a distribution shift between the two sets rather than memorization; draw them IID from one pool"
        )
    return {
        "baseline_auc": float(metrics.auc),
        "baseline_auc_ci": [float(lo), float(hi)],
        "warning": warning,
        "n_folds": folds,
        "method": "tf-idf (1-2 grams) logistic regression, stratified k-fold, out-of-fold scores",
        "scores": proba,
    }
