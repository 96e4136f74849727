"""A model behind a REST endpoint: :class:`HttpTarget` (needs the ``redteam`` extra, httpx).

Requests are built from a JSON template and answers read at a JSON path (see
:mod:`memberscope.targets.wire`), with an API key read from an environment variable, retries on
429/503 honouring Retry-After, a client-side query budget and request rate, and a record of every
answer received, so nothing answered is lost when the endpoint fails.
"""

from __future__ import annotations

import email.utils
import json
import os
import re
import time
from collections.abc import Callable, Sequence
from typing import Any, TypedDict

import numpy as np

from memberscope.exceptions import (
    InvalidInputError,
    MissingDependencyError,
    QueryBudgetExceededError,
    TargetAuthError,
    TargetError,
    TargetRateLimitedError,
    TargetResponseError,
    TargetUnreachableError,
)
from memberscope.targets._base import Target
from memberscope.targets.wire import (
    API_PRESETS,
    DEFAULT_TEMPLATE,
    AnswerFields,
    as_tensor,
    check_template,
    extract_json_path,
    fill_template,
    from_predictions,
    parse_path,
    prediction_kind,
)

__all__ = ["ERROR_BODY_CHARS", "HttpTarget"]

ERROR_BODY_CHARS = 2000
"""Characters of an error answer's body shown in the error message (servers explain a refused request there)."""


class _AnswerReading(TypedDict):
    """How an answer's predictions are read (:func:`~memberscope.targets.wire.from_predictions`'s options)."""

    n_classes: int
    classes: Sequence[Any] | np.ndarray | None
    fields: AnswerFields | None


