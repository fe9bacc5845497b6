"""The help screen: the calling screen's text (kept here), then its keys as they are bound right now."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

from emolab.tui.keymap import KeyRow

CHAT_HELP = """\
# emolab

Chat with the model while sliders steer it, and watch each token's emotion readouts.
The readouts are z-scores against neutral text: 0 is typical, ±3 is strong.
Type anywhere to write a message; Enter sends it. Click a token to see its readout.

## Steering

A strength s adds s × (the layer's mean residual norm) × (the emotion's unit direction) to
the residual stream. A change applies from the next token; the transcript marks it with ⟂.
The probe reads its layer before that layer's steering is added, so a slider does not
simply light up its own bar.

## Alerts

Readouts that rise through a threshold raise an alert and mark the token with ⚠. By default
desperate, hostile and afraid are watched, each at the z-score that one neutral token in a
thousand reached when the pack was built (the pack's alerts.json), never below z = 3.

## Compare and branch

A compare answers the last message twice, side by side: A with the sliders, B with no
steering (or a preset, from the command palette). Both restart the seed, so the steering is
the only difference; ≠ marks the first token where they differ, and the line above them
the emotions whose mean readouts differ most. Closing it keeps A's reply, with B's as a
branch. Branch here writes the selected token's reply on from that token. Every reply to a
message stays as a branch ("branch 2/3"); the next message continues from the one shown.
"""

REPLAY_HELP = """\
# emolab replay

A recorded session plays back with its own timing; pauses longer than 1.5 s are shortened.
The sliders show the recorded steering, from the token it took effect on. Nothing here
changes the recording. Click a token to see its readout. A compare plays side by side;
every branch is shown in the order it was written, labelled ("branch 2/3").
"""


def help_markdown(intro: str, sections: list[tuple[str, list[KeyRow]]]) -> str:
    parts = [intro.rstrip(), ""]
    for title, rows in sections:
        parts += [f"## {title}", "", "| key | action |", "|---|---|"]
        parts += [f"| {row.keys} | {row.explanation} |" for row in rows]
        parts.append("")
    return "\n".join(parts)


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 90%; max-width: 100; height: 90%; border: thick $primary;
                                  background: $surface; }
    """
    BINDINGS: ClassVar = [Binding("escape,f1,q", "dismiss", "close", id="help.close")]

    def __init__(self, intro: str, sections: list[tuple[str, list[KeyRow]]]) -> None:
        super().__init__()
        self.text = help_markdown(intro, sections)

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Markdown(self.text, id="help-text")
