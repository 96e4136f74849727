"""Per-token log-probabilities of texts under a language model, and the full-vocabulary statistics Min-K%++ needs.

Every token-level attack reads the :class:`TokenStats` computed here, so a text is run through the model
once, whatever the number of attacks (the lowercase attack needs a second pass, over the lowercased text,
and reference calibration a pass through the reference model). One scorer per kind of model:

- ``causal``: one forward pass per text; token ``t`` gets ``log p(x_t | x_<t)``.
- ``masked``: the pseudo-log-likelihood of Salazar et al. (ACL 2020, "Masked Language Model Scoring"):
  token ``t`` gets ``log p(x_t | x_\\t)``, read at position ``t`` of a copy of the text with ``x_t``
  replaced by the mask token. A text of ``n`` tokens costs ``n`` copies; copies of all texts are batched
  together.

Texts longer than the model's context are cut; :class:`TokenStats` keeps, for each text, exactly the
characters its scored tokens cover (``scored_texts``), so that attacks normalising by the text (zlib) or
rescoring it (lowercase, reference) see the same text the loss was computed on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from memberscope.exceptions import InvalidInputError, ModelOutputError
from memberscope.registry import Registry

__all__ = ["TOKEN_SCORERS", "Encoded", "TokenStats", "encode_texts", "score_texts", "tokenize_texts"]

#: Scorer per kind of language model (``LanguageModel.kind``): ``(lm, Encoded, batch_tokens, vocab_stats)``.
TOKEN_SCORERS: Registry[Callable] = Registry("language-model kind")


@dataclass
class TokenStats:
    """Per-token statistics of ``n`` texts under one model; ragged, stored flat with offsets.

    Attributes
    ----------
    logprobs : ndarray of shape (n_tokens,) — ``log p(x_t | context)`` of each scored token (the context is
        ``x_<t`` for a causal LM, every other token for a masked LM).
    mu : ndarray of shape (n_tokens,) or None — ``E_{v~p(.|context)} log p(v|context)`` (minus the entropy).
    sigma : ndarray of shape (n_tokens,) or None — standard deviation of ``log p(v|context)`` under ``p``.
    offsets : ndarray of shape (n + 1,) — text ``i`` owns ``[offsets[i], offsets[i + 1])``.
    scored_texts : the characters of each text that its scored tokens cover (the text itself unless cut).
    truncated : ndarray of shape (n,), bool — the text was longer than ``max_length`` tokens and was cut.
    max_length : tokens per text actually used (special tokens included): ``min(requested, model's limit)``.
    """

    logprobs: np.ndarray
    mu: np.ndarray | None
    sigma: np.ndarray | None
    offsets: np.ndarray
    scored_texts: list[str] | None = None
    truncated: np.ndarray | None = None
    max_length: int | None = None

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def text(self, i: int) -> slice:
        return slice(int(self.offsets[i]), int(self.offsets[i + 1]))

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def mean_logprob(self) -> np.ndarray:
        """Mean log-probability per text, shape (n,): minus the LOSS (mean cross-entropy of the scored tokens)."""
        sums = np.add.reduceat(self.logprobs, self.offsets[:-1]) if len(self.logprobs) else np.zeros(len(self))
        return sums / self.lengths


@dataclass
class Encoded:
    """Model inputs of ``n`` texts and which of their positions are scored.

    Attributes
    ----------
    ids : per text, the token ids fed to the model (special tokens included), at most ``max_length``.
    scored : per text, the positions in ``ids`` whose tokens are scored (ascending).
    scored_texts : per text, the characters the scored tokens cover.
    truncated : ndarray of shape (n,), bool.
    max_length : the length limit applied, ``min(requested, model's limit)``.
    """

    ids: list[list[int]]
    scored: list[np.ndarray]
    scored_texts: list[str]
    truncated: np.ndarray
    max_length: int


def effective_max_length(lm, max_length: int) -> int:
    """``min(max_length, the model's position limit)``; InvalidInputError below 2 tokens."""
    if max_length < 2:
        raise InvalidInputError(f"max_length must be at least 2 tokens; got {max_length}")
    return max_length if lm.max_positions is None else min(max_length, lm.max_positions)


def _pieces(tokenizer, text: str) -> tuple[list[int], list[tuple[int, int]] | None]:
    """Token ids of ``text`` without special tokens, and each token's character span (None for slow tokenizers)."""
    if getattr(tokenizer, "is_fast", False):
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        return list(enc["input_ids"]), [tuple(span) for span in enc["offset_mapping"]]
    return list(tokenizer(text, add_special_tokens=False)["input_ids"]), None


def _covered(tokenizer, text: str, ids: list[int], spans, first: int, stop: int, n_all: int) -> str:
    """The characters of ``text`` that tokens ``ids[first:stop]`` cover (the whole text when none are cut)."""
    if first == 0 and stop == n_all:
        return text
    if spans is not None:
        begin = spans[first][0] if first > 0 else 0
        end = spans[stop - 1][1] if stop < n_all else len(text)
        return text[begin:end]
    return tokenizer.decode(ids[first:stop], skip_special_tokens=True)


def _special_frame(tokenizer) -> tuple[list[int], list[int]]:
    """The special tokens the tokenizer puts before and after a text's tokens (e.g. [CLS] … [SEP])."""
    probe = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a", add_special_tokens=True)["input_ids"]
    for start in range(len(full) - len(probe) + 1):
        if full[start : start + len(probe)] == probe:
            return list(full[:start]), list(full[start + len(probe) :])
    return [], []


def encode_texts(lm, texts: list[str], *, max_length: int) -> Encoded:
    """Token ids fed to ``lm`` for each text, cut at ``min(max_length, model limit)`` tokens, and the scored positions.

    A causal LM gets the start token (BOS, else EOS) then the text, and scores every token after the first
    (without any start token the first text token is context only). A masked LM gets the tokenizer's special
    frame (e.g. ``[CLS] text [SEP]``) and scores every text token. When a text is cut, its last tokens go and the
    frame stays.

    Raises
    ------
    InvalidInputError
        ``max_length`` below 2 (or too small for a masked LM's special tokens); a text with no token to score.
    """
    limit = effective_max_length(lm, max_length)
    tokenizer = lm.tokenizer
    if lm.kind == "masked":
        head, tail = _special_frame(tokenizer)
        if limit - len(head) - len(tail) < 1:
            raise InvalidInputError(
                f"max_length {limit} leaves no room for text after the {len(head) + len(tail)} special tokens"
            )
    else:
        start = lm.start_token_id
        head, tail = ([start] if start is not None else []), []
    room = limit - len(head) - len(tail)
    ids_out, scored, covered, cut = [], [], [], np.zeros(len(texts), dtype=bool)
    for i, text in enumerate(texts):
        pieces, spans = _pieces(tokenizer, text)
        kept = pieces[:room]
        cut[i] = len(pieces) > room
        ids = [*head, *kept, *tail]
        if lm.kind == "masked":
            positions = np.arange(len(head), len(head) + len(kept))
            first = 0
        else:
            positions = np.arange(1, len(ids))
            first = 0 if head else 1
        if len(positions) == 0:
            raise InvalidInputError(
                f"text {i} ({text[:40]!r}) has no token to score after tokenization; expected non-empty text"
            )
        ids_out.append(ids)
        scored.append(positions)
        covered.append(_covered(tokenizer, text, pieces, spans, first, len(kept), len(pieces)))
    return Encoded(ids=ids_out, scored=scored, scored_texts=covered, truncated=cut, max_length=limit)


def tokenize_texts(lm, texts: list[str], *, max_length: int) -> list[list[int]]:
    """Token ids fed to the model for each text (see :func:`encode_texts`)."""
    return encode_texts(lm, texts, max_length=max_length).ids


def _vocab_moments(logp):
    """Mean and standard deviation of ``log p(v)`` under ``p`` over the last axis (centred: no cancellation)."""
    p = logp.exp()
    m = (p * logp).sum(-1)
    var = (p * (logp - m[..., None]).square()).sum(-1)
    return m, var.sqrt()


@TOKEN_SCORERS.register("causal")
def _score_causal(lm, enc: Encoded, *, batch_tokens: int, vocab_stats: bool):
    """Causal LM: one right-padded pass per text, batched by length; yields (text, log p, mu, sigma) per text."""
    import torch

    ids = enc.ids
    order = np.argsort([-len(x) for x in ids], kind="stable")
    pos = 0
    with torch.inference_mode():
        while pos < len(order):
            width = len(ids[order[pos]])
            batch = order[pos : pos + max(1, batch_tokens // width)]
            pos += len(batch)
            input_ids = torch.zeros((len(batch), width), dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, i in enumerate(batch):
                input_ids[row, : len(ids[i])] = torch.tensor(ids[i])
                mask[row, : len(ids[i])] = 1
            logits = lm.model(input_ids=input_ids, attention_mask=mask).logits[:, :-1].float()
            logp = torch.log_softmax(logits, dim=-1)
            token_lp = logp.gather(-1, input_ids[:, 1:, None])[..., 0]
            m, sd = _vocab_moments(logp) if vocab_stats else (None, None)
            for row, i in enumerate(batch):
                at = torch.as_tensor(enc.scored[i] - 1)  # logits at t-1 predict token t
                yield (
                    int(i),
                    token_lp[row, at],
                    None if m is None else m[row, at],
                    None if sd is None else sd[row, at],
                )


@TOKEN_SCORERS.register("masked")
def _score_masked(lm, enc: Encoded, *, batch_tokens: int, vocab_stats: bool):
    """Masked LM, pseudo-log-likelihood: one masked copy per scored token, copies of all texts batched by width."""
    import torch

    mask_id = getattr(lm.tokenizer, "mask_token_id", None)
    if mask_id is None:
        raise InvalidInputError(
            f"the tokenizer of masked LM {lm.path!r} has no mask token; pseudo-log-likelihood needs one"
        )
    ids = enc.ids
    order = np.argsort([-len(x) for x in ids], kind="stable")
    # Rows: (text, position) for every scored token, longest texts first.
    rows = [(int(i), int(p)) for i in order for p in enc.scored[i]]
    done: dict[int, list] = {}
    pos = 0
    with torch.inference_mode():
        while pos < len(rows):
            width = len(ids[rows[pos][0]])
            batch = rows[pos : pos + max(1, batch_tokens // width)]
            pos += len(batch)
            input_ids = torch.full((len(batch), width), int(lm.tokenizer.pad_token_id or 0), dtype=torch.long)
            attention = torch.zeros((len(batch), width), dtype=torch.long)
            for r, (i, p) in enumerate(batch):
                input_ids[r, : len(ids[i])] = torch.tensor(ids[i])
                attention[r, : len(ids[i])] = 1
                input_ids[r, p] = mask_id
            at_rows = torch.arange(len(batch))
            at_pos = torch.tensor([p for _, p in batch])
            targets = torch.tensor([ids[i][p] for i, p in batch])
            logits = lm.model(input_ids=input_ids, attention_mask=attention).logits[at_rows, at_pos].float()
            logp = torch.log_softmax(logits, dim=-1)
            token_lp = logp[at_rows, targets]
            m, sd = _vocab_moments(logp) if vocab_stats else (None, None)
            for r, (i, _) in enumerate(batch):
                parts = done.setdefault(i, [[], [], []])
                parts[0].append(token_lp[r])
                if m is not None and sd is not None:  # vocab_stats
                    parts[1].append(m[r])
                    parts[2].append(sd[r])
                if len(parts[0]) == len(enc.scored[i]):  # rows of a text are consecutive, in position order
                    del done[i]
                    yield i, *(torch.stack(xs) if xs else None for xs in parts)


def score_texts(
    lm,
    texts: list[str],
    *,
    max_length: int = 128,
    batch_tokens: int = 4096,
    vocab_stats: bool = True,
    progress: Callable[[int], None] | None = None,
) -> TokenStats:
    """Score every token of every text under ``lm`` with its kind's scorer and collect :class:`TokenStats`.

    Parameters
    ----------
    lm : :class:`~memberscope.llm.loading.LanguageModel`, or an
        :class:`~memberscope.llm.endpoint.EndpointLanguageModel` (whose server tokenizes and scores whole texts:
        ``max_length`` and ``batch_tokens`` do not apply, ``TokenStats.max_length`` is None).
    texts : the records, shape (n,).
    max_length : tokens per text, special tokens included; longer texts are cut, and the model's own limit
        applies when lower (``TokenStats.max_length`` records the one used).
    batch_tokens : padded tokens per batch (bounds memory: ``batch_tokens × vocab`` floats for a causal LM).
    vocab_stats : also compute ``mu`` and ``sigma`` over the whole vocabulary (Min-K%++).
    progress : called with the number of texts just scored, as they are (one by one for a local model, a batch of
        answers at a time for an endpoint); it sees nothing else and changes nothing.

    Raises
    ------
    InvalidInputError
        A text with no token to score; ``max_length`` below 2.
    ModelOutputError
        NaN or infinite log-probabilities.
    """
    remote = getattr(lm, "token_stats", None)
    if remote is not None:  # an endpoint: its server tokenizes and scores (memberscope.llm.endpoint)
        return remote(list(texts), vocab_stats=vocab_stats, progress=progress)
    scorer = TOKEN_SCORERS.get(getattr(lm, "kind", "causal"))
    enc = encode_texts(lm, texts, max_length=max_length)
    lengths = np.array([len(s) for s in enc.scored], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    logprobs = np.empty(offsets[-1], dtype=np.float64)
    mu = np.empty_like(logprobs) if vocab_stats else None
    sigma = np.empty_like(logprobs) if vocab_stats else None
    for i, lp, m, sd in scorer(lm, enc, batch_tokens=batch_tokens, vocab_stats=vocab_stats):
        span = slice(int(offsets[i]), int(offsets[i + 1]))
        logprobs[span] = lp.double().numpy()
        if mu is not None and sigma is not None:  # vocab_stats
            mu[span] = m.double().numpy()
            sigma[span] = sd.double().numpy()
        if progress is not None:
            progress(1)
    if not np.all(np.isfinite(logprobs)):
        raise ModelOutputError(f"model {lm.path!r} produced NaN or infinite log-probabilities")
    return TokenStats(
        logprobs=logprobs,
        mu=mu,
        sigma=sigma,
        offsets=offsets,
        scored_texts=enc.scored_texts,
        truncated=enc.truncated,
        max_length=enc.max_length,
    )
