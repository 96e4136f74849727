"""One interface for every model an attack queries: a local model, an HTTP endpoint, or a fake.

:meth:`Target.query` maps records ``X`` of shape ``(n, ...)`` to what the attacker *observes*, an
array of shape ``(n, n_classes)``: probabilities (maybe rounded or noisy), logits, ``NaN`` where a
top-k answer withholds a class, or one-hot rows for a label-only answer (the same convention as
:mod:`memberscope.defenses.output`). Each record sent counts as one query; ``queries_spent`` counts
them and an optional ``query_budget`` stops a call before it would exceed the budget. Code above
this interface (recon, the attacks) never knows which kind of target it talks to, the way code
above httpx's ``BaseTransport`` never knows the transport.

- :class:`ModelTarget`: a local scikit-learn / torch model or callable (via
  :func:`memberscope.targets.as_trained_model`), with an optional output post-processor;
- :class:`FakeTarget`: an in-process fake for tests, which can fail after a number of queries;
- :class:`HttpTarget`: a REST endpoint, by default KServe v1 / TF Serving
  (``POST {"instances": [...]}`` → ``{"predictions": [...]}``), with retries, a budget and a rate.
"""

from __future__ import annotations

import abc
import copy
import email.utils
import json
import os
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from memberscope.defenses.output import Compose, OutputPostprocessor, from_predictions, parse_postprocessors
from memberscope.exceptions import InvalidInputError, MissingDependencyError
from memberscope.redteam.errors import (
    QueryBudgetExceededError,
    TargetAuthError,
    TargetError,
    TargetRateLimitedError,
    TargetResponseError,
    TargetUnreachableError,
)

__all__ = [
    "DEFAULT_TEMPLATE",
    "FakeTarget",
    "HttpTarget",
    "ModelTarget",
    "Target",
    "extract_json_path",
    "fill_template",
]

DEFAULT_TEMPLATE: dict[str, Any] = {"instances": "$records"}
"""KServe v1 / TF Serving request: the batch of records under ``instances``."""


class Target(abc.ABC):
    """What an attack queries. Subclasses implement :meth:`_query`; :meth:`query` keeps the books.

    Attributes
    ----------
    n_classes : int or None
        Classes of the model (None for an HTTP target until an answer shows it).
    queries_spent : int
        Records sent so far, over all calls (one record = one query).
    query_budget : int or None
        Most records this target may be sent; None = unlimited.
    """

    n_classes: int | None
    queries_spent: int
    query_budget: int | None

    def __init__(self, *, query_budget: int | None = None):
        if query_budget is not None and (int(query_budget) != query_budget or query_budget < 0):
            raise InvalidInputError(f"query_budget must be an integer >= 0 or None; got {query_budget!r}")
        self.query_budget = None if query_budget is None else int(query_budget)
        self.queries_spent = 0

    @property
    def description(self) -> str:
        """A short name for results and messages (the URL of an HTTP target)."""
        return type(self).__name__

    @property
    def queries_left(self) -> int | None:
        return None if self.query_budget is None else self.query_budget - self.queries_spent

    def query(self, X: np.ndarray) -> np.ndarray:
        """Observed outputs of shape ``(n, n_classes)`` for records ``X`` of shape ``(n, ...)``.

        Raises
        ------
        QueryBudgetExceededError
            Before sending anything, if ``len(X)`` exceeds the queries left.
        TargetError
            If the target fails; its ``answered`` holds the outputs of the records answered first.
        """
        X = np.asarray(X)
        if X.ndim < 2:
            raise InvalidInputError(f"records must have shape (n, ...features); got shape {X.shape}")
        left = self.queries_left
        if left is not None and len(X) > left:
            raise QueryBudgetExceededError(
                f"{self.description}: querying {len(X)} records would exceed the query budget of "
                f"{self.query_budget} ({self.queries_spent} spent, {left} left); raise --query-budget or query fewer"
            )
        if len(X) == 0:
            return np.zeros((0, self.n_classes or 0))
        return np.asarray(self._query(X), dtype=np.float64)

    @abc.abstractmethod
    def _query(self, X: np.ndarray) -> np.ndarray:
        """Answer every record of ``X`` (within budget); add to ``queries_spent`` as records are answered."""


