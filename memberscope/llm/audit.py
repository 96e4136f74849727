"""The LLM audit pipeline: texts → one pass per model → token-level attacks → metrics, canaries, validity guard.

It only wires the pieces; ``results.json`` follows the audit core's schema plus ``"kind": "llm"`` and an
``"llm"`` block (see /work/HELPERS.md's contract): model, reference model, counts, canary exposure by
repetitions (or null) and the bag-of-words validity baseline.
"""

from __future__ import annotations

import time
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from memberscope import __version__
from memberscope.exceptions import InvalidInputError
from memberscope.llm import attacks as llm_attacks
from memberscope.llm.canaries import Canary, canary_exposure
from memberscope.llm.loading import LM_KINDS, LanguageModel, load_language_model
from memberscope.llm.texts import read_texts

if TYPE_CHECKING:
    from memberscope.llm.scoring import TokenStats

__all__ = ["DEFAULT_ATTACKS", "audit_llm", "model_block", "read_texts", "text_excerpt", "truncation_warning"]

DEFAULT_ATTACKS = ("loss", "zlib", "lowercase", "min-k", "min-k++", "reference")
#: How each kind of model's tokens are scored, in results.json's words.
SCORING = {
    "causal": "next-token",
    "masked": "pseudo-log-likelihood (Salazar et al. 2020)",
    "endpoint": "next-token log-probabilities computed by the server (echo + logprobs), on its own tokenization",
}


def _as_lm(model, what: str, tokenizer=None) -> LanguageModel:
    if isinstance(model, LanguageModel) or hasattr(model, "token_stats"):  # a local model, or an endpoint
        return model
    return load_language_model(model, what=what, tokenizer=tokenizer)


def truncation_warning(stats, requested: int) -> str | None:
    """A warning naming how many texts were cut at ``stats.max_length`` tokens (and which), or None."""
    cut = np.flatnonzero(stats.truncated) if stats.truncated is not None else np.array([], dtype=int)
    if len(cut) == 0:
        return None
    limit = stats.max_length
    why = "" if limit == requested else f" (the model's limit; {requested} was requested)"
    shown = ", ".join(str(int(i)) for i in cut[:10]) + (" ..." if len(cut) > 10 else "")
    return (
        f"{len(cut)} of {len(stats)} texts are longer than max_length {limit} tokens{why} and were cut: every "
        f"attack scores only their first tokens (records {shown}); raise --max-length if the model allows it"
    )


def _n_truncated(stats: TokenStats) -> int:
    """How many texts ``stats`` records as cut at its ``max_length`` (0 when it records no truncation)."""
    return 0 if stats.truncated is None else int(stats.truncated.sum())


def model_block(lm: LanguageModel) -> dict[str, Any]:
    """What was loaded: the folder, its kind and architecture, and where the tokenizer came from."""
    return {"path": lm.path, "kind": lm.kind, "architecture": lm.architecture, "tokenizer": lm.tokenizer_path}


