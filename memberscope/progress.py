"""Progress bars for long work; silent when output is not a terminal (CI logs, pipes)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.progress import Progress

__all__ = ["announced_sleep", "average_rate_remaining", "progress_bars", "progress_columns"]


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
