"""One forward pass per text: per-token log-probabilities and the full-vocabulary statistics Min-K%++ needs.

Every token-level attack reads the :class:`TokenStats` computed here, so a text is run through the
model once, whatever the number of attacks (the lowercase attack needs a second pass, over the
lowercased text, and reference calibration a pass through the reference model).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from memberscope.exceptions import InvalidInputError, ModelOutputError

__all__ = ["TokenStats", "score_texts", "tokenize_texts"]


@dataclass
class TokenStats:
    """Per-token statistics of ``n`` texts under one model; ragged, stored flat with offsets.

    Attributes
    ----------
    logprobs : ndarray of shape (n_tokens,) — ``log p(x_t | x_<t)`` of each scored token.
    mu : ndarray of shape (n_tokens,) or None — ``E_{v~p(.|x_<t)} log p(v|x_<t)`` (minus the entropy).
    sigma : ndarray of shape (n_tokens,) or None — standard deviation of ``log p(v|x_<t)`` under ``p``.
    offsets : ndarray of shape (n + 1,) — text ``i`` owns ``[offsets[i], offsets[i + 1])``.
    """

    logprobs: np.ndarray
    mu: np.ndarray | None
    sigma: np.ndarray | None
    offsets: np.ndarray

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def text(self, i: int) -> slice:
        return slice(int(self.offsets[i]), int(self.offsets[i + 1]))

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def mean_logprob(self) -> np.ndarray:
        """Mean log-probability per text, shape (n,): minus the LOSS (mean next-token cross-entropy)."""
        sums = np.add.reduceat(self.logprobs, self.offsets[:-1]) if len(self.logprobs) else np.zeros(len(self))
        return sums / self.lengths


def tokenize_texts(lm, texts: list[str], *, max_length: int) -> list[list[int]]:
    """Token ids fed to the model for each text: the start token (BOS, else EOS) then the text, cut at ``max_length``.

    Without any start token the first text token is context only and is not scored.
    """
    if max_length < 2:
        raise InvalidInputError(f"max_length must be at least 2 tokens; got {max_length}")
    limit = max_length
    if lm.max_positions is not None:
        limit = min(limit, lm.max_positions)
    start = lm.start_token_id
    out = []
    for i, text in enumerate(texts):
        ids = list(lm.tokenizer(text, add_special_tokens=False)["input_ids"])
        if start is not None:
            ids = [start, *ids]
        ids = ids[:limit]
        if len(ids) < 2:
            raise InvalidInputError(
                f"text {i} ({text[:40]!r}) has no token to score after tokenization; expected non-empty text"
            )
        out.append(ids)
    return out


def score_texts(
    lm,
    texts: list[str],
    *,
    max_length: int = 128,
    batch_tokens: int = 4096,
    vocab_stats: bool = True,
) -> TokenStats:
    """Run every text through ``lm`` once (batched by length, right-padded) and collect :class:`TokenStats`.

    Parameters
    ----------
    lm : :class:`~memberscope.llm.loading.LanguageModel`.
    texts : the records, shape (n,).
    max_length : tokens per text, the start token included; longer texts are cut.
    batch_tokens : padded tokens per batch (bounds memory: ``batch_tokens × vocab`` floats).
    vocab_stats : also compute ``mu`` and ``sigma`` over the whole vocabulary (Min-K%++).
    """
    import torch

    ids = tokenize_texts(lm, texts, max_length=max_length)
    lengths = np.array([len(x) - 1 for x in ids], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    logprobs = np.empty(offsets[-1], dtype=np.float64)
    mu = np.empty_like(logprobs) if vocab_stats else None
    sigma = np.empty_like(logprobs) if vocab_stats else None
    order = np.argsort(-lengths, kind="stable")
    model = lm.model
    pos = 0
    with torch.inference_mode():
        while pos < len(order):
            width = len(ids[order[pos]])
            size = max(1, batch_tokens // width)
            batch = order[pos : pos + size]
            pos += len(batch)
            input_ids = torch.zeros((len(batch), width), dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, i in enumerate(batch):
                input_ids[row, : len(ids[i])] = torch.tensor(ids[i])
                mask[row, : len(ids[i])] = 1
            logits = model(input_ids=input_ids, attention_mask=mask).logits[:, :-1].float()
            logp = torch.log_softmax(logits, dim=-1)
            token_lp = logp.gather(-1, input_ids[:, 1:, None])[..., 0]
            if vocab_stats:
                p = logp.exp()
                m = (p * logp).sum(-1)
                var = (p * (logp - m[..., None]).square()).sum(-1)  # centred: no cancellation
            for row, i in enumerate(batch):
                n = int(lengths[i])
                span = slice(int(offsets[i]), int(offsets[i]) + n)
                logprobs[span] = token_lp[row, :n].double().numpy()
                if vocab_stats:
                    mu[span] = m[row, :n].double().numpy()
                    sigma[span] = var[row, :n].sqrt().double().numpy()
    if not np.all(np.isfinite(logprobs)):
        raise ModelOutputError(f"model {lm.path!r} produced NaN or infinite log-probabilities")
    return TokenStats(logprobs=logprobs, mu=mu, sigma=sigma, offsets=offsets)
