"""Wire formats: how records travel to an HTTP model and how its answers are read back.

The default is KServe v1 / TensorFlow Serving: ``POST {"instances": [...]}`` answered by
``{"predictions": [...]}``, where each prediction is

- a list of ``n_classes`` floats: full, rounded, noisy or tempered probabilities (or logits);
- ``{"classes": [c1, ..., ck], "probabilities": [p1, ..., pk]}``, most likely first: top-k;
- the class index, an int: label only.

The gateway writes answers with :func:`to_predictions`; :class:`~memberscope.targets.HttpTarget`
reads them with :func:`from_predictions`, and builds requests from a JSON template
(:func:`fill_template`) and finds the predictions at a JSON path (:func:`extract_json_path`).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from memberscope.exceptions import InvalidInputError

__all__ = [
    "API_PRESETS",
    "AUX_PLACEHOLDERS",
    "DEFAULT_TEMPLATE",
    "RECORD_PLACEHOLDERS",
    "AnswerFields",
    "as_tensor",
    "check_template",
    "extract_json_path",
    "fill_template",
    "from_predictions",
    "parse_path",
    "prediction_kind",
    "read_prediction",
    "template_placeholders",
    "to_predictions",
]

DEFAULT_TEMPLATE: dict[str, Any] = {"instances": "$records"}
"""KServe v1 / TF Serving request: the batch of records under ``instances``."""


def _check_probabilities(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2:
        raise InvalidInputError(f"observed outputs must have shape (n, n_classes); got shape {values.shape}")
    return values


_PATH_TOKEN = re.compile(r"([^.\[\]]+)|\[(-?\d+)\]|\[(\*)\]")
EACH = "[*]"
"""The path step ``[*]``: every item of a list, the rest of the path applied to each (``outputs[*].scores``)."""


def parse_path(path: str) -> list[str | int]:
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
                f"JSON path {path!r} is not of the form key.key[index] (e.g. 'predictions', 'outputs[0].scores' or, "
                "for one list of scores per item, 'outputs[*].scores')"
            )
        if match.group(3) is not None:
            tokens.append(EACH)
        else:
            tokens.append(match.group(1) if match.group(1) is not None else int(match.group(2)))
        pos = match.end()
    return tokens


def extract_json_path(document: Any, path: str) -> Any:
    """The value at ``path`` in ``document``: dotted keys, ``[index]`` and ``[*]`` steps, e.g.
    ``"outputs[0].scores"``, or ``"outputs[*].scores"`` for the list of every item's ``scores``.

    A leading ``$`` or ``$.`` is allowed; ``""`` or ``"$"`` is the document itself.

    Raises
    ------
    KeyError
        With a message naming the step that did not match and what was there instead.
    """
    return _walk(document, parse_path(path), "$")


def _walk(value: Any, tokens: list[str | int], walked: str) -> Any:
    for at, token in enumerate(tokens):
        if token == EACH:
            if not isinstance(value, list):
                raise KeyError(f"{walked}[*] does not exist ({walked} is {type(value).__name__}, not a list)")
            return [_walk(item, tokens[at + 1 :], f"{walked}[{i}]") for i, item in enumerate(value)]
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


RECORD_PLACEHOLDERS = {
    "$records": "the batch, a list of records (each a list of feature values)",
    "$record": "one record per request (a list of feature values)",
    "$records_objects": "the batch, a list of objects {column: value} named by the records' columns",
    "$record_object": "one record per request, an object {column: value}",
    "$records_flat": "the batch flattened row-major into one list (KServe v2 tensors; with $shape)",
}
"""Placeholders that carry records: a request template holds exactly one of them."""
SINGLE_PLACEHOLDERS = ("$record", "$record_object")
AUX_PLACEHOLDERS = {
    "$columns": "the records' column names (a list of strings)",
    "$shape": "the batch's shape [n, ...features] (KServe v2 tensors)",
}
"""Placeholders a template may add beside the records."""

API_PRESETS: dict[str, dict[str, Any]] = {
    "kserve-v1": {"request_template": {"instances": "$records"}, "output_path": "predictions"},
    "tfserving": {"request_template": {"instances": "$records"}, "output_path": "predictions"},
    "kserve-v2": {
        "request_template": {
            "inputs": [{"name": "input-0", "shape": "$shape", "datatype": "FP32", "data": "$records_flat"}]
        },
        "output_path": "outputs[0]",
    },
    "mlflow": {
        "request_template": {"dataframe_split": {"columns": "$columns", "data": "$records"}},
        "output_path": "predictions",
    },
}
"""Request template and answer path of well-known model servers:

