"""Privacy against epoch: one :class:`EpochRecord` per audited epoch, the :class:`PrivacyCurve` they make, and the
suggested stopping epoch.

The leakage of an epoch is the strongest attack's TPR at the headline FPR (1% by default; the strongest by
:func:`memberscope.results.strongest_attack`: highest TPR there, AUC breaking ties). The stopping rule follows the
field's first-line advice (early stopping, Yeom et al. 2018; Song & Mittal 2021): stop at the last audited epoch
before leakage rises by more than ``max_tpr_rise`` while test accuracy stays flat (gains less than
``min_accuracy_gain``, by default one standard error of the held-out accuracy). It is a suggestion, not a
clearance: the suggested epoch's own leakage is reported beside it, and a curve on which leakage never rose is
reported as such, never as "safe".
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memberscope.exceptions import InvalidInputError

__all__ = ["EpochRecord", "PrivacyCurve", "StopSuggestion", "suggested_stop_epoch"]


@dataclass(frozen=True)
class EpochRecord:
    """The per-epoch audit of a model in training.

    Attributes
    ----------
    epoch : int — epochs completed when audited (1 after the first).
    step : int or None — the optimizer step, when the framework counts them.
    attacks : dict of str to dict — each attack's :meth:`memberscope.metrics.AttackMetrics.to_dict`.
    headline : str — the FPR key of the leakage (``"0.01"``).
    strongest : str — the strongest attack's label at ``headline``.
    train_accuracy, test_accuracy : float — accuracy on the audited members and non-members.
    train_loss, test_loss : float — mean cross-entropy on them (nats).
    seconds : float — wall time of this epoch's audit (logits and scoring).
    warnings : list of str — e.g. an FPR the non-members cannot resolve.
    """

    epoch: int
    step: int | None
    attacks: dict[str, dict[str, Any]]
    headline: str
    strongest: str
    train_accuracy: float
    test_accuracy: float
    train_loss: float
    test_loss: float
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def from_metrics(cls, *, attacks: dict[str, Any], headline: str, **fields: Any) -> EpochRecord:
        """A record from :class:`~memberscope.metrics.AttackMetrics` per attack label; picks the strongest."""
        from memberscope.results import strongest_attack

        if not attacks:
            raise InvalidInputError("an epoch record needs at least one attack's metrics")
        as_dicts = {label: m if isinstance(m, dict) else m.to_dict() for label, m in attacks.items()}
        strongest = strongest_attack(as_dicts, headline)
        assert strongest is not None  # attacks is not empty
        return cls(attacks=as_dicts, headline=headline, strongest=strongest, **fields)

    @property
    def tpr(self) -> float:
        """The leakage: the strongest attack's TPR at the headline FPR."""
        return float(self.attacks[self.strongest]["tpr_at_fpr"][self.headline])

    @property
    def tpr_ci(self) -> tuple[float, float]:
        low, high = self.attacks[self.strongest]["tpr_at_fpr_ci"][self.headline]
        return float(low), float(high)

    @property
    def auc(self) -> float:
        """The strongest attack's AUC."""
        return float(self.attacks[self.strongest]["auc"])

    @property
    def accuracy_se(self) -> float:
        """Binomial standard error of the test accuracy on the audited non-members, ``sqrt(p (1 - p) / n)``."""
        n = int(self.attacks[self.strongest].get("n_nonmembers", 0))
        p = self.test_accuracy
        return math.sqrt(p * (1 - p) / n) if n > 0 else 0.0

    @property
    def accuracy_gap(self) -> float:
        """Train minus test accuracy on the audited records (the generalization gap)."""
        return self.train_accuracy - self.test_accuracy

    @property
    def loss_gap(self) -> float:
        """Test minus train mean loss (nats)."""
        return self.test_loss - self.train_loss

    def metrics(self, prefix: str = "memberscope") -> dict[str, float]:
        """Flat ``{name: value}`` for experiment loggers (Lightning, MLflow, the HF Trainer's log):
        ``<prefix>/tpr_at_fpr_<headline>`` (the leakage), ``<prefix>/auc``, ``<prefix>/<attack>/tpr_at_fpr_<K>`` and
        ``/auc`` per attack, the accuracies, losses and their gaps. Non-finite values are left out."""
        out = {
            f"{prefix}/tpr_at_fpr_{self.headline}": self.tpr,
            f"{prefix}/tpr_at_fpr_{self.headline}_ci_low": self.tpr_ci[0],
            f"{prefix}/tpr_at_fpr_{self.headline}_ci_high": self.tpr_ci[1],
            f"{prefix}/auc": self.auc,
            f"{prefix}/train_accuracy": self.train_accuracy,
            f"{prefix}/test_accuracy": self.test_accuracy,
            f"{prefix}/accuracy_gap": self.accuracy_gap,
            f"{prefix}/train_loss": self.train_loss,
            f"{prefix}/test_loss": self.test_loss,
            f"{prefix}/loss_gap": self.loss_gap,
            f"{prefix}/audit_seconds": self.seconds,
        }
        for label, m in self.attacks.items():
            out[f"{prefix}/{label}/auc"] = m["auc"]
            for key, tpr in m["tpr_at_fpr"].items():
                out[f"{prefix}/{label}/tpr_at_fpr_{key}"] = tpr
        return {k: float(v) for k, v in out.items() if isinstance(v, int | float) and math.isfinite(v)}

    def to_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "step": self.step,
            "headline_fpr": self.headline,
            "strongest_attack": self.strongest,
            "tpr": self.tpr,
            "tpr_ci": list(self.tpr_ci),
            "auc": self.auc,
            "train_accuracy": self.train_accuracy,
            "test_accuracy": self.test_accuracy,
            "accuracy_gap": self.accuracy_gap,
            "train_loss": self.train_loss,
            "test_loss": self.test_loss,
            "loss_gap": self.loss_gap,
            "seconds": self.seconds,
            "attacks": self.attacks,
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EpochRecord:
        return cls(
            epoch=int(data["epoch"]),
            step=data.get("step"),
            attacks=data["attacks"],
            headline=data["headline_fpr"],
            strongest=data["strongest_attack"],
            train_accuracy=float(data["train_accuracy"]),
            test_accuracy=float(data["test_accuracy"]),
            train_loss=float(data["train_loss"]),
            test_loss=float(data["test_loss"]),
            seconds=float(data.get("seconds", 0.0)),
            warnings=list(data.get("warnings", [])),
        )


