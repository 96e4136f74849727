"""Progress displays: an ETA from the average rate as soon as one step finished, 80 columns, silent off a tty."""

import io

import pytest
from rich.console import Console
from rich.progress import Progress, TimeRemainingColumn

from memberscope.progress import StagedTask, average_rate_remaining, progress_bars, progress_columns


def test_average_rate_remaining_closed_form():
    assert average_rate_remaining(10.0, 0, 4) is None
    assert average_rate_remaining(None, 1, 4) is None
    assert average_rate_remaining(10.0, 1, None) is None
    assert average_rate_remaining(10.0, 1, 4) == pytest.approx(30.0)
    assert average_rate_remaining(90.0, 3, 4) == pytest.approx(30.0)
    assert average_rate_remaining(50.0, 4, 4) == 0.0


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def _render(progress, columns, task_id):
    task = progress.tasks[task_id]
    return [str(c.render(task)) for c in columns]


def test_eta_is_shown_after_the_first_slow_step():
    """Steps of 3 minutes each: rich's 30-second window never has two samples; ours shows the ETA at once."""
    clock = Clock()
    columns = progress_columns()
    rich_eta = TimeRemainingColumn()
    with Progress(*columns, rich_eta, get_time=clock, disable=True) as progress:
        task = progress.add_task("models", total=4)
        clock.now += 180
        assert _render(progress, columns, task)[-1] == "ETA -:--:--"
        progress.advance(task)
        assert str(rich_eta.render(progress.tasks[task])) == "-:--:--"  # the defect this column fixes
        assert _render(progress, columns, task)[-1] == "ETA 0:09:00"
        clock.now += 200
        progress.advance(task)
        assert _render(progress, columns, task)[-1] == "ETA 0:06:20"
        progress.update(task, completed=4)
        assert _render(progress, columns, task)[-1] == "done"


def test_a_progress_line_fits_80_columns():
    buffer = io.StringIO()
    console = Console(file=buffer, width=80, force_terminal=True, color_system=None)
    with Progress(*progress_columns(), console=console, auto_refresh=False) as progress:
        task = progress.add_task("reference model 12 of 16", total=16)
        progress.update(task, completed=11)
        progress.refresh()
    lines = [line for line in buffer.getvalue().replace("\r", "\n").splitlines() if "reference model" in line]
    assert lines
    for line in lines:
        text = line.replace("\x1b[?25l", "").replace("\x1b[?25h", "").replace("\x1b[2K", "").replace("\x1b[1A", "")
        assert "ETA" in text and "/16" in text
        assert len(text.rstrip()) <= 80, text
    assert "11/16" in lines[-1]


def test_silent_when_not_on_a_terminal(capsys):
    with progress_bars() as bars:
        assert bars.disable
        bars.add_task("models", total=2)
    assert capsys.readouterr().err == ""


def test_shown_when_asked_for():
    with progress_bars(enabled=True) as bars:
        assert not bars.disable


class _Bars:
    def __init__(self):
        self.tasks, self.log = {}, []

    def add_task(self, description, total):
        self.tasks[len(self.log)] = [description, total, 0.0]
        self.log.append(("add", description, total))
        return len(self.log) - 1

    def update(self, task, completed):
        self.tasks[task][2] = completed

    def remove_task(self, task):
        self.log.append(("remove", self.tasks.pop(task)[2]))


def test_a_rate_limit_wait_is_a_countdown_and_pacing_is_silent():
    from memberscope.progress import announced_sleep

    bars, slept = _Bars(), []
    sleep = announced_sleep(bars, sleep=slept.append)
    sleep(0.2)  # pacing to --rate
    assert bars.log == [] and slept == [0.2]
    sleep(27.0)  # a Retry-After
    assert bars.log == [("add", "rate limited: waiting 27 s", 27.0), ("remove", 27.0)]
    assert sum(slept) == pytest.approx(27.2)


def test_a_count_without_an_end_shows_no_eta():
    columns = progress_columns()
    with Progress(*columns, disable=True) as progress:
        task = progress.add_task("records answered", total=None)
        progress.advance(task, 64)
        assert _render(progress, columns, task)[-1] == ""


