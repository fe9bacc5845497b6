"""Command palette providers: steering emotions by fuzzy search."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider


class EmotionProvider(Provider):
    """Pin any of the pack's emotions to the console screen's panel, or unpin a pinned one."""

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        screen = self.screen
        pinned = set(screen.view.side.steering.pinned)
        for emotion in screen.view.pack.emotions:
            verb = "unpin" if emotion in pinned else "steer"
            title = f"{verb} {emotion}"
            score = matcher.match(title)
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(title),
                    partial(screen.toggle_pin, emotion),
                    help="remove its slider" if emotion in pinned else "add a slider for it",
                )

    async def discover(self) -> Hits:
        screen = self.screen
        for emotion in screen.view.side.steering.pinned:
            yield DiscoveryHit(f"unpin {emotion}", partial(screen.toggle_pin, emotion), help="remove its slider")
