"""Population-threshold attacks on one signal of the target alone (Yeom et al. 2018; Song & Mittal 2021).

The score is the signal itself (oriented so higher = member); a threshold chosen on it at a
given false-positive rate is the classic attack. With ``calibration="class"`` each record's signal
is standardized by the mean and spread of the same class on population records, so one global
threshold acts as a per-class threshold.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from memberscope.attacks._base import Attack, TargetOutputs
from memberscope.attacks.registry import ATTACKS
from memberscope.exceptions import InvalidInputError
from memberscope.signals import SIGNALS

__all__ = ["SignalThresholdAttack", "class_standardize"]

CALIBRATIONS = ("none", "class")


def class_standardize(
    values: np.ndarray, labels: np.ndarray, population_values: np.ndarray, population_labels: np.ndarray
) -> np.ndarray:
    """``(v - mean_c) / std_c`` with class statistics from population records.

    Classes with fewer than two population records fall back to the statistics of all of them.
    """
    mean_all, std_all = population_values.mean(), population_values.std() + 1e-12
    out = np.empty_like(values, dtype=np.float64)
    for c in np.unique(labels):
        ref = population_values[population_labels == c]
        mean, std = (ref.mean(), ref.std() + 1e-12) if ref.size >= 2 else (mean_all, std_all)
        sel = labels == c
        out[sel] = (values[sel] - mean) / std
    return out


class SignalThresholdAttack(Attack):
    """Score records by one signal of the target model, averaged over queries."""

    signal: str

    def __init__(self, *, calibration: str = "none"):
        if calibration not in CALIBRATIONS:
            raise InvalidInputError(f"calibration {calibration!r} is not one of {CALIBRATIONS}")
        self.calibration = calibration

    @property
    def needs_population(self) -> bool:  # type: ignore[override]
        return self.calibration == "class"

    def _signal(self, logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
        return SIGNALS[self.signal](logits, labels[:, None]).mean(axis=1)

    def score(self, target: TargetOutputs) -> np.ndarray:
        self.check_population(target)
        values = self._signal(target.logits, target.labels)
        if self.calibration == "class":
            pop_logits, pop_labels = target.population_logits, target.population_labels
            assert pop_logits is not None and pop_labels is not None  # check_population: class calibration needs them
            pop = self._signal(pop_logits, pop_labels)
            values = class_standardize(values, target.labels, pop, pop_labels)
        return values

    def params(self) -> dict[str, Any]:
        return {"signal": self.signal, "calibration": self.calibration}


YEOM = 'Yeom et al., "Privacy Risk in Machine Learning: Analyzing the Connection to Overfitting", CSF 2018'
SONG_MITTAL = 'Song & Mittal, "Systematic Evaluation of Privacy Risks of Machine Learning Models", USENIX Security 2021'


def _threshold_attack(name: str, signal: str, paper: str) -> type[SignalThresholdAttack]:
    cls = type(
        f"{signal.title().replace('-', '')}Attack",
        (SignalThresholdAttack,),
        {"name": name, "signal": signal, "paper": paper, "__doc__": f"Population threshold on the target's {signal}."},
    )
    return ATTACKS.register(name)(cls)


LossAttack = _threshold_attack("loss", "loss", YEOM)
ConfidenceAttack = _threshold_attack("confidence", "confidence", SONG_MITTAL)
EntropyAttack = _threshold_attack("entropy", "entropy", SONG_MITTAL)
ModifiedEntropyAttack = _threshold_attack("modified-entropy", "modified-entropy", SONG_MITTAL)