def test_an_audit_shows_progress_for_models_attacks_and_bootstrap(monkeypatch):
    """Every long step of an audit has a progress task with a total (so an ETA): models, attacks, metrics."""
    import contextlib

    import memberscope.engine.run as engine_run
    import memberscope.engine.training as engine_training
    from memberscope.api import run_audit
    from memberscope.config import AuditConfig

    tasks = []

    @contextlib.contextmanager
    def recording(*, enabled=None):
        with Progress(*progress_columns(), disable=True) as progress:
            yield progress
            tasks.extend((t.description, t.total, t.completed) for t in progress.tasks)

    monkeypatch.setattr(engine_run, "progress_bars", recording)
    if hasattr(engine_training, "progress_bars"):
        monkeypatch.setattr(engine_training, "progress_bars", recording)
    config = AuditConfig(
        dataset="digits", n_records=300, model="logreg", model_params={"epochs": 3}, reference_models=2,
        attacks=["loss", "lira-offline"], n_bootstrap=10, use_cache=False, seed=0,
    )  # fmt: skip
    run_audit(config, progress=False)
    finished = {d: (total, done) for d, total, done in tasks}
    assert finished["metrics (10 bootstrap replicates)"] == (2, 2)
    assert any(total == 3 and done == 3 for total, done in finished.values())  # target + 2 reference models


def test_llm_demo_training_advances_a_task_per_optimizer_step():
    """llm-demo's pre-training and fine-tuning (minutes on a CPU) each get a task with its number of steps."""
    from types import SimpleNamespace

    import torch

    from memberscope.llm.demo_setting import _train

    model = torch.nn.Linear(1, 1)
    arch = SimpleNamespace(
        encode=lambda tokenizer, text, context: [1, 2, 3][: len(text)],
        loss=lambda model, ids, mask, config, tokenizer, gen: model(ids[:, :1].float()).pow(2).mean(),
    )
    config = SimpleNamespace(batch_size=2, context=8)
    tokenizer = SimpleNamespace(pad_token_id=0)
    with Progress(*progress_columns(), disable=True) as bars:
        losses = _train(
            model, tokenizer, ["a", "bb", "ccc", "dd", "e"], arch=arch, config=config, epochs=2, lr=0.01, seed=0,
            bars=bars, description="fine-tuning (steps)",
        )  # fmt: skip
        [task] = bars.tasks
    assert task.description == "fine-tuning (steps)"
    assert task.total == task.completed == len(losses) == 2 * 3  # 5 texts in batches of 2, twice