def _error_body(text: str) -> str:
    """An error answer's body for a message: whole up to :data:`ERROR_BODY_CHARS` characters, else cut and marked."""
    text = text.strip()
    if len(text) <= ERROR_BODY_CHARS:
        return text
    return text[:ERROR_BODY_CHARS] + f" ... [{len(text) - ERROR_BODY_CHARS} more characters]"


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
    classes : sequence, optional
        The model's class names in the order of its output columns, for APIs that answer with names (a label
        ``"segment_05"``, an object ``{"cat": 0.1, "dog": 0.9}``); sets ``n_classes``. Without it labels are
        column indices.
    feature_names : sequence of str, optional
        The records' column names, for the ``$record_object``, ``$records_objects`` and ``$columns`` placeholders.
    api : {"kserve-v1", "kserve-v2", "mlflow", "tfserving"}, optional
        A server's request template and answer path (:data:`~memberscope.targets.wire.API_PRESETS`);
        ``request_template`` and a non-default ``output_path`` override it.
    answer_fields : AnswerFields, optional
        Where an answer object holds the label and its confidence (e.g. ``AnswerFields("label", "confidence")``);
        default: an object with one of the usual label fields (and a confidence field) is read as such.
    output_kind : {"logits", "probabilities", "top-k", "label"}, optional
        What the endpoint answers; None reads it off the first answer (an int is a label, a
        ``{"classes", "probabilities"}`` object top-k, a list probabilities when every row lies in [0, 1]
        and sums to 1, else logits) and records that guess in :attr:`notes`.
    method : str
        HTTP method, default ``POST``.
    request_template : dict, optional
        JSON body with one record placeholder (:func:`~memberscope.targets.wire.fill_template`): ``"$records"``
        (the batch, as nested lists), ``"$record"`` (one record per request), ``"$records_objects"`` /
        ``"$record_object"`` (objects named by ``feature_names``), ``"$records_flat"``; and optionally
        ``"$columns"`` and ``"$shape"``. Default ``{"instances": "$records"}``.
    output_path : str, optional
        JSON path to the predictions in the answer (``"predictions"``; ``"outputs[0].scores"``; ``""`` for the
        whole answer); default ``"predictions"`` or the ``api`` preset's. With a one-record template it points at
        the one prediction. A KServe v2 tensor (``{"shape", "data"}``) found there is reshaped.
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
    last_response : JSON value or None
        The whole answer to the latest request (what callers read beside the predictions: a model name, usage).
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
        classes: Any = None,
        feature_names: Any = None,
        api: str | None = None,
        answer_fields: AnswerFields | None = None,
        output_kind: str | None = None,
        method: str = "POST",
        request_template: dict[str, Any] | None = None,
        output_path: str | None = None,
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
        if api is not None and api not in API_PRESETS:
            problems.append(f"api {api!r} is not one of {sorted(API_PRESETS)}")
        if problems:
            raise InvalidInputError(f"HTTP target {url}: " + "; ".join(problems))
        self.url, self.method = url, method.upper()
        self.n_classes = None if n_classes is None else int(n_classes)
        if classes is not None:
            self.classes = np.asarray(list(classes), dtype=object)
            if n_classes is not None and int(n_classes) != len(self.classes):
                raise InvalidInputError(f"HTTP target {url}: n_classes {n_classes} but {len(self.classes)} classes")
            self.n_classes = len(self.classes)
        self.n_classes_hint = n_classes_hint
        self.feature_names = None if feature_names is None else [str(c) for c in feature_names]
        self.answer_fields = answer_fields
        self.api = api
        preset = API_PRESETS.get(api or "", {})
        if request_template is None:
            request_template = preset.get("request_template")
        if output_path is None:
            output_path = preset.get("output_path", "predictions")
        if output_kind is not None:
            from memberscope.targets._base import OUTPUT_KINDS

            if output_kind not in OUTPUT_KINDS:
                raise InvalidInputError(f"output_kind {output_kind!r} is not one of {OUTPUT_KINDS}")
        self._declared_kind = output_kind
        self.output_kind = output_kind or "probabilities"
        self.request_template = DEFAULT_TEMPLATE if request_template is None else request_template
        check_template(self.request_template, columns=self.feature_names)  # now, not at the first query
        self.output_path = output_path
        parse_path(output_path)
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
        #: Called with the number of records of each batch answered (a progress display's hook).
        self.on_answer: Callable[[int], None] | None = None
        self._client = httpx.Client(timeout=self.timeout, headers=request_headers, transport=transport)
        self._httpx = httpx
        self._last_request = -np.inf
        self.requests_sent = 0
        self.last_response: Any = None
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
                # The server's own explanation, whole (up to ERROR_BODY_CHARS): a refused request says there what
                # it expected (MLflow's schema errors run to thousands of characters).
                raise TargetResponseError(
                    f"{self.url} answered {status} {response.reason_phrase}: {_error_body(response.text)}"
                )
            try:
                self.last_response = response.json()
                return self.last_response
            except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
                kind = response.headers.get("Content-Type", "no content type")
                raise TargetResponseError(
                    f"{self.url} answered {status} with a body that is not JSON ({kind}): {response.text[:120]!r}"
                ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _extract(self, document: Any) -> Any:
        try:
            return as_tensor(extract_json_path(document, self.output_path))
        except InvalidInputError as exc:
            raise TargetResponseError(f"{self.url}: {exc}") from None
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
            body, single = fill_template(self.request_template, records, columns=self.feature_names)
            if single:
                for record in records:
                    one = fill_template(self.request_template, [record], columns=self.feature_names)[0]
                    value = self._extract(self._send(one))
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
        read: _AnswerReading = {"n_classes": self.n_classes, "classes": self.classes, "fields": self.answer_fields}
        try:
            observed = from_predictions(preds, **read)
        except InvalidInputError as exc:
            raise TargetResponseError(f"{self.url}: {exc}") from None
        if self._declared_kind is None and preds:
            self._declared_kind = self.output_kind = prediction_kind(preds, observed, **read)
            self.notes.append(f"{self.url} answers {self.output_kind} (read off its first answer)")
        return observed

    def _query(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X)
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
            if self.on_answer is not None:
                self.on_answer(len(batch))
        return np.concatenate(out)

    def answered_records(self) -> tuple[np.ndarray, np.ndarray] | None:
        """``(X, observed)`` of every record answered so far, over all calls; None if none was."""
        if not self.answered:
            return None
        return np.concatenate(self.answered_X), np.concatenate(self.answered)
