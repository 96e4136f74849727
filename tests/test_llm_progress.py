"""Progress while language models score texts: a task per pass with the number of texts as its total, advanced per
text scored (per answered request for an endpoint), for the canary candidates and the metrics too; the scores are
the same with and without it; silent off a terminal."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("transformers", reason="needs the llm extra (transformers)")

from rich.progress import Progress

from memberscope.llm.audit import audit_llm
from memberscope.llm.loading import load_language_model
from memberscope.llm.scoring import score_texts
from memberscope.progress import progress_columns
from tests.cli_helpers import run_cli
from tests.llm_helpers import CORPUS, make_tiny_bert, make_tiny_lm, one_torch_thread

_one_thread = pytest.fixture(autouse=True, scope="module")(one_torch_thread)

MEMBERS = [*CORPUS[:3], f"{CORPUS[0]} {CORPUS[1]}", f"{CORPUS[1]} {CORPUS[2]}"]
NONMEMBERS = [*CORPUS[3:], f"{CORPUS[3]} {CORPUS[4]}", f"{CORPUS[4]} {CORPUS[5]}"]


class AdvanceLog(Progress):
    """A silent Progress that logs ``(description, total, completed)`` after every advance."""

    def __init__(self):
        super().__init__(*progress_columns(), disable=True)
        self.log: list[tuple[str, float | None, float]] = []

    def advance(self, task_id, advance=1):
        super().advance(task_id, advance)
        task = next(t for t in self.tasks if t.id == task_id)
        self.log.append((task.description, task.total, task.completed))

    def steps(self, description: str) -> list[tuple[float | None, float]]:
        return [(total, done) for d, total, done in self.log if d == description]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return make_tiny_lm(tmp_path_factory.mktemp("tiny-progress"))


@pytest.fixture(scope="module")
def tiny_bert_dir(tmp_path_factory):
    return make_tiny_bert(tmp_path_factory.mktemp("tiny-bert-progress"))


@pytest.mark.parametrize("kind", ["causal", "masked"])
def test_score_texts_reports_each_text_once_and_changes_nothing(kind, tiny_dir, tiny_bert_dir):
    lm = load_language_model(tiny_dir if kind == "causal" else tiny_bert_dir)
    texts = MEMBERS + NONMEMBERS
    counted: list[int] = []
    seen = score_texts(lm, texts, max_length=32, batch_tokens=64, progress=counted.append)
    plain = score_texts(lm, texts, max_length=32, batch_tokens=64)
    assert counted == [1] * len(texts)  # several batches: one call per text, as each is scored
    np.testing.assert_array_equal(seen.logprobs, plain.logprobs)
    np.testing.assert_array_equal(seen.mu, plain.mu)
    np.testing.assert_array_equal(seen.offsets, plain.offsets)


def test_llm_audit_shows_every_pass_with_its_total_and_the_same_scores(tiny_dir):
    from memberscope.llm.canaries import make_canaries

    canaries = make_canaries(repetitions=(1,), per_repetition=2, n_digits=2, seed=0)
    kwargs = dict(model=tiny_dir, members=MEMBERS, nonmembers=NONMEMBERS, reference_model=tiny_dir, max_length=32,
                  n_bootstrap=20, canaries=canaries, canary_digits=2, canary_candidates=30, validity=False)  # fmt: skip
    with AdvanceLog() as bars:
        shown = audit_llm(**kwargs, bars=bars)
    quiet = audit_llm(**kwargs)
    n = len(MEMBERS) + len(NONMEMBERS)
    for description in ("scoring texts", "scoring lowercased texts", "reference model scoring"):
        assert bars.steps(description) == [(n, k) for k in range(1, n + 1)], description  # one step per text
    candidates = bars.steps("scoring canary candidates")
    assert candidates == [(32, k) for k in range(1, 33)]  # 30 candidate secrets, then the 2 canaries
    n_attacks = len(shown.scores)
    assert bars.steps("metrics (20 bootstrap)") == [(n_attacks, k) for k in range(1, n_attacks + 1)]
    assert set(shown.scores) == set(quiet.scores)
    for name, score in quiet.scores.items():
        np.testing.assert_array_equal(shown.scores[name], score)
    assert shown.results.sections["llm"]["canaries"] == quiet.results.sections["llm"]["canaries"]


def test_dataset_inference_shows_its_scoring_pass(tiny_dir):
    from memberscope.llm.dataset_inference import dataset_inference

    suspect, validation = MEMBERS * 2, NONMEMBERS * 2
    with AdvanceLog() as bars:
        shown = dataset_inference(model=tiny_dir, suspect=suspect, validation=validation, features=["loss", "zlib"],
                                  max_length=32, validity=False, bars=bars)  # fmt: skip
    quiet = dataset_inference(
        model=tiny_dir, suspect=suspect, validation=validation, features=["loss", "zlib"], max_length=32, validity=False
    )
    n = len(suspect) + len(validation)
    assert bars.steps("scoring texts") == [(n, k) for k in range(1, n + 1)]
    assert shown.results["p_value"] == quiet.results["p_value"]
    np.testing.assert_array_equal(shown.features, quiet.features)


def test_an_endpoint_reports_each_answered_request():
    import httpx

    from memberscope.llm.endpoint import EndpointLanguageModel

    def handler(request):
        prompts = json.loads(request.content)["prompt"]
        choices = [
            {"index": i, "logprobs": {"token_logprobs": [None, -1.0 - i], "tokens": ["a", "b"], "text_offset": [0, 1]}}
            for i in range(len(prompts))
        ]
        return httpx.Response(200, json={"model": "m", "choices": choices})

    lm = EndpointLanguageModel("http://x/v1/completions", batch_size=2, transport=httpx.MockTransport(handler))
    counted: list[int] = []
    stats = score_texts(lm, ["ab", "cd", "ef", "gh", "ij"], vocab_stats=False, progress=counted.append)
    assert counted == [2, 2, 1] and len(stats) == 5


def test_llm_audit_cli_shows_progress_when_asked_and_is_silent_off_a_terminal(tiny_dir, tmp_path, capsys):
    members = tmp_path / "members.txt"
    members.write_text("\n".join(MEMBERS) + "\n")
    nonmembers = tmp_path / "nonmembers.txt"
    nonmembers.write_text("\n".join(NONMEMBERS) + "\n")
    common = ["llm-audit", "--model", str(tiny_dir), "--members", str(members), "--nonmembers", str(nonmembers),
              "--attacks", "loss,zlib", "--n-bootstrap", "20", "--no-report"]  # fmt: skip
    code, _, err = run_cli(*common, "--out", str(tmp_path / "shown"), "--progress", capsys=capsys)
    assert code == 0, err
    assert "scoring texts" in err and "10/10" in err
    code, _, err = run_cli(*common, "--out", str(tmp_path / "quiet"), capsys=capsys)  # pytest's stderr: no terminal
    assert code == 0, err
    assert "scoring texts" not in err
    shown, quiet = (json.loads((tmp_path / d / "results.json").read_text()) for d in ("shown", "quiet"))
    assert shown["attacks"]["loss"]["auc"] == quiet["attacks"]["loss"]["auc"]


def test_a_text_classifiers_answers_are_counted_against_the_records_to_score(tmp_path, monkeypatch):
    """text-audit's target (a user's classifier) answers every text in batches: a task with the number of texts as
    its total advances per batch answered; the hook is put back afterwards."""
    import contextlib

    import memberscope.engine.run as engine_run
    from memberscope.llm.loading import load_text_classifier
    from memberscope.llm.text_audit import audit_text_classifier

    names = {0: "negative", 1: "positive"}
    folder = make_tiny_bert(tmp_path / "clf", head="BertForSequenceClassification", id2label=names,
                            label2id={v: k for k, v in names.items()})  # fmt: skip
    shown: list[AdvanceLog] = []

    @contextlib.contextmanager
    def logged(*, enabled=None):
        with AdvanceLog() as bars:
            shown.append(bars)
            yield bars

    monkeypatch.setattr(engine_run, "progress_bars", logged)
    target = load_text_classifier(folder, max_length=16, batch_size=4)
    labels = [0, 1, 0, 1, 0]
    kwargs = dict(members=(MEMBERS, labels), nonmembers=(NONMEMBERS, labels), attacks=["loss"], n_bootstrap=10)
    result = audit_text_classifier(target, **kwargs)
    steps = [s for bars in shown for s in bars.steps("records answered")]
    assert steps == [(10, 4), (10, 8), (10, 10)]
    assert target.on_answer is None
    monkeypatch.undo()
    again = audit_text_classifier(load_text_classifier(folder, max_length=16, batch_size=4), **kwargs)
    np.testing.assert_array_equal(result.scores["loss"], again.scores["loss"])
