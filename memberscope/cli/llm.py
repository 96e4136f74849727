"""Language-model audit commands: llm-audit (a user's local HF model) and llm-demo (the self-contained setting)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from memberscope.cli._app import app, console, parse_params
from memberscope.exceptions import InvalidInputError


def _llm_table(results: dict[str, Any]):
    from rich.table import Table

    llm = results["llm"]
    table = Table(title=f"{llm['model']}: {llm['n_members']} members, {llm['n_nonmembers']} non-members (95% CIs)")
    for col in ("attack", "AUC", "TPR @ 1% FPR", "TPR @ 0.1% FPR"):
        table.add_column(col, justify="left" if col == "attack" else "right")
    for name, m in results["attacks"].items():
        cells = [f"{m['auc']:.3f} [{m['auc_ci'][0]:.3f}, {m['auc_ci'][1]:.3f}]"]
        for key in ("0.01", "0.001"):
            if key in m["tpr_at_fpr"]:
                lo, hi = m["tpr_at_fpr_ci"][key]
                mark = "" if m["fpr_resolvable"].get(key, True) else " *"
                cells.append(f"{100 * m['tpr_at_fpr'][key]:.1f}% [{100 * lo:.1f}%, {100 * hi:.1f}%]{mark}")
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


@app.command("llm-audit")
def llm_audit(
    model: Path = typer.Option(..., "--model", help="Local directory of a Hugging Face causal LM and its tokenizer."),
    members: Path = typer.Option(..., "--members", help="Texts the model trained on: one per line, or JSONL 'text'."),
    nonmembers: Path = typer.Option(..., "--nonmembers", help="Texts it did not train on, from the same distribution."),
    out: Path = typer.Option(..., "--out", help="Output directory for results.json, scores.csv, roc.png."),
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
    threads: int | None = typer.Option(None, "--threads", help="Torch CPU threads (default: torch's choice)."),
    no_report: bool = typer.Option(False, "--no-report", help="Do not write report.html."),
) -> None:
    """Audit a local causal language model with token-level membership attacks."""
    from memberscope.llm.audit import audit_llm, read_texts

    _set_threads(threads)
    if not model.is_dir():
        raise InvalidInputError(f"--model {str(model)!r} is not a directory; expected a save_pretrained folder")
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
    result = audit_llm(
        model=model,
        members=read_texts(members, what="members"),
        nonmembers=read_texts(nonmembers, what="non-members"),
        reference_model=reference_model,
        attacks=_attack_list(attacks),
        attack_params=params,
        seed=seed,
        max_length=max_length,
        n_bootstrap=n_bootstrap,
    )
    _finish(result, out, report=not no_report)


@app.command("llm-demo")
def llm_demo(
    out: Path = typer.Option(Path("runs/llm-demo"), help="Output directory."),
    seed: int = typer.Option(0, help="Seed of the demo setting and the audit."),
    cache_dir: str | None = typer.Option(None, help="Where the demo models are cached (default: memberscope cache)."),
    n_bootstrap: int = typer.Option(1000, "--n-bootstrap", help="Bootstrap replicates for the CIs."),
    threads: int | None = typer.Option(None, "--threads", help="Torch CPU threads (default: torch's choice)."),
    no_report: bool = typer.Option(False, "--no-report", help="Do not write report.html."),
) -> None:
    """Build the self-contained LLM setting (GPT-2 on fortunes, fine-tuned with canaries; cached) and audit it."""
    from memberscope.llm.audit import audit_llm
    from memberscope.llm.demo_setting import DemoConfig, build_demo_setting

    _set_threads(threads)
    out_console = console()
    setting = build_demo_setting(DemoConfig(seed=seed), cache_dir=cache_dir, log=out_console.print)
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
    )
    _finish(result, out, report=not no_report)