- ``kserve-v1`` / ``tfserving``: ``POST {"instances": [[...], ...]}`` answered by ``{"predictions": [...]}``
  (KServe's v1 protocol and TensorFlow Serving's row format);
- ``kserve-v2``: the Open Inference Protocol, ``{"inputs": [{"name", "shape", "datatype", "data"}]}`` answered by
  ``{"outputs": [{"name", "shape", "datatype", "data"}]}``, whose flat ``data`` is reshaped by ``shape``;
- ``mlflow``: MLflow's ``/invocations``, ``{"dataframe_split": {"columns": [...], "data": [[...], ...]}}`` answered
  by ``{"predictions": [...]}``.
"""


def _plain(value: Any) -> Any:
    """A JSON-friendly number: integral floats become ints (APIs with integer fields refuse ``31.0``)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def _objects(records: list[Any], columns: Sequence[str] | None, placeholder: str) -> list[dict[str, Any]]:
    if columns is None:
        raise InvalidInputError(
            f"the placeholder {placeholder!r} builds objects named by the records' columns; none are known "
            "(give the records as a CSV with a header, or pass feature_names)"
        )
    out = []
    for record in records:
        if len(record) != len(columns):
            raise InvalidInputError(f"a record has {len(record)} values but there are {len(columns)} column names")
        out.append({str(c): _plain(v) for c, v in zip(columns, record, strict=True)})
    return out