def audit_llm(
    *,
    model,
    members: list[str],
    nonmembers: list[str],
    reference_model=None,
    attacks: list[str] | tuple[str, ...] | None = None,
    attack_params: dict[str, dict[str, Any]] | None = None,
    seed: int = 0,
    max_length: int = 128,
    n_bootstrap: int = 1000,
    fprs: tuple[float, ...] | None = None,
    confidence: float = 0.95,
    canaries: list[Canary] | None = None,
    canary_digits: int = 6,
    canary_candidates: int | None = 2000,
    validity: bool = True,
    dataset_name: str = "llm-records",
    tokenizer=None,
    reference_tokenizer=None,
    bars=None,
):
    """Audit a language model on texts it was (members) and was not (non-members) trained on.

    A causal LM is scored by next-token log-probabilities, a masked LM by pseudo-log-likelihood; the
    folder's config decides (:func:`~memberscope.llm.loading.load_language_model`).

    Parameters
    ----------
    model, reference_model : a local ``save_pretrained`` directory, a loaded
        :class:`~memberscope.llm.loading.LanguageModel`, or an
        :class:`~memberscope.llm.endpoint.EndpointLanguageModel` (an LLM API: its server tokenizes and scores whole
        texts, ``llm.max_length`` is null, and attacks it cannot serve, Min-K%++, are left out with a warning or
        refused when asked for); the reference is optional (the ``reference`` attack).
    attacks : names from :data:`~memberscope.llm.attacks.LLM_ATTACKS`; default: all, ``reference``
        only when a reference model is given.
    canaries : inserted secrets to measure exposure on (``None``: ``llm.canaries`` is null).
    max_length : tokens per text; the model's own limit applies when lower, and ``llm.max_length`` records the
        one used (``llm.max_length_requested`` the one asked for); cut texts are counted in a warning.
    tokenizer, reference_tokenizer : tokenizer folders, when not saved beside the models.
    bars : a ``rich.progress.Progress`` (:func:`memberscope.progress.progress_bars`) that shows every scoring pass
        (texts scored of the total), the canary candidates and the attacks' bootstrap metrics; None: nothing shown.

    Returns
    -------
    :class:`~memberscope.results.AuditResult` (``records`` index the members first, then the non-members).
    """
    from memberscope.engine.evaluation import vulnerable_records
    from memberscope.metrics import DEFAULT_FPRS, evaluate
    from memberscope.results import AuditResult, Results

    started = time.perf_counter()
    if not members or not nonmembers:
        raise InvalidInputError(
            f"need at least one member and one non-member text; got {len(members)} and {len(nonmembers)}"
        )
    fprs = tuple(fprs or DEFAULT_FPRS)
    target = _as_lm(model, "model", tokenizer)
    reference = _as_lm(reference_model, "reference model", reference_tokenizer) if reference_model is not None else None
    unavailable = dict(getattr(target, "unavailable_attacks", {}))
    asked = [a for a in (attacks or []) if a in unavailable]
    if asked:
        raise InvalidInputError(f"llm attack {asked[0]!r} cannot run on {target.path}: {unavailable[asked[0]]}")
    names = list(attacks) if attacks else [a for a in DEFAULT_ATTACKS if a != "reference" or reference is not None]
    skipped = [a for a in names if a in unavailable]
    names = [a for a in names if a not in unavailable]
    if canaries and target.kind not in LM_KINDS:
        raise InvalidInputError(f"canary exposure needs a local model's tokenizer; {target.path} is {target.kind}")
    params = attack_params or {}
    unknown = [p for p in params if p not in names]
    if unknown:
        raise InvalidInputError(f"parameters given for attacks {unknown} that are not run; running {names}")
    instances = [llm_attacks.create(n, **params.get(n, {})) for n in names]

    # 1. One pass per text through the target (and the lowercase/reference passes the attacks need).
    texts = list(members) + list(nonmembers)
    member = np.r_[np.ones(len(members), bool), np.zeros(len(nonmembers), bool)]
    signals, pass_seconds = llm_attacks.compute_signals(
        target, texts, instances, reference=reference, max_length=max_length, bars=bars
    )
    n_tokens = int(signals.target.lengths.sum())

    # 2. Attacks and their metrics.
    run_warnings: list[str] = [
        f"while loading {lm.path}: {m}" for lm in (target, reference) if lm for m in lm.load_warnings
    ]
    run_warnings += [unavailable[a] + " (left out of the default attacks)" for a in skipped]
    if (cut := truncation_warning(signals.target, max_length)) is not None:
        run_warnings.append(cut)
    if signals.reference is not None and (n_ref := _n_truncated(signals.reference)):
        run_warnings.append(
            f"{n_ref} texts were cut further by the reference model's limit of {signals.reference.max_length} "
            "tokens: for them the reference attack compares the target's loss with the reference's on a shorter text"
        )
    used_length = None if signals.target.max_length is None else int(signals.target.max_length)
    scores: dict[str, np.ndarray] = {}
    results_attacks: dict[str, Any] = {}
    metrics_task = None if bars is None else bars.add_task(f"metrics ({n_bootstrap} bootstrap)", total=len(instances))
    for attack in instances:
        t0 = time.perf_counter()
        score = np.asarray(attack.score(signals), dtype=np.float64)
        t1 = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            metrics = evaluate(member, score, fprs=fprs, n_bootstrap=n_bootstrap, confidence=confidence, seed=seed)
        run_warnings += [str(w.message) for w in caught if str(w.message) not in run_warnings]
        entry = metrics.to_dict()
        entry["params"] = attack.params()
        entry["passes"] = sorted({"target", *(n for n in attack.needs if n != "vocab")})
        entry["timings"] = {"score_seconds": round(t1 - t0, 4), "metrics_seconds": round(time.perf_counter() - t1, 4)}
        results_attacks[attack.name] = entry
        scores[attack.name] = score
        if bars is not None:
            bars.advance(metrics_task)

    # 3. Canaries and the validity guard.
    canary_block = None
    if canaries:
        canary_block = canary_exposure(
            target,
            canaries,
            n_digits=canary_digits,
            n_candidates=canary_candidates,
            seed=seed,
            # used_length is None for an endpoint, which tokenizes itself and ignores max_length
            max_length=max_length if used_length is None else used_length,
            n_bootstrap=n_bootstrap,
            bars=bars,
        )
    validity_block = None
    if validity:
        validity_block = _validity(texts, member, seed=seed, n_bootstrap=n_bootstrap, confidence=confidence)
        if validity_block["warning"]:
            run_warnings.append(validity_block["warning"])

    records = np.arange(len(texts))
    scoring_seconds = sum(pass_seconds.values())
    document: dict[str, Any] = {
        "schema_version": "2.0",
        "memberscope_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "kind": "llm",
        "config": {
            "attacks": names,
            "attack_params": {a.name: a.params() for a in instances},
            "seed": seed,
            "max_length": used_length,
            "max_length_requested": max_length,
            "n_bootstrap": n_bootstrap,
            "fprs": list(fprs),
            "confidence": confidence,
        },
        "seeds": {"seed": seed},
        "dataset": {"name": dataset_name, "source": "user", "n_records": len(texts)},
        "game": {
            "pool_size": len(texts),
            "population_size": 0,
            "n_members": len(members),
            "n_nonmembers": len(nonmembers),
            "n_reference_models": int(reference is not None),
            "reference_design": "records 0..n_members-1 are members, the rest non-members (as supplied)",
        },
        "target": {
            "model": target.path,
            "user_supplied": True,
            **{k: v for k, v in model_block(target).items() if k != "path"},
        },
        "attacks": results_attacks,
        "llm": {
            "model": target.path,
            "reference_model": reference.path if reference is not None else None,
            "model_kind": target.kind,
            "architecture": target.architecture,
            "tokenizer": target.tokenizer_path,
            "scoring": SCORING[target.kind],
            "endpoint": target.describe() if hasattr(target, "describe") else None,
            "n_members": len(members),
            "n_nonmembers": len(nonmembers),
            "max_length": used_length,
            "max_length_requested": max_length,
            "n_truncated": _n_truncated(signals.target),
            "n_tokens_scored": n_tokens,
            "pass_seconds": {k: round(v, 4) for k, v in pass_seconds.items()},
            "tokens_per_second": round(n_tokens / pass_seconds["target"], 1) if pass_seconds["target"] > 0 else None,
            "canaries": canary_block["by_repetitions"] if canary_block else None,
            "canary_details": {k: v for k, v in canary_block.items() if k != "by_repetitions"}
            if canary_block
            else None,
            "validity": {k: v for k, v in validity_block.items() if k != "scores"} if validity_block else None,
        },
        "timings": {"scoring_seconds": round(scoring_seconds, 3), "total_seconds": 0.0},
        "warnings": run_warnings,
    }
    results = Results.from_dict(document)
    results.vulnerable_records = vulnerable_records(results.attacks, scores, records, member, None, [])
    for row in results.vulnerable_records.get("records", []):  # the text itself, not only its index
        row["text"] = text_excerpt(texts[int(row["record"])])
    results.timings["total_seconds"] = round(time.perf_counter() - started, 3)
    return AuditResult(
        results=results, records=records, member=member, labels=np.zeros(len(texts), np.int64), scores=scores
    )


EXCERPT_CHARS = 120
"""Characters of a text shown in the most-vulnerable-records table (``results.json`` and the report)."""


def text_excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """``text`` on one line (runs of whitespace as one space), cut to ``limit`` characters with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def _validity(texts, member, *, seed: int, n_bootstrap: int, confidence: float) -> dict[str, Any]:
    from memberscope.llm.validity import bag_of_words_baseline

    return bag_of_words_baseline(texts, member, seed=seed, n_bootstrap=n_bootstrap, confidence=confidence)
