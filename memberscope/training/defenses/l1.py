"""L1 regularization: ``l1 * sum |w|`` over the weight matrices and kernels added to the loss (biases are not
penalised, as with weight decay)."""

from __future__ import annotations

from memberscope.training.defenses._base import TrainingDefense, register
from memberscope.training.options import Interval, Option

__all__ = ["L1", "l1_penalty"]


def l1_penalty(net):
    """``sum |w|`` over the parameters of ``net`` whose names end in ``weight`` (a scalar tensor)."""
    return sum(p.abs().sum() for name, p in net.named_parameters() if name.endswith("weight"))


@register
class L1(TrainingDefense):
    name = "l1"
    options = (Option("l1", 0.0, Interval(0)),)
    option, preset = "l1", 1e-5

    def penalty(self, run):
        return self.recipe.l1 * l1_penalty(run.net)
