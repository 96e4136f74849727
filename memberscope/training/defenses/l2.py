"""L2 regularization: the optimizer's weight decay (the recipes' core ``weight_decay`` option)."""

from __future__ import annotations

from memberscope.training.defenses._base import TrainingDefense, register

__all__ = ["L2"]


@register
class L2(TrainingDefense):
    name = "l2"
    option, preset = "weight_decay", 5e-4  # applied by the optimizer, so it needs no hook
    vectorized = True
