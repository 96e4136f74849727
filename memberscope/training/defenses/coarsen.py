"""Data minimization by coarsening: every feature rounded to a grid of step ``coarsen``, in training and in queries.

The trained model keeps the step (``TorchModel.coarsen``) and rounds every query the same way, so it never sees
finer values than it was trained on.
"""

from __future__ import annotations

from memberscope.training.defenses._base import TrainingDefense, register
from memberscope.training.options import Interval, Option

__all__ = ["Coarsen", "coarsen_features"]


def coarsen_features(inputs, step: float):
    """Features rounded to the nearest multiple of ``step`` (``step=0``: unchanged); any shape."""
    if not step:
        return inputs
    return (inputs / step).round() * step


@register
class Coarsen(TrainingDefense):
    name = "coarsen"
    options = (Option("coarsen", 0.0, Interval(0), meaning="the grid step features are rounded to"),)
    option, preset = "coarsen", 0.25

    def prepare_data(self, run) -> None:
        run.inputs = coarsen_features(run.inputs, self.recipe.coarsen)
