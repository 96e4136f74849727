"""Label smoothing (Szegedy et al., CVPR 2016): cross-entropy against targets smoothed towards uniform."""

from __future__ import annotations

from memberscope.training.defenses._base import TrainingDefense, register
from memberscope.training.options import Interval, Option

__all__ = ["LabelSmoothing"]


@register
class LabelSmoothing(TrainingDefense):
    name = "label-smoothing"
    options = (Option("label_smoothing", 0.0, Interval(0, 1)),)
    option, preset = "label_smoothing", 0.1

    def start(self, run) -> None:
        from torch import nn

        run.criterion = nn.CrossEntropyLoss(label_smoothing=self.recipe.label_smoothing)
