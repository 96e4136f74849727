"""Dropout (Srivastava et al., JMLR 2014): hidden units zeroed at random in training, masks from the model's stream.

The rate is the recipe's ``dropout`` option (the network puts :class:`~memberscope.training.networks.Dropout`
layers after its hidden layers); this plug-in gives those layers one of the model's generators for the duration of
training, so threads training models at once never share a mask generator.
"""

from __future__ import annotations

from memberscope.training.defenses._base import TrainingDefense, register

__all__ = ["DropoutDefense"]


def _dropout_layers(net):
    from memberscope.training.networks import Dropout

    return [m for m in net.modules() if isinstance(m, Dropout)]


@register
class DropoutDefense(TrainingDefense):
    name = "dropout"
    option, preset = "dropout", 0.5  # a core option of the recipes (the network is built with the layers)

    def start(self, run) -> None:
        generator = run.streams.spawn()
        for layer in _dropout_layers(run.net):
            layer.generator = generator

    def finish(self, run) -> None:
        for layer in _dropout_layers(run.net):
            layer.generator = None
