"""Progress bars for long work; silent when output is not a terminal (CI logs, pipes)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

__all__ = ["average_rate_remaining", "progress_bars", "progress_columns"]


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
def progress_bars(*, enabled: bool | None = None) -> Iterator[object]:
    """A ``rich.progress.Progress``; ``enabled=None`` shows it only on an interactive terminal."""
    from rich.console import Console
    from rich.progress import Progress

    console = Console(stderr=True)
    show = console.is_terminal if enabled is None else enabled
    with Progress(*progress_columns(), console=console, disable=not show, transient=False) as progress:
        yield progress
