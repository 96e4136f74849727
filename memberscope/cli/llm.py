"""Language-model commands: llm-audit (a user's local HF model or an LLM endpoint), llm-demo (the self-contained
setting), dataset-inference (was this set of texts in the training data?) and text-audit (a fine-tuned text
classifier, audited like any classifier)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from memberscope.cli import _options as opt
from memberscope.cli._app import app, console, parse_params
from memberscope.cli.redteam import _API_KEY, _RATE, _RETRIES  # the red team's key, retry and rate options
from memberscope.exceptions import InvalidInputError


def _llm_table(results: dict[str, Any]):
    from rich.table import Table

    llm = results["llm"]
    # A model built in memory (llm-demo) has no path: name it rather than print a blank title.
    name = llm.get("model") or "in-memory language model"
    table = Table(title=f"{name}: {llm['n_members']} members, {llm['n_nonmembers']} non-members (95% CIs)")
    for col in ("attack", "AUC", "TPR @ 1% FPR", "TPR @ 0.1% FPR"):
        table.add_column(col, justify="left" if col == "attack" else "right")
    for name, m in results["attacks"].items():
        cells = [f"{m['auc']:.3f}\n[{m['auc_ci'][0]:.3f}, {m['auc_ci'][1]:.3f}]"]
        for key in ("0.01", "0.001"):
            if key in m["tpr_at_fpr"]:
                lo, hi = m["tpr_at_fpr_ci"][key]
                mark = "" if m["fpr_resolvable"].get(key, True) else " *"
                cells.append(f"{100 * m['tpr_at_fpr'][key]:.1f}%\n[{100 * lo:.1f}%, {100 * hi:.1f}%]{mark}")
            else:
                cells.append("–")
        table.add_row(name, *cells)
    return table


def _canary_table(canaries: dict[str, Any], max_exposure: float):
    from rich.table import Table

    table = Table(title=f"canary exposure (max {max_exposure:.1f} bits)")
    for col in ("repetitions", "canaries", "exposure mean [95% CI]", "TPR @ 1% FPR"):
        table.add_column(col, justify="right")
    for reps, c in canaries.items():
        tpr = c["tpr_at_fpr"].get("0.01")
        table.add_row(
            reps,
            str(c["n_canaries"]),
            f"{c['exposure_mean']:.2f} [{c['exposure_ci'][0]:.2f}, {c['exposure_ci'][1]:.2f}]",
            "–" if tpr is None else f"{100 * tpr:.0f}%",
        )
    return table


def _finish(result, out: Path, *, report: bool) -> None:
    out_console = console()
    results = result.results
    out_console.print(_llm_table(results))
    llm = results["llm"]
    if llm["canaries"]:
        out_console.print(_canary_table(llm["canaries"], llm["canary_details"]["max_exposure"]))
    if llm["validity"]:
        v = llm["validity"]
        ci = v["baseline_auc_ci"]
        out_console.print(f"validity guard: bag-of-words AUC {v['baseline_auc']:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]")
    for message in results.get("warnings", []):
        out_console.print(f"[yellow]warning:[/] {message}")
    paths = list(result.write(out).values())
    if report:
        from memberscope.report.html import write_html

        paths.append(str(write_html(out)))
    out_console.print(f"wrote {', '.join(paths)}")


def _set_threads(threads: int | None) -> None:
    if threads is None:
        return
    if threads < 1:
        raise InvalidInputError(f"--threads must be a positive integer; got {threads}")
    import torch

    torch.set_num_threads(threads)


def _attack_list(attacks: str | None) -> list[str] | None:
    if attacks is None or attacks.strip() in ("", "all"):
        return None
    from memberscope.llm.attacks import LLM_ATTACKS

    names = [a.strip() for a in attacks.split(",") if a.strip()]
    for name in names:
        LLM_ATTACKS.get(name)  # UnknownNameError names the known attacks
    return names


_ENDPOINT = typer.Option(
    None,
    "--endpoint",
    help="Instead of --model: an LLM API, e.g. http://host/v1/completions (OpenAI-compatible, echo + "
    "logprobs; other servers with --request-template and --logprobs-path).",
)
_ENDPOINT_MODEL = typer.Option(
    None, "--endpoint-model", help="The 'model' field of OpenAI requests (the served model's name)."
)
_MAX_TOKENS = typer.Option(
    0, "--max-tokens", help="max_tokens of OpenAI requests: 0, or 1 for servers that refuse 0 (cut off again)."
)
_REQUEST_TEMPLATE = typer.Option(
    None, "--request-template", help='Another server\'s JSON request body with "$records" (or "$record").'
)
_ANSWERS_PATH = typer.Option(
    None, "--output-path", help="With --request-template: JSON path to the per-text answers (default: choices)."
)
_LOGPROBS_PATH = typer.Option(
    None, "--logprobs-path", help="With --request-template: JSON path, in one answer, to its token log-probs."
)
_TOKENS_PATH = typer.Option(
    None, "--tokens-path", help="With --request-template: JSON path, in one answer, to its tokens (recorded)."
)
_TIMEOUT = typer.Option(60.0, "--timeout", help="Seconds per request.")
_QUERY_BUDGET = typer.Option(
    None, "--query-budget", help="Most texts to send to the endpoint (the lowercase attack sends each twice)."
)
_BATCH_SIZE = typer.Option(8, "--batch-size", help="Texts per request to the endpoint.")


@app.command("llm-audit")
def llm_audit(
    members: Path = typer.Option(
        ..., "--members", help="Texts the model trained on: .txt (one per line), .jsonl, .csv, .tsv or .parquet."
    ),
    nonmembers: Path = typer.Option(..., "--nonmembers", help="Texts it did not train on, from the same distribution."),
    out: Path = typer.Option(..., "--out", help="Output directory for results.json, scores.csv, roc.png."),
    model: str | None = typer.Option(
        None, "--model", help="Local directory of a Hugging Face causal or masked LM (its config says which)."
    ),
    endpoint: str | None = _ENDPOINT,
    endpoint_model: str | None = _ENDPOINT_MODEL,
    max_tokens: int = _MAX_TOKENS,
    request_template: str | None = _REQUEST_TEMPLATE,
    output_path: str | None = _ANSWERS_PATH,
    logprobs_path: str | None = _LOGPROBS_PATH,
    tokens_path: str | None = _TOKENS_PATH,
    api_key_env: str | None = _API_KEY,
    timeout: float = _TIMEOUT,
    max_retries: int = _RETRIES,
    query_budget: int | None = _QUERY_BUDGET,
    rate: float | None = _RATE,
    batch_size: int = _BATCH_SIZE,
    reference_model: Path | None = typer.Option(
        None, "--reference-model", help="Local directory of a reference LM (e.g. the base model before fine-tuning)."
    ),
    attacks: str | None = typer.Option(
        None, help="Comma-separated: loss, zlib, lowercase, min-k, min-k++, reference (default: all that apply)."
    ),
    attack_param: list[str] = typer.Option(
        [], "--attack-param", help="ATTACK.KEY=VALUE, e.g. min-k.k=0.1 (repeatable)."
    ),
    seed: int = typer.Option(0, help="Seed for the bootstrap and the validity guard's folds."),
    max_length: int = typer.Option(128, "--max-length", help="Tokens per text (longer texts are cut)."),
    n_bootstrap: int = typer.Option(1000, "--n-bootstrap", help="Bootstrap replicates for the CIs."),
    text_column: str | None = typer.Option(
        None, "--text-column", help="Column (CSV/TSV/Parquet) or field (JSONL) holding the text (default: text)."
    ),
    tokenizer: Path | None = typer.Option(None, "--tokenizer", help="Tokenizer folder, if not beside the model."),
    reference_tokenizer: Path | None = typer.Option(
        None, "--reference-tokenizer", help="Tokenizer folder of the reference model, if not beside it."
    ),
    threads: int | None = typer.Option(None, "--threads", help="Torch CPU threads (default: torch's choice)."),
    no_report: bool = typer.Option(False, "--no-report", help="Do not write report.html."),
    progress: bool | None = opt.PROGRESS,
) -> None:
    """Audit a causal or masked language model (a local folder or an LLM API) with token-level membership attacks."""
    from memberscope.llm.audit import audit_llm, read_texts

    _set_threads(threads)
    target = _lm_target(
        model,
        endpoint,
        max_length=max_length,
        tokenizer=tokenizer,
        request_template=request_template,
        model_name=endpoint_model,
        max_tokens=max_tokens,
        output_path=output_path,
        logprobs_path=logprobs_path,
        tokens_path=tokens_path,
        api_key_env=api_key_env,
        timeout=timeout,
        max_retries=max_retries,
        query_budget=query_budget,
        rate_limit=rate,
        batch_size=batch_size,
    )
    if reference_model is not None and not reference_model.is_dir():
        raise InvalidInputError(
            f"--reference-model {str(reference_model)!r} is not a directory; expected a save_pretrained folder"
        )
    params: dict[str, dict[str, Any]] = {}
    for item in attack_param:  # the attack name keeps its dashes (min-k++); parse_params handles KEY=VALUE
        key, sep, raw = item.partition("=")
        attack, dot, name = key.strip().rpartition(".")
        if not sep or not dot or not attack or not name:
            raise InvalidInputError(f"--attack-param {item!r} must be ATTACK.KEY=VALUE, e.g. min-k.k=0.1")
        params.setdefault(attack, {}).update(parse_params([f"{name}={raw}"], "--attack-param"))
    member_texts = read_texts(members, what="members", text_column=text_column)
    nonmember_texts = read_texts(nonmembers, what="non-members", text_column=text_column)
    with _saving_server_tokens(target, out), _scoring_bars(target, progress) as bars:
        result = audit_llm(
            model=target,
            members=member_texts,
            nonmembers=nonmember_texts,
            reference_model=reference_model,
            attacks=_attack_list(attacks),
            attack_params=params,
            seed=seed,
            max_length=max_length,
            n_bootstrap=n_bootstrap,
            tokenizer=tokenizer,
            reference_tokenizer=reference_tokenizer,
            bars=bars,
        )
    if endpoint is not None:
        result.results.sections["llm"]["endpoint"]["tokens_file"] = "tokens.jsonl"
    _finish(result, out, report=not no_report)


def _lm_target(
    model: str | None, endpoint: str | None, *, max_length: int, tokenizer: Path | None, **endpoint_options: Any
) -> Any:
    """The model a command scores with: the ``--model`` folder (checked) or the ``--endpoint`` API.

    Raises InvalidInputError for neither or both, a URL given as ``--model``, a missing folder, and ``--max-length``
    or ``--tokenizer`` given with an endpoint (its server tokenizes whole texts).
    """
    if (model is None) == (endpoint is None):
        raise InvalidInputError("give the model: --model DIR (a local folder) or --endpoint URL (an API)")
    if model is not None:
        if model.startswith(("http://", "https://")):
            raise InvalidInputError(f"--model {model!r} is a URL; audit an LLM API with --endpoint {model}")
        _check_model_dir(Path(model))
        return Path(model)
    if max_length != 128 or tokenizer is not None:
        raise InvalidInputError(
            "--max-length and --tokenizer apply to a local model; an endpoint's server tokenizes whole texts itself"
        )
    return _endpoint(str(endpoint), **endpoint_options)


def _endpoint(url: str, *, request_template: str | None, **options: Any):
    """The :class:`~memberscope.llm.endpoint.EndpointLanguageModel` the endpoint options describe."""
    import json

    from memberscope.llm.endpoint import EndpointLanguageModel

    template = None
    if request_template is not None:
        try:
            template = json.loads(request_template)
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"--request-template {request_template!r} is not JSON: {exc}") from None
    return EndpointLanguageModel(url, request_template=template, **options)


def _saving_server_tokens(target: Any, out: Path):
    """Context: an endpoint's returned tokens go to ``out/tokens.jsonl`` on success and on a target error (the
    error message then says how many texts were answered and where they are)."""
    from contextlib import contextmanager

    from memberscope.exceptions import TargetError

    @contextmanager
    def guard():
        try:
            yield
        except TargetError as exc:
            if getattr(target, "returned", None):
                path = target.write_returned(out / "tokens.jsonl")
                exc.args = (f"{exc.args[0]} (what the server returned for {len(target.returned)} texts is in {path})",)
            raise
        else:
            if hasattr(target, "write_returned"):
                target.write_returned(out / "tokens.jsonl")
        finally:
            if hasattr(target, "close"):
                target.close()

    return guard()


def _scoring_bars(target: Any, progress: bool | None):
    """Context: progress bars for scoring texts (:func:`memberscope.progress.progress_bars`, shown on a terminal
    unless ``progress`` says otherwise); an endpoint's rate-limit waits show there as a countdown."""
    from contextlib import contextmanager

    from memberscope.progress import announced_sleep, progress_bars

    @contextmanager
    def shown():
        with progress_bars(enabled=progress) as bars:
            http = getattr(target, "http", None)
            if http is not None:
                http._sleep = announced_sleep(bars, sleep=http._sleep)
            yield bars

    return shown()


