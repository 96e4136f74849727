"""Training-time defenses as plug-ins of the one training loop: one module each, registered in :data:`DEFENSES`.

Every module of this package whose name does not start with ``_`` is imported here (in name order, which is the
order the defenses' hooks run in), so adding a defense means adding one file: a :class:`TrainingDefense`
subclass decorated with :func:`register`. Its options become options of the torch recipes (``model_params``,
``--model-param``), its name and preset a spec of ``memberscope defend``.
"""

from __future__ import annotations

import importlib
import pkgutil

from memberscope.training.defenses._base import (
    DEFENSES,
    TrainingDefense,
    active_defenses,
    option_defaults,
    recipe_options,
    recipe_problems,
    register,
)

__all__ = [
    "DEFENSES",
    "TrainingDefense",
    "active_defenses",
    "option_defaults",
    "recipe_options",
    "recipe_problems",
    "register",
]

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")):
    importlib.import_module(f"{__name__}.{_module}")
