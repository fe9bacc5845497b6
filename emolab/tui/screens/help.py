"""The help screen: every key and command."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

HELP = """\
# emolab

Chat with the model while sliders steer it, and watch each token's emotion readouts.
The readouts are z-scores against neutral text: 0 is typical, ±3 is strong.

## Keys

| key | action |
|---|---|
| Enter | send the message |
| Esc | stop the reply |
| Ctrl+N | new chat |
| Ctrl+R | regenerate the last reply |
| Ctrl+G | add or remove a steering emotion (fuzzy search) |
| Ctrl+L | reset every slider to 0 |
| Ctrl+O | sampling: temperature, top-p, max tokens, seed |
| Ctrl+T | tint tokens by emotion, by valence, or not at all |
| Ctrl+B | show or hide the side panel |
| F2 / F3 | select the previous / next token (its readout shows in the bars); F4 follows live |
| Ctrl+P | command palette: everything, searchable |
| F1 | this help |
| Ctrl+Q | quit |

On a slider: ←/→ fine steps, Shift+←/→ coarse steps, 0 resets it; drag it with the mouse.
Click a token to see its readout.

## Steering

A strength s adds s × (the layer's mean residual norm) × (the emotion's unit direction) to
the residual stream. A change applies from the next token; the transcript marks it with ⟂.
The probe reads its layer before that layer's steering is added, so a slider does not
simply light up its own bar.

## Alerts

Readouts that rise through a threshold raise an alert and mark the token with ⚠. By default
desperate, hostile and afraid are watched, each at the z-score that one neutral token in a
thousand reached when the pack was built (the pack's alerts.json), never below z = 3.
"""


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 90%; max-width: 100; height: 90%; border: thick $primary; background: $surface; }
    """
    BINDINGS = [Binding("escape,f1,q", "dismiss", "close", id="help.close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Markdown(HELP, id="help-text")
