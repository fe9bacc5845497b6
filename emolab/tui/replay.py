"""`emolab replay`'s console: the replay screen in an app of its own."""

from __future__ import annotations

from textual.screen import Screen

from emolab.core.pack_manifest import PackManifest
from emolab.core.session.format import SessionData
from emolab.tui.app import ConsoleApp
from emolab.tui.screens.replay import ReplayScreen


class ReplayApp(ConsoleApp):
    def __init__(
        self, pack: PackManifest, data: SessionData, *, autoplay: bool = True, keymap: dict[str, str] | None = None
    ) -> None:
        super().__init__(keymap=keymap)
        self.pack, self.data, self.autoplay = pack, data, autoplay

    def get_default_screen(self) -> Screen:
        self.replay = ReplayScreen(self.pack, self.data, autoplay=self.autoplay)
        return self.replay
