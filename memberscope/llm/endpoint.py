"""Language models behind an HTTP API: per-token log-probabilities of texts, as the server computes them.

The realistic target of a language-model audit is often an API, not a folder. An OpenAI-compatible
``/v1/completions`` endpoint (vLLM, llama.cpp's server, text-generation-inference, the OpenAI legacy API) scores
a text when asked to echo the prompt with its log-probabilities and generate nothing::

    POST /v1/completions  {"model": M, "prompt": [t1, t2, ...], "echo": true, "logprobs": 1, "max_tokens": 0,
                           "temperature": 0}
    → {"choices": [{"index": i, "logprobs": {"tokens": [...], "token_logprobs": [null, -2.3, ...],
                                             "text_offset": [0, 0, 5, ...]}}, ...], "model": M, "usage": {...}}

``choices[i].logprobs.token_logprobs`` holds ``log p(x_t | x_<t)`` of every prompt token; the first is ``null``
(nothing precedes it: the server's BOS token when its tokenizer adds one, else the text's first token, which is
then not scored). Leading nulls are dropped; the rest are the :class:`~memberscope.llm.scoring.TokenStats` the
token-level attacks read, so LOSS, zlib, lowercase, Min-K% and reference calibration run exactly as on a local
model. Servers that refuse ``max_tokens: 0`` get ``max_tokens: 1`` (``max_tokens=1``) and the generated token is
cut off by its ``text_offset`` (at or past the end of the prompt).

Min-K%++ is **unavailable** over an endpoint: it standardises each token's log-probability by the mean and
spread of ``log p`` over the whole vocabulary, and a completions API returns at most a handful of
``top_logprobs`` (5 for OpenAI); an estimate from them would be a different, weaker statistic under the same
name, so it is not computed (asked for, it is an error; by default it is left out with a warning).

Tokenization is the server's: texts are sent whole, and what the server returned for each (its tokens, their
log-probabilities and offsets) is kept in :attr:`EndpointLanguageModel.returned` (the CLI writes it to
``tokens.jsonl``). Other servers are read with the same machinery through a request template and JSON paths
(:class:`WireFormat`). Every request goes through :class:`~memberscope.targets.HttpTarget`: its API key from an
environment variable, retries honouring Retry-After, query budget and request rate.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from memberscope.exceptions import InvalidInputError, ModelOutputError, TargetResponseError
from memberscope.registry import Registry

__all__ = ["ENDPOINT_FORMATS", "UNAVAILABLE_ATTACKS", "EndpointLanguageModel", "WireFormat", "openai_completions"]

#: Attacks an endpoint cannot serve, and why (the reason is the error message and the results' warning).
UNAVAILABLE_ATTACKS = {
    "min-k++": (
        "min-k++ needs the mean and spread of log p over the model's whole vocabulary at every position, which a "
        "completions endpoint does not return (top_logprobs holds at most a few tokens); it was not computed"
    ),
}


@dataclass(frozen=True)
class WireFormat:
    """How texts travel to a scoring endpoint and where each text's token log-probabilities are in the answer.

    Attributes
    ----------
    request_template : JSON body with ``"$records"`` (the batch of texts) or ``"$record"`` (one text per request).
    output_path : JSON path to the list of per-text answers (with ``"$record"``: to the one answer).
    logprobs_path : JSON path, inside one answer, to its per-token log-probabilities (``null`` = not scored).
    tokens_path, offsets_path : optional JSON paths to the tokens and their character offsets in the prompt.
    index_path : optional JSON path to an answer's position in the batch (OpenAI's ``index``).
    """

    request_template: dict[str, Any]
    output_path: str
    logprobs_path: str
    tokens_path: str | None = None
    offsets_path: str | None = None
    index_path: str | None = None
    name: str = "custom"


#: Named wire formats: ``name -> factory(model_name=..., max_tokens=...)``.
ENDPOINT_FORMATS: Registry[Callable[..., WireFormat]] = Registry("endpoint format")


@ENDPOINT_FORMATS.register("openai-completions")
def openai_completions(*, model_name: str | None = None, max_tokens: int = 0) -> WireFormat:
    """OpenAI-compatible ``/v1/completions`` with ``echo`` and ``logprobs`` (see the module docstring)."""
    body: dict[str, Any] = {}
    if model_name:
        body["model"] = model_name
    body.update({"prompt": "$records", "echo": True, "logprobs": 1, "max_tokens": max_tokens, "temperature": 0})
    return WireFormat(
        request_template=body,
        output_path="choices",
        logprobs_path="logprobs.token_logprobs",
        tokens_path="logprobs.tokens",
        offsets_path="logprobs.text_offset",
        index_path="index",
        name="openai-completions",
    )


@dataclass
class _Answer:
    """One text's answer, reduced to its scored prompt tokens."""

    logprobs: list[float]
    scored_text: str
    record: dict[str, Any] = field(default_factory=dict)


