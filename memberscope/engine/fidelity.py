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

The target is judged against the spread of the reference models themselves, since models trained alike on other
draws of the data differ too (more so when they are small or trained briefly): an accuracy fails when the target's
differs from the reference models' mean by more than :data:`MIN_ACCURACY_GAP` and by more than :data:`Z` times
their spread (the larger of their standard deviation and the binomial standard error of an accuracy on that many
records); the confidence distribution fails when the target's KS distance to the pooled reference models exceeds
:data:`MIN_KS` and twice the largest KS distance of a reference model to the others (leave-one-out), with p < 0.01.
A failed check is a loud warning in the console, ``results.json`` (``fidelity``) and the report, and
``memberscope gate`` refuses such a run unless told ``--allow-low-fidelity``. The same check catches an under-fit
or over-fit draw of the target among models trained alike.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["MIN_ACCURACY_GAP", "MIN_KS", "Z", "fidelity_check", "fidelity_warning"]

MIN_ACCURACY_GAP = 0.02
"""An accuracy difference (target against the mean reference model) at most this large always passes."""
Z = 3.0
"""How many spreads of the reference models' accuracies the target may lie from their mean."""
MIN_KS = 0.1
"""A KS distance (target's true-class confidence against the reference models') at most this large always passes."""


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
    first = target_logits[:, 0, :]
    pool_labels, pop_labels = labels[:n_pool], labels[n_pool:]
    held_out = np.concatenate([np.flatnonzero(~target_mask), n_pool + np.arange(len(pop_labels))])
    target = {
        "train_accuracy": _accuracy(first[:n_pool][target_mask], pool_labels[target_mask]),
        "test_accuracy": _accuracy(first[held_out], labels[held_out]),
    }
    counts = {"train_accuracy": int(target_mask.sum()), "test_accuracy": len(held_out)}
    per_ref: dict[str, list[float]] = {"train_accuracy": [], "test_accuracy": []}
    pop_conf = []
    for k in range(len(reference_logits)):
        ref = reference_logits[k][:, 0, :]
        mask = reference_masks[k]
        out = np.concatenate([np.flatnonzero(~mask), n_pool + np.arange(len(pop_labels))])
        per_ref["train_accuracy"].append(_accuracy(ref[:n_pool][mask], pool_labels[mask]))
        per_ref["test_accuracy"].append(_accuracy(ref[out], labels[out]))
        if len(pop_labels):
            pop_conf.append(_confidence(ref[n_pool:], pop_labels))
    references: dict[str, Any] = {}
    reasons = []
    for what, values in per_ref.items():
        mean = float(np.mean(values))
        binomial = float(np.sqrt(max(mean * (1 - mean), 1e-12) / max(counts[what], 1)))
        spread = max(float(np.std(values, ddof=1)) if len(values) > 1 else 0.0, binomial)
        allowed = max(MIN_ACCURACY_GAP, Z * spread)
        references[what] = mean
        references[f"{what}_spread"] = spread
        gap = target[what] - mean
        if abs(gap) > allowed:
            kind = "training records" if what == "train_accuracy" else "held-out records"
            reasons.append(
                f"accuracy on {kind}: target {target[what]:.3f}, reference models {mean:.3f} (difference {gap:+.3f}, "
                f"more than {allowed:.3f}: {Z:g} times their spread {spread:.3f}, at least {MIN_ACCURACY_GAP})"
            )
    ks = None
    if pop_conf:
        from scipy.stats import ks_2samp

        result = ks_2samp(_confidence(first[n_pool:], pop_labels), np.concatenate(pop_conf))
        among = [
            float(ks_2samp(pop_conf[k], np.concatenate(pop_conf[:k] + pop_conf[k + 1 :])).statistic)
            for k in range(len(pop_conf))
            if len(pop_conf) > 1
        ]
        allowed = max(MIN_KS, 2 * max(among, default=0.0))
        statistic, p_value = float(result.statistic), float(result.pvalue)
        ks = {
            "statistic": statistic,
            "p_value": p_value,
            "n_population": len(pop_labels),
            "among_references_max": max(among, default=None),
            "allowed": allowed,
        }
        if statistic > allowed and p_value < 0.01:
            reasons.append(
                f"true-class confidence on population records differs between the target and the reference "
                f"models (KS distance {statistic:.3f}, p = {p_value:.2g}; more than {allowed:.3f}, twice "
                "the largest distance between two reference models' and at least "
                f"{MIN_KS})"
            )
    return {
        "passed": not reasons,
        "reasons": reasons,
        "target": target,
        "references": references,
        "confidence_ks": ks,
        "thresholds": {"min_accuracy_gap": MIN_ACCURACY_GAP, "z": Z, "min_ks": MIN_KS},
    }


def fidelity_warning(block: dict[str, Any], *, default_recipe: bool = False) -> str | None:
    """The loud warning of a failed check (None when it passed or did not apply). ``default_recipe``: the
    reference models already came from the default recipe (a clone of the user's scikit-learn model), so the
    advice points at the records instead of at the recipe."""
    if block.get("passed") is not False:
        return None
    if default_recipe:
        advice = (
            "the reference models are already built like the target (the default recipe: a clone of it, same "
            "family and hyperparameters), so the difference lies in the records: check that the members are the "
            "model's training records, that the non-members were truly not trained on, and that both went "
            "through the model's own preprocessing"
        )
    else:
        advice = (
            "build reference models like the target (the same model family and hyperparameters: for a "
            "scikit-learn model, leave the recipe to its default, a clone of the target)"
        )
    return (
        "LOW FIDELITY: the reference models do not behave like the target ("
        + "; ".join(block["reasons"])
        + "). Attacks that use reference models (LiRA, RMIA, shadow) may understate leakage: "
        + advice
        + " before trusting these numbers."
    )
