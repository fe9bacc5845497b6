"""The chat screen's commands: each a key (tui/bindings.py) and an entry of the command palette.

A part of ChatScreen (tui/screens/chat.py), which holds the link, the recorder, the view and
the controllers these use; kept apart so that the screen's file keeps to the engine's messages.
"""

from __future__ import annotations

from collections.abc import Iterator

from textual.app import SystemCommand
from textual.binding import BindingsMap

from emolab.core.errors import EmolabError
from emolab.tui.keymap import KeyRow, key_rows
from emolab.tui.presets import DEFAULT_PRESET, read_preset
from emolab.tui.screens.forms import PathScreen, SamplingScreen
from emolab.tui.widgets.slider import FloatSlider


class ChatActions:
    """Mixed into ChatScreen."""

    def action_stop(self) -> None:
        if self.link.stop():
            self.recorder.record_note("stop")

    def action_new_chat(self) -> None:
        if not self.link.idle:
            return
        self.link.new_chat()
        self.view.clear()
        self.branches.clear()
        self.recorder.record_note("new_chat")
        self.view.status.context = self.link.context()

    def action_regenerate(self) -> None:
        if not self.link.idle:
            return
        if not self.link.has_reply:
            self.notify("there is no reply to regenerate yet")
            return
        self.branches.begin("regenerate")  # the reply as it was stays, a sibling branch
        self.recorder.record_note("regenerate")
        self._generating()
        self.link.regenerate()

    # -- compares and branches (tui/branching.py) ------------------------------------------------------

    def action_compare(self, other: dict[str, float] | None = None) -> None:
        """Compare, or close the compare shown."""
        if not self.link.idle:
            return
        if self.view.compare is not None and other is None:
            self.view.close_compare()
            return
        if self.branches.compare(other):
            self._generating("comparing")

    def action_compare_preset(self) -> None:
        def compare(path: str | None) -> None:
            if not path:
                return
            try:
                values = read_preset(path, self.view.pack)
            except EmolabError as error:
                self.notify(str(error), severity="error")
                return
            self.action_compare(values)

        self.app.push_screen(PathScreen("Compare the sliders with a preset", DEFAULT_PRESET), compare)

    def action_branch_here(self) -> None:
        if self.link.idle and self.branches.branch_here():
            self._generating()

    def action_branch(self, step: int) -> None:
        if self.link.idle:
            self.branches.switch(step)

    # -- settings -------------------------------------------------------------------------------------

    def action_reset_steering(self) -> None:
        self.steering.reset()

    def action_save_preset(self) -> None:
        self.app.push_screen(PathScreen("Save the sliders as a preset", DEFAULT_PRESET), self.steering.save_preset)

    def action_load_preset(self) -> None:
        self.app.push_screen(PathScreen("Load a preset", DEFAULT_PRESET), self.steering.load_preset)

    def action_edit_sampling(self) -> None:
        if not self.link.ready:
            return

        def apply(sampling) -> None:
            if sampling is not None:
                self.link.set_sampling(sampling)
                self.recorder.record_note("sampling", **sampling.__dict__)
                self.notify(
                    f"temperature {sampling.temperature:g}, top-p {sampling.top_p:g}, "
                    f"max tokens {sampling.max_tokens}, seed {sampling.seed}",
                    title="sampling",
                )

        self.app.push_screen(SamplingScreen(self.link.sampling), apply)

    def action_save_session(self) -> None:
        if not self.recorder.path:
            self.notify("recording is off (--no-record)", severity="warning")
            return
        path = self.recorder.save()
        self.notify(f"saved {path}" if path else "nothing to save yet: the session starts with the first message")

    def help_sections(self) -> list[tuple[str, list[KeyRow]]]:
        slider = key_rows(BindingsMap(FloatSlider.BINDINGS), self.app.keymap)
        return [*super().help_sections(), ("On a slider (drag it with the mouse, too)", slider)]

    def palette_commands(self) -> Iterator[SystemCommand]:
        yield from super().palette_commands()
        yield SystemCommand("Save preset", "Write the sliders to a JSON file", self.action_save_preset)
        yield SystemCommand("Load preset", "Set the sliders from a JSON file", self.action_load_preset)
        yield SystemCommand(
            "Compare with a preset",
            "Answer the last message twice: the sliders, and a preset's strengths",
            self.action_compare_preset,
        )
