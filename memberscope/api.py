"""The Python API behind ``memberscope audit`` and ``memberscope demo``."""

from __future__ import annotations

from typing import Any

from memberscope.audit.config import AuditConfig
from memberscope.audit.run import AuditResult, run_audit

__all__ = ["DEMO_CONFIG", "audit", "demo"]

# The demo: a small MLP on scikit-learn's bundled digits, overfit on purpose, 16 reference models.
DEMO_CONFIG: dict[str, Any] = {
    "dataset": "digits",
    "model": "mlp",
    "model_params": {"hidden": [256, 256], "epochs": 100},
    "reference_models": 16,
    "attacks": ["all"],
    "seed": 0,
}


def audit(*, out: str | None = None, progress: bool | None = None, **config_values: Any) -> AuditResult:
    """Run an audit; ``config_values`` are :class:`AuditConfig` fields. Writes outputs when ``out`` is given.

    >>> result = memberscope.audit(dataset="digits", model="mlp", reference_models=8, out="runs/digits")
    >>> result.results["attacks"]["lira-online"]["auc"]
    """
    config = AuditConfig(out=out, **config_values)
    result = run_audit(config, progress=progress)
    if out is not None:
        result.write(out)
    return result


def demo(*, out: str = "runs/demo", progress: bool | None = None, **overrides: Any) -> AuditResult:
    """The demo audit (digits, MLP, 16 reference models, every attack)."""
    return audit(out=out, progress=progress, **{**DEMO_CONFIG, **overrides})
