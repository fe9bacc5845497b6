"""The lab console: chat, live steering sliders, rolling per-token emotion readouts.

The app never calls the model itself. A thread worker loads the engine, another runs each
generation and posts its events; handlers here only update widgets and send the engine
commands (steering changes, stop), which are thread-safe.
"""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.command import CommandPalette
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Footer, Input, Static

from emolab.core.conversation import PLAIN_TRANSCRIPT_NOTE
from emolab.core.errors import EmolabError
from emolab.core.events import Token, TurnFinished, TurnStarted, Truncated
from emolab.core.pack import VectorPack
from emolab.core.recording import NotRecording, SessionSink
from emolab.tui.commands import EmotionProvider
from emolab.tui.monitor import Monitor, default_thresholds
from emolab.tui.screens.forms import PathScreen, SamplingScreen
from emolab.tui.screens.help import HelpScreen
from emolab.tui.widgets.heat_strip import HeatStrip
from emolab.tui.widgets.signed_bars import SignedBars
from emolab.tui.widgets.status_bar import StatusBar
from emolab.tui.widgets.steering_panel import SteeringPanel
from emolab.tui.widgets.transcript import TokenView, Transcript, TurnView
from emolab.tui.widgets.va_plane import ValenceArousalPlane
from emolab.tui.worker import (EngineEvents, EngineReady, GenerationEnded, LoadFailed, LoadProgress, load_engine,
                               stream_generation)

DEFAULT_PINNED = ["desperate", "calm", "happy", "sad", "afraid", "angry", "loving", "hostile"]
TINTS = ["emotion", "valence", "off"]


