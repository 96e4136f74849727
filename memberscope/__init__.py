"""memberscope: measure, attack and defend membership-inference leakage of ML models.

``import memberscope`` stays light: heavy modules (torch, scikit-learn, matplotlib) load on first use.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["AuditConfig", "AuditResult", "__version__", "audit", "audit_model", "demo", "run_audit"]

_LAZY = {
    "AuditConfig": "memberscope.config",
    "AuditResult": "memberscope.results",
    "run_audit": "memberscope.api",
    "audit_model": "memberscope.api",
    "audit": "memberscope.api",
    "demo": "memberscope.api",
}


_SUBMODULES = {
    "attacks",
    "config",
    "datasets",
    "defenses",
    "engine",
    "game",
    "metrics",
    "privacy",
    "recipes",
    "redteam",
    "report",
    "results",
    "signals",
    "targets",
}


def __getattr__(name: str) -> Any:
    import importlib

    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"memberscope.{name}")
    raise AttributeError(f"module 'memberscope' has no attribute {name!r}")
