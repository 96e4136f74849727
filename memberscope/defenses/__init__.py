"""Defenses against membership inference: output-side post-processors (and, as they land, training-time ones)."""

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
    "GaussianNoise",
    "LabelOnly",
    "LaplaceNoise",
    "OutputPostprocessor",
    "Round",
    "Temperature",
    "TopK",
    "fill_withheld",
    "from_predictions",
    "parse_postprocessors",
    "to_predictions",
]