def _as_postprocessor(post: str | Sequence[str] | OutputPostprocessor | None) -> OutputPostprocessor:
    if isinstance(post, OutputPostprocessor):
        return post
    return parse_postprocessors(post)


class ModelTarget(Target):
    """A local model behind the target interface.

    Parameters
    ----------
    model : fitted scikit-learn classifier, ``torch.nn.Module``, :class:`~memberscope.recipes.TrainedModel`
        or callable ``X -> logits``.
    n_classes : int
    postprocess : str, list of str or OutputPostprocessor, optional
        What the deployment shows, e.g. ``"top-k:1"``, ``"round:1"``, ``"label-only"``
        (see :func:`memberscope.defenses.output.parse_postprocessors`); default the full probabilities.
    logits : bool
        Return the raw logits instead of probabilities (``postprocess`` must then be empty).
    query_budget : int, optional
    seed : int
        Seed of the noise post-processors.
    """

    def __init__(
        self,
        model: Any,
        *,
        n_classes: int,
        postprocess: str | Sequence[str] | OutputPostprocessor | None = None,
        logits: bool = False,
        query_budget: int | None = None,
        seed: int = 0,
    ):
        from memberscope.targets import as_trained_model

        super().__init__(query_budget=query_budget)
        self.model = as_trained_model(model, n_classes=n_classes)
        self.n_classes = int(n_classes)
        self.postprocess = _as_postprocessor(postprocess)
        if logits and not (isinstance(self.postprocess, Compose) and not self.postprocess.steps):
            raise InvalidInputError(f"logits=True shows raw logits and takes no post-processor; got {self.postprocess}")
        self.logits = logits
        self._rng = np.random.default_rng(seed)

    def _query(self, X: np.ndarray) -> np.ndarray:
        from scipy.special import softmax

        logits = np.asarray(self.model.predict_logits(X), dtype=np.float64)
        self.queries_spent += len(X)
        if self.logits:
            return logits
        return self.postprocess(softmax(logits, axis=1), rng=self._rng)


class FakeTarget(Target):
    """An in-process fake: ``fn(X) -> probabilities`` plus a post-processor, failing on demand.

    Parameters
    ----------
    fn : callable
        ``X (n, ...) -> probabilities (n, n_classes)``.
    n_classes : int
    postprocess : as for :class:`ModelTarget`.
    fail_after : int, optional
        Records answered before every later one fails with :class:`TargetUnreachableError`
        (the failing call's ``answered`` holds the records it did answer).
    batch_size : int
        Records answered per internal step (failures happen at step boundaries).
    """

    def __init__(
        self,
        fn: Callable[[np.ndarray], np.ndarray],
        *,
        n_classes: int,
        postprocess: str | Sequence[str] | OutputPostprocessor | None = None,
        fail_after: int | None = None,
        batch_size: int = 64,
        query_budget: int | None = None,
        seed: int = 0,
    ):
        super().__init__(query_budget=query_budget)
        self.fn, self.n_classes = fn, int(n_classes)
        self.postprocess = _as_postprocessor(postprocess)
        self.fail_after, self.batch_size = fail_after, int(batch_size)
        self._rng = np.random.default_rng(seed)

    def _query(self, X: np.ndarray) -> np.ndarray:
        out: list[np.ndarray] = []
        for start in range(0, len(X), self.batch_size):
            batch = X[start : start + self.batch_size]
            if self.fail_after is not None and self.queries_spent + len(batch) > self.fail_after:
                answered = np.concatenate(out) if out else None
                raise TargetUnreachableError("fake target: failing as configured", answered=answered)
            out.append(self.postprocess(np.asarray(self.fn(batch), dtype=np.float64), rng=self._rng))
            self.queries_spent += len(batch)
        return np.concatenate(out)


# ---------------------------------------------------------------------------------------------
# HTTP


_PATH_TOKEN = re.compile(r"([^.\[\]]+)|\[(-?\d+)\]")


