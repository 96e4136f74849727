"""Do the reference models behave like the target? A check on every audit with reference models.

Reference-model attacks (LiRA, RMIA, the shadow classifier) measure a record's effect on models *like the
target*. When the reference models are not like it — another family (an MLP standing in for a random forest), an
under-fit recipe, or an unlucky draw of the target — those attacks lose power without saying so, and the audit
understates leakage. The check compares, on the same records:

- accuracy on training records: the target on its members against each reference model on its own IN records;
- accuracy on held-out records: the target on its non-members and the population against each reference model on
  its OUT records and the population;
- the distribution of the true-class confidence on population records (records no model trained on): the
  target's against the reference models', by the two-sample Kolmogorov–Smirnov statistic.

The check fails when either accuracy differs by more than :data:`MAX_ACCURACY_GAP` or the KS statistic exceeds
:data:`MAX_KS` (with p < 0.01). A failed check is a loud warning in the console, ``results.json`` (``fidelity``) and
the report, and ``memberscope gate`` refuses such a run unless told ``--allow-low-fidelity``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["MAX_ACCURACY_GAP", "MAX_KS", "fidelity_check"]

MAX_ACCURACY_GAP = 0.05
"""Largest difference in train or held-out accuracy (target against the mean reference model) that still passes."""
MAX_KS = 0.15
"""Largest KS distance between the target's and the reference models' true-class confidence on population records."""


def _accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float((logits.argmax(axis=-1) == labels).mean()) if len(labels) else float("nan")


def _confidence(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    from memberscope.signals import confidence

    return confidence(logits, labels)


def fidelity_check(
    target_logits: np.ndarray,
    reference_logits: np.ndarray | None,
    *,
    target_mask: np.ndarray,
    reference_masks: np.ndarray,
    labels: np.ndarray,
    n_pool: int,
) -> dict[str, Any]:
    """The ``fidelity`` block of results.json.

    Parameters
    ----------
    target_logits : ndarray of shape (n_eval, n_queries, n_classes) — the target on pool then population records.
    reference_logits : ndarray of shape (K, n_eval, n_queries, n_classes), or None without reference models.
    target_mask : bool ndarray of shape (n_pool,) — the target's members.
    reference_masks : bool ndarray of shape (K, n_pool) — each reference model's training records.
    labels : ndarray of shape (n_eval,) — class codes of the pool then population records.
    n_pool : int

    Returns
    -------
    dict
        ``passed`` (True, False, or None when there are no reference models), ``reasons`` (sentences),
        ``target`` and ``references`` (train and held-out accuracy), ``confidence_ks`` (statistic, p-value) and the
        thresholds used.
    """
    if reference_logits is None or len(reference_logits) == 0:
        return {
            "passed": None,
            "reasons": [],
            "note": "no reference models: attacks on the target alone need none, and there is nothing to compare",
        }
    from scipy.stats import ks_2samp

    first = target_logits[:, 0, :]
    pool_labels, pop_labels = labels[:n_pool], labels[n_pool:]
    held_out = np.concatenate([np.flatnonzero(~target_mask), n_pool + np.arange(len(pop_labels))])
    target = {
        "train_accuracy": _accuracy(first[:n_pool][target_mask], pool_labels[target_mask]),
        "test_accuracy": _accuracy(first[held_out], labels[held_out]),
    }
    train, test, pop_conf = [], [], []
    for k in range(len(reference_logits)):
        ref = reference_logits[k][:, 0, :]
        mask = reference_masks[k]
        out = np.concatenate([np.flatnonzero(~mask), n_pool + np.arange(len(pop_labels))])
        train.append(_accuracy(ref[:n_pool][mask], pool_labels[mask]))
        test.append(_accuracy(ref[out], labels[out]))
        if len(pop_labels):
            pop_conf.append(_confidence(ref[n_pool:], pop_labels))
    references = {"train_accuracy": float(np.mean(train)), "test_accuracy": float(np.mean(test))}
    reasons = []
    for what in ("train_accuracy", "test_accuracy"):
        gap = target[what] - references[what]
        if abs(gap) > MAX_ACCURACY_GAP:
            kind = "training records" if what == "train_accuracy" else "held-out records"
            reasons.append(
                f"accuracy on {kind}: target {target[what]:.3f}, reference models {references[what]:.3f} "
                f"(difference {gap:+.3f}, more than {MAX_ACCURACY_GAP})"
            )
    ks = None
    if pop_conf:
        result = ks_2samp(_confidence(first[n_pool:], pop_labels), np.concatenate(pop_conf))
        ks = {"statistic": float(result.statistic), "p_value": float(result.pvalue), "n_population": len(pop_labels)}
        if ks["statistic"] > MAX_KS and ks["p_value"] < 0.01:
            reasons.append(
                f"true-class confidence on population records differs between the target and the reference "
                f"models (KS distance {ks['statistic']:.3f}, p = {ks['p_value']:.2g}; more than {MAX_KS})"
            )
    return {
        "passed": not reasons,
        "reasons": reasons,
        "target": target,
        "references": references,
        "confidence_ks": ks,
        "thresholds": {"accuracy_gap": MAX_ACCURACY_GAP, "ks": MAX_KS},
    }


def fidelity_warning(block: dict[str, Any]) -> str | None:
    """The loud warning of a failed check (None when it passed or did not apply)."""
    if block.get("passed") is not False:
        return None
    return (
        "LOW FIDELITY: the reference models do not behave like the target ("
        + "; ".join(block["reasons"])
        + "). Attacks that use reference models (LiRA, RMIA, shadow) may understate leakage: build reference "
        "models like the target (the same model family and hyperparameters: for a scikit-learn model, leave the "
        "recipe to its default, a clone of the target) before trusting these numbers."
    )
