"""The console in replay mode: a recorded session plays back with its timing, read-only.

The same widgets and handlers as a live chat; a player feeds them the recorded events
instead of an engine. Sliders move at the token where the recorded steering took effect.
"""

from __future__ import annotations

from textual.binding import Binding
from textual.widgets import Input

from emolab.core.events import Token, TurnStarted
from emolab.core.pack import VectorPack
from emolab.core.session.format import SessionData, session_events
from emolab.tui.app import EmolabApp
from emolab.tui.monitor import Monitor
from emolab.tui.widgets.heat_strip import HeatStrip
from emolab.tui.worker import EngineEvents

SPEEDS = [0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0]
TICK_SECONDS = 0.02
MAX_GAP_SECONDS = 1.5  # pauses longer than this (someone thinking, typing) are shortened to it


def play_times(events: list) -> list[float]:
    """When each event shows, in seconds from the start: the recorded timing, long pauses shortened."""
    times, now, previous = [], 0.0, None
    for event in events:
        if previous is not None:
            now += min(MAX_GAP_SECONDS, max(0.0, event.t - previous))
        times.append(now)
        previous = event.t
    return times


class ReplayApp(EmolabApp):
    BINDINGS = [
        Binding("space", "toggle_play", "Play/pause", id="replay.play"),
        Binding("right", "step(1)", "Step ▶", id="replay.step_forward"),
        Binding("left", "step(-1)", "◀ Step", id="replay.step_back"),
        Binding("n", "next_turn", "Next turn", id="replay.next_turn"),
        Binding("a", "next_alert", "Next alert", id="replay.next_alert"),
        Binding("plus,equals_sign", "speed(1)", "Faster", id="replay.faster"),
        Binding("minus", "speed(-1)", "Slower", id="replay.slower"),
        Binding("i", "instant", "Instant", id="replay.instant"),
    ]

    def __init__(self, pack: VectorPack, data: SessionData, *, autoplay: bool = True):
        thresholds = {note["emotion"]: note["threshold"] for note in data.notes
                      if note["kind"] == "alert" and "threshold" in note}
        super().__init__(pack, loader=None, model_label=data.meta["model"]["id"], thresholds=thresholds)
        self.data = data
        self.events = session_events(data, pack.smoothing_half_life)
        self.times = play_times(self.events)
        self.cursor = 0  # events[:cursor] are shown
        self.playing = autoplay
        self.speed_index = SPEEDS.index(1.0)
        self.clock = 0.0  # session time shown so far
        alert_tokens = {note["token_index"] for note in data.notes if note["kind"] == "alert" and "token_index" in note}
        self.alert_positions = [i for i, e in enumerate(self.events) if isinstance(e, Token) and e.index in alert_tokens]

    def start(self) -> None:
        self.status.model = f"replay of {self.data.meta['created']} · {self.data.meta['model']['id']}"
        self.status.session = "read-only"
        prompt = self.query_one("#prompt", Input)
        prompt.placeholder = "replay: space play/pause · ←/→ step · n next turn · a next alert · +/- speed · i instant"
        self.steering_panel.disabled = True
        self._show_state()
        self.set_interval(TICK_SECONDS, self._tick)

    @property
    def speed(self) -> float:
        return SPEEDS[self.speed_index]

    def _show_state(self) -> None:
        where = f"{self.cursor}/{len(self.events)}"
        self.status.state = f"{'▶' if self.playing else '⏸'} {self.speed:g}× {where}"

    # -- playing --------------------------------------------------------------------------------

    def _tick(self) -> None:
        if not self.playing:
            return
        self.clock += TICK_SECONDS * self.speed
        end = self.cursor
        while end < len(self.events) and self.times[end] <= self.clock:
            end += 1
        if end > self.cursor:
            self._feed(end)
        if self.cursor >= len(self.events):
            self.playing = False
        self._show_state()

    def _feed(self, end: int) -> None:
        batch = self.events[self.cursor:end]
        self.cursor = end
        for event in batch:
            if isinstance(event, Token) and event.source == "reply" and event.steering_version != self.last_version:
                self.steering_panel.set_values(dict(event.steering))
        self.post_message(EngineEvents(batch))

    def _jump(self, end: int) -> None:
        """Show exactly events[:end]: forward by feeding, backward by rebuilding from the start."""
        end = max(0, min(len(self.events), end))
        if end < self.cursor:
            self.transcript.clear_turns()
            self.query_one(HeatStrip).clear()
            self.alerts.clear()
            self.monitor = Monitor(self.pack.emotions, dict(self.monitor.thresholds))
            self.turn = None
            self.last_version = 0
            self.steering_panel.set_values({})
            self.cursor = 0
        if end > self.cursor:
            self._feed(end)
        self.clock = self.times[end - 1] if end else 0.0
        self._show_state()

    def action_toggle_play(self) -> None:
        if self.cursor >= len(self.events):
            self._jump(0)
        self.playing = not self.playing
        self._show_state()

    def action_step(self, direction: int) -> None:
        self.playing = False
        target = self.cursor + direction
        # a step moves by one token: skip over turn markers
        while 0 < target < len(self.events) and not isinstance(self.events[target - 1], Token):
            target += direction
        self._jump(target)

    def action_next_turn(self) -> None:
        self.playing = False
        later = [i for i, e in enumerate(self.events) if isinstance(e, TurnStarted) and i > self.cursor]
        self._jump(later[0] if later else len(self.events))

    def action_next_alert(self) -> None:
        self.playing = False
        later = [i for i in self.alert_positions if i >= self.cursor]
        if not later:
            self.notify("no later alert")
            return
        self._jump(later[0] + 1)

    def action_speed(self, direction: int) -> None:
        self.speed_index = max(0, min(len(SPEEDS) - 1, self.speed_index + direction))
        self._show_state()

    def action_instant(self) -> None:
        self.playing = False
        self._jump(len(self.events))
