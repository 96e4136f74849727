"""Defenses against membership inference: output-side post-processors, data minimization
(:mod:`memberscope.defenses.minimization`), and the adaptive evaluation of every defense
(:mod:`memberscope.defenses.evaluate`, ``memberscope defend``): the attacker views each output defense is measured
against (:mod:`memberscope.defenses.adaptive`) and the prioritized plan (:mod:`memberscope.defenses.plan`).
Output-side defenses are the output post-processors of :mod:`memberscope.targets.postprocess` (rounding, top-k,
labels only, noise, temperature), re-exported here. Training-time defenses (DP-SGD among them) are plug-ins of the
training loop, in :mod:`memberscope.training.defenses`.
"""

from memberscope.defenses.adaptive import AttackerView, attacker_views, break_ties
from memberscope.defenses.evaluate import DefendConfig, parse_defenses, recommend, run_defenses
from memberscope.defenses.plan import defense_plan
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
    "AttackerView",
    "Compose",
    "DefendConfig",
    "GaussianNoise",
    "LabelOnly",
    "LaplaceNoise",
    "OutputPostprocessor",
    "Round",
    "Temperature",
    "TopK",
    "attacker_views",
    "break_ties",
    "defense_plan",
    "parse_defenses",
    "parse_postprocessors",
    "recommend",
    "run_defenses",
]
