"""Token-level membership attacks on causal LMs, all computed from cached :class:`TokenStats`.

Every score is per text and follows the project's convention: higher = more likely a member.

=========== ============================================================ =====================
name        score                                                        passes it reads
=========== ============================================================ =====================
loss        mean log p(x_t|x_<t) (minus the LOSS; Yeom et al. 2018)      target
zlib        −LOSS / zlib-compressed bytes (Carlini et al. 2021)          target
lowercase   LOSS(lowercased) − LOSS(text) (Carlini et al. 2021)          target + lowercased
min-k       mean of the lowest k% token log-probs (Shi et al. 2024)      target
min-k++     mean of the lowest k% of (log p − μ)/σ (Zhang et al. 2024)   target (vocab stats)
reference   LOSS(reference) − LOSS(target) (Carlini et al. 2021)         target + reference
=========== ============================================================ =====================

For a masked LM, ``log p(x_t|x_<t)`` is the pseudo-log-likelihood term ``log p(x_t|x_\\t)`` (see
:mod:`~memberscope.llm.scoring`). Every score is computed on the scored tokens only: when a text is cut at
``max_length``, zlib compresses the characters those tokens cover, and the lowercase and reference passes
rescore those characters, not the whole string.
"""

from __future__ import annotations

import zlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from memberscope.exceptions import InvalidInputError
from memberscope.llm.scoring import TokenStats
from memberscope.registry import Registry

__all__ = ["LLM_ATTACKS", "LLMSignals", "TokenAttack", "create", "lowest_k_mean"]

LLM_ATTACKS: Registry = Registry("llm attack")
SIGMA_FLOOR = 1e-6


@dataclass
class LLMSignals:
    """What the attacks read: the texts and the cached passes (``None`` where a pass was not run)."""

    texts: list[str]
    target: TokenStats
    lowercase: TokenStats | None = None
    reference: TokenStats | None = None


class TokenAttack(ABC):
    """One attack: ``needs`` names the passes beyond the target's ("lowercase", "reference", "vocab")."""

    name: ClassVar[str]
    needs: ClassVar[frozenset[str]] = frozenset()
    #: A one-line description and the paper followed, for listings (``memberscope attacks``).
    summary: ClassVar[str] = ""
    paper: ClassVar[str] = ""

    def params(self) -> dict[str, Any]:
        return {}

    @abstractmethod
    def score(self, signals: LLMSignals) -> np.ndarray:
        """Scores of shape (n_texts,), higher = member."""


def create(name: str, **params: Any) -> TokenAttack:
    """An attack by registry name, e.g. ``create("min-k", k=0.1)``."""
    cls = LLM_ATTACKS.get(name)
    try:
        return cls(**params)
    except TypeError as exc:
        raise InvalidInputError(f"bad parameters {params} for llm attack {name!r}: {exc}") from None


def lowest_k_mean(values: np.ndarray, offsets: np.ndarray, k: float) -> np.ndarray:
    """Per text, the mean of its ``max(1, floor(k·n))`` smallest values (n = the text's token count)."""
    out = np.empty(len(offsets) - 1)
    for i in range(len(out)):
        chunk = values[offsets[i] : offsets[i + 1]]
        m = max(1, int(k * len(chunk)))
        out[i] = np.partition(chunk, m - 1)[:m].mean()
    return out


def _check_k(k: float) -> float:
    k = float(k)
    if not 0.0 < k <= 1.0:
        raise InvalidInputError(f"k must be a fraction of tokens in (0, 1]; got {k}")
    return k


def _need(signals: LLMSignals, attr: str, attack: str) -> TokenStats:
    stats = getattr(signals, attr)
    if stats is None:
        raise InvalidInputError(f"llm attack {attack!r} needs the {attr} pass, which was not run")
    return stats


@LLM_ATTACKS.register("loss")
class LossAttack(TokenAttack):
    name = "loss"
    summary = "Mean token log-probability (minus the loss)."
    paper = 'Yeom et al., "Privacy Risk in Machine Learning", CSF 2018'

    def score(self, signals: LLMSignals) -> np.ndarray:
        return signals.target.mean_logprob()


@LLM_ATTACKS.register("zlib")
class ZlibAttack(TokenAttack):
    name = "zlib"
    summary = "Loss over the text's zlib-compressed length."
    paper = 'Carlini et al., "Extracting Training Data from Large Language Models", USENIX Security 2021'

    def score(self, signals: LLMSignals) -> np.ndarray:
        texts = signals.target.scored_texts if signals.target.scored_texts is not None else signals.texts
        entropy = np.array([len(zlib.compress(t.encode("utf-8"))) for t in texts], dtype=np.float64)
        return signals.target.mean_logprob() / entropy


