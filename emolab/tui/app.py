"""The lab console's apps: a chat, or the replay of a session; each shows one screen.

The screens (tui/screens/chat.py, tui/screens/replay.py) own their keys and their work; an
app holds what is the same for both: help, quit, the keymap, the command palette.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import ClassVar

from textual.app import App, SystemCommand
from textual.screen import Screen

from emolab.core.pack_manifest import PackManifest
from emolab.core.recording import SessionSink
from emolab.tui import bindings as keys
from emolab.tui.engine_link import LinkFactory
from emolab.tui.keymap import (
    KeyRow,
    binding_ids,
    default_keymap_path,
    key_rows,
    read_keymap,
)
from emolab.tui.screens.chat import ChatScreen, ChatSettings
from emolab.tui.screens.console import ConsoleScreen
from emolab.tui.screens.help import HelpScreen


class ConsoleApp(App):
    TITLE = "emolab"
    BINDINGS: ClassVar = [keys.SHOW_HELP]  # and Textual's own Ctrl+Q, for dialogs; the screens show QUIT first

    def __init__(self, *, keymap: dict[str, str] | None = None) -> None:
        """keymap: binding id → keys; None reads the user's keymap file, if there is one."""
        super().__init__()
        self.keymap = load_keymap(None) if keymap is None else keymap
        self.set_keymap(self.keymap)

    @property
    def console_screen(self) -> ConsoleScreen:
        """The console screen under any dialog."""
        return next(screen for screen in reversed(self.screen_stack) if isinstance(screen, ConsoleScreen))

    def app_key_rows(self) -> list[KeyRow]:
        return key_rows(self._bindings, self.keymap)

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.console_screen.HELP, self.console_screen.help_sections()))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        if isinstance(screen, ConsoleScreen):
            yield from screen.palette_commands()
        yield from self._own_commands()

    def _own_commands(self) -> Iterator[SystemCommand]:
        for row in self.app_key_rows():
            if row.action == "help":
                yield SystemCommand(row.explanation, row.keys, self.action_help)


class EmolabApp(ConsoleApp):
    """`emolab chat`: the chat screen. `run()` returns the session file it wrote, if any."""

    def __init__(
        self,
        pack: PackManifest,
        link: LinkFactory,
        *,
        model_label: str,
        recorder_factory: Callable[[dict], SessionSink] | None = None,
        pinned: list[str] | None = None,
        thresholds: dict[str, float] | None = None,
        keymap: dict[str, str] | None = None,
    ) -> None:
        """link: child_link.child_process(spec), or engine_link.in_process(loader, pack path)."""
        super().__init__(keymap=keymap)
        self.settings = ChatSettings(pack, link, model_label, recorder_factory, pinned, thresholds)

    def get_default_screen(self) -> Screen:
        self.chat = ChatScreen(self.settings)
        return self.chat

    async def action_quit(self) -> None:
        self.exit(self.chat.close())


def known_binding_ids() -> set[str]:
    """Every id a keymap may rebind."""
    from emolab.tui.screens.forms import PathScreen, SamplingScreen
    from emolab.tui.screens.replay import ReplayScreen
    from emolab.tui.widgets.slider import FloatSlider

    owners = (ConsoleApp, ChatScreen, ReplayScreen, FloatSlider, SamplingScreen, PathScreen, HelpScreen)
    return set().union(*(binding_ids(owner.BINDINGS) for owner in owners))


def load_keymap(path: str | Path | None) -> dict[str, str]:
    """The keymap in `path`, or in the user's default file; {} when there is none."""
    path = path or default_keymap_path()
    return read_keymap(path, known_binding_ids()) if path else {}
