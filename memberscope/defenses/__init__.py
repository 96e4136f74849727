"""Defenses against membership inference: output-side post-processors, training-time options of the torch recipes
(:mod:`memberscope.defenses.training`, DP-SGD in :mod:`memberscope.defenses.dp`), data minimization
(:mod:`memberscope.defenses.minimization`), and their adaptive evaluation (:mod:`memberscope.defenses.evaluate`).
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
