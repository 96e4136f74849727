"""Privacy per epoch: audit a model while it trains, and suggest where to stop.

- :class:`EpochAuditor` scores a model's logits on fixed members, non-members and population records with the
  attacks that need no reference models trained per epoch (loss, class-calibrated loss, RMIA against reference
  models trained once);
- :class:`PrivacyCurve` collects one :class:`EpochRecord` per audited epoch, plots privacy and accuracy against
  epoch, and :meth:`PrivacyCurve.suggest_stop` gives the suggested stopping epoch (a :class:`StopSuggestion`,
  whose ``defend_spec`` is the ``memberscope defend`` early-stopping defense that stops there;
  ``memberscope defend --defenses early-stopping:0:curve=privacy_curve.json`` reads it from the saved curve).

Framework callbacks built on these: :mod:`memberscope.integrations.lightning` and
:mod:`memberscope.integrations.hf_trainer`.
"""

from memberscope.monitor.auditor import DEFAULT_FPRS, AttackSpec, EpochAuditor, default_attacks
from memberscope.monitor.curve import EpochRecord, PrivacyCurve, StopSuggestion, suggested_stop_epoch

__all__ = [
    "DEFAULT_FPRS",
    "AttackSpec",
    "EpochAuditor",
    "EpochRecord",
    "PrivacyCurve",
    "StopSuggestion",
    "default_attacks",
    "suggested_stop_epoch",
]
