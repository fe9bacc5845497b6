"""The console view the chat and the replay share: transcript, message box, side panel, status.

It turns engine events into what the widgets show: turns of tokens (a TurnLog), alerts
(a Monitor), the readout of the live, hovered or selected token. It knows nothing of
where the events come from; the screens around it do.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.widgets import Input

from emolab.core.events import Event
from emolab.core.pack_manifest import PackManifest
from emolab.core.valence import valence_axis
from emolab.tui.monitor import Alert, Monitor
from emolab.tui.turns import TokenView, TurnLog
from emolab.tui.widgets.side_panel import SidePanel
from emolab.tui.widgets.status_bar import StatusBar
from emolab.tui.widgets.transcript import Transcript, TurnWidget

DEFAULT_PINNED = ["desperate", "calm", "happy", "sad", "afraid", "angry", "loving", "hostile"]
TINTS = ["emotion", "valence", "off"]


class ConsoleView(Vertical):
    DEFAULT_CSS = """
    ConsoleView { height: 1fr; }
    ConsoleView #main { height: 1fr; }
    ConsoleView #chat { width: 1fr; }
    ConsoleView #prompt { dock: bottom; }
    ConsoleView #side { width: 46; border-left: solid $primary-darken-2; padding: 0 1; }
    ConsoleView #side > .section { text-style: bold; margin-top: 1; }
    ConsoleView #alerts { color: $error; height: auto; }
    ConsoleView.-narrow #side { width: 32; }
    ConsoleView.-narrow #va-plane, ConsoleView.-narrow #va-title { display: none; }
    ConsoleView.-short #va-plane, ConsoleView.-short #va-title { display: none; }
    ConsoleView.-short #strip-title, ConsoleView.-short #strip { display: none; }
    ConsoleView.-hide-panel #side { display: none; }
    """

    smoothed: reactive[bool] = reactive(True, init=False)  # alerts always use smoothed readouts: calibrated so

    def __init__(
        self,
        pack: PackManifest,
        *,
        pinned: list[str] | None = None,
        thresholds: dict[str, float] | None = None,
        top_k: int = 8,
    ) -> None:
        super().__init__()
        self.pack = pack
        self.pinned_start = [name for name in (pinned or DEFAULT_PINNED) if name in pack.emotion_index]
        self.thresholds = dict(thresholds or {})
        self.monitor = Monitor(pack.emotions, self.thresholds)
        self.turn_log = TurnLog()
        self.top_k = top_k
        self.valence = valence_axis(pack)

    def compose(self) -> ComposeResult:
        with Horizontal(id="main"):
            with Vertical(id="chat"):
                yield Transcript(self.pack.emotions, self.valence, id="transcript")
                yield Input(placeholder="loading the model…", id="prompt", disabled=True, select_on_focus=False)
            yield SidePanel(self.pack, self.pinned_start, id="side")
        yield StatusBar(id="status")

    @property
    def transcript(self) -> Transcript:
        return self.query_one(Transcript)

    @property
    def side(self) -> SidePanel:
        return self.query_one(SidePanel)

    @property
    def status(self) -> StatusBar:
        return self.query_one(StatusBar)

    @property
    def prompt(self) -> Input:
        return self.query_one("#prompt", Input)

    def on_mount(self) -> None:
        self.status.pack = f"pack {self.pack.name}"
        self._describe_readouts()

    def fit(self, width: int, height: int) -> None:
        """Small terminals fold away the valence/arousal plane and shorten the bars."""
        self.set_class(width < 110, "-narrow")
        self.set_class(height < 30, "-short")
        self.top_k = 4 if height < 30 else 8

    # -- events -----------------------------------------------------------------------------------

    def show(self, events: list[Event]) -> list[Alert]:
        """Show a batch of engine events; returns the alerts they raised."""
        applied = self.turn_log.apply(events)
        raised: list[Alert] = []
        for token in applied.fresh:
            alerts = self.monitor.check(token.readout(True), token.index, token.text)
            if alerts:
                token.alert = alerts[-1].emotion
                raised += alerts
        for alert in raised:
            self.notify(alert.describe(), title="threshold crossed", severity="warning")
        if raised:
            self.side.show_alerts(self.monitor.raised)
        for event in applied.truncated:
            self.notify(
                f"The history outgrew the context window: dropped the {event.dropped_messages} oldest messages.",
                title="context truncated",
                severity="warning",
            )
        self.transcript.show(self.turn_log.turns, applied.changed)
        if applied.fresh:
            self.side.strip.push([token.readout(self.smoothed) for token in applied.fresh])
            if self.transcript.selected is None:
                self._show_token(applied.fresh[-1])
        if applied.speed is not None:
            self.status.speed = f"{applied.speed:.1f} tok/s"
        return raised

    def clear(self) -> None:
        """An empty console: no turns, no readouts, the alerts armed again."""
        self.turn_log = TurnLog()
        self.monitor = Monitor(self.pack.emotions, self.thresholds)
        self.transcript.selected = None
        self.transcript.show([], [])
        self.side.strip.clear()
        self.side.show_alerts([])

    def drop_last_reply(self) -> None:
        self.turn_log.drop_last_reply()
        self.transcript.show(self.turn_log.turns, [])

    # -- the shown readout ----------------------------------------------------------------------------

    def _show_token(self, token: TokenView, title: str | None = None) -> None:
        readout = token.readout(self.smoothed)
        if readout is not None:
            self.side.show_readout(readout, title or f"token {token.text!r}", self.top_k)

    def show_live(self) -> None:
        if self.turn_log.last_token is not None:
            self._show_token(self.turn_log.last_token)

    def watch_smoothed(self, smoothed: bool) -> None:
        self.transcript.smoothed = smoothed
        tokens = [token for token in self.turn_log.tokens() if token.readable]
        self.side.strip.clear()
        self.side.strip.push([token.readout(smoothed) for token in tokens])
        selected = next((token for token in tokens if token.index == self.transcript.selected), None)
        if selected is not None:
            self._show_token(selected, f"token {selected.index} {selected.text!r}")
        else:
            self.show_live()
        self._describe_readouts()

    def _describe_readouts(self) -> None:
        # short, so that the context count still fits an 80-column bar
        self.status.readouts = f"smooth h={self.pack.smoothing_half_life:g}" if self.smoothed else "raw"

    def cycle_tint(self) -> str:
        transcript = self.transcript
        transcript.tint = TINTS[(TINTS.index(transcript.tint) + 1) % len(TINTS)]
        return transcript.tint

    def step_selection(self, step: int) -> None:
        """Select the token `step` tokens away from the selected one (or the newest, if none is)."""
        tokens = self.turn_log.tokens()
        if not tokens:
            return
        positions = [token.index for token in tokens]
        selected = self.transcript.selected
        at = min(len(tokens) - 1, max(0, positions.index(selected) + step)) if selected in positions else -1
        self.select(tokens[at])

    def select(self, token: TokenView) -> None:
        self.transcript.selected = token.index
        self._show_token(token, f"token {token.index} {token.text!r} (F4: live)")

    def follow_live(self) -> None:
        self.transcript.selected = None
        self.show_live()

    @on(TurnWidget.TokenClicked)
    def _clicked(self, message: TurnWidget.TokenClicked) -> None:
        if message.token.probe is not None:
            self.select(message.token)

    @on(TurnWidget.TokenHovered)
    def _hovered(self, message: TurnWidget.TokenHovered) -> None:
        if self.transcript.selected is not None:
            return  # a selected token keeps the bars until F4
        token = message.token
        if token is not None and token.probe is not None:
            self._show_token(token, f"hover: token {token.index} {token.text!r}")
        else:
            self.show_live()

    # -- the steering panel -------------------------------------------------------------------------

    def toggle_pin(self, emotion: str) -> None:
        """Give an emotion a slider and a heat-strip row, or take them away."""
        panel = self.side.steering
        if emotion in panel.pinned:
            panel.unpin(emotion)
        else:
            panel.pin(emotion).focus()
        self.call_after_refresh(self.side.update_strip_rows)

    def show_steering(self, values: dict[str, float]) -> None:
        """Move the sliders to these strengths (pinning as needed), without steering anything."""
        self.side.steering.set_values(values)
        self.call_after_refresh(self.side.update_strip_rows)
