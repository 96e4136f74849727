"""Defenses against membership inference: output-side post-processors, data minimization
(:mod:`memberscope.defenses.minimization`), and the adaptive evaluation of every defense
(:mod:`memberscope.defenses.evaluate`). Training-time defenses (DP-SGD among them) are plug-ins of the training
loop, in :mod:`memberscope.training.defenses`.
"""

from memberscope.defenses.evaluate import DefendConfig, parse_defenses, recommend, run_defenses
from memberscope.defenses.output import (
    POSTPROCESSORS,
    Compose,
    GaussianNoise,
    LabelOnly,
    LaplaceNoise,
    OutputPostprocessor,
    Round,
    Temperature,
    TopK,
    fill_withheld,
    from_predictions,
    parse_postprocessors,
    to_predictions,
)

__all__ = [
    "POSTPROCESSORS",
    "Compose",
    "DefendConfig",
    "GaussianNoise",
    "LabelOnly",
    "LaplaceNoise",
    "OutputPostprocessor",
    "Round",
    "Temperature",
    "TopK",
    "fill_withheld",
    "from_predictions",
    "parse_defenses",
    "parse_postprocessors",
    "recommend",
    "run_defenses",
    "to_predictions",
]
