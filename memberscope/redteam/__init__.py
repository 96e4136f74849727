"""Red-teaming a deployed model: recon, shadow-model and label-only attacks, calibrated verdicts.

Targets (an HTTP endpoint, a local model, a fake) come from :mod:`memberscope.targets`; their errors
from :mod:`memberscope.exceptions`. ``HttpTarget`` needs the ``redteam`` extra (httpx).
"""

from memberscope.redteam.label_only import LabelOnlyAttack
from memberscope.redteam.pipeline import RedteamResult, run_redteam
from memberscope.redteam.recon import Exposure, recon
from memberscope.redteam.shadow import ShadowModelAttack

__all__ = ["Exposure", "LabelOnlyAttack", "RedteamResult", "ShadowModelAttack", "recon", "run_redteam"]