def _parse_path(path: str) -> list[str | int]:
    text = path.strip()
    if text in ("", "$"):
        return []
    text = text[2:] if text.startswith("$.") else text[1:] if text.startswith("$") else text
    tokens: list[str | int] = []
    pos = 0
    while pos < len(text):
        if text[pos] == ".":
            pos += 1
            continue
        match = _PATH_TOKEN.match(text, pos)
        if not match:
            raise InvalidInputError(
                f"JSON path {path!r} is not of the form key.key[index] (e.g. 'predictions' or 'outputs[0].scores')"
            )
        tokens.append(match.group(1) if match.group(1) is not None else int(match.group(2)))
        pos = match.end()
    return tokens


def extract_json_path(document: Any, path: str) -> Any:
    """The value at ``path`` in ``document``: dotted keys and ``[index]`` steps, e.g. ``"outputs[0].scores"``.

    A leading ``$`` or ``$.`` is allowed; ``""`` or ``"$"`` is the document itself.

    Raises
    ------
    KeyError
        With a message naming the step that did not match and what was there instead.
    """
    value = document
    walked = "$"
    for token in _parse_path(path):
        if isinstance(token, int):
            if not isinstance(value, list) or not -len(value) <= token < len(value):
                what = f"a list of {len(value)}" if isinstance(value, list) else type(value).__name__
                raise KeyError(f"{walked}[{token}] does not exist ({walked} is {what})")
            value = value[token]
            walked += f"[{token}]"
        else:
            if not isinstance(value, dict) or token not in value:
                what = f"an object with keys {sorted(value)[:10]}" if isinstance(value, dict) else type(value).__name__
                raise KeyError(f"{walked}.{token} does not exist ({walked} is {what})")
            value = value[token]
            walked += f".{token}"
    return value


def fill_template(template: Any, records: list[Any]) -> tuple[Any, bool]:
    """``template`` with the string ``"$records"`` replaced by the batch, or ``"$record"`` by its one record.

    Returns the filled request and whether the template takes one record per request.
    """
    found: set[str] = set()

    def walk(node: Any) -> Any:
        if isinstance(node, str) and node in ("$records", "$record"):
            found.add(node)
            return records if node == "$records" else records[0]
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    filled = walk(copy.deepcopy(template))
    if len(found) != 1:
        raise InvalidInputError(
            f"request template {json.dumps(template)[:120]} must contain exactly one of the placeholders "
            '"$records" (a list of records) or "$record" (one record per request)'
        )
    return filled, "$record" in found


