"""The engine behind every command: data → game → models like the target → outputs → attacks → metrics → Results.

- :mod:`~memberscope.engine.training`: train (or fetch from the cache) the target and reference models, as
  parallel or vectorized jobs, and collect their outputs;
- :mod:`~memberscope.engine.evaluation`: run the attacks on those outputs and evaluate them;
- :mod:`~memberscope.engine.run`: :class:`AuditPlan` and :func:`run_plan`, the standard sequence.
"""

from memberscope.engine.evaluation import MetricSettings, evaluate_attack, run_attacks
from memberscope.engine.run import AuditPlan, Outputs, attack_inputs, obtain_outputs, run_plan

__all__ = [
    "AuditPlan",
    "MetricSettings",
    "Outputs",
    "attack_inputs",
    "evaluate_attack",
    "obtain_outputs",
    "run_attacks",
    "run_plan",
]
