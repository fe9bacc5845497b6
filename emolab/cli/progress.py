"""A progress display on stderr for the one-time conversion of the bundled model."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn


@contextlib.contextmanager
def conversion_progress() -> Iterator:
    """Yields a (stage, done, total) callback; nothing shows unless a conversion runs."""
    state: dict = {}

    def report(stage: str, done: int, total: int | None) -> None:
        if "progress" not in state:
            progress = Progress(
                SpinnerColumn(), TextColumn("converting the bundled model, once: {task.description}"), BarColumn(),
                MofNCompleteColumn(), TimeElapsedColumn(), console=Console(stderr=True), transient=True,
            )
            progress.start()
            state["progress"] = progress
            state["task"] = progress.add_task(stage, total=total)
        state["progress"].update(state["task"], description=stage, completed=done, total=total)

    try:
        yield report
    finally:
        if "progress" in state:
            state["progress"].stop()