@dataclass(frozen=True)
class StopSuggestion:
    """Where to stop training, and why.

    Attributes
    ----------
    epoch : int — the suggested stopping epoch (the last audited epoch when leakage never rose).
    triggered : bool — whether leakage rose beyond the threshold with accuracy flat; False means the curve gives no
        reason to stop early, *not* that the model is private (its leakage is ``tpr``).
    rose_at : int or None — the audited epoch at which leakage had risen.
    tpr, test_accuracy : float — the suggested epoch's leakage and test accuracy.
    last_tpr, last_test_accuracy : float — the last audited epoch's, for comparison.
    reason : str — one sentence for logs and reports.
    """

    epoch: int
    triggered: bool
    rose_at: int | None
    tpr: float
    test_accuracy: float
    last_epoch: int
    last_tpr: float
    last_test_accuracy: float
    reason: str

    @property
    def defend_spec(self) -> str:
        """The ``memberscope defend --defenses`` item that trains for :attr:`epoch` epochs and stops:
        ``early-stopping:0:stop_epoch=E`` (patience 0: no validation hold-out)."""
        return f"early-stopping:0:stop_epoch={self.epoch}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "triggered": self.triggered,
            "rose_at": self.rose_at,
            "tpr": self.tpr,
            "test_accuracy": self.test_accuracy,
            "last_epoch": self.last_epoch,
            "last_tpr": self.last_tpr,
            "last_test_accuracy": self.last_test_accuracy,
            "reason": self.reason,
            "defend_spec": self.defend_spec,
        }


