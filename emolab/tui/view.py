"""The console view the chat and the replay share: transcript, message box, side panel, status.

It turns engine events into what the widgets show: turns of tokens (a TurnLog), alerts
(a Monitor), the readout of the live, hovered or selected token. It knows nothing of
where the events come from; the screens around it do.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import groupby

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.widgets import Input

from emolab.core.events import CompareFinished, CompareStarted, Event, LaneEvent
from emolab.core.pack_manifest import PackManifest
from emolab.core.valence import valence_axis
from emolab.tui.inspection import TokenInspection
from emolab.tui.lanes import CompareLog
from emolab.tui.monitor import Alert, Monitor
from emolab.tui.throttle import Throttle
from emolab.tui.turns import Applied, TokenView, TurnLog, TurnView, no_kept_tokens
from emolab.tui.widgets.compare_panes import ComparePanes
from emolab.tui.widgets.side_panel import SidePanel
from emolab.tui.widgets.status_bar import StatusBar
from emolab.tui.widgets.transcript import Transcript

LIVE_PANEL_SECONDS = 0.2  # the live token's readout and the heat strip: 5 draws a second, not one per batch
DEFAULT_PINNED = ["desperate", "calm", "happy", "sad", "afraid", "angry", "loving", "hostile"]


class ConsoleView(TokenInspection, Vertical):
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
    ConsoleView.-comparing #transcript { display: none; }
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
        self.kept_of = no_kept_tokens  # a branch's kept tokens (the chat's or the replay's answer)
        self.turn_log = TurnLog(self._kept_of)
        self.top_k = top_k
        self.valence = valence_axis(pack)
        # A closed compare's two lanes go into the transcript: by default both, in order (a replay);
        # the chat shows lane 0's reply, with lane 1's as its sibling branch.
        self.fold_compare: Callable[[CompareLog], None] | None = None
        self.labeller: Callable[[TurnView], str] | None = None  # a reply's label, where the screen knows it
        self._live: TokenView | None = None  # the newest token, whose readout the panel shows when live
        self._draw_live_panel = Throttle(self, LIVE_PANEL_SECONDS, self._live_panel)

    def compose(self) -> ComposeResult:
        with Horizontal(id="main"):
            with Vertical(id="chat"):
                yield Transcript(self.pack.emotions, self.valence, id="transcript")
                yield ComparePanes(self.pack.emotions, self.valence, id="compare")
                yield Input(placeholder="loading the model…", id="prompt", disabled=True, select_on_focus=False)
            yield SidePanel(self.pack, self.pinned_start, id="side")
        yield StatusBar(id="status")

    @property
    def transcript(self) -> Transcript:
        return self.query_one("#transcript", Transcript)

    @property
    def panes(self) -> ComparePanes:
        return self.query_one(ComparePanes)

    @property
    def compare(self) -> CompareLog | None:
        """The compare shown side by side, if one is."""
        return self.panes.current

    def transcripts(self) -> list[Transcript]:
        return list(self.query(Transcript))

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
        raised: list[Alert] = []
        for laned, run in groupby(events, key=lambda e: isinstance(e, (CompareStarted, LaneEvent, CompareFinished))):
            batch = list(run)
            raised += self._show_lanes(batch) if laned else self._show_turns(batch)
        return raised

    def _show_turns(self, events: list[Event]) -> list[Alert]:
        self.close_compare()
        applied = self.turn_log.apply(events)
        for event in applied.truncated:
            self.notify(
                f"The history outgrew the context window: dropped the {event.dropped_messages} oldest messages.",
                title="context truncated",
                severity="warning",
            )
        self._label(applied.changed)
        raised = self._present(applied, alerts=True)  # first: an alert marks its token in the transcript
        self.transcript.show(self.turn_log.turns, applied.changed)
        return raised

    def _show_lanes(self, events: list[Event]) -> list[Alert]:
        """A compare's events: its two lanes side by side; alerts watch lane 0, the conversation's reply."""
        raised = []
        for event in events:
            if isinstance(event, CompareStarted):
                self.close_compare()
                self.panes.open(CompareLog(event))
                self.add_class("-comparing")
            elif isinstance(event, LaneEvent) and self.compare is not None:
                applied = self.compare.apply(event)
                self._label(applied.changed)
                if event.lane == 0:
                    raised += self._present(Applied(fresh=applied.fresh), alerts=True)
                self.panes.show_lane(event.lane, applied.changed)
            elif isinstance(event, CompareFinished) and self.compare is not None:
                for lane, turn in self.compare.finish(event):
                    self.panes.show_lane(lane, [turn])
                self.panes.show_summary()
                self.status.speed = f"{event.tokens_per_second:.1f} tok/s"
        return raised

    def _present(self, applied: Applied, *, alerts: bool) -> list[Alert]:
        """What new tokens show besides themselves: alerts, the heat strip, the live readout, the speed."""
        raised: list[Alert] = []
        # Alerts watch what the model writes. A prompt is read, and its chat-template header reads far
        # off the scale the thresholds were calibrated on (plain text): afraid z=11.8 on "system".
        watched = [token for token in applied.fresh if token.source == "reply"] if alerts else []
        for token in watched:
            found = self.monitor.check(token.readout(True), token.index, token.text)
            if found:
                token.alert = found[-1].emotion
                raised += found
        for alert in raised:
            self.notify(alert.describe(), title="threshold crossed", severity="warning")
        if raised:
            self.side.show_alerts(self.monitor.raised)
        if applied.fresh:
            self.side.strip.push([token.readout(self.smoothed) for token in applied.fresh], draw=False)
            self._live = applied.fresh[-1]
            self._draw_live_panel()
        if applied.speed is not None:
            self.status.show_live(speed=f"{applied.speed:.1f} tok/s")
        return raised

    def _live_panel(self) -> None:
        self.side.strip.redraw()
        if self.transcript.selected is None:
            self.show_live()

    def flush_live(self) -> None:
        """Draw the live panel now: a user's step through a replay waits for no period."""
        self._draw_live_panel.flush()

    def _label(self, turns: list[TurnView]) -> None:
        if self.labeller is not None:
            for turn in turns:
                if turn.role == "reply" and turn.tokens:
                    turn.label = self.labeller(turn)

    def close_compare(self) -> None:
        """Back to the one transcript, with the compare's replies in it (see fold_compare)."""
        log = self.compare
        if log is None:
            return
        self.panes.close()
        self.remove_class("-comparing")
        if self.fold_compare is not None:
            self.fold_compare(log)
            return
        self.turn_log.turns += [turn for lane in log.lanes for turn in lane.turns]
        self.turn_log.end_turn()
        self.transcript.show(self.turn_log.turns, [])

    def _kept_of(self, event) -> list[TokenView]:
        return self.kept_of(event)

    def clear(self) -> None:
        """An empty console: no turns (and no compare), no readouts, the alerts armed again."""
        self.panes.close()
        self.remove_class("-comparing")
        self.turn_log = TurnLog(self._kept_of)
        self.monitor = Monitor(self.pack.emotions, self.thresholds)
        self._live = None
        self.follow_live()
        self.transcript.show([], [])
        self.side.strip.clear()
        self.side.show_alerts([])

    def show_turns(self, turns: list[TurnView], changed: list[TurnView] | None = None) -> None:
        """Show these turns (another branch), the next event opening a new turn after them."""
        self.turn_log.turns = turns
        self.turn_log.end_turn()
        self._live = None
        self.transcript.show(turns, changed or [])

    # -- the shown readout (tui/inspection.py) ----------------------------------------------------

    def watch_smoothed(self, smoothed: bool) -> None:
        self.smoothing_changed(smoothed)

    @on(Transcript.TokenClicked)
    def _clicked(self, message: Transcript.TokenClicked) -> None:
        if message.token.probe is not None:
            self.select(message.token)

    @on(Transcript.TokenHovered)
    def _hovered(self, message: Transcript.TokenHovered) -> None:
        self.hovered(message.token)

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
