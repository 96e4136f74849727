"""Audit pipeline: configuration, models, attacks and metrics wired together."""

from memberscope.audit.config import AuditConfig, load_config_file
from memberscope.audit.run import AuditResult, audit_model, run_audit

__all__ = ["AuditConfig", "AuditResult", "audit_model", "load_config_file", "run_audit"]
