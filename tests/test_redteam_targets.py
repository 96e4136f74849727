"""The red-team target interface: local models, the fake, and HttpTarget over an in-process transport."""

import json

import httpx
import numpy as np
import pytest

from memberscope.exceptions import (
    InvalidInputError,
    QueryBudgetExceededError,
    TargetAuthError,
    TargetRateLimitedError,
    TargetResponseError,
    TargetUnreachableError,
)
from memberscope.targets import FakeTarget, HttpTarget, as_logits, wrap
from memberscope.targets.postprocess import parse_postprocessors
from memberscope.targets.wire import extract_json_path, fill_template

URL = "http://model.test/v1/models/m:predict"


def _probs(X):
    """A fixed 3-class 'model': softmax of three linear scores."""
    X = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
    z = np.stack([X.sum(1), -X.sum(1), X[:, 0]], axis=1)
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def test_json_path_steps_and_errors():
    doc = {"outputs": [{"scores": [1, 2]}, {"scores": [3]}], "predictions": [0.5]}
    assert extract_json_path(doc, "predictions") == [0.5]
    assert extract_json_path(doc, "$.outputs[1].scores") == [3]
    assert extract_json_path(doc, "outputs[-1].scores[0]") == 3
    assert extract_json_path(doc, "$") is doc
    with pytest.raises(KeyError, match=r"\$\.outputs\[2\] does not exist \(\$\.outputs is a list of 2\)"):
        extract_json_path(doc, "outputs[2]")
    with pytest.raises(KeyError, match=r"\$\.result does not exist .*keys \['outputs', 'predictions'\]"):
        extract_json_path(doc, "result")


def test_template_placeholders():
    body, single = fill_template({"instances": "$records", "v": 1}, [[1.0], [2.0]])
    assert body == {"instances": [[1.0], [2.0]], "v": 1} and not single
    body, single = fill_template({"inputs": {"x": "$record"}}, [[3.0]])
    assert body == {"inputs": {"x": [3.0]}} and single
    with pytest.raises(InvalidInputError, match=r"\$records"):
        fill_template({"instances": "records"}, [[1.0]])


def test_model_target_applies_the_postprocessor_and_counts():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 4)), rng.integers(0, 3, 60)
    clf = LogisticRegression(max_iter=200).fit(X, y)
    full = wrap(clf, n_classes=3)
    np.testing.assert_allclose(full.query(X), clf.predict_proba(X), atol=1e-12)
    top1 = wrap(clf, n_classes=3, postprocess="top-k:1", query_budget=100)
    np.testing.assert_allclose(top1.query(X), parse_postprocessors("top-k:1")(clf.predict_proba(X)), atol=1e-12)
    assert top1.queries_spent == 60 and top1.queries_left == 40
    with pytest.raises(QueryBudgetExceededError, match="exceed the query budget of 100"):
        top1.query(X)
    assert top1.queries_spent == 60  # nothing sent
    logits = as_logits(wrap(clf, n_classes=3).query(X[:5]), "probabilities")
    np.testing.assert_allclose(logits, np.log(clf.predict_proba(X[:5])), atol=1e-9)


def test_fake_target_keeps_answers_before_failing():
    X = np.arange(20, dtype=float).reshape(10, 2) / 10
    target = FakeTarget(_probs, n_classes=3, postprocess="round:1", fail_after=6, batch_size=4)
    with pytest.raises(TargetUnreachableError) as exc:
        target.query(X)
    np.testing.assert_array_equal(exc.value.answered, np.round(_probs(X[:4]), 1))
    assert target.queries_spent == 4


class _Server:
    """An httpx MockTransport that answers the KServe v1 format, with scripted failures."""

    def __init__(self, *, post="", script=()):
        self.post = parse_postprocessors(post)
        self.script = list(script)  # per request: None (answer) or an httpx.Response
        self.bodies = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.bodies.append((body, dict(request.headers)))
        if self.script:
            scripted = self.script.pop(0)
            if scripted is not None:
                return scripted
        from memberscope.targets.wire import to_predictions

        observed = self.post(_probs(np.asarray(body["instances"])))
        return httpx.Response(200, json={"predictions": to_predictions(observed, granularity=self.post.granularity)})


def _target(server, **kwargs):
    sleeps = []
    kwargs.setdefault("n_classes", 3)
    t = HttpTarget(URL, transport=httpx.MockTransport(server), sleep=sleeps.append, **kwargs)
    return t, sleeps


@pytest.mark.parametrize("post", ["", "top-k:1", "round:1", "label-only"])
def test_http_target_reads_each_wire_form(post):
    X = np.random.default_rng(1).normal(size=(7, 2))
    server = _Server(post=post)
    target, _ = _target(server, batch_size=3)
    expected = parse_postprocessors(post)(_probs(X))
    np.testing.assert_allclose(target.query(X), expected, atol=1e-12)
    assert target.queries_spent == 7 and target.requests_sent == 3
    assert [len(b["instances"]) for b, _ in server.bodies] == [3, 3, 1]