def _retry_after_seconds(value: str | None) -> float | None:
    """Seconds from a Retry-After header: a number of seconds or an HTTP date; None if absent or bad."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class HttpTarget(Target):
    """A model behind a REST endpoint (needs the ``redteam`` extra: ``pip install 'memberscope[redteam]'``).

    Parameters
    ----------
    url : str
    n_classes : int, optional
        Needed to read top-k and label answers; inferred from the first list-of-probabilities answer otherwise.
    n_classes_hint : int, optional
        Used when ``n_classes`` is None and the answers do not show it (e.g. largest label seen + 1).
    method : str
        HTTP method, default ``POST``.
    request_template : dict, optional
        JSON body with the placeholder ``"$records"`` (the batch, as nested lists) or ``"$record"`` (one
        record per request); default ``{"instances": "$records"}``.
    output_path : str
        JSON path to the predictions in the answer (``"predictions"``; ``"outputs[0].scores"`` ...). With a
        ``"$record"`` template it points at the one prediction.
    headers : dict, optional
        Extra headers.
    api_key_env : str, optional
        Name of an environment variable holding the API key (never the key itself), sent as
        ``{api_key_header}: {api_key_prefix}{key}``.
    api_key_header, api_key_prefix : str
        Default ``Authorization`` and ``"Bearer "``.
    timeout : float
        Seconds per request.
    max_retries : int
        Retries of a request answered 429 or 503 (or timing out), waiting ``Retry-After`` when given,
        else ``backoff * 2**attempt`` seconds, at most ``max_backoff``.
    query_budget : int, optional
        Most records to send.
    rate_limit : float, optional
        Most requests per second sent by this client.
    batch_size : int
        Records per request.
    transport : httpx.BaseTransport, optional
        For tests (``httpx.MockTransport``).

    Attributes
    ----------
    requests_sent : int
    rate_limit_events : list of dict
        One ``{"status", "retry_after"}`` per 429/503 answer seen.
    answered_X, answered : lists of ndarray
        Every batch answered so far and its observed outputs, so nothing answered is lost on a failure.
    """

    def __init__(
        self,
        url: str,
        *,
        n_classes: int | None = None,
        n_classes_hint: int | None = None,
        method: str = "POST",
        request_template: dict[str, Any] | None = None,
        output_path: str = "predictions",
        headers: dict[str, str] | None = None,
        api_key_env: str | None = None,
        api_key_header: str = "Authorization",
        api_key_prefix: str = "Bearer ",
        timeout: float = 10.0,
        max_retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        query_budget: int | None = None,
        rate_limit: float | None = None,
        batch_size: int = 64,
        transport: Any = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        try:
            import httpx
        except ImportError:
            raise MissingDependencyError(
                "HttpTarget needs httpx; install the red-team extra: pip install 'memberscope[redteam]'"
            ) from None
        super().__init__(query_budget=query_budget)
        if not re.match(r"^https?://", url or ""):
            raise InvalidInputError(f"target URL {url!r} must start with http:// or https://")
        problems = []
        if batch_size < 1:
            problems.append(f"batch_size must be >= 1; got {batch_size}")
        if timeout <= 0:
            problems.append(f"timeout must be > 0 seconds; got {timeout}")
        if max_retries < 0:
            problems.append(f"max_retries must be >= 0; got {max_retries}")
        if rate_limit is not None and rate_limit <= 0:
            problems.append(f"rate_limit must be > 0 requests per second; got {rate_limit}")
        if problems:
            raise InvalidInputError(f"HTTP target {url}: " + "; ".join(problems))
        self.url, self.method = url, method.upper()
        self.n_classes = None if n_classes is None else int(n_classes)
        self.n_classes_hint = n_classes_hint
        self.request_template = DEFAULT_TEMPLATE if request_template is None else request_template
        fill_template(self.request_template, [[0.0]])  # validates the placeholders now, not at the first query
        self.output_path = output_path
        _parse_path(output_path)
        self.api_key_env = api_key_env
        request_headers = {"Content-Type": "application/json", **(headers or {})}
        if api_key_env:
            key = os.environ.get(api_key_env)
            if not key:
                raise InvalidInputError(
                    f"environment variable {api_key_env!r} (the API key for {url}) is not set or empty"
                )
            request_headers[api_key_header] = f"{api_key_prefix}{key}"
        self.timeout, self.max_retries = float(timeout), int(max_retries)
        self.backoff, self.max_backoff = float(backoff), float(max_backoff)
        self.rate_limit, self.batch_size = rate_limit, int(batch_size)
        self._sleep = sleep
        self._client = httpx.Client(timeout=self.timeout, headers=request_headers, transport=transport)
        self._httpx = httpx
        self._last_request = -np.inf
        self.requests_sent = 0
        self.rate_limit_events: list[dict[str, Any]] = []
        self.answered_X: list[np.ndarray] = []
        self.answered: list[np.ndarray] = []
        self.last_raw: list[Any] = []

    @property
    def description(self) -> str:
        return self.url

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HttpTarget:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- one request, with retries -------------------------------------------------------------

    def _wait_for_rate(self) -> None:
        if self.rate_limit is None:
            return
        wait = self._last_request + 1.0 / self.rate_limit - time.monotonic()
        if wait > 0:
            self._sleep(wait)

    def _send(self, body: Any) -> Any:
        """Send one request; the parsed JSON answer. Retries 429/503 and timeouts with backoff."""
        httpx = self._httpx
        for attempt in range(self.max_retries + 1):
            self._wait_for_rate()
            self._last_request = time.monotonic()
            self.requests_sent += 1
            try:
                response = self._client.request(self.method, self.url, json=body)
            except httpx.TimeoutException as exc:
                if attempt < self.max_retries:
                    self._sleep(min(self.max_backoff, self.backoff * 2**attempt))
                    continue
                raise TargetUnreachableError(
                    f"{self.url} did not answer within {self.timeout:g} s ({self.max_retries + 1} tries): {exc}"
                ) from None
            except httpx.HTTPError as exc:
                raise TargetUnreachableError(f"cannot reach {self.url}: {type(exc).__name__}: {exc}") from None
            status = response.status_code
            if status in (429, 503):
                retry_after = _retry_after_seconds(response.headers.get("Retry-After"))
                self.rate_limit_events.append({"status": status, "retry_after": retry_after})
                if attempt < self.max_retries:
                    delay = retry_after if retry_after is not None else self.backoff * 2**attempt
                    self._sleep(min(self.max_backoff, delay))
                    continue
                raise TargetRateLimitedError(
                    f"{self.url} still answered {status} after {self.max_retries + 1} tries "
                    f"(Retry-After {response.headers.get('Retry-After')!r}); lower --rate or retry later"
                )
            if status in (401, 403):
                hint = (
                    f"the key in ${self.api_key_env} was refused"
                    if self.api_key_env
                    else "no API key was sent; pass --api-key-env VAR naming the variable that holds it"
                )
                raise TargetAuthError(f"{self.url} answered {status} {response.reason_phrase}: {hint}")
            if status >= 400:
                raise TargetResponseError(
                    f"{self.url} answered {status} {response.reason_phrase}: {response.text[:200]!r}"
                )
            try:
                return response.json()
            except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
                kind = response.headers.get("Content-Type", "no content type")
                raise TargetResponseError(
                    f"{self.url} answered {status} with a body that is not JSON ({kind}): {response.text[:120]!r}"
                ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _extract(self, document: Any) -> Any:
        try:
            return extract_json_path(document, self.output_path)
        except KeyError as exc:
            raise TargetResponseError(
                f"{self.url}: JSON path {self.output_path!r} does not match the answer: {exc.args[0]}; "
                f"the answer begins {json.dumps(document)[:160]}"
            ) from None

    def raw_query(self, X: np.ndarray) -> list[Any]:
        """The raw predictions (JSON values) for each record of ``X``, without parsing them."""
        X = np.asarray(X)
        left = self.queries_left
        if left is not None and len(X) > left:
            raise QueryBudgetExceededError(
                f"{self.url}: querying {len(X)} records would exceed the query budget of {self.query_budget} "
                f"({self.queries_spent} spent, {left} left)"
            )
        preds: list[Any] = []
        for start in range(0, len(X), self.batch_size):
            batch = X[start : start + self.batch_size]
            records = batch.tolist()
            body, single = fill_template(self.request_template, records)
            if single:
                for record in records:
                    value = self._extract(self._send(fill_template(self.request_template, [record])[0]))
                    preds.append(value)
                    self.queries_spent += 1
                continue
            value = self._extract(self._send(body))
            if not isinstance(value, list) or len(value) != len(records):
                what = f"a list of {len(value)}" if isinstance(value, list) else type(value).__name__
                raise TargetResponseError(
                    f"{self.url}: JSON path {self.output_path!r} gave {what}; expected a list of "
                    f"{len(records)} predictions, one per record sent"
                )
            preds.extend(value)
            self.queries_spent += len(records)
        return preds

    def _parse(self, preds: list[Any]) -> np.ndarray:
        if self.n_classes is None:
            first = preds[0] if preds else None
            if isinstance(first, list):
                self.n_classes = len(first)
            elif self.n_classes_hint is not None:
                self.n_classes = self.n_classes_hint
            else:
                raise TargetResponseError(
                    f"{self.url} answers {str(first)[:60]!r}, which does not show the number of classes; "
                    "pass n_classes (--n-classes)"
                )
        try:
            return from_predictions(preds, n_classes=self.n_classes)
        except InvalidInputError as exc:
            raise TargetResponseError(f"{self.url}: {exc}") from None

    def _query(self, X: np.ndarray) -> np.ndarray:
        out: list[np.ndarray] = []
        step = self.batch_size
        for start in range(0, len(X), step):
            batch = X[start : start + step]
            try:
                preds = self.raw_query(batch)
                observed = self._parse(preds)
            except TargetError as exc:
                exc.answered = np.concatenate(out) if out else None
                raise
            self.last_raw = preds
            self.answered_X.append(batch)
            self.answered.append(observed)
            out.append(observed)
        return np.concatenate(out)

    def answered_records(self) -> tuple[np.ndarray, np.ndarray] | None:
        """``(X, observed)`` of every record answered so far, over all calls; None if none was."""
        if not self.answered:
            return None
        return np.concatenate(self.answered_X), np.concatenate(self.answered)
