"""Defenses against membership inference, measured.

- Output-side defenses are the output post-processors of :mod:`memberscope.targets.postprocess` (rounding,
  top-k, labels only, noise, temperature), re-exported here.
- Training-time defenses are options of the torch recipes (:mod:`memberscope.defenses.training`, DP-SGD in
  :mod:`memberscope.defenses.dp`).
- Data minimization: :mod:`memberscope.defenses.minimization`.
- Their adaptive evaluation, ``memberscope defend``: :mod:`memberscope.defenses.evaluate`.
"""

from memberscope.defenses.evaluate import DefendConfig, parse_defenses, recommend, run_defenses
from memberscope.targets.postprocess import (
    POSTPROCESSORS,
    Compose,
    GaussianNoise,
    LabelOnly,
    LaplaceNoise,
    OutputPostprocessor,
    Round,
    Temperature,
    TopK,
    parse_postprocessors,
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
    "parse_defenses",
    "parse_postprocessors",
    "recommend",
    "run_defenses",
]
