"""A compare side by side: one transcript per lane under a header naming its steering, and a
line above both that says where the replies first differ and how their mean readouts differ."""

from __future__ import annotations

import numpy as np
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Static

from emolab.tui.lanes import CompareLog
from emolab.tui.turns import TurnView
from emolab.tui.widgets.transcript import Transcript


class ComparePanes(Vertical):
    DEFAULT_CSS = """
    ComparePanes { height: 1fr; display: none; }
    ComparePanes.-open { display: block; }
    ComparePanes #compare-summary { height: auto; color: $text; background: $boost; padding: 0 1; }
    ComparePanes #lanes { height: 1fr; }
    ComparePanes .lane { width: 1fr; }
    ComparePanes #lane-pane-1 { border-left: solid $primary-darken-2; }
    ComparePanes .lane-title { height: auto; text-style: bold; padding: 0 1; color: $accent; }
    """

    def __init__(self, emotions: list[str], valence: np.ndarray, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.emotions = emotions
        self.valence = valence
        self.current: CompareLog | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="compare-summary")
        with Horizontal(id="lanes"):
            for lane in (0, 1):
                with Vertical(classes="lane", id=f"lane-pane-{lane}"):
                    yield Static("", classes="lane-title", id=f"lane-title-{lane}")
                    yield Transcript(self.emotions, self.valence, id=f"lane-{lane}")

    def lane(self, lane: int) -> Transcript:
        return self.query_one(f"#lane-{lane}", Transcript)

    @property
    def is_open(self) -> bool:
        return self.current is not None

    def open(self, log: CompareLog) -> None:
        self.current = log
        for lane in (0, 1):
            self.query_one(f"#lane-title-{lane}", Static).update(log.title(lane))
            self.lane(lane).show([], [])
        self.show_summary()
        self.add_class("-open")

    def close(self) -> None:
        self.current = None
        for lane in (0, 1):
            self.lane(lane).show([], [])
        self.remove_class("-open")

    def show_lane(self, lane: int, changed: list[TurnView]) -> None:
        self.lane(lane).show(self.current.lanes[lane].turns, changed)

    def show_summary(self) -> None:
        self.query_one("#compare-summary", Static).update(self.current.summary(self.emotions))
