"""Privacy per epoch in PyTorch Lightning: a callback that audits the model every N epochs.

::

    from memberscope.integrations.lightning import PrivacyCallback

    privacy = PrivacyCallback(members=(x_train[:1000], y_train[:1000]), nonmembers=(x_test, y_test),
                              every_n_epochs=2, out_dir="privacy")
    lightning.Trainer(max_epochs=50, callbacks=[privacy]).fit(module, loaders)
    privacy.suggest_stop()      # StopSuggestion: epoch, its accuracy and TPR at 1% FPR, defend_spec

At the end of every N-th training epoch (and the last) the callback computes the module's logits
(``pl_module(inputs)``) on the members, non-members and population records, scores them
(:class:`memberscope.monitor.EpochAuditor`) and logs :meth:`memberscope.monitor.EpochRecord.metrics` — TPR at
the headline FPR with its CI, AUC, each attack's TPRs, train/test accuracy and loss and their gaps — to every logger
of the trainer at the current global step. With ``stop_training=True`` it sets ``trainer.should_stop`` once leakage
has risen with accuracy flat. At the end of fitting it writes ``privacy_curve.json`` and ``privacy_curve.png`` to
``out_dir`` when given. Needs the ``lightning`` extra.
"""

from __future__ import annotations

from typing import Any

from memberscope.exceptions import MissingDependencyError
from memberscope.monitor.torch_model import TrainingMonitor

try:
    from lightning.pytorch.callbacks import Callback
except ImportError:  # pragma: no cover - depends on the environment
    try:
        # The standalone package's Callback is a different class with the same role: mypy sees two types.
        from pytorch_lightning.callbacks import Callback  # type: ignore[assignment]
    except ImportError:
        raise MissingDependencyError(
            "the Lightning privacy callback needs PyTorch Lightning: pip install 'memberscope[lightning]'"
        ) from None

__all__ = ["PrivacyCallback"]


class PrivacyCallback(Callback):
    """A Lightning callback that audits membership leakage every ``every_n_epochs`` training epochs.

    Parameters are those of :class:`memberscope.monitor.torch_model.TrainingMonitor`: ``members`` and
    ``nonmembers`` as ``(inputs, labels)``, optional ``population`` and ``reference_logits``, ``every_n_epochs``,
    ``stop_training``, ``max_tpr_rise``, ``min_accuracy_gain``, ``out_dir``, ``batch_size`` and the auditor's
    ``attacks``, ``fprs``, ``headline_fpr``, ``n_bootstrap`` and ``seed``. ``prefix`` names the logged metrics
    (``memberscope/tpr_at_fpr_0.01``, ...).

    Attributes
    ----------
    monitor : TrainingMonitor
    curve : memberscope.monitor.PrivacyCurve
    """

    def __init__(self, members: Any, nonmembers: Any, population: Any = None, *, prefix: str = "memberscope", **kw):
        super().__init__()
        self.monitor = TrainingMonitor(members, nonmembers, population, **kw)
        self.prefix = prefix

    @property
    def curve(self):
        return self.monitor.curve

    def suggest_stop(self):
        """The suggested stopping epoch (:meth:`memberscope.monitor.PrivacyCurve.suggest_stop`)."""
        return self.monitor.suggest_stop()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        epoch = trainer.current_epoch + 1
        last = trainer.max_epochs is not None and epoch >= trainer.max_epochs
        if trainer.sanity_checking or not self.monitor.due(epoch, last=last):
            return
        record = self.monitor.audit(pl_module, epoch, step=trainer.global_step)
        metrics = {**record.metrics(self.prefix), f"{self.prefix}/epoch": float(epoch)}
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=trainer.global_step)
        if self.monitor.should_stop():
            trainer.should_stop = True

    def on_fit_end(self, trainer, pl_module) -> None:
        if trainer.is_global_zero:
            self.monitor.finish()
