"""memberscope where users already work: MLflow, training frameworks' callbacks.

- :mod:`memberscope.integrations.mlflow_logging` — log an audit's headline metrics, configuration and files to an
  MLflow run (``memberscope audit-model --mlflow-run RUN_ID``);
- :mod:`memberscope.integrations.mlflow_evaluator` — the ``memberscope`` evaluator of ``mlflow.evaluate``;
- :mod:`memberscope.integrations.lightning` — a PyTorch Lightning callback that audits the model every N epochs;
- :mod:`memberscope.integrations.hf_trainer` — the same for the Hugging Face ``Trainer``.

Each needs its framework (the ``mlflow``, ``lightning`` and ``hf`` extras) and imports it only when used, so
``import memberscope`` stays light. The per-epoch audit itself is framework-free: :mod:`memberscope.monitor`.
"""

__all__: list[str] = []