class PrivacyCurve:
    """The :class:`EpochRecord` of each audited epoch, in order.

    Parameters
    ----------
    records : iterable of EpochRecord, optional
    """

    def __init__(self, records: Any = ()):
        self.records: list[EpochRecord] = []
        for record in records:
            self.append(record)

    def append(self, record: EpochRecord) -> None:
        """Add the next audited epoch.

        Raises
        ------
        InvalidInputError
            When ``record.epoch`` is not after the last one, or its headline FPR differs.
        """
        if self.records and record.epoch <= self.records[-1].epoch:
            raise InvalidInputError(
                f"epoch {record.epoch} does not come after the last audited epoch {self.records[-1].epoch}"
            )
        if self.records and record.headline != self.records[0].headline:
            raise InvalidInputError(
                f"epoch {record.epoch} reports TPR at FPR {record.headline}; the curve's is {self.records[0].headline}"
            )
        self.records.append(record)

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self):
        return iter(self.records)

    @property
    def epochs(self) -> list[int]:
        return [r.epoch for r in self.records]

    @property
    def tprs(self) -> list[float]:
        return [r.tpr for r in self.records]

    def suggest_stop(self, *, max_tpr_rise: float = 0.02, min_accuracy_gain: float | None = None) -> StopSuggestion:
        """The last audited epoch before leakage rises by more than ``max_tpr_rise`` with test accuracy flat.

        Walks the epochs in order keeping a candidate (the first epoch at first). An epoch whose test accuracy
        beats the candidate's by at least ``min_accuracy_gain`` becomes the candidate (accuracy still pays for
        its leakage). Otherwise accuracy is flat, and if the epoch's leakage exceeds the candidate's by more than
        ``max_tpr_rise`` the candidate is the suggestion. An epoch as accurate as the candidate with less leakage
        replaces it.

        Parameters
        ----------
        max_tpr_rise : float, default 0.02
            Rise of the headline TPR (absolute) that counts as leakage growing.
        min_accuracy_gain : float, optional
            Gain of test accuracy (absolute) below which accuracy counts as flat. By default one binomial standard
            error of the candidate's test accuracy on the audited non-members, ``sqrt(p (1 - p) / n)``, so that the
            noise of the held-out accuracy (0.008 at p = 0.83 on 2,000 non-members) does not pay for leakage.

        Raises
        ------
        InvalidInputError
            On an empty curve or a threshold outside [0, 1).
        """
        if not self.records:
            raise InvalidInputError("no epoch has been audited yet: the curve is empty")
        for name, value in (("max_tpr_rise", max_tpr_rise), ("min_accuracy_gain", min_accuracy_gain)):
            if value is not None and not 0 <= value < 1:
                raise InvalidInputError(f"{name} must be in [0, 1); got {value}")
        last = self.records[-1]
        best = self.records[0]
        for record in self.records[1:]:
            gain = record.test_accuracy - best.test_accuracy
            if gain >= (best.accuracy_se if min_accuracy_gain is None else min_accuracy_gain):
                best = record
            elif record.tpr - best.tpr > max_tpr_rise:
                return self._suggestion(best, last, rose_at=record)
            elif record.tpr < best.tpr and gain >= 0:
                best = record
        return self._suggestion(last, last, rose_at=None)

    def _suggestion(self, at: EpochRecord, last: EpochRecord, *, rose_at: EpochRecord | None) -> StopSuggestion:
        fpr = f"{100 * float(at.headline):g}% FPR"
        if rose_at is None:
            reason = (
                f"leakage did not rise beyond the threshold with accuracy flat up to epoch {last.epoch}: no reason "
                f"to stop early. This is not an all-clear: TPR at {fpr} is {last.tpr:.3f} at epoch {last.epoch}"
            )
        else:
            reason = (
                f"TPR at {fpr} rose from {at.tpr:.3f} (epoch {at.epoch}) to {rose_at.tpr:.3f} (epoch "
                f"{rose_at.epoch}) while test accuracy went from {at.test_accuracy:.3f} to "
                f"{rose_at.test_accuracy:.3f}: stop after epoch {at.epoch} (its TPR at {fpr} is still {at.tpr:.3f})"
            )
        return StopSuggestion(
            epoch=at.epoch,
            triggered=rose_at is not None,
            rose_at=None if rose_at is None else rose_at.epoch,
            tpr=at.tpr,
            test_accuracy=at.test_accuracy,
            last_epoch=last.epoch,
            last_tpr=last.tpr,
            last_test_accuracy=last.test_accuracy,
            reason=reason,
        )

    # -- files -----------------------------------------------------------------------------------

    def to_dict(self, **suggest: Any) -> dict[str, Any]:
        """``{"epochs": [...], "suggested_stop": {...}}`` (``suggest`` goes to :meth:`suggest_stop`)."""
        return {
            "epochs": [r.to_dict() for r in self.records],
            "suggested_stop": self.suggest_stop(**suggest).to_dict() if self.records else None,
        }

    def write_json(self, path: str | Path, **suggest: Any) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(**suggest), indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def read_json(cls, path: str | Path) -> PrivacyCurve:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(EpochRecord.from_dict(r) for r in data["epochs"])

    def plot(self, path: str | Path, *, title: str = "privacy and accuracy per epoch", **suggest: Any) -> Path:
        """A PNG: each attack's TPR at the headline FPR (the strongest's 95% CI shaded) and the train and test
        accuracy against epoch, with the suggested stopping epoch marked."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        if not self.records:
            raise InvalidInputError("no epoch has been audited yet: nothing to plot")
        key = self.records[0].headline
        epochs = self.epochs
        fig, (top, bottom) = plt.subplots(2, 1, figsize=(7.5, 6.5), sharex=True)
        for label in self.records[0].attacks:
            top.plot(epochs, [r.attacks[label]["tpr_at_fpr"][key] for r in self.records], marker="o", label=label)
        top.fill_between(
            epochs, [r.tpr_ci[0] for r in self.records], [r.tpr_ci[1] for r in self.records], alpha=0.2,
            label="strongest attack, 95% CI",
        )  # fmt: skip
        top.axhline(float(key), color="grey", linestyle=":", label=f"chance (TPR = FPR = {float(key):g})")
        top.set_ylabel(f"TPR at {100 * float(key):g}% FPR")
        bottom.plot(epochs, [r.train_accuracy for r in self.records], marker="o", label="train (members)")
        bottom.plot(epochs, [r.test_accuracy for r in self.records], marker="o", label="test (non-members)")
        bottom.set_ylabel("accuracy")
        bottom.set_xlabel("epoch")
        stop = self.suggest_stop(**suggest)
        for ax, corner in ((top, "upper left"), (bottom, "lower right")):  # fixed: "best" is slow and warns
            if stop.triggered:
                ax.axvline(stop.epoch, color="red", linestyle="--", label=f"suggested stop (epoch {stop.epoch})")
            ax.legend(fontsize=8, loc=corner)
        top.set_title(title)
        fig.tight_layout()
        path = Path(path)
        fig.savefig(path, dpi=120)
        plt.close(fig)
        return path


def suggested_stop_epoch(path: str | Path) -> int:
    """The suggested stopping epoch saved in a ``privacy_curve.json`` (written by the callbacks or
    :meth:`PrivacyCurve.write_json`): its ``suggested_stop.epoch``, computed with the thresholds it was written with.

    Raises
    ------
    InvalidInputError
        When the file is missing, not JSON, or holds no suggested stop.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInputError(f"privacy curve {str(path)!r} does not exist; expected a privacy_curve.json") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInputError(f"privacy curve {str(path)!r} is not a readable JSON file: {exc}") from None
    stop = data.get("suggested_stop") if isinstance(data, dict) else None
    if not isinstance(stop, dict) or not isinstance(stop.get("epoch"), int):
        raise InvalidInputError(
            f"privacy curve {str(path)!r} holds no suggested_stop.epoch; expected a privacy_curve.json written by "
            "memberscope's training callbacks"
        )
    return int(stop["epoch"])
