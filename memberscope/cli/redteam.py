"""Red-team commands: ``recon`` (what does an endpoint expose?) and ``attack`` (who was in its training set?)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from memberscope.cli._app import app, console, parse_params
from memberscope.exceptions import InvalidInputError


def _http_target(
    url: str,
    *,
    n_classes: int | None,
    n_classes_hint: int | None = None,
    api_key_env: str | None,
    output_path: str,
    request_template: str | None,
    method: str,
    timeout: float,
    max_retries: int,
    query_budget: int | None,
    rate: float | None,
    batch_size: int,
    api: str | None = None,
    classes: str | None = None,
    answer_label: str | None = None,
    answer_confidence: str | None = None,
    feature_names: list[str] | None = None,
):
    from urllib.parse import urlsplit

    from memberscope.targets import HttpTarget
    from memberscope.targets.wire import AnswerFields

    if answer_confidence is not None and answer_label is None:
        raise InvalidInputError("--answer-confidence needs --answer-label (the field holding the predicted class)")
    fields = AnswerFields(answer_label, answer_confidence) if answer_label is not None else None
    names = _class_names(classes)

    if request_template is None and urlsplit(url).path.rstrip("/").endswith("/completions"):
        raise InvalidInputError(
            f"{url} looks like an LLM completions API, and recon/attack send numeric records to a classifier's "
            f"prediction endpoint; audit the language model behind it with: memberscope llm-audit --endpoint {url} "
            "(or give --request-template if this really is a classifier)"
        )
    template = None
    if request_template is not None:
        try:
            template = json.loads(request_template)
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"--request-template {request_template!r} is not JSON: {exc}") from None
    return HttpTarget(
        url,
        n_classes=n_classes,
        n_classes_hint=n_classes_hint,
        method=method,
        request_template=template,
        output_path=output_path,
        api_key_env=api_key_env,
        timeout=timeout,
        max_retries=max_retries,
        query_budget=query_budget,
        rate_limit=rate,
        batch_size=batch_size,
        api=api,
        classes=names,
        answer_fields=fields,
        feature_names=feature_names,
    )


def _class_names(classes: str | None) -> list[str] | None:
    """``--classes a,b,c`` as a list (None when not given)."""
    return [c.strip() for c in classes.split(",")] if classes else None


def _feature_names(path: Path, skip: set[str]) -> list[str]:
    """The feature column names of a records CSV (for ``$record_object`` and ``$columns`` requests)."""
    import pandas as pd

    return [str(c) for c in pd.read_csv(path, nrows=0).columns if c not in skip]


_API = typer.Option(
    None,
    "--api",
    help="Server preset filling the request template and answer path: kserve-v1, kserve-v2, mlflow, tfserving.",
)
_CLASSES = typer.Option(
    None, "--classes", help="The model's class names in output order, comma-separated (for answers naming classes)."
)
_ANSWER_LABEL = typer.Option(
    None, "--answer-label", help='Field of an answer object holding the predicted class (e.g. "label").'
)
_ANSWER_CONFIDENCE = typer.Option(
    None, "--answer-confidence", help='Field of an answer object holding its confidence (e.g. "confidence").'
)

_API_KEY = typer.Option(
    None, "--api-key-env", help="Environment variable holding the API key (sent as a Bearer token)."
)
_OUTPUT_PATH = typer.Option(
    "predictions",
    "--output-path",
    help="JSON path to the predictions in an answer; [*] reaches into each item (outputs[*].scores).",
)
_TEMPLATE = typer.Option(
    None,
    "--request-template",
    help='JSON request body with "$records", "$record", "$record_object" or "$records_objects" (records as objects '
    'named by the CSV\'s columns), "$columns" (default {"instances": "$records"}).',
)
_METHOD = typer.Option("POST", "--method", help="HTTP method.")
_TIMEOUT = typer.Option(10.0, "--timeout", help="Seconds per request.")
_RETRIES = typer.Option(3, "--max-retries", help="Retries on 429/503 (honouring Retry-After) and timeouts.")
_BUDGET = typer.Option(None, "--query-budget", help="Most records to send to the endpoint.")
_RATE = typer.Option(None, "--rate", help="Most requests per second.")
_BATCH = typer.Option(64, "--batch-size", help="Records per request.")


def _exit_on_target_error(target, out: Path | None):
    """Context: on a TargetError, save the answers already received (when ``out`` is given) and re-raise."""
    from contextlib import contextmanager

    from memberscope.exceptions import TargetError
    from memberscope.redteam.pipeline import save_answered

    @contextmanager
    def guard():
        try:
            yield
        except TargetError as exc:
            saved = save_answered(target, out) if out is not None else None
            if saved is not None:
                exc.args = (f"{exc.args[0]} (the {target.queries_spent} answers received are saved in {saved})",)
            raise

    return guard()


@app.command()
def recon(
    url: str = typer.Argument(..., help="Prediction endpoint, e.g. http://host:8080/v1/models/m:predict"),
    api_key_env: str | None = _API_KEY,
    n_features: int | None = typer.Option(None, "--n-features", help="Features per record (random probes)."),
    n_classes: int | None = typer.Option(None, "--n-classes", help="Classes (needed for top-k and label answers)."),
    records: Path | None = typer.Option(None, "--records", help="CSV of records to probe with (feature columns)."),
    label_column: str = typer.Option("label", "--label-column", help="Label column of --records (not sent)."),
    id_column: str | None = typer.Option(None, "--id-column", help="Id column of --records (not sent)."),
    member_column: str | None = typer.Option(
        None, "--member-column", help="Ground-truth column of --records (not sent)."
    ),
    n_probes: int = typer.Option(8, "--probes", help="Probe records."),
    repeats: int = typer.Option(2, "--repeats", help="Times each probe is asked (determinism)."),
    burst: int = typer.Option(5, "--burst", help="Extra one-record requests sent at once (rate limiting)."),
    output_path: str = _OUTPUT_PATH,
    request_template: str | None = _TEMPLATE,
    method: str = _METHOD,
    timeout: float = _TIMEOUT,
    max_retries: int = _RETRIES,
    api: str | None = _API,
    classes: str | None = _CLASSES,
    answer_label: str | None = _ANSWER_LABEL,
    answer_confidence: str | None = _ANSWER_CONFIDENCE,
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    out: Path | None = typer.Option(None, "--out", help="Also write the JSON report to this file."),
    seed: int = typer.Option(0, help="Seed of the random probes."),
) -> None:
    """Probe an endpoint: what it returns (probabilities, logits, top-k, rounding, labels), and what that allows."""
    import numpy as np

    from memberscope.redteam.recon import recon as run_recon

    if records is not None:
        import pandas as pd

        from memberscope.redteam.pipeline import read_records

        X, y, _, _ = read_records(
            records,
            label_column=label_column,
            id_column=id_column,
            member_column=member_column,
            classes=_class_names(classes),
        )
        hint = int(pd.Series(y).max()) + 1 if len(y) else None
        probes = X[:n_probes]
        names = _feature_names(records, {c for c in (label_column, id_column, member_column) if c})
    elif n_features is not None:
        if n_features < 1:
            raise InvalidInputError(f"--n-features must be >= 1; got {n_features}")
        probes = np.random.default_rng(seed).random((n_probes, n_features))
        hint, names = None, None
    else:
        raise InvalidInputError("recon needs probe records: pass --records FILE or --n-features F")
    target = _http_target(
        url,
        n_classes=n_classes,
        n_classes_hint=hint,
        api_key_env=api_key_env,
        output_path=output_path,
        request_template=request_template,
        method=method,
        timeout=timeout,
        max_retries=max_retries,
        query_budget=None,
        rate=None,
        batch_size=max(1, n_probes),
        api=api,
        classes=classes,
        answer_label=answer_label,
        answer_confidence=answer_confidence,
        feature_names=names,
    )
    with target:
        exposure = run_recon(target, probes, repeats=repeats, burst=burst)
    report = {"url": url, "queries_spent": target.queries_spent, **exposure.to_dict()}
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2))
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    c = console()
    c.print(f"[bold]{url}[/]")
    from memberscope.redteam.recon import FAMILY_HINTS

    c.print(f"exposes: {exposure.describe()}")
    c.print(f"classes: {exposure.n_classes}; deterministic: {'yes' if exposure.deterministic else 'no'}")
    c.print(f"model family hint: {FAMILY_HINTS[exposure.family_hint]}")
    limited = "yes" if exposure.rate_limited else "not observed"
    if exposure.retry_after is not None:
        limited += f" (Retry-After {exposure.retry_after:g} s)"
    c.print(f"rate limited: {limited}; queries spent: {target.queries_spent}")
    c.print(f"attacks possible: {', '.join(exposure.attacks_possible)}")
    for note in exposure.notes:
        c.print(f"[yellow]note:[/] {note}")


@app.command()
def attack(
    target_url: str = typer.Option(..., "--target", help="Prediction endpoint URL."),
    records: Path = typer.Option(..., "--records", help="CSV of the people to test: feature columns + label."),
    shadow_data: Path = typer.Option(..., "--shadow-data", help="CSV of public look-alike data for shadow models."),
    fpr: float = typer.Option(0.01, "--fpr", help="False-positive rate the verdict threshold is calibrated to."),
    fnr: float | None = typer.Option(
        None,
        "--fnr",
        help="Share of members of models like the target a 'not-member' verdict may wrongly clear (default: --fpr).",
    ),
    member_prior: float | None = typer.Option(
        None,
        "--member-prior",
        help="Share of --records you believe are members, used to check 'not-member' verdicts on the target itself "
        "(default: none assumed, the bound that holds for any share).",
    ),
    out: Path = typer.Option(..., "--out", help="Output directory (verdicts.csv, results.json)."),
    label_column: str = typer.Option("label", "--label-column", help="Label column (class index) of both CSVs."),
    id_column: str | None = typer.Option(
        None,
        "--id-column",
        help="Column naming each record in verdicts.csv (never a feature; also left out of --shadow-data if there).",
    ),
    member_column: str | None = typer.Option(
        None, "--member-column", help="Ground-truth 0/1 column of --records (evaluation only; never used to attack)."
    ),
    attack_name: str = typer.Option(
        "auto",
        "--attack",
        help="auto (the strongest on shadow models like the target), lira-offline, rmia-offline, shadow or label-only.",
    ),
    n_shadow: int = typer.Option(4, "--shadow-models", help="Reference shadow models K."),
    n_calibration: int = typer.Option(
        2, "--calibration-models", help="Calibration shadow models, which play the target to set the threshold."
    ),
    shadow_model: str = typer.Option(
        "auto",
        "--shadow-model",
        help="auto (the family answering most like the target), mlp, logreg, random-forest, gradient-boosting, cnn, "
        "a recipe, a scikit-learn class path (module.Class, e.g. sklearn.svm.SVC) or a saved estimator/Pipeline "
        "(.joblib) to clone.",
    ),
    repeats: int | None = typer.Option(
        None, "--repeats", help="Queries of each record averaged (default: from the noise recon measures)."
    ),
    shadow_param: list[str] = typer.Option([], "--shadow-param", help="Shadow recipe hyperparameter KEY=VALUE."),
    attack_model: str = typer.Option("logreg", "--attack-model", help="Attack classifier: logreg, gbdt or mlp."),
    n_queries: int = typer.Option(16, "--label-queries", help="Perturbed queries per record (label-only)."),
    n_classes: int | None = typer.Option(None, "--n-classes", help="Classes (default: as answers show them)."),
    api_key_env: str | None = _API_KEY,
    output_path: str = _OUTPUT_PATH,
    request_template: str | None = _TEMPLATE,
    method: str = _METHOD,
    timeout: float = _TIMEOUT,
    max_retries: int = _RETRIES,
    query_budget: int | None = _BUDGET,
    rate: float | None = _RATE,
    batch_size: int = _BATCH,
    api: str | None = _API,
    classes: str | None = _CLASSES,
    answer_label: str | None = _ANSWER_LABEL,
    answer_confidence: str | None = _ANSWER_CONFIDENCE,
    seed: int = typer.Option(0, help="Seed of shadows, perturbations and bootstrap."),
    cache_dir: str | None = typer.Option(None, help="Where trained shadow models are cached."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Do not read or write the shadow-model cache."),
    no_report: bool = typer.Option(False, "--no-report", help="Do not write report.html."),
    progress: bool | None = typer.Option(None, "--progress/--no-progress", help="Progress (default: on a terminal)."),
) -> None:
    """Attack an endpoint: which of these records were in its training set, at a calibrated FPR."""
    from memberscope.cache import ArtifactCache, default_cache_dir
    from memberscope.redteam.pipeline import read_records, run_redteam
    from memberscope.redteam.verdicts import rate as percent

    if not 0 < fpr < 1:
        raise InvalidInputError(f"--fpr must be in (0, 1); got {fpr}")
    if fnr is not None and not 0 < fnr < 1:
        raise InvalidInputError(f"--fnr must be in (0, 1); got {fnr}")
    if member_prior is not None and not 0 < member_prior <= 1:
        raise InvalidInputError(f"--member-prior must be in (0, 1]; got {member_prior}")
    names = _class_names(classes)
    X, y, member, ids = read_records(
        records, label_column=label_column, member_column=member_column, id_column=id_column, classes=names
    )
    features = _feature_names(records, {c for c in (label_column, member_column, id_column) if c})
    # The same id and ground-truth columns are left out of the public data when it has them; its feature columns
    # must be the records' (by name, read in the records' order).
    X_shadow, y_shadow, _, _ = read_records(
        shadow_data,
        label_column=label_column,
        member_column=member_column,
        id_column=id_column,
        classes=names,
        feature_columns=features,
        optional_columns=True,
    )
    hint = int(max(y.max(), y_shadow.max())) + 1
    recipe_params: dict[str, Any] | None = parse_params(shadow_param, "--shadow-param") if shadow_param else None
    target = _http_target(
        target_url,
        n_classes=n_classes,
        n_classes_hint=hint,
        api_key_env=api_key_env,
        output_path=output_path,
        request_template=request_template,
        method=method,
        timeout=timeout,
        max_retries=max_retries,
        query_budget=query_budget,
        rate=rate,
        batch_size=batch_size,
        api=api,
        classes=classes,
        answer_label=answer_label,
        answer_confidence=answer_confidence,
        feature_names=features,
    )
    config = {
        "target": target_url,
        "records": str(records),
        "shadow_data": str(shadow_data),
        "fpr": fpr,
        "fnr": fnr,
        "member_prior": member_prior,
        "attack": attack_name,
        "shadow_models": n_shadow,
        "calibration_models": n_calibration,
        "shadow_model": shadow_model,
        "repeats": repeats,
        "shadow_params": recipe_params,
        "attack_model": attack_model,
        "label_queries": n_queries,
        "query_budget": query_budget,
        "seed": seed,
    }
    from memberscope.progress import announced_sleep, progress_bars

    with target, _exit_on_target_error(target, out), progress_bars(enabled=progress) as bars:
        # Records answered so far, and every rate-limit wait as a countdown (a 27 s Retry-After looked like a hang).
        answered = bars.add_task("records answered", total=None)
        target.on_answer = lambda n: bars.advance(answered, n)
        target._sleep = announced_sleep(bars, sleep=target._sleep)
        result = run_redteam(
            target,
            X,
            y,
            X_shadow,
            y_shadow,
            n_classes=n_classes,  # None: as the API's answers show (else the largest label + 1)
            fpr=fpr,
            fnr=fnr,
            member_prior=member_prior,
            attack=attack_name,
            n_shadow=n_shadow,
            n_calibration=n_calibration,
            repeats=repeats,
            recipe=shadow_model,
            recipe_params=recipe_params,
            attack_model=attack_model,
            n_queries=n_queries,
            member=member,
            record_ids=ids,
            seed=seed,
            config=config,
            cache=ArtifactCache(None if no_cache else (cache_dir or default_cache_dir())),
        )
    from rich.markup import escape

    paths = result.write(out)
    if not no_report:
        from memberscope.report.html import write_html

        paths["report"] = str(write_html(out))
    rt = result.results.sections["redteam"]
    c = console()
    cal = rt["calibration"]
    c.print(
        f"exposure: {rt['exposure']['mode']}; attack: {rt['attack']}; queries spent: {rt['target']['queries_spent']}"
    )
    c.print(
        f"on shadow models at FPR {percent(fpr)} (threshold {cal['threshold']:.4g}): TPR {cal['shadow_tpr']:.1%} "
        f"(95% CI {cal['shadow_tpr_ci'][0]:.1%}-{cal['shadow_tpr_ci'][1]:.1%}), "
        f"FPR {cal['shadow_fpr']:.2%} (95% CI {cal['shadow_fpr_ci'][0]:.2%}-{cal['shadow_fpr_ci'][1]:.2%})"
    )
    shadows = rt["shadows"]
    tried = ", ".join(
        f"{a['family']} {a['score']:.2f}" for a in sorted(shadows["agreement"], key=lambda a: -a["score"])
    )
    c.print(f"shadow models: {shadows['family']} (agreement with the target: {tried})")
    for reason in shadows["fit"]["reasons"]:
        c.print(f"[yellow]shadows fit the target poorly:[/] {escape(reason)}")
    check = rt["target_check"]
    c.print(
        f"on the target's known non-members (the attacker's held-out records): {check['flagged']} of "
        f"{check['n_nonmembers']} flagged, FPR {check['fpr']:.2%} (95% CI {check['fpr_ci'][0]:.2%}-"
        f"{check['fpr_ci'][1]:.2%}): {check['status']}"
    )
    if cal.get("shadow_fnr_ci") is not None:
        c.print(
            f"'not-member' only for scores that shadow members reach at most at FNR {cal['fnr_target']:g}: FNR "
            f"{cal['shadow_fnr']:.2%} (95% CI {cal['shadow_fnr_ci'][0]:.2%}-{cal['shadow_fnr_ci'][1]:.2%}) on "
            "shadow models; a score merely below the member threshold is inconclusive"
        )
    v = rt["verdicts"]
    c.print(f"verdicts: {v['member']} member, {v['not-member']} not-member, {v['inconclusive']} inconclusive")
    for name, m in result.results.attacks.items():
        c.print(
            f"ground truth ({name}): AUC {m.auc:.3f}, observed FPR of 'member' verdicts {m.extra['verdict_fpr']:.2%}"
        )
    from memberscope.report.console import headline_text

    # The headline ends with the run's conclusion (leakage / no measurable leakage / inconclusive): said once.
    c.print(headline_text(result.results))
    for rec in rt["recommendations"]:
        c.print(f"- {rec}")
    c.print(f"wrote {', '.join(str(p) for p in paths.values())}")