def _path(answer: Any, path: str | None, *, required: bool, where: str) -> Any:
    from memberscope.targets.wire import extract_json_path

    if path is None:
        return None
    try:
        return extract_json_path(answer, path)
    except KeyError as exc:
        if not required:
            return None
        raise TargetResponseError(
            f"{where}: JSON path {path!r} does not match the answer: {exc.args[0]}; the answer begins "
            f"{json.dumps(answer)[:160]}"
        ) from None


class EndpointLanguageModel:
    """A language model behind an HTTP scoring API, read as per-token log-probabilities (see the module docstring).

    Parameters
    ----------
    url : str
        The endpoint, e.g. ``http://127.0.0.1:8000/v1/completions``.
    api_format : str
        A name of :data:`ENDPOINT_FORMATS` (default ``"openai-completions"``); ignored when ``request_template``
        is given.
    model_name : str, optional
        The ``model`` field of an OpenAI request (the served model's name).
    max_tokens : int
        0 (score the prompt only) or more for servers that refuse 0; generated tokens are cut off by offset.
    request_template, output_path, logprobs_path, tokens_path, offsets_path : optional
        A custom wire format for other servers (:class:`WireFormat`); ``request_template`` and ``logprobs_path``
        are then required, ``output_path`` defaults to the OpenAI one (``choices``).
    api_key_env, timeout, max_retries, query_budget, rate_limit, batch_size, headers, transport
        As :class:`~memberscope.targets.HttpTarget` takes them (one text = one query; ``batch_size`` texts per
        request).

    Attributes
    ----------
    kind : ``"endpoint"``.
    returned : list of dict — what the server returned for every text scored, in order (``call`` numbers the
        scoring passes: the texts, then e.g. their lowercased copies).
    server_models : list of str — the ``model`` names the server's answers carried.
    """

    kind = "endpoint"
    #: Attacks it cannot serve, and why.
    unavailable_attacks = UNAVAILABLE_ATTACKS

    def __init__(
        self,
        url: str,
        *,
        api_format: str = "openai-completions",
        model_name: str | None = None,
        max_tokens: int = 0,
        request_template: dict[str, Any] | None = None,
        output_path: str | None = None,
        logprobs_path: str | None = None,
        tokens_path: str | None = None,
        offsets_path: str | None = None,
        api_key_env: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 3,
        query_budget: int | None = None,
        rate_limit: float | None = None,
        batch_size: int = 8,
        headers: dict[str, str] | None = None,
        transport: Any = None,
    ):
        from memberscope.targets.http import HttpTarget
        from memberscope.targets.wire import parse_path

        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 0:
            raise InvalidInputError(f"max_tokens must be an integer >= 0; got {max_tokens!r}")
        if request_template is not None:
            if logprobs_path is None:
                raise InvalidInputError(
                    "a custom request template needs --logprobs-path: where each answer holds its token log-probs"
                )
            wire = WireFormat(
                request_template=request_template,
                output_path=output_path or "choices",
                logprobs_path=logprobs_path,
                tokens_path=tokens_path,
                offsets_path=offsets_path,
            )
        else:
            if any(p is not None for p in (output_path, logprobs_path, tokens_path, offsets_path)):
                raise InvalidInputError(
                    "JSON paths (--output-path, --logprobs-path, ...) map a custom server's answers and need its "
                    "--request-template; the OpenAI format has its own"
                )
            wire = ENDPOINT_FORMATS.get(api_format)(model_name=model_name, max_tokens=max_tokens)
        for path in (wire.logprobs_path, wire.tokens_path, wire.offsets_path, wire.index_path):
            if path is not None:
                parse_path(path)
        self.wire, self.max_tokens, self.model_name = wire, max_tokens, model_name
        self.http = HttpTarget(
            url,
            request_template=wire.request_template,
            output_path=wire.output_path,
            headers=headers,
            api_key_env=api_key_env,
            timeout=timeout,
            max_retries=max_retries,
            query_budget=query_budget,
            rate_limit=rate_limit,
            batch_size=batch_size,
            transport=transport,
        )
        self.path = url
        self.returned: list[dict[str, Any]] = []
        self.server_models: list[str] = []
        self.load_warnings: list[str] = []
        self._calls = 0

    # -- what the audit reads -------------------------------------------------------------------------

    @property
    def architecture(self) -> str:
        """The served model's name as the answers gave it, else as requested, else ``"?"``."""
        names = list(dict.fromkeys(self.server_models)) or ([self.model_name] if self.model_name else [])
        return ", ".join(names) or "?"

    @property
    def tokenizer_path(self) -> str:
        return "the server's tokenizer"

    def describe(self) -> dict[str, Any]:
        """The endpoint block of results.json: where, how, and what it cost."""
        http = self.http
        template = json.loads(json.dumps(self.wire.request_template))
        return {
            "url": self.path,
            "api_format": self.wire.name,
            "request_template": template,
            "paths": {
                "answers": self.wire.output_path,
                "logprobs": self.wire.logprobs_path,
                "tokens": self.wire.tokens_path,
                "offsets": self.wire.offsets_path,
            },
            "server_models": list(dict.fromkeys(self.server_models)),
            "tokenization": "the server's: texts are sent whole; the tokens it returned are in tokens.jsonl",
            "first_token": "a leading null log-probability (no context) is dropped; when the server adds no BOS "
            "token, a text's first token is therefore not scored",
            "unavailable_attacks": dict(UNAVAILABLE_ATTACKS),
            "texts_scored": len(self.returned),
            "queries_spent": http.queries_spent,
            "query_budget": http.query_budget,
            "requests_sent": http.requests_sent,
            "rate_limit": http.rate_limit,
            "rate_limit_events": list(http.rate_limit_events),
            "api_key_env": http.api_key_env,
        }

    def close(self) -> None:
        self.http.close()

    # -- scoring ----------------------------------------------------------------------------------------

    def token_stats(self, texts: list[str], *, vocab_stats: bool = False, progress=None):
        """The :class:`~memberscope.llm.scoring.TokenStats` of ``texts`` as the server scores them; ``progress``, when
        given, is called with the number of texts each answered request scored.

        Raises
        ------
        InvalidInputError
            ``vocab_stats`` (Min-K%++: see :data:`UNAVAILABLE_ATTACKS`); a text with no scored token.
        TargetError
            The endpoint failed or answered in another shape (:class:`~memberscope.exceptions.TargetResponseError`
            names the JSON path and shows the answer); texts answered before the failure stay in :attr:`returned`.
        ModelOutputError
            A log-probability that is not a finite number <= 0.
        """
        from memberscope.llm.scoring import TokenStats

        if vocab_stats:
            raise InvalidInputError(UNAVAILABLE_ATTACKS["min-k++"])
        texts = [str(t) for t in texts]
        left = self.http.queries_left
        if left is not None and len(texts) > left:
            from memberscope.exceptions import QueryBudgetExceededError

            raise QueryBudgetExceededError(
                f"{self.path}: scoring {len(texts)} texts would exceed the query budget of {self.http.query_budget} "
                f"({self.http.queries_spent} spent, {left} left; each text is one query, and the lowercase attack "
                "sends every text a second time); raise --query-budget or score fewer texts"
            )
        self._calls += 1
        answers: list[_Answer] = []
        step = self.http.batch_size
        for start in range(0, len(texts), step):
            batch = texts[start : start + step]
            raw = self.http.raw_query(np.array(batch, dtype=object))
            model = self.http.last_response.get("model") if isinstance(self.http.last_response, dict) else None
            if isinstance(model, str):
                self.server_models.append(model)
            for offset, (text, answer) in enumerate(zip(batch, self._in_order(raw), strict=True)):
                parsed = self._read(answer, text, start + offset)
                self.returned.append(parsed.record)
                answers.append(parsed)
            if progress is not None:
                progress(len(batch))
        lengths = np.array([len(a.logprobs) for a in answers], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        logprobs = np.array([v for a in answers for v in a.logprobs], dtype=np.float64)
        return TokenStats(
            logprobs=logprobs,
            mu=None,
            sigma=None,
            offsets=offsets,
            scored_texts=[a.scored_text for a in answers],
            truncated=np.zeros(len(texts), dtype=bool),
            max_length=None,
        )

    def _in_order(self, answers: list[Any]) -> list[Any]:
        """The answers of one batch in prompt order (by their index when the format has one)."""
        if self.wire.index_path is None or not answers:
            return answers
        index = [_path(a, self.wire.index_path, required=False, where=self.path) for a in answers]
        if any(not isinstance(i, int) or isinstance(i, bool) for i in index):
            return answers
        if sorted(index) != list(range(len(answers))):
            raise TargetResponseError(
                f"{self.path}: the answers' {self.wire.index_path!r} values {index[:10]} are not 0..{len(answers) - 1}"
            )
        return [answers[index.index(i)] for i in range(len(answers))]

    def _read(self, answer: Any, text: str, position: int) -> _Answer:
        where = f"{self.path} (text {position} of call {self._calls})"
        values = _path(answer, self.wire.logprobs_path, required=True, where=where)
        tokens = _path(answer, self.wire.tokens_path, required=False, where=where)
        spans = _path(answer, self.wire.offsets_path, required=False, where=where)
        if not isinstance(values, list):
            raise TargetResponseError(f"{where}: {self.wire.logprobs_path!r} is not a list: {str(values)[:80]!r}")
        for what, other in (("tokens", tokens), ("offsets", spans)):
            if other is not None and (not isinstance(other, list) or len(other) != len(values)):
                raise TargetResponseError(
                    f"{where}: the answer's {what} do not pair with its {len(values)} log-probabilities"
                )
        keep = len(values)
        if self.max_tokens > 0:  # generated tokens follow the prompt's: cut them off by their offset
            if spans is None:
                raise TargetResponseError(
                    f"{where}: with max_tokens {self.max_tokens} the answer must give token offsets to tell the "
                    "prompt's tokens from the generated ones; it has none: use max_tokens 0"
                )
            keep = sum(1 for s in spans if isinstance(s, int) and s < len(text))
        first = 0
        while first < keep and values[first] is None:
            first += 1
        scored = values[first:keep]
        for j, v in enumerate(scored):
            if v is None or isinstance(v, bool) or not isinstance(v, int | float):
                raise TargetResponseError(
                    f"{where}: token {first + j} has log-probability {v!r} after scored tokens; expected numbers"
                )
            if not math.isfinite(v) or v > 1e-6:
                raise ModelOutputError(
                    f"{where}: token {first + j} has log-probability {v!r}; expected a finite value <= 0"
                )
        if not scored:
            raise InvalidInputError(
                f"text {position} ({text[:40]!r}) got no scored token from {self.path}: the server scores a token "
                "from the ones before it, and this text has only one; expected longer texts"
            )
        begin = spans[first] if spans is not None and isinstance(spans[first], int) else 0
        scored_text = text[begin:] if 0 <= begin < len(text) else text
        record = {
            "call": self._calls,
            "record": position,
            "prompt": text,
            "tokens": tokens[:keep] if tokens is not None else None,
            "token_logprobs": values[:keep],
            "text_offset": spans[:keep] if spans is not None else None,
            "scored_from": first,
        }
        return _Answer(logprobs=[float(v) for v in scored], scored_text=scored_text, record=record)

    def write_returned(self, path: str | os.PathLike) -> Path:
        """Write :attr:`returned` as JSON lines (one text per line); returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8") as fh:
            for row in self.returned:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        return path
