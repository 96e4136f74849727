"""Likelihood Ratio Attack (Carlini et al., "Membership Inference Attacks From First Principles", 2022).

For each record, the logit-scaled confidence ``phi`` of reference models that trained on it (IN)
and did not (OUT) is modelled as a Gaussian. Online: score = log N(phi; mu_in, s_in) -
log N(phi; mu_out, s_out). Offline (OUT models only): the one-sided test
``-log P[Z > phi]``, ``Z ~ N(mu_out, s_out)``, large when the target is more confident on the
record than models that never saw it. With augmented queries, each query gets its own Gaussian
and the per-query scores are averaged.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import norm

from memberscope.attacks._base import Attack, ReferenceOutputs, TargetOutputs
from memberscope.attacks.registry import ATTACKS
from memberscope.exceptions import InvalidInputError
from memberscope.signals import logit_confidence

__all__ = ["LiRA", "LiRAOffline", "LiRAOnline", "gaussian_fit"]

VARIANCES = ("auto", "per-example", "fixed")
# Per-example variances need many models per side; below this LiRA's authors use one global
# variance, which is also what "auto" does.
AUTO_PER_EXAMPLE_MIN_MODELS = 32
# Keeps a record whose phi is identical across models from giving an infinite likelihood.
MIN_STD = 1e-4


def gaussian_fit(phi: np.ndarray, weights: np.ndarray, *, per_example: bool) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of ``phi`` (K, n, A) over the models selected by ``weights`` (K, n).

    Returns arrays of shape (n, A). ``per_example=False`` uses one std per query over all
    selected (model, record) values, as in the LiRA reference code's global variance.
    """
    w = weights[..., None].astype(np.float64)
    count = w.sum(axis=0)
    mean = (w * phi).sum(axis=0) / count
    if per_example:
        std = np.sqrt((w * (phi - mean) ** 2).sum(axis=0) / count)
    else:
        selected_mean = (w * phi).sum(axis=(0, 1)) / w.sum(axis=(0, 1))
        pooled = (w * (phi - selected_mean) ** 2).sum(axis=(0, 1)) / w.sum(axis=(0, 1))
        std = np.broadcast_to(np.sqrt(pooled), mean.shape)
    return mean, np.maximum(std, MIN_STD)


class LiRA(Attack):
    """LiRA; subclasses fix ``online``."""

    online: bool
    min_reference_models = 2

    def __init__(self, *, variance: str = "auto"):
        if variance not in VARIANCES:
            raise InvalidInputError(f"variance {variance!r} is not one of {VARIANCES}")
        self.variance = variance

    def fit(self, references: ReferenceOutputs | None) -> LiRA:
        self.check_references(references)
        assert references is not None  # check_references: at least min_reference_models (2)
        masks = references.masks
        n_in, n_out = masks.sum(axis=0), (~masks).sum(axis=0)
        sides = [("OUT", n_out)] + ([("IN", n_in)] if self.online else [])
        for side, counts in sides:
            if counts.min() < 1:
                raise InvalidInputError(
                    f"attack {self.name!r} needs at least one {side} reference model for every record; "
                    f"{int((counts < 1).sum())} records have none (use more reference models)"
                )
        fewest = min(int(c.min()) for _, c in sides)
        if self.variance == "per-example" and fewest < 2:
            raise InvalidInputError(
                f"per-example variance needs at least 2 models per side for every record; some "
                f"records have {fewest} (use variance='fixed' or more reference models)"
            )
        self.variance_ = self.variance
        if self.variance == "auto":
            self.variance_ = "per-example" if fewest >= AUTO_PER_EXAMPLE_MIN_MODELS else "fixed"
        per_example = self.variance_ == "per-example"
        phi = logit_confidence(references.logits, references.labels[None, :, None])
        self.mean_out_, self.std_out_ = gaussian_fit(phi, ~masks, per_example=per_example)
        if self.online:
            self.mean_in_, self.std_in_ = gaussian_fit(phi, masks, per_example=per_example)
        return self

    def score(self, target: TargetOutputs) -> np.ndarray:
        if not hasattr(self, "mean_out_"):
            raise RuntimeError(f"{self.name}: call fit() before score()")
        if target.logits.shape[:2] != self.mean_out_.shape:
            raise InvalidInputError(
                f"target outputs cover {target.logits.shape[:2]} (records, queries) but the attack was "
                f"fitted on {self.mean_out_.shape}"
            )
        phi = logit_confidence(target.logits, target.labels[:, None])
        if self.online:
            per_query = norm.logpdf(phi, self.mean_in_, self.std_in_) - norm.logpdf(phi, self.mean_out_, self.std_out_)
        else:
            per_query = -norm.logsf(phi, self.mean_out_, self.std_out_)
        return per_query.mean(axis=1)

    def params(self) -> dict[str, Any]:
        return {"variance": self.variance, "variance_used": getattr(self, "variance_", None)}


PAPER = 'Carlini et al., "Membership Inference Attacks From First Principles", IEEE S&P 2022'


@ATTACKS.register("lira-online")
class LiRAOnline(LiRA):
    """LiRA with IN and OUT reference models."""

    name = "lira-online"
    paper = PAPER
    online = True


@ATTACKS.register("lira-offline")
class LiRAOffline(LiRA):
    """LiRA with OUT reference models only."""

    name = "lira-offline"
    paper = PAPER
    online = False
