"""Any API shape (issue 14): server presets, named-field records, label+confidence and class-name answers, whole
error messages. Servers are simulated with httpx.MockTransport; the bodies they receive are checked as sent."""

import json

import httpx
import numpy as np
import pytest

from memberscope.exceptions import TargetResponseError
from memberscope.targets import HttpTarget
from memberscope.targets.wire import AnswerFields, read_prediction

URL = "http://model.test/invocations"
COLUMNS = ["age", "income", "visits"]
X = np.array([[31.0, 52000.5, 3.0], [47.0, 61000.0, 0.0]])
PROBS = np.array([[0.1, 0.7, 0.2], [0.5, 0.25, 0.25]])


def _target(answer, seen, **kwargs):
    def handler(request):
        body = json.loads(request.content)
        seen.append(body)
        status, payload = answer(body)
        return (
            httpx.Response(status, json=payload)
            if not isinstance(payload, str)
            else httpx.Response(status, text=payload)
        )

    return HttpTarget(URL, transport=httpx.MockTransport(handler), **kwargs)


def test_mlflow_preset_sends_a_dataframe_split_with_the_column_names():
    seen = []
    target = _target(
        lambda body: (200, {"predictions": PROBS[: len(body["dataframe_split"]["data"])].tolist()}),
        seen,
        api="mlflow",
        n_classes=3,
        feature_names=COLUMNS,
    )
    np.testing.assert_allclose(target.query(X), PROBS)
    assert seen[0] == {"dataframe_split": {"columns": COLUMNS, "data": X.tolist()}}


def test_kserve_v2_preset_sends_a_tensor_and_reads_one():
    seen = []

    def answer(body):
        (tensor,) = body["inputs"]
        n = tensor["shape"][0]
        out = {"name": "output-0", "shape": [n, 3], "datatype": "FP32", "data": PROBS[:n].ravel().tolist()}
        return 200, {"model_name": "m", "outputs": [out]}

    target = _target(answer, seen, api="kserve-v2", n_classes=3)
    np.testing.assert_allclose(target.query(X), PROBS)
    assert seen[0]["inputs"][0]["shape"] == [2, 3] and seen[0]["inputs"][0]["data"] == X.ravel().tolist()


def test_named_fields_in_label_and_confidence_out():
    seen = []
    classes = ["segment_00", "segment_01", "segment_02"]

    def answer(body):
        row = np.array([[body["features"][c] for c in COLUMNS]])
        probs = PROBS[np.flatnonzero((X == row).all(axis=1))[0]]
        return 200, {"label": classes[int(np.argmax(probs))], "confidence": float(probs.max())}

    target = _target(
        answer,
        seen,
        request_template={"features": "$record_object"},
        output_path="",
        classes=classes,
        feature_names=COLUMNS,
        answer_fields=AnswerFields("label", "confidence"),
    )
    observed = target.query(X)
    assert seen[0] == {"features": {"age": 31, "income": 52000.5, "visits": 3}}  # integral values as integers
    assert target.output_kind == "top-k" and observed.shape == (2, 3)
    assert observed[0, 1] == pytest.approx(0.7) and np.isnan(observed[0, [0, 2]]).all()
    assert observed[1, 0] == pytest.approx(0.5)


def test_answers_naming_classes():
    classes = ["cat", "dog", "fox"]
    row, kind = read_prediction({"dog": 0.9, "cat": 0.05, "fox": 0.05}, n_classes=3, classes=classes)
    np.testing.assert_allclose(row, [0.05, 0.9, 0.05])
    assert kind == "scores"  # every class's value: probabilities or logits, read off the rows later
    row, kind = read_prediction("fox", n_classes=3, classes=classes)
    np.testing.assert_array_equal(row, [0.0, 0.0, 1.0])
    assert kind == "label"
    row, kind = read_prediction({"label": "cat", "confidence": 0.41}, n_classes=3, classes=classes)
    assert kind == "top-k" and row[0] == pytest.approx(0.41) and np.isnan(row[1:]).all()
    assert read_prediction({"label": "wolf"}, n_classes=3, classes=classes) is None


def test_a_refused_request_shows_the_servers_whole_message():
    message = "column 'age' expected integer; " + "x" * 2445  # 2,476 characters, as the MLflow server
    assert len(message) == 2476
    target = _target(lambda body: (422, message), [], n_classes=3)
    with pytest.raises(TargetResponseError) as info:
        target.query(X)
    text = str(info.value)
    assert message[:2000] in text and "[476 more characters]" in text
    short = _target(lambda body: (400, {"detail": "bad shape"}), [], n_classes=3)
    with pytest.raises(TargetResponseError, match="bad shape"):
        short.query(X)
