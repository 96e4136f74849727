"""Shokri et al. (2017) shadow-model attack, registered as ``shadow``.

The reference models play Shokri's shadow models: an attack classifier learns, from each reference
model's outputs on records it did and did not train on, to tell members from non-members, and then
classifies the target's outputs. Features per record: the sorted probability vector (top ``n_sorted``),
the true class's probability and its log, and whether the arg-max is the true class
(:func:`memberscope.redteam.shadow.shadow_features`); one classifier per class when every class has enough
records of each kind, else one for all (:class:`memberscope.redteam.shadow.ShadowModelAttack` is the same
attack against an API, with shadows trained on the attacker's own data).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from memberscope.attacks._base import Attack, ReferenceOutputs, TargetOutputs
from memberscope.attacks.registry import ATTACKS
from memberscope.exceptions import InvalidInputError

__all__ = ["ShadowClassifier"]


@ATTACKS.register("shadow")
class ShadowClassifier(Attack):
    """Shokri shadow-model attack: a classifier trained on the reference models' outputs, members vs non-members."""

    name = "shadow"
    paper = 'Shokri et al., "Membership Inference Attacks Against Machine Learning Models", IEEE S&P 2017'
    min_reference_models = 2

    def __init__(
        self,
        *,
        attack_model: str = "logreg",
        per_class: str | bool = "auto",
        min_per_class: int = 30,
        n_sorted: int = 10,
        seed: int = 0,
    ):
        from memberscope.redteam.shadow import ATTACK_MODELS

        problems = []
        if attack_model not in ATTACK_MODELS:
            problems.append(f"attack_model {attack_model!r} is not one of {ATTACK_MODELS}")
        if per_class not in ("auto", True, False):
            problems.append(f"per_class must be 'auto', True or False; got {per_class!r}")
        if problems:
            raise InvalidInputError("invalid shadow attack: " + "; ".join(problems))
        self.attack_model, self.per_class = attack_model, per_class
        self.min_per_class, self.n_sorted, self.seed = int(min_per_class), int(n_sorted), int(seed)

    def _features(self, logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
        from memberscope.redteam.shadow import shadow_features

        return shadow_features(logits[:, 0], labels, n_sorted=self.n_sorted, kind="logits")

    def fit(self, references: ReferenceOutputs | None) -> ShadowClassifier:
        from memberscope.redteam.shadow import PerClassClassifier, use_per_class

        self.check_references(references)
        assert references is not None
        feats = np.concatenate(
            [self._features(references.logits[k], references.labels) for k in range(references.n_models)]
        )
        member = references.masks.reshape(-1)
        labels = np.tile(references.labels, references.n_models)
        self.per_class_ = use_per_class(self.per_class, labels, member, self.min_per_class)
        self.classifier_ = PerClassClassifier(self.attack_model, self.per_class_, self.seed).fit(feats, labels, member)
        return self

    def score(self, target: TargetOutputs) -> np.ndarray:
        if not hasattr(self, "classifier_"):
            raise InvalidInputError("the shadow attack must be fit on reference models before it scores")
        return self.classifier_.score(self._features(target.logits, target.labels), target.labels)

    def params(self) -> dict[str, Any]:
        return {
            "attack_model": self.attack_model,
            "per_class": getattr(self, "per_class_", self.per_class),
            "n_sorted": self.n_sorted,
            "seed": self.seed,
        }
