"""Secret-Sharer canaries (Carlini et al., USENIX Security 2019): random secrets inserted into training data.

A canary is a fixed prefix followed by a random secret of ``n_digits`` space-separated digits, drawn
from the space ``R`` of all ``10**n_digits`` secrets. Its exposure is ``log2 |R| − log2 rank``, where
``rank`` is the canary's position when every secret in ``R`` is sorted by the model's log-likelihood
of ``prefix + secret`` (rank 1 = most likely). Exposure near ``log2 |R|`` means the model singles the
inserted secret out; near 1 (the mean over a random secret) means it does not.

The rank is exact when ``R`` is enumerated; otherwise it is estimated from ``n_candidates`` secrets
drawn uniformly from ``R`` (the paper's sampling estimate, §4.2), and, when no sampled candidate is
as likely as the canary, extrapolated from a skew-normal fit of the candidates' log-perplexities
(the paper's §4.3), capped at ``log2 |R|``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from memberscope.exceptions import InvalidInputError

__all__ = ["Canary", "canary_exposure", "make_canaries", "sequence_logprob"]

DEFAULT_PREFIX = "my PIN is "


@dataclass(frozen=True)
class Canary:
    """One inserted secret: ``text`` is ``prefix + secret``; it appears ``repetitions`` times in the training set."""

    secret: str
    repetitions: int
    prefix: str = DEFAULT_PREFIX

    @property
    def text(self) -> str:
        return self.prefix + self.secret

    def to_dict(self) -> dict[str, Any]:
        return {"secret": self.secret, "repetitions": self.repetitions, "prefix": self.prefix}


def _secret(digits) -> str:
    return " ".join(str(int(d)) for d in digits)


def _secret_index(secret: str) -> int:
    return int(secret.replace(" ", ""))


def make_canaries(
    *,
    repetitions: tuple[int, ...] = (1, 4, 16),
    per_repetition: int = 5,
    n_digits: int = 6,
    prefix: str = DEFAULT_PREFIX,
    seed: int = 0,
) -> list[Canary]:
    """``per_repetition`` canaries with distinct random secrets for each repetition count."""
    if n_digits < 1 or per_repetition < 1 or any(r < 1 for r in repetitions):
        raise InvalidInputError(
            f"canaries need n_digits >= 1, per_repetition >= 1 and repetitions >= 1; "
            f"got {n_digits}, {per_repetition}, {list(repetitions)}"
        )
    total = per_repetition * len(repetitions)
    space = 10**n_digits
    if total > space:
        raise InvalidInputError(f"{total} distinct canaries do not fit in a space of {space} secrets")
    rng = np.random.default_rng(seed)
    indices = rng.choice(space, size=total, replace=False)
    out = []
    for j, reps in enumerate(repetitions):
        for i in indices[j * per_repetition : (j + 1) * per_repetition]:
            out.append(Canary(secret=_secret(f"{int(i):0{n_digits}d}"), repetitions=int(reps), prefix=prefix))
    return out


def sequence_logprob(lm, texts: list[str], *, max_length: int = 128, progress=None) -> np.ndarray:
    """Total log-likelihood ``log p(text)`` of each text under ``lm`` (shape (n,)), from one pass each; ``progress``
    is called with the number of texts scored as they are (:func:`~memberscope.llm.scoring.score_texts`)."""
    from memberscope.llm.scoring import score_texts

    stats = score_texts(lm, texts, max_length=max_length, vocab_stats=False, progress=progress)
    return np.add.reduceat(stats.logprobs, stats.offsets[:-1])


def canary_exposure(
    lm,
    canaries: list[Canary],
    *,
    n_digits: int,
    n_candidates: int | None = 2000,
    seed: int = 0,
    max_length: int = 128,
    n_bootstrap: int = 1000,
    fprs=(0.1, 0.01),
    bars=None,
) -> dict[str, Any]:
    """Exposure of every canary, and per repetition count its mean with a bootstrap CI and the TPR on canaries.

    Parameters
    ----------
    n_candidates : random secrets the rank is estimated against; ``None`` (or ``>= 10**n_digits``)
        enumerates the whole space and gives the exact rank.
    bars : a ``rich.progress.Progress`` that gets a task for scoring the candidate secrets and the canaries.

    Returns
    -------
    ``{"space_size", "max_exposure", "method", "n_candidates", "per_canary": [...],
    "by_repetitions": {"<r>": {"n_canaries", "exposure_mean", "exposure_ci", "exposures", "auc", "auc_ci",
    "tpr_at_fpr", "tpr_at_fpr_ci"}}}``. The TPR treats the canaries as members and the candidate secrets
    (never inserted) as non-members, scored by log-likelihood. With fewer than 5 canaries (or candidates)
    at a repetition count, which ``memberscope.metrics.evaluate`` refuses, its ``auc``/``auc_ci`` are None
    and its ``tpr_at_fpr``/``tpr_at_fpr_ci`` empty.
    """
    from memberscope.metrics import MIN_MEMBERS, MIN_NONMEMBERS, evaluate

    if not canaries:
        raise InvalidInputError("no canaries to measure; expected at least one")
    prefixes = {c.prefix for c in canaries}
    if len(prefixes) != 1:
        raise InvalidInputError(f"canaries must share one prefix to be ranked together; got {sorted(prefixes)}")
    prefix = prefixes.pop()
    space = 10**n_digits
    inserted = {_secret_index(c.secret) for c in canaries}
    exact = n_candidates is None or n_candidates >= space
    rng = np.random.default_rng(seed)
    if exact or n_candidates is None:  # (the second test tells the type checker)
        cand_idx = np.arange(space)
    else:
        pool = rng.choice(space, size=min(space, n_candidates + len(inserted)), replace=False)
        cand_idx = np.array([i for i in pool if int(i) not in inserted][:n_candidates])
    cand_secrets = [_secret(f"{int(i):0{n_digits}d}") for i in cand_idx]
    candidates = [prefix + s for s in cand_secrets]
    task = None if bars is None else bars.add_task("scoring canary candidates", total=len(candidates) + len(canaries))

    def counted(n: int) -> None:
        if bars is not None:
            bars.advance(task, n)

    cand_lp = sequence_logprob(lm, candidates, max_length=max_length, progress=counted)
    canary_lp = sequence_logprob(lm, [c.text for c in canaries], max_length=max_length, progress=counted)
    log2_space = math.log2(space)

    tail = None
    if not exact and np.any([np.sum(cand_lp >= lp) == 0 for lp in canary_lp]):
        from scipy.stats import skewnorm

        tail = skewnorm(*skewnorm.fit(-cand_lp))  # log-perplexities of random secrets (paper §4.3)
    per_canary = []
    for c, lp in zip(canaries, canary_lp, strict=True):
        if exact:
            rank = 1 + int(np.sum(cand_lp > lp))  # the canary itself is among the candidates, never above itself
            exposure, method = log2_space - math.log2(rank), "exact"
        elif (above := int(np.sum(cand_lp >= lp))) > 0:
            rank = 1 + (space - 1) * above / len(cand_lp)
            exposure, method = log2_space - math.log2(rank), "sampled"
        else:
            assert tail is not None  # fitted above whenever a canary scores above every candidate
            p = max(float(tail.cdf(-lp)), 1.0 / space)
            rank = 1 + (space - 1) * p
            exposure, method = min(log2_space, -math.log2(p)), "extrapolated"
        row = {**c.to_dict(), "log_likelihood": float(lp), "rank": float(rank), "exposure": float(exposure)}
        per_canary.append({**row, "method": method})

    non_lp = cand_lp[~np.isin(cand_idx, list(inserted))] if exact else cand_lp
    by_reps: dict[str, Any] = {}
    boot = np.random.default_rng(seed + 1)
    for reps in sorted({c.repetitions for c in canaries}):
        rows = [r for r in per_canary if r["repetitions"] == reps]
        exp = np.array([r["exposure"] for r in rows])
        means = exp[boot.integers(0, len(exp), size=(n_bootstrap, len(exp)))].mean(axis=1) if n_bootstrap else exp
        lp = np.array([r["log_likelihood"] for r in rows])
        member = np.r_[np.ones(len(lp), bool), np.zeros(len(non_lp), bool)]
        if len(lp) >= MIN_MEMBERS and len(non_lp) >= MIN_NONMEMBERS:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                metrics = evaluate(member, np.r_[lp, non_lp], fprs=fprs, n_bootstrap=n_bootstrap, seed=seed).to_dict()
        else:  # evaluate refuses so few canaries: no AUC or TPR for this repetition count
            metrics = {"auc": None, "auc_ci": None, "tpr_at_fpr": {}, "tpr_at_fpr_ci": {}}
        by_reps[str(reps)] = {
            "n_canaries": len(rows),
            "exposure_mean": float(exp.mean()),
            "exposure_ci": [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))],
            "exposures": [float(e) for e in exp],
            "auc": metrics["auc"],
            "auc_ci": metrics["auc_ci"],
            "tpr_at_fpr": metrics["tpr_at_fpr"],
            "tpr_at_fpr_ci": metrics["tpr_at_fpr_ci"],
        }
    return {
        "space_size": space,
        "max_exposure": log2_space,
        "method": "exact" if exact else "sampled",
        "n_candidates": len(cand_lp),
        "prefix": prefix,
        "per_canary": per_canary,
        "by_repetitions": by_reps,
    }
