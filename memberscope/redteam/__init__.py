"""Red-teaming a deployed model: one target interface, recon, shadow-model and label-only attacks, verdicts.

``HttpTarget`` needs the ``redteam`` extra (httpx); everything else runs on the core dependencies.
"""

from memberscope.redteam.errors import (
    QueryBudgetExceededError,
    TargetAuthError,
    TargetError,
    TargetRateLimitedError,
    TargetResponseError,
    TargetUnreachableError,
)
from memberscope.redteam.label_only import LabelOnlyAttack
from memberscope.redteam.targets import FakeTarget, HttpTarget, ModelTarget, Target

__all__ = [
    "FakeTarget",
    "HttpTarget",
    "LabelOnlyAttack",
    "ModelTarget",
    "QueryBudgetExceededError",
    "Target",
    "TargetAuthError",
    "TargetError",
    "TargetRateLimitedError",
    "TargetResponseError",
    "TargetUnreachableError",
]
