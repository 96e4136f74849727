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
from typing import Any

import numpy as np

from memberscope.exceptions import InvalidInputError

__all__ = [
    "DEFAULT_TEMPLATE",
    "extract_json_path",
    "fill_template",
    "from_predictions",
    "parse_path",
    "to_predictions",
]

DEFAULT_TEMPLATE: dict[str, Any] = {"instances": "$records"}
"""KServe v1 / TF Serving request: the batch of records under ``instances``."""


def _check_probabilities(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2:
        raise InvalidInputError(f"observed outputs must have shape (n, n_classes); got shape {values.shape}")
    return values


_PATH_TOKEN = re.compile(r"([^.\[\]]+)|\[(-?\d+)\]")


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
    for token in parse_path(path):
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


def from_predictions(predictions: Sequence[Any], *, n_classes: int) -> np.ndarray:
    """The JSON ``predictions`` list → observed outputs ``(n, n_classes)`` (one-hot for labels, NaN = withheld).

    Raises :class:`InvalidInputError` naming the first prediction that fits none of the three forms.
    """
    out = np.full((len(predictions), n_classes), np.nan)
    for i, pred in enumerate(predictions):
        if isinstance(pred, bool):
            pass  # falls through to the error below: a bool is no label
        elif isinstance(pred, int | np.integer) and 0 <= pred < n_classes:
            out[i] = 0.0
            out[i, int(pred)] = 1.0
            continue
        elif isinstance(pred, list | tuple) and len(pred) == n_classes and all(_is_number(v) for v in pred):
            out[i] = np.asarray(pred, dtype=np.float64)
            continue
        elif isinstance(pred, dict) and _is_top_k(pred, n_classes):
            out[i, np.asarray(pred["classes"], dtype=int)] = np.asarray(pred["probabilities"], dtype=np.float64)
            continue
        raise InvalidInputError(
            f"prediction {i} is {str(pred)[:80]!r}; expected a list of {n_classes} probabilities, "
            f"a class label in [0, {n_classes - 1}], or {{'classes': [...], 'probabilities': [...]}}"
        )
    return out


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and np.isfinite(v)


def _is_top_k(pred: dict, n_classes: int) -> bool:
    classes, probs = pred.get("classes"), pred.get("probabilities")
    return (
        isinstance(classes, list)
        and isinstance(probs, list)
        and 0 < len(classes) == len(probs) <= n_classes
        and all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c < n_classes for c in classes)
        and all(_is_number(p) for p in probs)
    )