class _LoggedProgress(Progress):
    """A silent Progress that logs (completed, description) of its first task at every update."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.log = []

    def update(self, task_id, **kwargs):
        super().update(task_id, **kwargs)
        if task_id == 0:
            task = self.tasks[0]
            self.log.append((task.completed, task.description))


def test_a_staged_task_weights_stages_caps_each_and_counts_rounds():
    with _LoggedProgress(*progress_columns(), disable=True) as bars:
        staged = StagedTask(bars, [("none", 3), ("dp-sgd:epsilon=1:clip=0.5", 3), ("round:2", 1)], label="defense",
                            rounds=2, round_label="draw")  # fmt: skip
        assert bars.tasks[0].total == 14
        staged.start("none", round=0)
        staged.advance()
        staged.advance()
        staged.start("none", round=0)  # the running stage again: what it did stays
        assert bars.tasks[0].completed == 2
        staged.finish("none")  # a model read from the cache, not reported
        staged.start("dp-sgd:epsilon=1:clip=0.5", round=0)
        for _ in range(5):  # more than the stage's 3 units: capped at its end
            staged.advance()
        assert bars.tasks[0].completed == 6
        staged.start("round:2", round=1)
        assert bars.tasks[0].completed == 7 + 3 + 3
        staged.finish("round:2")
        assert bars.tasks[0].completed == bars.tasks[0].total == 14
    descriptions = [d for _, d in bars.log]
    assert "draw 1/2, defense 1/3: none" in descriptions
    assert "draw 2/2, defense 3/3: round:2" in descriptions
    cut = next(d for d in descriptions if "dp-sgd" in d)
    assert cut.startswith("draw 1/2, defense 2/3: dp-sgd") and cut.endswith("…") and len(cut) == 34
    with pytest.raises(ValueError, match="unique"):
        StagedTask(bars, [("a", 1), ("a", 2)], label="defense")
    with Progress(*progress_columns(), disable=True) as bars:
        one = StagedTask(bars, [("none", 5), ("dp-sgd:eps=4", 5)], label="defense")
        one.start("dp-sgd:eps=4")
        assert bars.tasks[0].description == "defense 2 of 2: dp-sgd:eps=4"  # one draw: room for the name


@pytest.mark.parametrize("models", [1, 4, 17, 40])
def test_a_staged_line_fits_80_columns(models):
    buffer = io.StringIO()
    console = Console(file=buffer, width=80, force_terminal=True, color_system=None)
    stages = [(f"dp-sgd:epsilon={k}:clip=0.5", models) for k in range(8)]
    with Progress(*progress_columns(), console=console, auto_refresh=False) as progress:
        staged = StagedTask(progress, stages, label="defense", rounds=4, round_label="draw")
        staged.start(stages[7][0], round=3)
        staged.advance()
        progress.refresh()
    lines = [line for line in buffer.getvalue().replace("\r", "\n").splitlines() if "defense" in line]
    for line in lines:
        text = line.replace("\x1b[?25l", "").replace("\x1b[?25h", "").replace("\x1b[2K", "").replace("\x1b[1A", "")
        assert len(text.rstrip()) <= 80, text
    assert "draw 4/4, defense 8/8: " in lines[-1]


def test_defense_work_counts_models_and_the_undefended_models_once():
    from memberscope.defenses.evaluate import defense_work, parse_defenses

    work = defense_work(parse_defenses("round:2,l2:1e-3,minimize:0.1,none"), n_models=3)
    assert work == [("l2:1e-3", 3), ("none", 3), ("minimize:0.1", 3), ("round:2", 1)]
    # Without "none" the first defense that needs the undefended models also trains them.
    work = defense_work(parse_defenses("round:2,top-k:1,minimize:0.1"), n_models=3)
    assert work == [("minimize:0.1", 6), ("round:2", 1), ("top-k:1", 1)]
    assert defense_work(parse_defenses("top-k:1"), n_models=5) == [("top-k:1", 6)]


def test_defend_shows_one_bar_over_every_defense_and_draw(monkeypatch):
    """One line over the whole run, its total known at the start, advanced as each model is trained (and once per
    output defense), naming the draw and the defense; each defense's own bars are gone once it is done."""
    import contextlib

    import memberscope.progress as progress_module
    from memberscope.defenses.evaluate import DefendConfig, run_defenses

    shown = []

    @contextlib.contextmanager
    def logged(*, enabled=None):
        with _LoggedProgress(*progress_columns(), disable=True) as bars:
            shown.append(bars)
            yield bars

    monkeypatch.setattr(progress_module, "progress_bars", logged)
    cfg = DefendConfig(defenses="none,l2:1e-2,round:1", dataset="digits", model="logreg", model_params={"epochs": 2},
                       reference_models=2, pool_size=200, population_size=100, n_bootstrap=10, attacks=["loss"],
                       draws=2, use_cache=False)  # fmt: skip
    result = run_defenses(cfg, progress=False)
    [bars] = shown  # one display for the whole run
    overall = bars.tasks[0]
    assert overall.total == 2 * (3 + 3 + 1) and overall.completed == overall.total  # 3 models: target, 2 references
    assert [t.id for t in bars.tasks] == [0]  # the per-defense models/epochs bars were removed
    values = [c for c, _ in bars.log]
    assert values == sorted(values) and sorted(set(values)) == list(range(15))  # one step per model or output defense
    at: dict = {}
    for completed, description in bars.log:  # the line as each count was first reached
        at.setdefault(completed, description)
    assert at[1] == "draw 1/2, defense 1/3: none"  # after the first model of the first defense
    assert at[4] == "draw 1/2, defense 2/3: l2:1e-2"
    assert at[7] == "draw 1/2, defense 3/3: round:1"
    assert at[8] == "draw 2/2, defense 1/3: none"
    assert set(result.results.sections["defenses"]) == {"none", "l2:1e-2", "round:1"}
