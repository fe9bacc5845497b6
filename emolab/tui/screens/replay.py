"""The replay screen: a recorded session plays back with its timing, read-only.

A player feeds the recorded events to the same console view a live chat uses. Sliders
move at the token where the recorded steering took effect.
"""

from __future__ import annotations

from typing import ClassVar

from emolab.core.events import BranchStarted, CompareStarted, LaneEvent, Token, TurnStarted
from emolab.core.pack_manifest import PackManifest
from emolab.core.session.format import SessionData, session_events
from emolab.tui import bindings as keys
from emolab.tui.screens.console import ConsoleScreen
from emolab.tui.screens.help import REPLAY_HELP
from emolab.tui.turns import TokenView, TurnView
from emolab.tui.view import ConsoleView

SPEEDS = [0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0]
TICK_SECONDS = 0.02
MAX_GAP_SECONDS = 1.5  # pauses longer than this (someone thinking, typing) are shortened to it


def unwrapped(event):
    """A compare's lane event is its token's (or its end's) for timing and stepping."""
    return event.event if isinstance(event, LaneEvent) else event


def play_times(events: list) -> list[float]:
    """When each event shows, in seconds from the start: the recorded timing, long pauses shortened."""
    times, now, previous = [], 0.0, None
    for event in map(unwrapped, events):
        if previous is not None:
            now += min(MAX_GAP_SECONDS, max(0.0, event.t - previous))
        times.append(now)
        previous = event.t
    return times


def kept_tokens(data: SessionData, events: list) -> dict[int, list[int]]:
    """For each BranchStarted of the replay (by id): the token indices of the reply it keeps."""
    kept: dict[int, list[int]] = {}
    turns = {turn["id"]: turn for turn in data.turns}
    rows = {index: row for row, index in enumerate(data.columns["index"])}
    for at, event in enumerate(events):
        if not isinstance(event, BranchStarted):
            continue
        following = next((e for e in events[at + 1 :] if isinstance(e, Token)), None)
        turn = turns.get(data.columns["turn"][rows[following.index]]) if following is not None else None
        branch = (turn or {}).get("branch")
        if branch and branch["of"] in turns:
            own = data.full_reply_rows(turns[branch["of"]])[: branch["kept"]]
            kept[id(event)] = [data.columns["index"][row] for row in own]
    return kept


class ReplayScreen(ConsoleScreen):
    BINDINGS: ClassVar = [keys.QUIT, *keys.PLAYER_KEYS, keys.SEARCH_EMOTIONS, keys.CYCLE_TINT, *keys.HIDDEN_VIEW_KEYS]
    HELP = REPLAY_HELP

    def __init__(self, pack: PackManifest, data: SessionData, *, autoplay: bool = True) -> None:
        alerts = data.alert_notes()
        super().__init__(ConsoleView(pack, thresholds={note["emotion"]: note["threshold"] for note in alerts}))
        self.data = data
        self.events = session_events(data, pack.smoothing_half_life)
        self.times = play_times(self.events)
        self.cursor = 0  # events[:cursor] are shown
        self.playing = autoplay
        self.speed_index = SPEEDS.index(1.0)
        self.clock = 0.0  # session time shown so far
        self.shown_steering = 0  # the steering version the sliders show
        alert_tokens = {note["token_index"] for note in alerts}
        self.alert_positions = [
            i for i, event in enumerate(self.events) if isinstance(event, Token) and event.index in alert_tokens
        ]
        self.turn_of_token = dict(zip(data.columns["index"], data.columns["turn"], strict=True))
        self.kept = kept_tokens(data, self.events)
        self.view.kept_of = self._kept_of
        self.view.labeller = self._label

    def on_mount(self) -> None:
        super().on_mount()
        meta = self.data.meta
        self.view.status.model = f"replay of {meta['created']} · {meta['model']['id']}"
        self.view.status.session = "read-only"
        player = {binding.action for binding in keys.PLAYER_KEYS}
        hints = [f"{row.keys} {row.description.lower()}" for row in self.key_rows() if row.action in player]
        self.view.prompt.placeholder = "replay: " + " · ".join(hints)
        self.view.side.steering.disabled = True
        self._show_state()
        self.set_interval(TICK_SECONDS, self._tick)

    def _label(self, turn: TurnView) -> str:
        """A reply's branch and compare side, as `replay --headless` names them."""
        owner = self.turn_of_token.get(turn.tokens[-1].index)
        recorded = next((t for t in self.data.turns if t["id"] == owner), None)
        if recorded is None:
            return ""
        siblings = self.data.branches(recorded)
        labels = [f"branch {siblings.index(recorded) + 1}/{len(siblings)}"] if len(siblings) > 1 else []
        compare = recorded.get("compare")
        if compare:
            labels.append(f"compare {compare['group']}, side {'AB'[compare['lane']]}")
        return " · ".join(labels)

    def _kept_of(self, event: BranchStarted) -> list[TokenView]:
        wanted = self.kept.get(id(event), [])
        shown = {token.index: token for turn in self.view.turn_log.turns for token in turn.tokens}
        return [shown[index] for index in wanted if index in shown]

    @property
    def speed(self) -> float:
        return SPEEDS[self.speed_index]

    def _show_state(self) -> None:
        self.view.status.state = f"{'▶' if self.playing else '⏸'} {self.speed:g}× {self.cursor}/{len(self.events)}"

    # -- playing --------------------------------------------------------------------------------------

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
        batch = self.events[self.cursor : end]
        self.cursor = end
        for event in batch:
            if isinstance(event, LaneEvent) and event.lane == 0:
                event = event.event  # the sliders show side A's steering, the conversation's
            if isinstance(event, Token) and event.source == "reply" and event.steering_version != self.shown_steering:
                self.view.show_steering(dict(event.steering))
                self.shown_steering = event.steering_version
        self.view.show(batch)

    def _jump(self, end: int) -> None:
        """Show exactly events[:end]: forward by feeding, backward by starting again."""
        end = max(0, min(len(self.events), end))
        if end < self.cursor:
            self.view.clear()
            self.view.show_steering({})
            self.shown_steering = 0
            self.cursor = 0
        if end > self.cursor:
            self._feed(end)
        self.clock = self.times[end - 1] if end else 0.0
        self.view.flush_live()
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
        while 0 < target < len(self.events) and not isinstance(unwrapped(self.events[target - 1]), Token):
            target += direction
        self._jump(target)

    def action_next_turn(self) -> None:
        self.playing = False
        starts = (TurnStarted, BranchStarted, CompareStarted)
        later = [i for i, e in enumerate(self.events) if isinstance(e, starts) and i > self.cursor]
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
