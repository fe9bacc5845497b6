"""The chat screen: talk to the model, steer it with the sliders, record the session.

The screen never calls the model itself: it sends commands through an EngineLink and
shows the events that come back, through the console view it shares with the replay. The
engine may die (it runs in a child process): the screen says so, keeps the transcript and the
session, and one key starts it again.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from textual import events, on
from textual.widgets import Input, TextArea

from emolab.core.pack_manifest import PackManifest
from emolab.core.recording import NotRecording, SessionSink
from emolab.tui import bindings as keys
from emolab.tui.branching import BranchController
from emolab.tui.engine_link import LinkFactory
from emolab.tui.keymap import key_rows
from emolab.tui.screens.chat_actions import ChatActions
from emolab.tui.screens.console import ConsoleScreen
from emolab.tui.screens.help import CHAT_HELP
from emolab.tui.steering import SteeringController
from emolab.tui.view import ConsoleView
from emolab.tui.widgets.steering_panel import SteeringPanel
from emolab.tui.worker import (
    CommandDone,
    CommandFailed,
    EngineDied,
    EngineEvents,
    EngineReady,
    GenerationEnded,
    LoadFailed,
    LoadProgress,
)


@dataclass(frozen=True)
class ChatSettings:
    pack: PackManifest
    link: LinkFactory  # child_link.child_process(spec) or engine_link.in_process(loader, pack path)
    model_label: str
    recorder_factory: Callable[[dict], SessionSink] | None = None  # called with the session's metadata
    pinned: list[str] | None = None
    thresholds: dict[str, float] | None = None


class ChatScreen(ChatActions, ConsoleScreen):
    BINDINGS: ClassVar = [
        keys.QUIT,
        keys.STOP,
        keys.NEW_CHAT,
        keys.REGENERATE,
        keys.SEARCH_EMOTIONS,
        keys.RESET_STEERING,
        keys.EDIT_SAMPLING,
        keys.CYCLE_TINT,
        *keys.BRANCH_KEYS,
        *keys.HIDDEN_VIEW_KEYS,
        keys.SAVE_SESSION,
        keys.RESTART_ENGINE,
    ]
    HELP = CHAT_HELP

    def __init__(self, settings: ChatSettings) -> None:
        from emolab.tui.monitor import default_thresholds

        pack = settings.pack
        thresholds = default_thresholds(pack.alert_thresholds) if settings.thresholds is None else settings.thresholds
        super().__init__(ConsoleView(pack, pinned=settings.pinned, thresholds=thresholds))
        self.settings = settings
        self.link = settings.link(self)
        self.engines_started = 0  # a second EngineReady is a restarted engine
        self._blink: bool | None = None  # the prompt's own blink setting, while a reply streams
        self.recorder: SessionSink = NotRecording()  # until the engine exists to describe
        self.steering = SteeringController(self.link, self.view)
        self.branches = BranchController(self.link, self.view)

    def on_mount(self) -> None:
        super().on_mount()
        status = self.view.status
        status.model = f"{self.settings.model_label} (loading…)"
        status.session = "recording starts with the model" if self.settings.recorder_factory else "not recording"
        self.link.load()

    # -- loading --------------------------------------------------------------------------------------

    @on(LoadProgress)
    def _loading(self, message: LoadProgress) -> None:
        done = f" {message.done}/{message.total}" if message.total else ""
        self.view.status.model = f"{self.settings.model_label}: {message.stage}{done}"

    @on(EngineReady)
    def _ready(self, message: EngineReady) -> None:
        # The model's objects (in-process) and the console's own are long-lived: keep them out of the
        # garbage collector's full passes, which otherwise stall the screen for hundreds of ms.
        gc.freeze()
        sampling = self.link.sampling
        self.link.attach(message.info)
        self.engines_started += 1
        if self.engines_started > 1:
            self._restarted(sampling)
        elif self.settings.recorder_factory is not None:
            try:
                self.recorder = self.settings.recorder_factory(message.info["meta"])
            except OSError as error:
                self.notify(f"cannot record the session: {error}", severity="error", timeout=30)
        self.steering.recorder = self.branches.recorder = self.recorder
        self.steering.record_pins()
        status = self.view.status
        status.session = f"recording {self.recorder.path}" if self.recorder.path else "not recording"
        status.model = self.link.describe()
        status.context = self.link.context()
        prompt = self.view.prompt
        prompt.disabled = False
        help_keys = next(row.keys for row in self.app.app_key_rows() if row.action == "help")
        prompt.placeholder = f"Message the model (Enter to send, {help_keys} for help)"
        prompt.focus()

    @on(LoadFailed)
    def _load_failed(self, message: LoadFailed) -> None:
        self.view.status.model = "model failed to load"
        self.notify(message.error, title="cannot load the model", severity="error", timeout=30)

    # -- the engine's process -------------------------------------------------------------------------

    @on(EngineDied)
    def _died(self, message: EngineDied) -> None:
        """One line says so; the transcript stays, and the session keeps every token that arrived."""
        self.link.died()
        restart = self._keys_of("restart_engine")
        self._idle()
        self.view.status.model = f"engine stopped: {message.reason} ({restart} restarts it)"
        self.notify(
            f"{message.reason}; the transcript and the session are kept. {restart} restarts the engine.",
            title="the engine stopped",
            severity="error",
            timeout=30,
        )
        prompt = self.view.prompt
        prompt.disabled = True
        prompt.placeholder = f"the engine stopped: {restart} restarts it"
        self.recorder.record_note("engine_died", reason=message.reason)
        self.recorder.save()

    def action_restart_engine(self) -> None:
        if self.link.ready:
            self.notify("the engine is running")
            return
        self.view.status.model = f"{self.settings.model_label} (restarting…)"
        self.link.restart()

    def _restarted(self, sampling) -> None:
        """A new engine knows no conversation: a new chat starts, with the sliders and sampling as they are."""
        self.recorder.record_note("engine_restarted")
        self.recorder.record_note("new_chat")  # what `replay --verify` does here too: reset the engine
        self.view.turn_log.end_turn()
        self.link.replace_steering(self.view.side.steering.values())
        if sampling is not None and sampling != self.link.sampling:
            self.link.set_sampling(sampling)
        self.notify("the engine is back; the conversation starts anew (the transcript above stays)", title="engine")

    def _keys_of(self, action: str) -> str:
        return next((row.keys for row in key_rows(self._bindings, self.app.keymap) if row.action == action), action)

    # -- chatting -------------------------------------------------------------------------------------

    @on(Input.Submitted, "#prompt")
    def _send(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text or not self.link.idle:
            return  # an empty message does nothing; a busy engine keeps the draft
        event.input.value = ""
        self.branches.begin("chat")
        self.recorder.record_note("message", text=text)
        self._generating()
        self.link.chat(text)

    def _generating(self, state: str = "generating") -> None:
        self.view.status.state = state
        if self._blink is None:  # a steady cursor while the model writes: no frames of its own
            self._blink, self.view.prompt.cursor_blink = self.view.prompt.cursor_blink, False
        self.view.turn_log.end_turn()

    def _idle(self) -> None:
        self.view.status.state = ""
        if self._blink is not None:
            self.view.prompt.cursor_blink, self._blink = self._blink, None

    @on(EngineEvents)
    def _show(self, message: EngineEvents) -> None:
        for event in message.events:
            self.recorder.record_event(event)
        self.branches.saw(message.events)
        for alert in self.view.show(message.events):
            self.recorder.record_note("alert", **alert.__dict__)
        self.link.saw(message.events)
        self.view.status.show_live(context=self.link.context())

    @on(GenerationEnded)
    def _ended(self, message: GenerationEnded) -> None:
        self.link.ended(message.status)
        self.branches.ended(message.histories)
        self._idle()
        if self.link.ready:
            self.view.status.context = self.link.context()
        if message.error:
            self.notify(message.error, title="generation failed", severity="error", timeout=15)
        self.recorder.save()

    @on(events.Key)
    def _type_into_prompt(self, event: events.Key) -> None:
        """A printable key outside a text field (and bound to nothing) starts a message, as in chat apps."""
        prompt = self.view.prompt
        if (
            not event.is_printable
            or event.character is None
            or prompt.disabled
            or isinstance(self.focused, (Input, TextArea))
            or event.key in self.active_bindings
        ):
            return
        prompt.focus()
        prompt.insert_text_at_cursor(event.character)
        event.stop()

    @on(CommandDone)
    def _done(self, message: CommandDone) -> None:
        self.link.update(message.status)
        if self.link.ready:
            self.view.status.context = self.link.context()
        if message.name == "set_steering":
            self.steering.applied(message.result)

    @on(CommandFailed)
    def _failed(self, message: CommandFailed) -> None:
        self.notify(message.error, severity="error")

    def close(self) -> Path | None:
        """Quitting: end the engine (a child process ends), and the recording; returns the session file."""
        self.link.close()
        return self.recorder.close()

    # -- steering -------------------------------------------------------------------------------------

    @on(SteeringPanel.Changed)
    def _steer(self, message: SteeringPanel.Changed) -> None:
        self.steering.slider_moved(message.emotion, message.value)

    def toggle_pin(self, emotion: str) -> None:
        super().toggle_pin(emotion)
        self.steering.record_pins()
