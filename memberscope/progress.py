"""Progress bars for long work; silent when output is not a terminal (CI logs, pipes)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.progress import Progress

__all__ = ["StagedTask", "announced_sleep", "average_rate_remaining", "progress_bars", "progress_columns"]


def average_rate_remaining(elapsed: float | None, completed: float, total: float | None) -> float | None:
    """Seconds left at the task's average rate so far, ``elapsed · (total − completed) / completed``.

    None until the first unit of work completes (or without a total). rich's own estimate uses only the
    last 30 s of updates, so a step slower than that (one reference model, one rate-limit wait) showed
    ``-:--:--`` for a whole run; the average since the start is known as soon as one step has finished.
    """
    if elapsed is None or total is None or completed <= 0:
        return None
    return max(0.0, elapsed * (total - completed) / completed)


def progress_columns() -> tuple:
    """The columns every progress display shows: what, bar, done/total, elapsed, ETA."""
    from rich.progress import BarColumn, MofNCompleteColumn, ProgressColumn, TextColumn, TimeElapsedColumn
    from rich.text import Text

    class AverageRateRemainingColumn(ProgressColumn):
        """``ETA h:mm:ss`` from :func:`average_rate_remaining`; ``ETA -:--:--`` until a step has finished."""

        max_refresh = 0.5

        def render(self, task) -> Text:
            if task.total is None:  # a count without an end (queries answered): no ETA to give
                return Text("")
            if task.finished:
                return Text("done", style="progress.remaining")
            left = average_rate_remaining(task.elapsed, task.completed, task.total)
            if left is None:
                return Text("ETA -:--:--", style="progress.remaining")
            minutes, seconds = divmod(round(left), 60)
            hours, minutes = divmod(minutes, 60)
            return Text(f"ETA {hours}:{minutes:02d}:{seconds:02d}", style="progress.remaining")

    return (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(bar_width=20),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        AverageRateRemainingColumn(),
    )


@contextlib.contextmanager
def progress_bars(*, enabled: bool | None = None) -> Iterator[Progress]:
    """A ``rich.progress.Progress``; ``enabled=None`` shows it only on an interactive terminal."""
    from rich.console import Console
    from rich.progress import Progress

    console = Console(stderr=True)
    show = console.is_terminal if enabled is None else enabled
    with Progress(*progress_columns(), console=console, disable=not show, transient=False) as progress:
        yield progress


def announced_sleep(
    bars, *, min_seconds: float = 1.0, sleep: Callable[[float], None] = time.sleep, step: float = 0.25
) -> Callable[[float], None]:
    """A ``sleep(seconds)`` that shows each wait of at least ``min_seconds`` as a countdown on ``bars`` (a
    rate limit's Retry-After, a backoff), so a long wait is not mistaken for a hang; shorter waits (pacing to
    ``--rate``) pass silently."""

    def announced(seconds: float) -> None:
        if seconds < min_seconds:
            sleep(seconds)
            return
        task = bars.add_task(f"rate limited: waiting {seconds:.0f} s", total=seconds)
        left = seconds
        while left > 0:
            chunk = min(step, left)
            sleep(chunk)
            left -= chunk
            bars.update(task, completed=seconds - left)
        bars.remove_task(task)

    return announced


class StagedTask:
    """One task over a whole run of named stages, each weighted by its units of work (e.g. models to train), so its
    ETA covers the run: ``defense 3 of 8: dp-sgd`` (with ``rounds`` > 1: ``draw 2/4, defense 3/8: dp-sgd``).

    Call :meth:`start` when a stage begins, :meth:`advance` as each unit finishes (never past the stage's end), and
    :meth:`finish` when it ends (which counts any unit the stage did not report, e.g. work read from a cache).

    Parameters
    ----------
    bars : a ``rich.progress.Progress`` (or anything with ``add_task``, ``update`` and ``advance``).
    stages : ``(name, units)`` in the order they run; names are unique.
    label : what a stage is (``"defense"``).
    rounds : how many times the stages run (training draws); the total is ``rounds · Σ units``.
    round_label : what a round is (``"draw"``).
    width : the most characters of the description (the name is cut with "…"); default: what keeps a line of
        :func:`progress_columns` within 80 columns, ``38 − 2 · digits of the total`` (the count column widens).
    """

    def __init__(
        self,
        bars: Any,
        stages: Sequence[tuple[str, int]],
        *,
        label: str,
        rounds: int = 1,
        round_label: str = "round",
        width: int | None = None,
    ):
        self.bars, self.label, self.rounds, self.round_label = bars, label, rounds, round_label
        self.units = {name: int(units) for name, units in stages}
        if len(self.units) != len(stages):
            raise ValueError(f"stage names must be unique; got {[name for name, _ in stages]}")
        self.position = {name: k for k, (name, _) in enumerate(stages)}
        self.before: dict[str, int] = {}
        done = 0
        for name, units in stages:
            self.before[name] = done
            done += int(units)
        self.per_round = done
        self.round, self.current = 0, stages[0][0] if stages else ""
        self.task = bars.add_task(f"{len(stages)} {label}s", total=rounds * done)
        self.width = 38 - 2 * len(str(rounds * done)) if width is None else width

    def _end(self, name: str) -> int:
        return self.round * self.per_round + self.before[name] + self.units[name]

    def _completed(self) -> float:
        return next(t for t in self.bars.tasks if t.id == self.task).completed

    def start(self, name: str, *, round: int = 0) -> None:
        """Stage ``name`` of round ``round`` (from 0) begins: the description says which (starting the stage that
        is already running keeps what it has done)."""
        self.round, self.current = round, name
        k, n = self.position[name] + 1, len(self.units)
        where = f"{self.label} {k} of {n}: "
        if self.rounds > 1:  # shorter, to leave room for the name
            where = f"{self.round_label} {round + 1}/{self.rounds}, {self.label} {k}/{n}: "
        room = max(1, self.width - len(where))
        shown = name if len(name) <= room else name[: room - 1] + "…"
        begin = self.round * self.per_round + self.before[name]
        self.bars.update(self.task, description=where + shown, completed=max(self._completed(), begin))

    def advance(self, units: int = 1) -> None:
        """``units`` of the current stage finished (capped at the stage's end)."""
        self.bars.update(self.task, completed=min(self._completed() + units, self._end(self.current)))

    def finish(self, name: str) -> None:
        """Stage ``name`` has ended: every unit of it counts as done."""
        self.bars.update(self.task, completed=self._end(name))