def template_placeholders(template: Any) -> set[str]:
    """Every placeholder string (``"$..."``) found in ``template``."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, str) and node.startswith("$"):
            found.add(node)
        elif isinstance(node, dict):
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(template)
    return found


def check_template(template: Any, *, columns: Sequence[str] | None = None) -> bool:
    """Validate ``template``'s placeholders (see :func:`fill_template`); whether it takes one record per request.

    Raises
    ------
    InvalidInputError
        Naming the template when it holds no record placeholder or several, an unknown ``$name``, or a placeholder
        that needs column names when none are known.
    """
    found = template_placeholders(template)
    sources = sorted(found & set(RECORD_PLACEHOLDERS))
    unknown = sorted(found - set(RECORD_PLACEHOLDERS) - set(AUX_PLACEHOLDERS))
    text = json.dumps(template)[:160]
    if len(sources) != 1:
        choices = "; ".join(f"{k!r}: {v}" for k, v in RECORD_PLACEHOLDERS.items())
        raise InvalidInputError(
            f"request template {text} must contain exactly one record placeholder; found "
            f"{sources or 'none'}. The placeholders: {choices}"
        )
    if unknown:
        known = sorted(RECORD_PLACEHOLDERS) + sorted(AUX_PLACEHOLDERS)
        raise InvalidInputError(f"request template {text} has unknown placeholders {unknown}; expected some of {known}")
    needs_columns = found & {"$records_objects", "$record_object", "$columns"}
    if needs_columns and columns is None:
        raise InvalidInputError(
            f"request template {text} uses {sorted(needs_columns)}, which need the records' column names; give the "
            "records as a CSV with a header (or pass feature_names)"
        )
    return sources[0] in SINGLE_PLACEHOLDERS


def fill_template(template: Any, records: list[Any], *, columns: Sequence[str] | None = None) -> tuple[Any, bool]:
    """``template`` with its placeholders replaced by the batch ``records`` (a list of lists of numbers).

    Record placeholders (exactly one): ``"$records"`` (the batch), ``"$record"`` (its one record),
    ``"$records_objects"`` / ``"$record_object"`` (objects ``{column: value}`` named by ``columns``: e.g.
    ``{"features": "$record_object"}`` sends ``{"features": {"age": 31, ...}}``), ``"$records_flat"`` (the batch
    flattened row-major). Beside them: ``"$columns"`` (the column names) and ``"$shape"`` (``[n, ...features]``).
    Integral values inside objects are sent as JSON integers.

    Returns the filled request and whether the template takes one record per request (then ``records`` must
    hold one record).
    """
    single = check_template(template, columns=columns)

    def value(name: str) -> Any:
        if name == "$records":
            return records
        if name == "$record":
            return records[0]
        if name == "$records_objects":
            return _objects(records, columns, name)
        if name == "$record_object":
            return _objects(records[:1], columns, name)[0]
        if name == "$records_flat":
            return np.asarray(records, dtype=np.float64).ravel().tolist()
        if name == "$columns":
            return [str(c) for c in columns or []]
        return list(np.shape(records))  # $shape

    def walk(node: Any) -> Any:
        if isinstance(node, str) and node in RECORD_PLACEHOLDERS | AUX_PLACEHOLDERS:
            return value(node)
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(copy.deepcopy(template)), single


def as_tensor(value: Any) -> Any:
    """A KServe v2 / Open Inference Protocol tensor ``{"shape": [...], "data": [...]}`` as nested lists (its flat
    ``data`` reshaped row-major); anything else unchanged."""
    if isinstance(value, dict) and "data" in value and "shape" in value and isinstance(value["data"], list):
        shape = value["shape"]
        data = value["data"]
        if isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape):
            if data and isinstance(data[0], list):
                return data  # already nested, as some servers send it
            size = int(np.prod(shape))
            if size != len(data):
                raise InvalidInputError(f"a tensor of shape {shape} holds {len(data)} values, not {size}")
            return np.asarray(data, dtype=object).reshape(shape).tolist()
    return value


def to_predictions(observed: np.ndarray, *, granularity: str = "probabilities") -> list[Any]:
    """Observed outputs ``(n, n_classes)`` → the JSON ``predictions`` list (see the module docstring)."""
    observed = _check_probabilities(observed)
    if granularity == "label":
        return [int(i) for i in np.nanargmax(observed, axis=1)]
    preds: list[Any] = []
    for row in observed:
        shown = ~np.isnan(row)
        if shown.all():
            preds.append([float(v) for v in row])
        else:
            classes = np.flatnonzero(shown)
            classes = classes[np.argsort(-row[classes], kind="stable")]
            preds.append({"classes": [int(c) for c in classes], "probabilities": [float(row[c]) for c in classes]})
    return preds


LABEL_FIELDS = ("label", "class", "predicted_class", "prediction", "predicted_label")
CONFIDENCE_FIELDS = ("confidence", "score", "probability", "prob")
"""Field names read as a label and its confidence when an answer object has exactly these two (or just a label)."""


@dataclass(frozen=True)
class AnswerFields:
    """Where an answer object holds the predicted label and its confidence: ``{"label": "segment_05",
    "confidence": 0.41}`` is read with ``AnswerFields("label", "confidence")`` as the top-1 class with its
    probability, ``{"label": 3}`` with ``AnswerFields("label")`` as a label only. Field names may be JSON paths
    (``"result.class"``)."""

    label: str
    confidence: str | None = None


def _column(value: Any, n_classes: int, classes: Sequence[Any] | np.ndarray | None) -> int | None:
    """The output column of a label in an answer: its position among ``classes`` (compared as text), or the
    label itself when it is an integer in ``[0, n_classes)`` and the classes are not named."""
    if isinstance(value, bool):
        return None
    if classes is not None:
        names = [str(c) for c in classes]
        text = str(value)
        if text in names:
            return names.index(text)
        if isinstance(value, float) and value.is_integer() and str(int(value)) in names:
            return names.index(str(int(value)))
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int | np.integer) and 0 <= value < n_classes:
        return int(value)
    return None


def _field(pred: dict, path: str) -> Any:
    return extract_json_path(pred, path)


def _guess_fields(pred: dict) -> AnswerFields | None:
    labels = [k for k in pred if k in LABEL_FIELDS]
    confidences = [k for k in pred if k in CONFIDENCE_FIELDS]
    if len(labels) == 1 and len(confidences) <= 1 and len(pred) == len(labels) + len(confidences):
        return AnswerFields(labels[0], confidences[0] if confidences else None)
    return None


def read_prediction(
    pred: Any,
    *,
    n_classes: int,
    classes: Sequence[Any] | np.ndarray | None = None,
    fields: AnswerFields | None = None,
) -> tuple[np.ndarray, str] | None:
    """One answer as an observed row ``(n_classes,)`` (NaN = withheld) and the output kind it shows; None when it
    fits none of the forms of the module docstring.

    The forms: a list of ``n_classes`` numbers (probabilities or logits); a label (an int column index, or a
    class name when ``classes`` names them); ``{"classes": [...], "probabilities": [...]}`` (top-k); an object
    with a label field and optionally a confidence field (``fields``, else guessed from :data:`LABEL_FIELDS` and
    :data:`CONFIDENCE_FIELDS`): a label, or the top-1 class with its probability; an object mapping every class
    name (or some: the others withheld) to its probability.
    """
    row = np.full(n_classes, np.nan)
    if isinstance(pred, list | tuple):
        if len(pred) == n_classes and all(_is_number(v) for v in pred):
            return np.asarray(pred, dtype=np.float64), "scores"
        return None
    if isinstance(pred, dict):
        if fields is None and "classes" in pred and "probabilities" in pred:
            top = _top_k(pred, n_classes, classes)
            if top is None:
                return None
            cols, probs = top
            row[cols] = probs
            return row, "top-k"
        chosen = fields or _guess_fields(pred)
        if chosen is not None:
            try:
                label = _field(pred, chosen.label)
            except KeyError:
                return None
            col = _column(label, n_classes, classes)
            if col is None:
                return None
            if chosen.confidence is None:
                row[:] = 0.0
                row[col] = 1.0
                return row, "label"
            try:
                confidence = _field(pred, chosen.confidence)
            except KeyError:
                return None
            if not _is_number(confidence):
                return None
            row[col] = float(confidence)
            if n_classes == 1:
                return row, "probabilities"
            return row, "top-k"
        if pred and classes is not None and all(_is_number(v) for v in pred.values()):
            found = [_column(k, n_classes, classes) for k in pred]
            cols = [c for c in found if c is not None]
            if len(cols) != len(found) or len(set(cols)) != len(cols):
                return None
            row[cols] = np.asarray(list(pred.values()), dtype=np.float64)
            return row, ("scores" if len(cols) == n_classes else "top-k")
        return None
    if isinstance(pred, str) or isinstance(pred, int | np.integer | float):
        col = _column(pred, n_classes, classes)
        if col is None:
            return None
        row[:] = 0.0
        row[col] = 1.0
        return row, "label"
    return None


def from_predictions(
    predictions: Sequence[Any],
    *,
    n_classes: int,
    classes: Sequence[Any] | np.ndarray | None = None,
    fields: AnswerFields | None = None,
) -> np.ndarray:
    """The JSON ``predictions`` list → observed outputs ``(n, n_classes)`` (one-hot for labels, NaN = withheld).

    See :func:`read_prediction` for the forms read. Raises :class:`InvalidInputError` naming the first
    prediction that fits none of them and the forms expected.
    """
    out = np.full((len(predictions), n_classes), np.nan)
    for i, pred in enumerate(predictions):
        read = read_prediction(pred, n_classes=n_classes, classes=classes, fields=fields)
        if read is not None:
            out[i] = read[0]
            continue
        named = "" if classes is None else f" (class names: {[str(c) for c in classes][:12]})"
        field_hint = (
            f"an object with the label field {fields.label!r}"
            + (f" and the confidence field {fields.confidence!r}" if fields.confidence else "")
            if fields is not None
            else "{'label': ..., 'confidence': ...} (name the fields with --answer-label/--answer-confidence), "
            "an object mapping class names to probabilities"
        )
        lists = (
            [k for k, v in pred.items() if isinstance(v, list) and v and all(_is_number(x) for x in v)]
            if isinstance(pred, dict)
            else []
        )
        if lists:
            # One object per record holding its scores ({"scores": [...]}): the path should reach into each item.
            field_hint += (
                f"; each prediction holds its scores under {lists[0]!r}: give the path to them with [*], e.g. "
                f"--output-path 'outputs[*].{lists[0]}'"
            )
        raise InvalidInputError(
            f"prediction {i} is {str(pred)[:120]!r}; expected a list of {n_classes} probabilities, "
            f"a class label{named}, {{'classes': [...], 'probabilities': [...]}}, or {field_hint}"
        )
    return out


def prediction_kind(predictions: Sequence[Any], observed: np.ndarray, **read: Any) -> str:
    """The output kind a batch of answers shows: ``label``, ``top-k``, or for lists of scores ``probabilities``
    or ``logits`` (:func:`~memberscope.targets.outputs.detect_output_kind`)."""
    from memberscope.targets.outputs import detect_output_kind

    kinds = {r[1] for r in (read_prediction(p, **read) for p in predictions) if r is not None}
    if kinds == {"label"}:
        return "label"
    if "top-k" in kinds:
        return "top-k"
    return detect_output_kind(observed)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and np.isfinite(v)


def _top_k(
    pred: dict, n_classes: int, classes: Sequence[Any] | np.ndarray | None
) -> tuple[list[int], np.ndarray] | None:
    labels, probs = pred.get("classes"), pred.get("probabilities")
    if not (isinstance(labels, list) and isinstance(probs, list) and 0 < len(labels) == len(probs) <= n_classes):
        return None
    found = [_column(c, n_classes, classes) for c in labels]
    cols = [c for c in found if c is not None]
    if len(cols) != len(found) or not all(_is_number(p) for p in probs):
        return None
    return cols, np.asarray(probs, dtype=np.float64)
