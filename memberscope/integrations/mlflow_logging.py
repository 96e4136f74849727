"""Log a memberscope audit to an MLflow run: headline metrics, the configuration as parameters, the files as
artifacts.

Metric names (every one prefixed ``memberscope/``; ``K`` is an FPR key such as ``0.01``):

=============================================  ===============================================================
``<attack>/auc``, ``/auc_ci_low``, ``/auc_ci_high``     AUC of each attack and its 95% CI
``<attack>/tpr_at_fpr_K``, ``..._ci_low``, ``..._ci_high``  TPR at each reported FPR and its CI
``<attack>/epsilon_lower_bound``               the empirical ε lower bound (Clopper–Pearson, 95%)
``headline/tpr_at_fpr_K``, ``headline/auc``    the strongest attack's (tag ``memberscope.strongest_attack``)
``headline/epsilon_lower_bound``               the largest ε lower bound over attacks
``target/train_accuracy``, ``target/test_accuracy``, ``target/generalization_gap``
``fidelity/passed`` (1 or 0), ``fidelity/target_*``, ``fidelity/references_*``, ``fidelity/confidence_ks``
=============================================  ===============================================================

Parameters are the run's configuration, flattened (``memberscope.model_params.hidden``); tags say what a number
cannot: the strongest attack, the verdict (``measurable`` or ``not distinguishable``: never read the latter as
"safe"), low fidelity, and the number of warnings. Artifacts go under ``memberscope/``: ``results.json``,
``report.html`` and ``roc.png``.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from pathlib import Path
from typing import Any

from memberscope.exceptions import InvalidInputError, MissingDependencyError

__all__ = ["ARTIFACTS", "ARTIFACT_DIR", "PREFIX", "log_to_mlflow", "mlflow_metrics", "mlflow_params", "mlflow_tags"]

PREFIX = "memberscope"
ARTIFACT_DIR = "memberscope"
ARTIFACTS = ("results.json", "report.html", "roc.png")
"""The run files logged as artifacts (those present)."""


def _mlflow():
    try:
        import mlflow
    except ImportError:
        raise MissingDependencyError("logging to MLflow needs mlflow: pip install 'memberscope[mlflow]'") from None
    return mlflow


def _finite(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def mlflow_metrics(results: Any) -> dict[str, float]:
    """The headline metrics of :class:`~memberscope.results.Results` as ``{MLflow metric name: value}`` (see the
    module docstring for the names; values that are not finite numbers are left out)."""
    from memberscope.report.model import build_report

    model = build_report(results)
    out: dict[str, float] = {}

    def put(name: str, value: Any) -> None:
        if _finite(value):
            out[f"{PREFIX}/{name}"] = float(value)

    for row in model.attack_rows:
        put(f"{row.name}/auc", row.auc)
        if row.auc_ci:
            put(f"{row.name}/auc_ci_low", row.auc_ci[0])
            put(f"{row.name}/auc_ci_high", row.auc_ci[1])
        for key, tpr in row.tprs.items():
            put(f"{row.name}/tpr_at_fpr_{key}", tpr)
            if key in row.tpr_cis:
                put(f"{row.name}/tpr_at_fpr_{key}_ci_low", row.tpr_cis[key][0])
                put(f"{row.name}/tpr_at_fpr_{key}_ci_high", row.tpr_cis[key][1])
        put(f"{row.name}/epsilon_lower_bound", row.epsilon)
    if model.strongest is not None:
        best = next(r for r in model.attack_rows if r.name == model.strongest)
        put("headline/auc", best.auc)
        for key, tpr in best.tprs.items():
            put(f"headline/tpr_at_fpr_{key}", tpr)
        bounds = [r.epsilon for r in model.attack_rows if r.epsilon is not None]
        if bounds:
            put("headline/epsilon_lower_bound", max(bounds))
    target = results.target
    put("target/train_accuracy", target.train_accuracy)
    put("target/test_accuracy", target.test_accuracy)
    put("target/generalization_gap", target.generalization_gap)
    fidelity = results.sections.get("fidelity") or {}
    if fidelity.get("passed") is not None:
        put("fidelity/passed", 1.0 if fidelity["passed"] else 0.0)
    for side in ("target", "references"):
        for key, value in (fidelity.get(side) or {}).items():
            put(f"fidelity/{side}_{key}", value)
    put("fidelity/confidence_ks", (fidelity.get("confidence_ks") or {}).get("statistic"))
    return out


def _flatten(value: Any, prefix: str, out: dict[str, str]) -> None:
    if isinstance(value, dict) and value:
        for key, item in value.items():
            _flatten(item, f"{prefix}.{key}", out)
        return
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    out[prefix] = text


def mlflow_params(results: Any, *, max_length: int = 6000) -> dict[str, str]:
    """The run's configuration flattened into ``{"memberscope.<key>[.<subkey>]": value}`` (values as JSON text,
    cut to ``max_length`` characters with a trailing ``…``)."""
    out: dict[str, str] = {}
    for key, value in (results.config or {}).items():
        _flatten(value, f"{PREFIX}.{key}", out)
    out[f"{PREFIX}.kind"] = results.kind
    out[f"{PREFIX}.dataset"] = str(results.dataset.name)
    return {k: (v if len(v) <= max_length else v[: max_length - 1] + "…") for k, v in out.items()}


def mlflow_tags(results: Any) -> dict[str, str]:
    """What a number cannot say: the strongest attack, the verdict, low fidelity, warnings, the version."""
    from memberscope.report.frameworks import facts_of
    from memberscope.report.model import build_report

    facts = facts_of(build_report(results))
    tags = {
        f"{PREFIX}.version": results.memberscope_version,
        f"{PREFIX}.verdict": facts.verdict,
        f"{PREFIX}.warnings": str(len(results.warnings)),
    }
    if facts.strongest is not None:
        tags[f"{PREFIX}.strongest_attack"] = facts.strongest
        tags[f"{PREFIX}.headline_fpr"] = f"{facts.fpr:g}"
    if facts.low_fidelity:
        tags[f"{PREFIX}.low_fidelity"] = "true"
    return tags


def _client(tracking_uri: str | None):
    mlflow = _mlflow()
    from mlflow.exceptions import MlflowException

    try:
        client = mlflow.MlflowClient(tracking_uri=tracking_uri)
        client.search_experiments(max_results=1)  # opens the store: a refused file store fails here
    except MlflowException as exc:
        where = tracking_uri or mlflow.get_tracking_uri()
        raise InvalidInputError(f"cannot open the MLflow tracking store {where!r}: {exc.message}") from None
    return client


def _run_for(client, run_id: str | None, experiment: str | None, run_name: str | None) -> tuple[str, bool]:
    """``(run id, whether memberscope started it)``: ``run_id``, else a new run in ``experiment``, else the active
    run."""
    from mlflow.exceptions import MlflowException

    if run_id is not None and experiment is not None:
        raise InvalidInputError("give either an MLflow run id (--mlflow-run) or an experiment (--mlflow-experiment)")
    if run_id is not None:
        try:
            client.get_run(run_id)
        except MlflowException:
            raise InvalidInputError(
                f"MLflow run {run_id!r} does not exist in the tracking store; expected the id of an existing run "
                "(or use --mlflow-experiment NAME to start one)"
            ) from None
        return run_id, False
    if experiment is not None:
        found = client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found is not None else client.create_experiment(experiment)
        run = client.create_run(experiment_id, run_name=run_name or "memberscope audit")
        return run.info.run_id, True
    active = _mlflow().active_run()
    if active is None:
        raise InvalidInputError("no MLflow run to log to: give a run id or an experiment name, or start a run")
    return active.info.run_id, False


def _log(client, run_id: str, results: Any, files: list[Path]) -> None:
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.exceptions import MlflowException

    try:
        from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH
    except ImportError:  # pragma: no cover - older MLflow
        MAX_PARAM_VAL_LENGTH = 500
    now = int(time.time() * 1000)
    metrics = [Metric(k, v, now, 0) for k, v in mlflow_metrics(results).items()]
    params = [Param(k, v) for k, v in mlflow_params(results, max_length=MAX_PARAM_VAL_LENGTH).items()]
    tags = [RunTag(k, v) for k, v in mlflow_tags(results).items()]
    try:
        for start in range(0, max(len(metrics), len(params), len(tags)), 100):  # log_batch takes at most 100 params
            client.log_batch(
                run_id,
                metrics=metrics[start : start + 100],
                params=params[start : start + 100],
                tags=tags[start : start + 100],
            )
    except MlflowException as exc:
        raise InvalidInputError(
            f"MLflow refused the audit's parameters for run {run_id!r}: {exc.message}. A run's parameters cannot "
            "change once logged: log each audit into a run of its own (--mlflow-experiment NAME)"
        ) from None
    for path in files:
        client.log_artifact(run_id, str(path), artifact_path=ARTIFACT_DIR)


def _artifacts(folder: Path) -> list[Path]:
    return [folder / name for name in ARTIFACTS if (folder / name).is_file()]


def log_to_mlflow(
    source: Any,
    *,
    run_id: str | None = None,
    experiment: str | None = None,
    run_name: str | None = None,
    tracking_uri: str | None = None,
) -> str:
    """Log an audit to MLflow; returns the run id.

    Parameters
    ----------
    source : an :class:`~memberscope.results.AuditResult` (its files are written to a temporary folder first), a
        run folder (``--out`` of a command), or :class:`~memberscope.results.Results` (metrics and parameters only).
    run_id : an existing MLflow run to log into (it is left running).
    experiment : the name of an experiment to start a new run in (created when missing; the run is ended after
        logging). Without ``run_id`` and ``experiment``, the active run (``mlflow.start_run()``) is used.
    run_name : the new run's name (with ``experiment``).
    tracking_uri : the tracking store (default: MLflow's, e.g. ``$MLFLOW_TRACKING_URI``).

    Raises
    ------
    MissingDependencyError
        Without mlflow (the ``mlflow`` extra).
    InvalidInputError
        For an unknown run id, a tracking store that cannot be opened (MLflow 3 refuses a ``file://`` store unless
        ``MLFLOW_ALLOW_FILE_STORE=true``), or parameters that clash with ones the run already holds.
    """
    from memberscope.results import AuditResult, Results, read_results

    client = _client(tracking_uri)
    run, started = _run_for(client, run_id, experiment, run_name)
    status = "FAILED"
    try:
        if isinstance(source, AuditResult):
            with tempfile.TemporaryDirectory(prefix="memberscope-mlflow-") as tmp:
                from memberscope.api import write_run

                write_run(source, tmp)
                _log(client, run, source.results, _artifacts(Path(tmp)))
        elif isinstance(source, Results):
            _log(client, run, source, [])
        else:
            folder = Path(source)
            results = read_results(folder)
            files = _artifacts(folder)
            with tempfile.TemporaryDirectory(prefix="memberscope-mlflow-") as tmp:
                if not (folder / "report.html").is_file():  # rendered for MLflow, not written into the folder
                    from memberscope.report.html import render_html
                    from memberscope.report.model import build_report, load_run

                    loaded, scores, defenses = load_run(folder)
                    report = Path(tmp) / "report.html"
                    report.write_text(render_html(build_report(loaded, scores=scores, defenses=defenses)), "utf-8")
                    files.append(report)
                _log(client, run, results, files)
        status = "FINISHED"
    finally:
        if started:
            client.set_terminated(run, status=status)
    return run