def test_http_target_infers_n_classes_from_probability_lists():
    target, _ = _target(_Server(), n_classes=None)
    target.query(np.zeros((2, 2)))
    assert target.n_classes == 3
    label, _ = _target(_Server(post="label-only"), n_classes=None)
    with pytest.raises(TargetResponseError, match="--n-classes"):
        label.query(np.zeros((2, 2)))


def test_retry_after_is_honoured_then_backoff_then_give_up():
    limited = httpx.Response(429, headers={"Retry-After": "2"})
    server = _Server(script=[limited, httpx.Response(503), None])
    target, sleeps = _target(server, max_retries=3, backoff=0.25)
    target.query(np.zeros((1, 2)))
    assert sleeps == [2.0, 0.5]  # Retry-After, then backoff * 2**1
    assert [e["status"] for e in target.rate_limit_events] == [429, 503]
    assert target.rate_limit_events[0]["retry_after"] == 2.0
    server = _Server(script=[httpx.Response(429)] * 3)
    target, sleeps = _target(server, max_retries=2, backoff=1.0, max_backoff=1.5)
    with pytest.raises(TargetRateLimitedError, match="still answered 429 after 3 tries"):
        target.query(np.zeros((1, 2)))
    assert sleeps == [1.0, 1.5]


def test_client_side_rate_limit_spaces_requests():
    target, sleeps = _target(_Server(), rate_limit=2.0, batch_size=1)
    target.query(np.zeros((3, 2)))
    assert len(sleeps) == 2 and all(0.4 < s <= 0.5 for s in sleeps)


def test_api_key_from_environment(monkeypatch):
    monkeypatch.setenv("MS_TEST_KEY", "s3cret")
    server = _Server()
    target, _ = _target(server, api_key_env="MS_TEST_KEY")
    target.query(np.zeros((1, 2)))
    assert server.bodies[0][1]["authorization"] == "Bearer s3cret"
    monkeypatch.delenv("MS_TEST_KEY")
    with pytest.raises(InvalidInputError, match="'MS_TEST_KEY'"):
        _target(server, api_key_env="MS_TEST_KEY")


@pytest.mark.parametrize(
    ("response", "error", "message"),
    [
        (httpx.Response(401), TargetAuthError, "answered 401 Unauthorized: no API key was sent"),
        (httpx.Response(403), TargetAuthError, "answered 403 Forbidden"),
        (httpx.Response(200, text="<html>hi</html>"), TargetResponseError, "not JSON"),
        (httpx.Response(200, json={"outputs": []}), TargetResponseError, "JSON path 'predictions' does not match"),
        (httpx.Response(200, json={"predictions": [[0.5]]}), TargetResponseError, "expected a list of 2"),
        (httpx.Response(200, json={"predictions": ["a", "b"]}), TargetResponseError, "prediction 0 is 'a'"),
        (httpx.Response(500, text="boom"), TargetResponseError, "answered 500"),
    ],
)
def test_errors_name_the_url_and_keep_earlier_answers(response, error, message):
    X = np.random.default_rng(2).normal(size=(4, 2))
    target, _ = _target(_Server(script=[None, response]), batch_size=2)
    with pytest.raises(error, match=message) as exc:
        target.query(X)
    assert URL in str(exc.value)
    np.testing.assert_allclose(exc.value.answered, _probs(X[:2]))
    kept_X, _ = target.answered_records()
    np.testing.assert_array_equal(kept_X, X[:2])
    # A batch the server answered counts as spent even when its answer cannot be read.
    assert target.queries_spent == (4 if "prediction 0" in message else 2)


def test_unreachable_url_is_a_clear_error():
    def refuse(request):
        raise httpx.ConnectError("connection refused", request=request)

    target = HttpTarget(URL, n_classes=3, transport=httpx.MockTransport(refuse))
    with pytest.raises(TargetUnreachableError, match=f"cannot reach {URL}"):
        target.query(np.zeros((1, 2)))
    assert target.answered_records() is None


def test_bad_settings_are_named():
    with pytest.raises(InvalidInputError, match="must start with http"):
        HttpTarget("ftp://x", n_classes=2)
    with pytest.raises(InvalidInputError, match=r"batch_size must be >= 1; got 0.*timeout"):
        HttpTarget(URL, batch_size=0, timeout=0)
    with pytest.raises(InvalidInputError, match="JSON path"):
        HttpTarget(URL, output_path="a..[x]")


def test_http_target_reports_each_answered_batch():
    target, _ = _target(_Server(), batch_size=3)
    seen = []
    target.on_answer = seen.append
    target.query(np.zeros((7, 2)))
    assert seen == [3, 3, 1]
