"""The side panel: the steering sliders, then the readouts of the shown token."""

from __future__ import annotations

import numpy as np
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from emolab.core.pack_manifest import PackManifest
from emolab.core.readouts import strongest
from emolab.tui.monitor import Alert
from emolab.tui.widgets.heat_strip import HeatStrip
from emolab.tui.widgets.signed_bars import SignedBars
from emolab.tui.widgets.steering_panel import SteeringPanel
from emolab.tui.widgets.va_plane import ValenceArousalPlane

SHOWN_ALERTS = 3


class SidePanel(VerticalScroll):
    def __init__(self, pack: PackManifest, pinned: list[str], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.pack = pack
        self.pinned_start = pinned

    def compose(self) -> ComposeResult:
        yield SteeringPanel(self.pack.slider, self.pinned_start, id="steering")
        yield Static("readout", classes="section", id="bars-title")
        yield SignedBars(id="bars")
        yield Static("last tokens", classes="section", id="strip-title")
        yield HeatStrip(id="strip")
        yield Static("valence / arousal (pack PCA)", classes="section", id="va-title")
        yield ValenceArousalPlane(self.pack.coords, self.pack.emotions, id="va-plane")
        yield Static("", id="alerts")

    def on_mount(self) -> None:
        self.update_strip_rows()

    @property
    def steering(self) -> SteeringPanel:
        return self.query_one(SteeringPanel)

    @property
    def strip(self) -> HeatStrip:
        return self.query_one(HeatStrip)

    def show_readout(self, readout: np.ndarray, title: str, top_k: int) -> None:
        rows = strongest(readout, self.pack.emotions, top_k)
        self.query_one(SignedBars).show(rows, title=title)
        self.query_one(ValenceArousalPlane).place(readout)

    def update_strip_rows(self) -> None:
        """The heat strip shows one row per pinned emotion."""
        pinned = self.steering.pinned
        self.strip.set_rows(pinned, [self.pack.emotion_index[name] for name in pinned])

    def show_alerts(self, alerts: list[Alert]) -> None:
        self.query_one("#alerts", Static).update("\n".join(f"⚠ {a.describe()}" for a in alerts[-SHOWN_ALERTS:]))
