"""``memberscope audit``: its configuration and the plans it gives the engine (:mod:`memberscope.engine`)."""

from memberscope.audit.config import AuditConfig, load_config_file
from memberscope.audit.run import AuditResult, audit_model, run_audit

__all__ = ["AuditConfig", "AuditResult", "audit_model", "load_config_file", "run_audit"]
