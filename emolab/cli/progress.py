"""Progress displays on stderr: the one-time model conversion, and long recipe stages."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


@contextlib.contextmanager
def staged_progress(title: str, *, rates: bool = False) -> Iterator:
    """Yields a (stage, done, total) callback; nothing shows until it is first called.

    Each stage gets its own bar, so a finished stage stays visible with its time.
    """
    state: dict = {"tasks": {}}
    columns = [SpinnerColumn(), TextColumn(f"{title}{{task.description}}"), BarColumn(), MofNCompleteColumn()]
    if rates:
        columns += [TaskProgressColumn(show_speed=True), TimeRemainingColumn()]
    columns.append(TimeElapsedColumn())

    def report(stage: str, done: int, total: int | None) -> None:
        if "progress" not in state:
            state["progress"] = Progress(*columns, console=Console(stderr=True), transient=not rates)
            state["progress"].start()
        tasks = state["tasks"]
        if stage not in tasks:
            tasks[stage] = state["progress"].add_task(stage, total=total, completed=done)
        state["progress"].update(tasks[stage], completed=done, total=total)

    try:
        yield report
    finally:
        if "progress" in state:
            state["progress"].stop()


def conversion_progress():
    """For model loading: shows only if the bundled GGUF has to be converted."""
    return staged_progress("converting the bundled model, once: ")
