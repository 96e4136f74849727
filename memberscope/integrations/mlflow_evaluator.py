"""The ``memberscope`` evaluator of ``mlflow.evaluate``: a membership-inference audit of a logged scikit-learn model.

Registered through the package's ``mlflow.model_evaluator`` entry point, so with memberscope installed
(``mlflow.evaluate`` is MLflow 2's name of ``mlflow.models.evaluate``)::

    mlflow.models.evaluate(
        model_uri,                       # a model logged with mlflow.sklearn (a Pipeline is fine)
        data=heldout,                    # records the model did NOT train on (the non-members), with their labels
        targets="label",
        model_type="classifier",         # MLflow requires a model type (or extra_metrics)
        evaluators=["memberscope"],
        evaluator_config={"memberscope": {"members": train, "reference_models": 8}},
    )

(with ``evaluators="memberscope"``, a string, ``evaluator_config`` is memberscope's settings themselves).

``evaluator_config`` says who the members are, in one of two ways:

- ``members``: the training records (a DataFrame or a CSV/Parquet path, with the label column); ``data`` is then
  the non-members;
- ``member_column``: the name of a column of ``data`` that is 1 (or True) for members and 0 for non-members;
  ``data`` then holds both (the column is not a feature).

Everything else in ``evaluator_config`` goes to :func:`memberscope.audit_model`: ``population``, ``id_column``,
``group_column``, ``recipe``, ``recipe_params``, ``drop_columns``, ``feature_columns``, ``drop_duplicates`` and the
audit settings (``reference_models``, ``attacks``, ``seed``, ``fprs``, ``n_bootstrap``, ``n_jobs``, ...). The
evaluator logs to the evaluation's run what :func:`~memberscope.integrations.mlflow_logging.log_to_mlflow` logs
(metrics, parameters, tags, artifacts), and returns the metrics. Without ``members`` or ``member_column`` it declines
(``can_evaluate`` is False), so it never joins an ordinary ``mlflow.evaluate(..., model_type="classifier")``.
"""

from __future__ import annotations

import dataclasses
import inspect
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from mlflow.models.evaluation.base import EvaluationResult, ModelEvaluator

from memberscope.exceptions import InvalidInputError

__all__ = ["MemberscopeEvaluator"]


def _audit_keys() -> set[str]:
    from memberscope.api import audit_model
    from memberscope.config import AuditConfig

    params = set(inspect.signature(audit_model).parameters) - {"model", "members", "nonmembers", "config_values"}
    fields = {f.name for f in dataclasses.fields(AuditConfig)} - {"dataset", "model", "model_params", "out"}
    return (params | fields) - {"label_column", "progress", "out"}


class MemberscopeEvaluator(ModelEvaluator):
    """Membership-inference audit of a logged scikit-learn classifier (see the module docstring)."""

    name = "memberscope"

    @classmethod
    def can_evaluate(cls, *, model_type, evaluator_config, **kwargs) -> bool:
        config = evaluator_config or {}
        return model_type in (None, "classifier") and ("members" in config or "member_column" in config)

    def evaluate(
        self,
        *,
        model_type,
        dataset,
        run_id,
        evaluator_config,
        model=None,
        extra_metrics=None,
        custom_artifacts=None,
        predictions=None,
        **kwargs,
    ):
        from memberscope.api import audit_model, write_run
        from memberscope.integrations.mlflow_logging import _artifacts, _log, mlflow_metrics

        config = dict(evaluator_config or {})
        estimator = _sklearn_model(model)
        label = dataset.targets_name if isinstance(dataset.targets_name, str) else "label"
        members, nonmembers = _split(dataset, config, label)
        unknown = sorted(set(config) - _audit_keys())
        if unknown:
            raise InvalidInputError(
                f"unknown memberscope evaluator_config key(s) {unknown}; expected members or member_column and some "
                f"of: {', '.join(sorted(_audit_keys()))}"
            )
        config.setdefault("progress", False)
        result = audit_model(estimator, members=members, nonmembers=nonmembers, label_column=label, **config)
        import mlflow

        client = mlflow.MlflowClient()
        with tempfile.TemporaryDirectory(prefix="memberscope-evaluate-") as tmp:
            write_run(result, tmp)
            files = _artifacts(Path(tmp))
            _log(client, run_id, result.results, files)
        root = client.get_run(run_id).info.artifact_uri.rstrip("/") + "/memberscope"
        artifacts = _evaluation_artifacts(root, [f.name for f in files])
        return EvaluationResult(metrics=mlflow_metrics(result.results), artifacts=artifacts, run_id=run_id)


def _sklearn_model(model: Any) -> Any:
    """The scikit-learn estimator behind a pyfunc model."""
    if model is None:
        raise InvalidInputError(
            "the memberscope evaluator needs the model itself (a model URI or pyfunc model), not precomputed "
            "predictions: membership inference reads the model's probabilities"
        )
    try:
        raw = model.get_raw_model()
    except (NotImplementedError, AttributeError):
        raise InvalidInputError(
            f"the memberscope evaluator audits models logged with mlflow.sklearn; {model!r} does not expose its "
            "scikit-learn estimator (get_raw_model)"
        ) from None
    if not hasattr(raw, "predict_proba"):
        raise InvalidInputError(
            f"the logged model is a {type(raw).__name__} without predict_proba; membership inference needs a "
            "classifier's probabilities"
        )
    return raw


def _split(dataset: Any, config: dict[str, Any], label: str):
    """``(members, non-members)`` tables (features and the label column) from the evaluation data and the config."""
    import pandas as pd

    features = dataset.features_data
    if not isinstance(features, pd.DataFrame):
        names = list(dataset.feature_names or [f"feature_{i}" for i in range(np.shape(features)[1])])
        features = pd.DataFrame(np.asarray(features), columns=names)
    labels = dataset.labels_data
    if labels is None or len(labels) == 0:
        raise InvalidInputError("the memberscope evaluator needs labels: pass targets=LABEL_COLUMN to mlflow.evaluate")
    table = features.reset_index(drop=True).assign(**{label: np.asarray(labels)})
    if "member_column" in config and "members" in config:
        raise InvalidInputError("give the memberscope evaluator either members or member_column, not both")
    if "members" in config:
        return config.pop("members"), table
    column = config.pop("member_column")
    if column not in table.columns:
        raise InvalidInputError(
            f"member_column {column!r} is not a column of the evaluation data; its columns are {list(table.columns)}"
        )
    flags = table[column]
    values = set(pd.unique(flags.dropna()))
    if flags.isna().any() or not values <= {0, 1}:  # True == 1 and False == 0
        raise InvalidInputError(
            f"member_column {column!r} must be 1/True for members and 0/False for non-members; got values "
            f"{sorted(map(str, values))[:10]}{' and missing values' if flags.isna().any() else ''}"
        )
    member = flags.astype(bool).to_numpy()
    table = table.drop(columns=[column])
    return table[member], table[~member]


def _evaluation_artifacts(root: str, names: list[str]) -> dict[str, Any]:
    from mlflow.models.evaluation.artifacts import (
        ImageEvaluationArtifact,
        JsonEvaluationArtifact,
        TextEvaluationArtifact,
    )

    kinds: dict[str, type[JsonEvaluationArtifact | TextEvaluationArtifact | ImageEvaluationArtifact]] = {
        "results.json": JsonEvaluationArtifact,
        "report.html": TextEvaluationArtifact,
        "roc.png": ImageEvaluationArtifact,
    }
    return {f"memberscope_{Path(n).stem}": kinds[n](uri=f"{root}/{n}") for n in names if n in kinds}
