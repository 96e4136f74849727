"""The configuration of one audit: the shared run settings (:class:`~memberscope.config.RunConfig`) plus what
only ``memberscope audit`` has."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from memberscope.config import DEFAULT_FPRS, NONE, STRING, Constraint, Interval, RunConfig, load_config_file

__all__ = ["DEFAULT_FPRS", "AuditConfig", "load_config_file"]


@dataclass
class AuditConfig(RunConfig):
    """Everything that determines an audit's numbers (see :class:`~memberscope.config.RunConfig`), and:

    ``out`` — where the outputs go; ``model_name``/``model_version`` — name the audited model across versions,
    so ``memberscope history --model NAME`` can flag regressions; ``one_run_canaries`` — one-run auditing
    (Steinke et al. 2023): this many pool records become canaries whose inclusion in the target is re-drawn
    independently with probability 1/2, and each attack's guesses on them bound ε; ``epsilon_delta`` — δ of the
    empirical ε lower bounds (None: the target recipe's claimed δ when it declares one, else 0).
    """

    kind: ClassVar[str] = "audit"
    out: str | None = None
    model_name: str | None = None
    model_version: str | None = None
    one_run_canaries: int | None = None
    epsilon_delta: float | None = None

    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        "out": [NONE, STRING],
        "model_name": [NONE, STRING],
        "model_version": [NONE, STRING],
        "one_run_canaries": [NONE, Interval(int, 2)],
        "epsilon_delta": [NONE, Interval(float, 0, 1, "left")],
    }

    def _normalize(self) -> None:
        super()._normalize()
        if isinstance(self.model_version, int) and not isinstance(self.model_version, bool):
            self.model_version = str(self.model_version)

    def _check(self) -> list[str]:
        problems = super()._check()
        if self.model_version is not None and self.model_name is None:
            problems.append("model_version is set without model_name; name the model too (--model-name)")
        return problems

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> AuditConfig:
        return super().from_dict(values)
