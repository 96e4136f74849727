"""Privacy per epoch in the Hugging Face ``Trainer``: a callback that audits the model every N epochs.

::

    from memberscope.integrations.hf_trainer import PrivacyTrainerCallback

    privacy = PrivacyTrainerCallback(
        members=({"input_ids": ids[:512], "attention_mask": mask[:512]}, labels[:512]),
        nonmembers=({"input_ids": test_ids, "attention_mask": test_mask}, test_labels),
        out_dir="privacy",
    )
    Trainer(model=model, args=args, train_dataset=train, callbacks=[privacy]).train()
    privacy.suggest_stop()

At the end of every N-th epoch (and the last) the callback computes the model's logits (``model(**inputs)`` for a
mapping of tensors, ``model(inputs)`` for one tensor; ``.logits`` of the output), scores them
(:class:`memberscope.monitor.EpochAuditor`) and appends :meth:`memberscope.monitor.EpochRecord.metrics` with the
epoch and step to ``state.log_history`` (so ``trainer_state.json`` keeps them); with ``log_to_mlflow=True`` it also
logs them to the active MLflow run. With ``stop_training=True`` it sets ``control.should_training_stop`` once leakage
has risen with accuracy flat. At the end of training it writes ``privacy_curve.json`` and ``privacy_curve.png`` to
``out_dir`` when given. Needs the ``hf`` extra.
"""

from __future__ import annotations

from typing import Any

from memberscope.exceptions import MissingDependencyError
from memberscope.monitor.torch_model import TrainingMonitor

try:
    from transformers import TrainerCallback
except ImportError:  # pragma: no cover - depends on the environment
    raise MissingDependencyError(
        "the Hugging Face Trainer privacy callback needs transformers: pip install 'memberscope[hf]'"
    ) from None

__all__ = ["PrivacyTrainerCallback"]


class PrivacyTrainerCallback(TrainerCallback):
    """A ``transformers.TrainerCallback`` that audits membership leakage every ``every_n_epochs`` epochs.

    Parameters are those of :class:`memberscope.monitor.torch_model.TrainingMonitor` (``members``,
    ``nonmembers``, ``population``, ``reference_logits``, ``every_n_epochs``, ``stop_training``, the stopping rule's
    thresholds, ``out_dir``, ``batch_size`` and the auditor's settings), plus ``prefix`` (the metrics' names) and
    ``log_to_mlflow``.

    Attributes
    ----------
    monitor : TrainingMonitor
    curve : memberscope.monitor.PrivacyCurve
    """

    def __init__(
        self,
        members: Any,
        nonmembers: Any,
        population: Any = None,
        *,
        prefix: str = "memberscope",
        log_to_mlflow: bool = False,
        **kw: Any,
    ):
        self.monitor = TrainingMonitor(members, nonmembers, population, **kw)
        self.prefix = prefix
        self.log_to_mlflow = bool(log_to_mlflow)

    @property
    def curve(self):
        return self.monitor.curve

    def suggest_stop(self):
        """The suggested stopping epoch (:meth:`memberscope.monitor.PrivacyCurve.suggest_stop`)."""
        return self.monitor.suggest_stop()

    def on_epoch_end(self, args, state, control, model=None, **kwargs):
        epoch = round(state.epoch or 0)
        last = epoch >= args.num_train_epochs
        if model is None or epoch < 1 or not self.monitor.due(epoch, last=last):
            return control
        record = self.monitor.audit(model, epoch, step=state.global_step)
        metrics = record.metrics(self.prefix)
        state.log_history.append({**metrics, "epoch": float(epoch), "step": state.global_step})
        if self.log_to_mlflow:
            from memberscope.integrations.mlflow_logging import _mlflow

            mlflow = _mlflow()
            if mlflow.active_run() is not None:
                mlflow.log_metrics(metrics, step=state.global_step)
        if self.monitor.should_stop():
            control.should_training_stop = True
        return control

    def on_train_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.monitor.finish()
        return control