def _check_model_dir(model: Path) -> None:
    if not model.is_dir():
        raise InvalidInputError(f"--model {str(model)!r} is not a directory; expected a save_pretrained folder")


@app.command("llm-demo")
def llm_demo(
    out: Path = typer.Option(Path("runs/llm-demo"), help="Output directory."),
    seed: int = typer.Option(0, help="Seed of the demo setting and the audit."),
    cache_dir: str | None = typer.Option(None, help="Where the demo models are cached (default: memberscope cache)."),
    n_bootstrap: int = typer.Option(1000, "--n-bootstrap", help="Bootstrap replicates for the CIs."),
    architecture: str = typer.Option(
        "gpt2", "--architecture", help="gpt2 (causal LM) or bert (masked LM, scored by pseudo-log-likelihood)."
    ),
    threads: int | None = typer.Option(None, "--threads", help="Torch CPU threads (default: torch's choice)."),
    no_report: bool = typer.Option(False, "--no-report", help="Do not write report.html."),
) -> None:
    """Build the self-contained LLM setting (GPT-2 or BERT on fortunes, fine-tuned with canaries; cached), audit it."""
    from memberscope.llm.audit import audit_llm
    from memberscope.llm.demo_setting import DEMO_ARCHITECTURES, DemoConfig, build_demo_setting

    _set_threads(threads)
    DEMO_ARCHITECTURES.get(architecture)  # UnknownNameError names gpt2 and bert
    out_console = console()
    config = DemoConfig(seed=seed) if architecture == "gpt2" else DemoConfig(seed=seed, architecture=architecture)
    from memberscope.progress import progress_bars

    with progress_bars() as bars:  # pre-training, fine-tuning and scoring take minutes on a CPU
        setting = build_demo_setting(config, cache_dir=cache_dir, log=out_console.print, bars=bars)
        out_console.print(f"target {setting.target_dir}\nbase (reference) {setting.base_dir}")
        result = audit_llm(
            model=setting.target_dir,
            members=setting.members,
            nonmembers=setting.nonmembers,
            reference_model=setting.base_dir,
            seed=seed,
            max_length=setting.config.context,
            n_bootstrap=n_bootstrap,
            canaries=setting.canaries,
            canary_digits=setting.config.canary_digits,
            dataset_name="fortunes (llm demo)",
            bars=bars,
        )
    _finish(result, out, report=not no_report)


