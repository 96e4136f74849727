"""Label-only membership inference (Choquette-Choo et al., ICML 2021), registered as ``label-only``.

A model's predicted label is more robust around its training records than around unseen ones: the
attack queries each record and ``n_queries`` perturbed copies of it (images flipped and shifted, 0/1
features flipped, other features with Gaussian noise; see :class:`memberscope.redteam.LabelOnlyAttack`,
which does the querying) and scores the share answered with the true label. With reference models the
share is calibrated per record (difficulty calibration, Watson et al. 2022): minus the mean share of the
reference models that did not train on the record (the mean over all records where none is OUT).

It needs only predicted labels, so it runs against label-only APIs and output defenses that hide
scores; it queries the models itself (``1 + n_queries`` queries per record and model).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from memberscope.attacks._base import Attack, ReferenceOutputs, TargetOutputs
from memberscope.attacks.registry import ATTACKS
from memberscope.exceptions import InvalidInputError

__all__ = ["LabelOnly", "calibrated_shares"]

CHUNK = 500
"""Records queried per call (bounds the memory of the perturbed copies)."""


def calibrated_shares(target_share: np.ndarray, reference_share: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Target share ``(n,)`` minus the mean share ``(K, n)`` of the OUT reference models (``masks`` ``(K, n)``)."""
    out = ~np.asarray(masks, bool)
    n_out = out.sum(axis=0)
    mean_out = np.where(n_out > 0, (reference_share * out).sum(axis=0) / np.maximum(n_out, 1), np.nan)
    mean_out = np.where(np.isnan(mean_out), np.nanmean(reference_share), mean_out)
    return target_share - mean_out


@ATTACKS.register("label-only")
class LabelOnly(Attack):
    """Label-only attack: share of perturbed queries keeping the true label, calibrated by OUT reference models."""

    name = "label-only"
    paper = 'Choquette-Choo et al., "Label-Only Membership Inference Attacks", ICML 2021'
    needs_queries = True
    needs_outputs = "label"

    def __init__(
        self,
        *,
        n_queries: int = 16,
        noise: str = "auto",
        noise_scale: float | None = None,
        max_shift: int = 1,
        seed: int = 0,
    ):
        from memberscope.redteam.label_only import LabelOnlyAttack

        self._strategy = LabelOnlyAttack(
            n_queries=n_queries, noise=noise, noise_scale=noise_scale, max_shift=max_shift, seed=seed
        )
        self._references: ReferenceOutputs | None = None

    def fit(self, references: ReferenceOutputs | None) -> LabelOnly:
        self.check_references(references)
        if references is not None and references.n_models and references.models is None:
            raise InvalidInputError("the label-only attack queries the reference models; they were not given")
        self._references = references
        return self

    def _shares(self, model: Any, records: Any, labels: np.ndarray) -> np.ndarray:
        return np.concatenate(
            [
                self._strategy.score(model, records[i : i + CHUNK], labels[i : i + CHUNK])
                for i in range(0, len(labels), CHUNK)
            ]
        )

    def score(self, target: TargetOutputs) -> np.ndarray:
        if target.model is None or target.records is None:
            raise InvalidInputError("the label-only attack queries the target; its model and records were not given")
        population = target.population_records if target.population_records is not None else target.records
        self._strategy.fit(population if hasattr(population, "iloc") else np.asarray(population, dtype=np.float64))
        share = self._shares(target.model, target.records, target.labels)
        refs = self._references
        if refs is None or not refs.n_models:
            return share
        if refs.models is None:  # fit refuses reference outputs without their models
            raise InvalidInputError("the label-only attack queries the reference models; they were not given")
        ref_share = np.stack([self._shares(m, target.records, target.labels) for m in refs.models])
        return calibrated_shares(share, ref_share, refs.masks)

    def params(self) -> dict[str, Any]:
        refs = self._references
        return {
            **self._strategy.params(),
            "calibration": "minus the mean share of OUT reference models" if refs and refs.n_models else "none",
            "queries_per_record": 1 + self._strategy.n_queries,
        }
