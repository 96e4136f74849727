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


def test_per_item_score_lists_are_read_through_a_star_path():
    # The trial's server: {"inputs": [[...]]} in, {"outputs": [{"scores": [...]}, ...]} out.
    seen = []
    answer = lambda body: (200, {"outputs": [{"scores": p} for p in PROBS[: len(body["inputs"])].tolist()]})  # noqa: E731
    target = _target(answer, seen, request_template={"inputs": "$records"}, output_path="outputs[*].scores")
    np.testing.assert_allclose(target.query(X), PROBS)
    # Without the [*] step, the error says how to reach the scores, with flags that exist.
    target = _target(answer, [], request_template={"inputs": "$records"}, output_path="outputs", n_classes=3)
    with pytest.raises(TargetResponseError) as exc:
        target.query(X)
    message = str(exc.value)
    assert "--output-path 'outputs[*].scores'" in message and "--answer-label/--answer-confidence" in message
    assert "--label-field" not in message


def test_every_flag_named_in_an_error_message_exists():
    # A hint naming --label-field/--confidence-field (flags that never existed) sent the trial's user nowhere: every
    # option named in memberscope's messages, hints and help text must be one of the CLI's.
    import ast
    import re
    from pathlib import Path

    import typer

    import memberscope
    from memberscope.cli import app

    def options(command) -> set[str]:
        found = {o for p in command.params for o in (*p.opts, *p.secondary_opts) if o.startswith("--")}
        for sub in getattr(command, "commands", {}).values():
            found |= options(sub)
        return found

    known = options(typer.main.get_command(app)) | {"--help"}  # click adds --help to every command
    named: dict[str, str] = {}
    for path in Path(memberscope.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            # Every sentence in the source (messages, hints, help): a string with a space in it. A lone flag string
            # is an option's declaration or another program's argument (a browser's --headless).
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and " " in node.value.strip():
                for flag in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*[a-z0-9]", node.value):
                    named.setdefault(flag, f"{path.name}:{node.lineno}")
    assert len(named) > 20  # the scan reads the messages
    unknown = {flag: where for flag, where in named.items() if flag not in known}
    assert not unknown, f"messages name options no command has: {unknown}"