@app.command("dataset-inference")
def dataset_inference_command(
    model: str | None = typer.Option(
        None, "--model", help="Local directory of a Hugging Face causal or masked LM (or --endpoint)."
    ),
    suspect: Path = typer.Option(
        ..., "--suspect", help="The texts asked about: .txt (one per line), .jsonl, .csv, .tsv or .parquet."
    ),
    validation: Path = typer.Option(
        ..., "--validation", help="Texts from the same distribution that the model certainly never saw."
    ),
    out: Path = typer.Option(..., "--out", help="Output directory for results.json and features.csv."),
    alpha: float = typer.Option(0.05, "--alpha", help="Level of the one-sided test."),
    features: str | None = typer.Option(
        None, "--features", help="Comma-separated attack features, NAME@K for Min-K's k (default: Maini et al.'s set)."
    ),
    seed: int = typer.Option(0, help="Seed of the split into halves (and of the validity guard)."),
    max_length: int = typer.Option(128, "--max-length", help="Tokens per text (longer texts are cut)."),
    text_column: str | None = typer.Option(
        None, "--text-column", help="Column (CSV/TSV/Parquet) or field (JSONL) holding the text (default: text)."
    ),
    tokenizer: Path | None = typer.Option(None, "--tokenizer", help="Tokenizer folder, if not beside the model."),
    n_bootstrap: int = typer.Option(1000, "--n-bootstrap", help="Bootstrap replicates for the validity guard's CI."),
    threads: int | None = typer.Option(None, "--threads", help="Torch CPU threads (default: torch's choice)."),
    no_report: bool = typer.Option(False, "--no-report", help="Do not write report.html."),
    endpoint: str | None = _ENDPOINT,
    endpoint_model: str | None = _ENDPOINT_MODEL,
    max_tokens: int = _MAX_TOKENS,
    request_template: str | None = _REQUEST_TEMPLATE,
    output_path: str | None = _ANSWERS_PATH,
    logprobs_path: str | None = _LOGPROBS_PATH,
    tokens_path: str | None = _TOKENS_PATH,
    api_key_env: str | None = _API_KEY,
    timeout: float = _TIMEOUT,
    max_retries: int = _RETRIES,
    query_budget: int | None = _QUERY_BUDGET,
    rate: float | None = _RATE,
    batch_size: int = _BATCH_SIZE,
    progress: bool | None = opt.PROGRESS,
) -> None:
    """Was the suspect set in the model's training data? Maini et al. (2024)'s dataset inference: a p-value.

    With --endpoint, the features come from an LLM API (Min-K%++ is left out: an API does not return the whole
    vocabulary's log-probabilities); what the server returned is kept in tokens.jsonl."""
    from memberscope.llm.dataset_inference import dataset_inference
    from memberscope.llm.texts import read_texts

    _set_threads(threads)
    target = _lm_target(
        model,
        endpoint,
        max_length=max_length,
        tokenizer=tokenizer,
        request_template=request_template,
        model_name=endpoint_model,
        max_tokens=max_tokens,
        output_path=output_path,
        logprobs_path=logprobs_path,
        tokens_path=tokens_path,
        api_key_env=api_key_env,
        timeout=timeout,
        max_retries=max_retries,
        query_budget=query_budget,
        rate_limit=rate,
        batch_size=batch_size,
    )
    names = [f.strip() for f in features.split(",") if f.strip()] if features else None
    suspect_texts = read_texts(suspect, what="suspect", text_column=text_column)
    validation_texts = read_texts(validation, what="validation", text_column=text_column)
    with _saving_server_tokens(target, out), _scoring_bars(target, progress) as bars:
        result = dataset_inference(
            model=target,
            suspect=suspect_texts,
            validation=validation_texts,
            features=names,
            alpha=alpha,
            seed=seed,
            max_length=max_length,
            tokenizer=tokenizer,
            n_bootstrap=n_bootstrap,
            bars=bars,
        )
    if endpoint is not None:
        result.results["model"]["endpoint"]["tokens_file"] = "tokens.jsonl"
    r = result.results
    out_console = console()
    c = r["counts"]
    out_console.print(
        f"{r['model']['path']} ({r['model']['kind']} LM): {c['n_suspect']} suspect, {c['n_validation']} validation "
        f"texts; aggregation fitted on {c['fit']['suspect']} + {c['fit']['validation']}, tested on "
        f"{c['test']['suspect']} + {c['test']['validation']}"
    )
    out_console.print(
        f"{r['test']['test']}: t = {r['statistic']:.3f}, p = {r['p_value']:.3g}; "
        f"held-out AUC {r['effect']['auc_held_out']:.3f}"
    )
    style = "bold red" if r["test"]["significant"] else "bold yellow"
    out_console.print(f"[{style}]{r['verdict']}[/]")
    for message in r["warnings"]:
        out_console.print(f"[yellow]warning:[/] {message}")
    paths = result.write(out)
    if not no_report:
        from memberscope.report.html import write_html

        paths["report"] = str(write_html(out))
    out_console.print(f"wrote {', '.join(paths.values())}")