@LLM_ATTACKS.register("lowercase")
class LowercaseAttack(TokenAttack):
    name = "lowercase"
    summary = "Loss of the lowercased text minus the text's."
    paper = 'Carlini et al., "Extracting Training Data from Large Language Models", USENIX Security 2021'
    needs = frozenset({"lowercase"})

    def score(self, signals: LLMSignals) -> np.ndarray:
        lower = _need(signals, "lowercase", self.name)
        return signals.target.mean_logprob() - lower.mean_logprob()


@LLM_ATTACKS.register("min-k")
class MinKAttack(TokenAttack):
    name = "min-k"
    summary = "Mean of the lowest k% token log-probabilities."
    paper = 'Shi et al., "Detecting Pretraining Data from Large Language Models", ICLR 2024'

    def __init__(self, k: float = 0.2):
        self.k = _check_k(k)

    def params(self) -> dict[str, Any]:
        return {"k": self.k}

    def score(self, signals: LLMSignals) -> np.ndarray:
        return lowest_k_mean(signals.target.logprobs, signals.target.offsets, self.k)


@LLM_ATTACKS.register("min-k++")
class MinKPlusPlusAttack(TokenAttack):
    name = "min-k++"
    summary = "Min-k% of token log-probabilities standardized over the vocabulary."
    paper = 'Zhang et al., "Min-K%++: Improved Baseline for Detecting Pre-Training Data from LLMs", 2024'
    needs = frozenset({"vocab"})

    def __init__(self, k: float = 0.2):
        self.k = _check_k(k)

    def params(self) -> dict[str, Any]:
        return {"k": self.k}

    def score(self, signals: LLMSignals) -> np.ndarray:
        t = signals.target
        if t.mu is None or t.sigma is None:
            raise InvalidInputError("llm attack 'min-k++' needs the full-vocabulary stats of the target pass")
        z = (t.logprobs - t.mu) / np.maximum(t.sigma, SIGMA_FLOOR)
        return lowest_k_mean(z, t.offsets, self.k)


@LLM_ATTACKS.register("reference")
class ReferenceAttack(TokenAttack):
    name = "reference"
    summary = "Loss of a reference LM minus the target's."
    paper = 'Carlini et al., "Extracting Training Data from Large Language Models", USENIX Security 2021'
    needs = frozenset({"reference"})

    def score(self, signals: LLMSignals) -> np.ndarray:
        ref = _need(signals, "reference", self.name)
        return signals.target.mean_logprob() - ref.mean_logprob()


def compute_signals(
    lm, texts: list[str], attacks: list[TokenAttack], *, reference=None, max_length: int = 128, bars=None
) -> tuple[LLMSignals, dict[str, float]]:
    """Run only the passes ``attacks`` need, each once; returns the signals and seconds per pass.

    The lowercase and reference passes score the characters the target pass scored (``scored_texts``), so a
    text cut at ``max_length`` is compared with itself, cut at the same place. ``bars`` (a
    ``rich.progress.Progress``), when given, gets a task per pass with the number of texts as its total, advanced
    as texts are scored.
    """
    import time

    from memberscope.llm.scoring import score_texts

    needs = set().union(*(a.needs for a in attacks)) if attacks else set()
    if "reference" in needs and reference is None:
        names = [a.name for a in attacks if "reference" in a.needs]
        raise InvalidInputError(f"llm attacks {names} need a reference model (--reference-model DIR)")

    def counted(description: str):
        if bars is None:
            return None
        task = bars.add_task(description, total=len(texts))
        return lambda n: bars.advance(task, n)

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    target = score_texts(
        lm, texts, max_length=max_length, vocab_stats="vocab" in needs, progress=counted("scoring texts")
    )
    signals = LLMSignals(texts=list(texts), target=target)
    timings["target"] = time.perf_counter() - t0
    scored = signals.target.scored_texts if signals.target.scored_texts is not None else signals.texts
    if "lowercase" in needs:
        t0 = time.perf_counter()
        signals.lowercase = score_texts(
            lm,
            [t.lower() for t in scored],
            max_length=max_length,
            vocab_stats=False,
            progress=counted("scoring lowercased texts"),
        )
        timings["lowercase"] = time.perf_counter() - t0
    if "reference" in needs:
        t0 = time.perf_counter()
        signals.reference = score_texts(
            reference, scored, max_length=max_length, vocab_stats=False, progress=counted("reference model scoring")
        )
        timings["reference"] = time.perf_counter() - t0
    return signals, timings


def score_attacks(
    lm, texts: list[str], attacks: list[TokenAttack], *, reference=None, max_length: int = 128, shared: bool = True
) -> dict[str, np.ndarray]:
    """Scores of every attack; ``shared=False`` runs each attack's passes on its own (for tests and benchmarks)."""
    if shared:
        signals, _ = compute_signals(lm, texts, attacks, reference=reference, max_length=max_length)
        return {a.name: a.score(signals) for a in attacks}
    out = {}
    for attack in attacks:
        signals, _ = compute_signals(lm, texts, [attack], reference=reference, max_length=max_length)
        out[attack.name] = attack.score(signals)
    return out
