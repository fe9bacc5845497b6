"""What the chat and replay screens share: the console view, and the actions that only look at it.

This base class has no BINDINGS: each screen lists its own (tui/bindings.py), the view's keys
among them, so neither screen inherits the other's.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from textual.app import ComposeResult, SystemCommand
from textual.command import CommandPalette
from textual.screen import Screen
from textual.widgets import Footer

from emolab.tui.commands import EmotionProvider
from emolab.tui.keymap import KeyRow, key_rows
from emolab.tui.view import ConsoleView


class ConsoleScreen(Screen):
    COMMANDS: ClassVar = {EmotionProvider}
    HELP: ClassVar[str] = ""  # Markdown for the help screen, above the keys

    def __init__(self, view: ConsoleView) -> None:
        super().__init__()
        self.view = view

    def compose(self) -> ComposeResult:
        yield self.view
        yield Footer()

    def on_mount(self) -> None:
        self.view.fit(self.app.size.width, self.app.size.height)

    def on_resize(self) -> None:
        self.view.fit(self.app.size.width, self.app.size.height)

    def key_rows(self) -> list[KeyRow]:
        """This screen's keys as they are now bound."""
        return key_rows(self._bindings, self.app.keymap)

    def help_sections(self) -> list[tuple[str, list[KeyRow]]]:
        rows = self.key_rows()
        mine = {row.command for row in rows}
        return [("Keys", [*rows, *(row for row in self.app.app_key_rows() if row.command not in mine)])]

    def palette_commands(self) -> Iterator[SystemCommand]:
        """Every key of this screen, in the command palette too (Textual's own commands include quit)."""
        for row in self.key_rows():
            if row.command != "quit":
                yield SystemCommand(row.explanation, row.keys, self._runner(row.action))

    def _runner(self, action: str):
        async def run() -> None:
            await self.app.run_action(action, self)

        return run

    # -- the view's actions ---------------------------------------------------------------------------

    def toggle_pin(self, emotion: str) -> None:
        self.view.toggle_pin(emotion)

    def action_search_emotions(self) -> None:
        self.app.push_screen(CommandPalette(providers=[EmotionProvider], placeholder="Steer which emotion? (fuzzy)"))

    def action_cycle_tint(self) -> None:
        self.notify(f"tint: {self.view.cycle_tint()}")

    def action_toggle_smoothing(self) -> None:
        self.view.smoothed = not self.view.smoothed
        self.notify(f"readouts: {self.view.status.readouts}")

    def action_toggle_panel(self) -> None:
        self.view.toggle_class("-hide-panel")

    def action_select_token(self, step: int) -> None:
        self.view.step_selection(step)

    def action_follow_live(self) -> None:
        self.view.follow_live()