@app.command("text-audit")
def text_audit(
    model: Path = typer.Option(
        ..., "--model", help="Local directory of a Hugging Face text classifier (a sequence-classification model)."
    ),
    members: Path = typer.Option(
        ..., "--members", help="Texts the model trained on, with their labels: .csv, .tsv, .parquet or .jsonl."
    ),
    nonmembers: Path = typer.Option(..., "--nonmembers", help="Labelled texts it did not train on, same distribution."),
    population: Path | None = typer.Option(
        None,
        "--population",
        help="More labelled texts no model trained on (default: a quarter of the non-members when RMIA runs).",
    ),
    text_column: str | None = typer.Option(
        None, "--text-column", help="Column (JSONL field) of the text (default: text)."
    ),
    label_column: str | None = typer.Option(
        None, "--label-column", help="Column (JSONL field) of the label, a class name or index (default: label)."
    ),
    id_column: str | None = typer.Option(
        None, "--id-column", help="Column of record ids for the outputs (default: FILE:ROW)."
    ),
    base_model: Path | None = typer.Option(
        None, "--base-model", help="The pre-trained folder the classifier was fine-tuned from (for -k > 0)."
    ),
    reference_models: int | None = typer.Option(
        None, "--reference-models", "-k", help="Reference fine-tunes of --base-model (LiRA, RMIA, shadow); default 0."
    ),
    model_param: list[str] = typer.Option(
        [], "--model-param", help="Reference fine-tuning KEY=VALUE: epochs, learning_rate, batch_size, weight_decay."
    ),
    targets: int | None = opt.TARGETS,
    attacks: str | None = opt.ATTACKS,
    max_length: int = typer.Option(128, "--max-length", help="Tokens per text (longer texts are cut)."),
    tokenizer: Path | None = typer.Option(None, "--tokenizer", help="Tokenizer folder, if not beside the model."),
    seed: int | None = opt.SEED,
    fpr: str | None = opt.FPR,
    n_bootstrap: int | None = opt.N_BOOTSTRAP,
    cache_dir: str | None = opt.CACHE_DIR,
    no_cache: bool = opt.NO_CACHE,
    n_jobs: int | None = opt.N_JOBS,
    out: Path | None = typer.Option(
        None, help="Output directory for results.json, scores.csv, roc.png and report.html."
    ),
    no_report: bool = typer.Option(False, "--no-report", help="Do not write report.html."),
    db: Path | None = typer.Option(None, "--db", help="Run-history SQLite file (default: user data dir)."),
    model_name: str | None = typer.Option(
        None, "--model-name", help="Name of the audited model, to compare its versions in `memberscope history`."
    ),
    model_version: str | None = typer.Option(None, "--model-version", help="Version of the audited model."),
    threads: int | None = typer.Option(None, "--threads", help="Torch CPU threads (default: torch's choice)."),
    progress: bool | None = opt.PROGRESS,
) -> None:
    """Audit a fine-tuned text classifier like any classifier: loss, confidence, ...; LiRA/RMIA with -k > 0."""
    from memberscope.cli.core import finish as finish_audit
    from memberscope.llm.text_audit import audit_text_classifier
    from memberscope.llm.texts import read_labelled_texts

    _set_threads(threads)
    _check_model_dir(model)
    if base_model is not None and not base_model.is_dir():
        raise InvalidInputError(
            f"--base-model {str(base_model)!r} is not a directory; expected a save_pretrained folder"
        )
    columns = {"text_column": text_column, "label_column": label_column, "id_column": id_column}
    parts = {
        what: read_labelled_texts(path, what=what, **columns)
        for what, path in (("members", members), ("non-members", nonmembers), ("population", population))
        if path is not None
    }
    values = opt.run_values(
        model_param=[],
        fpr=fpr,
        no_cache=no_cache,
        seed=seed,
        n_bootstrap=n_bootstrap,
        cache_dir=cache_dir,
        n_jobs=n_jobs,
        targets=targets,
        model_name=model_name,
        model_version=model_version,
    )
    result = audit_text_classifier(
        model,
        members=parts["members"],
        nonmembers=parts["non-members"],
        population=parts.get("population"),
        base_model=base_model,
        reference_models=reference_models or 0,
        finetune=parse_params(model_param, "--model-param"),
        max_length=max_length,
        tokenizer=tokenizer,
        attacks=attacks,
        dataset_name=members.stem,
        progress=progress,
        out=None if out is None else str(out),
        **values,
    )
    finish_audit(result, out, report=not no_report, db=db)