class EmolabApp(App):
    TITLE = "emolab"
    CSS = """
    #main { height: 1fr; }
    #chat { width: 1fr; }
    #prompt { dock: bottom; }
    #side { width: 46; border-left: solid $primary-darken-2; padding: 0 1; }
    #side > .section { text-style: bold; margin-top: 1; }
    #alerts { color: $error; height: auto; }
    .-narrow #side { width: 32; }
    .-narrow #va-plane, .-narrow #va-title { display: none; }
    .-short #va-plane, .-short #va-title, .-short #strip-title, .-short #strip { display: none; }
    .-hide-panel #side { display: none; }
    """
    COMMANDS = App.COMMANDS | {EmotionProvider}
    BINDINGS = [
        Binding("escape", "stop", "Stop", id="chat.stop"),
        Binding("ctrl+n", "new_chat", "New", id="chat.new"),
        Binding("ctrl+r", "regenerate", "Regenerate", id="chat.regenerate"),
        Binding("ctrl+g", "search_emotions", "Emotions", id="steer.search"),
        Binding("ctrl+l", "reset_steering", "Reset sliders", id="steer.reset"),
        Binding("ctrl+o", "edit_sampling", "Sampling", id="chat.sampling"),
        Binding("ctrl+t", "cycle_tint", "Tint", id="view.tint"),
        Binding("ctrl+e", "toggle_smoothing", "Smooth/raw", show=False, id="view.smoothing"),
        Binding("ctrl+b", "toggle_panel", "Panel", show=False, id="view.panel"),
        Binding("ctrl+s", "save_session", "Save", show=False, id="session.save"),
        Binding("f2", "select_token(-1)", "◀ token", show=False, id="view.previous_token"),
        Binding("f3", "select_token(1)", "token ▶", show=False, id="view.next_token"),
        Binding("f4", "follow_live", "live", show=False, id="view.follow"),
        Binding("f1", "help", "Help", id="app.help"),
        Binding("ctrl+q", "quit", "Quit", id="app.quit", priority=True),
    ]

    def __init__(self, pack: VectorPack, loader: Callable, *, model_label: str,
                 recorder_factory: Callable[[object], SessionSink] | None = None,
                 pinned: list[str] | None = None, thresholds: dict[str, float] | None = None, top_k: int = 8):
        super().__init__()
        self.pack = pack
        self.loader = loader
        self.model_label = model_label
        self.recorder_factory = recorder_factory
        self.recorder: SessionSink = NotRecording()  # until the engine exists to describe
        self.engine = None
        self.generating = False
        self.top_k = top_k
        self.pinned_start = [name for name in (pinned or DEFAULT_PINNED) if name in pack.emotion_index]
        self.monitor = Monitor(pack.emotions, default_thresholds(pack.alert_thresholds) if thresholds is None else thresholds)
        self.alerts: list = []
        self.turn: TurnView | None = None
        self.last_version = 0
        self.pending_marks: list[str] = []
        self.last_token: TokenView | None = None
        self.smoothed_view = True  # show smoothed readouts (alerts always use them: they are calibrated so)
        self.reply_started = 0.0
        self.reply_tokens = 0
        coords = np.array([pack.coords[name] for name in pack.emotions])
        self.valence = coords[:, 0] / max(1e-6, float(np.abs(coords[:, 0]).max()))

    # -- layout ---------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Horizontal(id="main"):
            with Vertical(id="chat"):
                yield Transcript(self.pack.emotions, self.valence, id="transcript")
                yield Input(placeholder="loading the model…", id="prompt", disabled=True)
            with VerticalScroll(id="side"):
                yield SteeringPanel(self.pack.slider, self.pinned_start, id="steering")
                yield Static("readout", classes="section", id="bars-title")
                yield SignedBars(id="bars")
                yield Static("last tokens", classes="section", id="strip-title")
                yield HeatStrip(id="strip")
                yield Static("valence / arousal (pack PCA)", classes="section", id="va-title")
                yield ValenceArousalPlane(self.pack.coords, self.pack.emotions, id="va-plane")
                yield Static("", id="alerts")
        yield StatusBar(id="status")
        yield Footer()

    @property
    def transcript(self) -> Transcript:
        return self.query_one(Transcript)

    @property
    def steering_panel(self) -> SteeringPanel:
        return self.query_one(SteeringPanel)

    @property
    def status(self) -> StatusBar:
        return self.query_one(StatusBar)

    def on_mount(self) -> None:
        self.status.pack = f"pack {self.pack.name}"
        self._describe_readouts()
        self.status.model = f"{self.model_label} (loading…)"
        self.status.session = "recording starts with the model" if self.recorder_factory else "not recording"
        self._update_strip_rows()
        self._apply_size_classes(self.size.width, self.size.height)
        self.start()

    def start(self) -> None:
        """What happens once the screen is up: load the engine (replay mode plays a session instead)."""
        self._start_loading()

    def on_resize(self, event) -> None:
        self._apply_size_classes(event.size.width, event.size.height)

    def _apply_size_classes(self, width: int, height: int) -> None:
        self.screen.set_class(width < 110, "-narrow")
        self.screen.set_class(height < 30, "-short")
        self.top_k = 4 if height < 30 else 8

    # -- loading --------------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="load")
    def _start_loading(self) -> None:
        load_engine(self.post_message, self.loader)

    def on_load_progress(self, message: LoadProgress) -> None:
        done = f" {message.done}/{message.total}" if message.total else ""
        self.status.model = f"{self.model_label}: {message.stage}{done}"

    def on_engine_ready(self, message: EngineReady) -> None:
        # The model and its libraries are millions of long-lived objects: keep them out of the
        # garbage collector's full passes, which otherwise stall the screen for hundreds of ms.
        gc.freeze()
        self.engine = message.engine
        if self.recorder_factory is not None:
            try:
                self.recorder = self.recorder_factory(self.engine)
            except OSError as error:
                self.notify(f"cannot record the session: {error}", severity="error", timeout=30)
        self.status.session = f"recording {self.recorder.path}" if self.recorder.path else "not recording"
        loaded = self.engine.loaded
        self.status.model = f"{loaded.reference} · {loaded.device.type} · {str(loaded.dtype).removeprefix('torch.')}" + (
            f" · {PLAIN_TRANSCRIPT_NOTE}" if loaded.prompt_format == "plain" else "")
        self._update_context()
        prompt = self.query_one("#prompt", Input)
        prompt.disabled = False
        prompt.placeholder = "Message the model (Enter to send, F1 for help)"
        prompt.focus()

    def on_load_failed(self, message: LoadFailed) -> None:
        self.status.model = "model failed to load"
        self.notify(message.error, title="cannot load the model", severity="error", timeout=30)

    # -- chatting -------------------------------------------------------------------------------

    def on_input_submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text or self.engine is None or self.generating:
            return  # an empty message does nothing; a busy engine keeps the draft
        event.input.value = ""
        self._generate(lambda: self.engine.chat(text), note=("message", {"text": text}))

    def _generate(self, start: Callable, note: tuple[str, dict] | None = None) -> None:
        if note:
            self.recorder.record_note(note[0], **note[1])
        self.generating = True
        self.status.state = "generating"
        self.turn = None
        self._run_generation(start)

    @work(thread=True, exclusive=True, group="generation")
    def _run_generation(self, start: Callable) -> None:
        stream_generation(self.post_message, start)

    def on_engine_events(self, message: EngineEvents) -> None:
        transcript = self.transcript
        fresh: list[TokenView] = []
        for event in message.events:
            self.recorder.record_event(event)
            if isinstance(event, Token):
                view = self._add_token(event)
                if event.probe is not None and event.position > 0:
                    fresh.append(view)
            elif isinstance(event, TurnStarted):
                self.turn = transcript.start_turn("prompt")
                self.reply_started = time.perf_counter()
                self.reply_tokens = 0
            elif isinstance(event, Truncated):
                self.notify(f"The history outgrew the context window: dropped the {event.dropped_messages} oldest "
                            "messages.", title="context truncated", severity="warning")
            elif isinstance(event, TurnFinished):
                if self.turn is not None:
                    self.turn.note = event.reason if event.reason != "eos" else ""
                    transcript.refresh_turn(self.turn)
                self.status.speed = f"{event.tokens_per_second:.1f} tok/s"
        if self.turn is not None:
            transcript.refresh_turn(self.turn)
        if fresh:
            self.query_one(HeatStrip).push([view.readout(self.smoothed_view) for view in fresh])
            if transcript.selected is None:
                self._show_readout(fresh[-1], f"token {fresh[-1].text!r}")
        self._update_context()

    def _add_token(self, event: Token) -> TokenView:
        transcript = self.transcript
        if event.source == "reply" and (self.turn is None or self.turn.role != "reply"):
            if self.turn is not None:
                transcript.refresh_turn(self.turn)
            self.turn = transcript.start_turn("reply")
        elif self.turn is None:
            self.turn = transcript.start_turn("prompt")
        view = TokenView(event.index, event.text, event.probe, event.smoothed)
        first_of_reply = event.source == "reply" and not self.turn.tokens
        if event.source == "reply" and (event.steering_version != self.last_version or
                                        (first_of_reply and event.steering)):
            view.marker = ", ".join(f"{n} {v:+.2f}" for n, v in event.steering.items()) or "steering off"
            self.last_version = event.steering_version
        elif event.source != "reply":
            self.last_version = event.steering_version
        if event.probe is not None and event.position > 0:  # position 0 is an attention sink, far off-scale
            alerts = self.monitor.check(event.smoothed if event.smoothed is not None else event.probe,
                                        event.index, event.text)
            for alert in alerts:
                self.alerts.append(alert)
                view.alert = alert.emotion
                self.recorder.record_note("alert", **alert.__dict__)
                self.notify(alert.describe(), title="threshold crossed", severity="warning")
            if alerts:
                self.query_one("#alerts", Static).update("\n".join(f"⚠ {a.describe()}" for a in self.alerts[-3:]))
        self.turn.tokens.append(view)
        if event.probe is not None:
            self.last_token = view
        if event.source == "reply":
            self.reply_tokens += 1
            seconds = time.perf_counter() - self.reply_started
            if seconds > 0:
                self.status.speed = f"{self.reply_tokens / seconds:.1f} tok/s"
        return view

    def on_generation_ended(self, message: GenerationEnded) -> None:
        self.generating = False
        self.status.state = ""
        if message.error:
            self.notify(message.error, title="generation failed", severity="error", timeout=15)
        self.recorder.save()

    def _show_readout(self, token: TokenView, title: str) -> None:
        probe = token.readout(self.smoothed_view)
        order = np.argsort(-np.abs(probe), kind="stable")[: self.top_k]
        self.query_one(SignedBars).show([(self.pack.emotions[i], float(probe[i])) for i in order], title=title)
        self.query_one(ValenceArousalPlane).place(probe)

    def _update_context(self) -> None:
        if self.engine is not None:
            used, window = self.engine.context_used, self.engine.loaded.context_window
            self.status.context = f"context {used}/{window}"

    def _update_strip_rows(self) -> None:
        pinned = self.steering_panel.pinned
        self.query_one(HeatStrip).set_rows(pinned, [self.pack.emotion_index[n] for n in pinned])

    # -- steering -------------------------------------------------------------------------------

    def on_steering_panel_changed(self, message: SteeringPanel.Changed) -> None:
        if self.engine is None:
            self.notify("the model is still loading", severity="warning")
            return
        try:
            self.engine.steering.set(message.emotion, message.value)
        except EmolabError as error:
            self.notify(str(error), severity="error")
            return
        snapshot = self.engine.steering.snapshot()
        self.recorder.record_steering(message.emotion, message.value, snapshot.version, snapshot.as_dict())

    def toggle_pin(self, emotion: str) -> None:
        panel = self.steering_panel
        if emotion in panel.pinned:
            panel.unpin(emotion)
        else:
            panel.pin(emotion).focus()
        self.call_after_refresh(self._update_strip_rows)

    def action_search_emotions(self) -> None:
        self.push_screen(CommandPalette(providers=[EmotionProvider], placeholder="Steer which emotion? (fuzzy)"))

    def action_reset_steering(self) -> None:
        panel = self.steering_panel
        panel.set_values({})
        if self.engine is not None:
            self.engine.steering.clear()
            self.recorder.record_note("steering_reset")

    # -- commands -------------------------------------------------------------------------------

    async def action_quit(self) -> None:
        if self.engine is not None and self.generating:
            self.engine.stop()  # the generation thread ends after its current token
        self.recorder.close()
        self.exit()

    def action_stop(self) -> None:
        if self.engine is not None and self.generating:
            self.engine.stop()
            self.recorder.record_note("stop")

    def action_new_chat(self) -> None:
        if self.engine is None or self.generating:
            return
        self.engine.reset()
        self.transcript.clear_turns()
        self.query_one(HeatStrip).clear()
        self.turn = None
        self.recorder.record_note("new_chat")
        self._update_context()

    def action_regenerate(self) -> None:
        if self.engine is None or self.generating:
            return
        if not any(m["role"] == "assistant" for m in self.engine.conversation.messages):
            self.notify("there is no reply to regenerate yet")
            return
        self.transcript.drop_last_reply()
        self._generate(self.engine.regenerate, note=("regenerate", {}))

    def action_edit_sampling(self) -> None:
        if self.engine is None:
            return

        def apply(sampling) -> None:
            if sampling is not None:
                self.engine.set_sampling(sampling)
                self.recorder.record_note("sampling", **sampling.__dict__)
                self.notify(f"temperature {sampling.temperature:g}, top-p {sampling.top_p:g}, "
                            f"max tokens {sampling.max_tokens}, seed {sampling.seed}", title="sampling")

        self.push_screen(SamplingScreen(self.engine.sampling), apply)

    def action_save_session(self) -> None:
        path = self.recorder.save()
        self.notify(f"saved {path}" if path else "recording is off (--no-record)",
                    severity="information" if path else "warning")

    def action_cycle_tint(self) -> None:
        transcript = self.transcript
        transcript.tint = TINTS[(TINTS.index(transcript.tint) + 1) % len(TINTS)]
        transcript.redraw()
        self.notify(f"tint: {transcript.tint}")

    def action_toggle_smoothing(self) -> None:
        self.smoothed_view = not self.smoothed_view
        self.transcript.smoothed = self.smoothed_view
        self.transcript.redraw()
        strip = self.query_one(HeatStrip)
        strip.history.clear()
        tokens = [token for token in self.transcript.all_tokens() if token.probe is not None]
        strip.push([token.readout(self.smoothed_view) for token in tokens])
        selected = next((token for token in tokens if token.index == self.transcript.selected), None)
        token = selected or self.last_token
        if token is not None:
            self._show_readout(token, f"token {token.index} {token.text!r}")
        self._describe_readouts()
        self.notify(f"readouts: {self.status.readouts}")

    def _describe_readouts(self) -> None:
        self.status.readouts = (f"smoothed (half-life {self.pack.smoothing_half_life:g})" if self.smoothed_view
                                else "raw readouts")

    def action_toggle_panel(self) -> None:
        self.screen.toggle_class("-hide-panel")

    def action_select_token(self, step: int) -> None:
        tokens = [t for t in self.transcript.all_tokens() if t.probe is not None]
        if not tokens:
            return
        transcript = self.transcript
        positions = [t.index for t in tokens]
        if transcript.selected in positions:
            at = min(len(tokens) - 1, max(0, positions.index(transcript.selected) + step))
        else:
            at = len(tokens) - 1
        self._select(tokens[at])

    def _select(self, token: TokenView) -> None:
        self.transcript.selected = token.index
        self.transcript.redraw()
        self._show_readout(token, f"token {token.index} {token.text!r} (F4: live)")

    def on_turn_widget_token_clicked(self, message) -> None:
        if message.token.probe is not None:
            self._select(message.token)

    def on_turn_widget_token_hovered(self, message) -> None:
        if self.transcript.selected is not None:
            return  # a selected token keeps the bars until F4
        token = message.token
        if token is not None and token.probe is not None:
            self._show_readout(token, f"hover: token {token.index} {token.text!r}")
        elif self.last_token is not None:
            self._show_readout(self.last_token, f"token {self.last_token.text!r}")

    def action_follow_live(self) -> None:
        self.transcript.selected = None
        self.transcript.redraw()
        if self.last_token is not None:
            self._show_readout(self.last_token, f"token {self.last_token.text!r}")

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_save_preset(self) -> None:
        def save(path: str | None) -> None:
            if path:
                try:
                    Path(path).parent.mkdir(parents=True, exist_ok=True)
                    Path(path).write_text(json.dumps(self.steering_panel.values(), indent=2) + "\n")
                except OSError as error:
                    self.notify(f"{path}: {error.strerror}", severity="error")
                    return
                self.notify(f"saved preset {path}")

        self.push_screen(PathScreen("Save the sliders as a preset", "presets/preset.json"), save)

    def action_load_preset(self) -> None:
        def load(path: str | None) -> None:
            if not path:
                return
            try:
                values = read_preset(path, self.pack)
                if self.engine is not None:
                    self.engine.steering.update(values, replace=True)
            except EmolabError as error:
                self.notify(str(error), severity="error")
                return
            self.steering_panel.set_values(values)
            self.call_after_refresh(self._update_strip_rows)
            self.recorder.record_note("preset", path=path, values=values)
            self.notify(f"loaded preset {path}")

        self.push_screen(PathScreen("Load a preset", "presets/preset.json"), load)

    def get_system_commands(self, screen):
        yield from super().get_system_commands(screen)
        commands = [
            ("New chat", "Clear the conversation and the cache", self.action_new_chat),
            ("Regenerate", "Replace the last reply", self.action_regenerate),
            ("Stop generation", "End the reply after the current token", self.action_stop),
            ("Sampling settings", "Temperature, top-p, max tokens, seed", self.action_edit_sampling),
            ("Add or remove a steering emotion", "Fuzzy search over the pack's emotions", self.action_search_emotions),
            ("Reset all sliders", "Every steering strength back to 0", self.action_reset_steering),
            ("Save preset", "Write the sliders to a JSON file", self.action_save_preset),
            ("Load preset", "Set the sliders from a JSON file", self.action_load_preset),
            ("Cycle tint", "Tint tokens by emotion, by valence, or not at all", self.action_cycle_tint),
            ("Toggle side panel", "Show or hide the sliders and readouts", self.action_toggle_panel),
            ("Save session now", "Write the session file", self.action_save_session),
            ("Help", "Keys and commands", self.action_help),
        ]
        for title, help_text, callback in commands:
            yield SystemCommand(title, help_text, callback)


def read_preset(path: str, pack: VectorPack) -> dict[str, float]:
    """A JSON object of emotion → strength, checked against the pack."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EmolabError(f"{path}: no such preset") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise EmolabError(f"{path}: not a JSON preset ({error})") from None
    if not isinstance(data, dict) or not all(isinstance(v, (int, float)) for v in data.values()):
        raise EmolabError(f"{path}: a preset is a JSON object of emotion → strength")
    values = {}
    for name, value in data.items():
        emotion = pack.resolve(name)
        if not pack.slider.contains(float(value)):
            raise EmolabError(f"{path}: {emotion} {value} is outside {pack.slider.min:g} to {pack.slider.max:g}")
        values[emotion] = float(value)
    return values
