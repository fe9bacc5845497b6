"""Small modal forms: sampling settings, and a file path."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label

from emolab.core.errors import EmolabError
from emolab.core.sampling import Sampling

FORM_CSS = """
{name} {{ align: center middle; }}
{name} > Vertical {{ width: 60; height: auto; border: thick $primary; background: $surface; padding: 1 2; }}
{name} Grid {{ grid-size: 2; grid-columns: 14 1fr; grid-rows: 3; height: auto; }}
{name} Label {{ padding: 1 0; }}
{name} Horizontal {{ height: auto; align: right middle; }}
{name} .error {{ color: $error; height: auto; }}
"""


class SamplingScreen(ModalScreen[Sampling | None]):
    DEFAULT_CSS = FORM_CSS.format(name="SamplingScreen")
    BINDINGS: ClassVar = [Binding("escape", "cancel", "cancel", id="form.cancel")]

    def __init__(self, sampling: Sampling) -> None:
        super().__init__()
        self.sampling = sampling

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("[b]Sampling[/b]  (temperature 0 is greedy)")
            with Grid():
                for field, value in (
                    ("temperature", self.sampling.temperature),
                    ("top_p", self.sampling.top_p),
                    ("max_tokens", self.sampling.max_tokens),
                    ("seed", self.sampling.seed),
                ):
                    yield Label(field.replace("_", " "))
                    yield Input(str(value), id=field)
            yield Label("", classes="error", id="error")
            with Horizontal():
                yield Button("Apply", variant="primary", id="apply")
                yield Button("Cancel", id="cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "cancel":
            self.dismiss(None)
        else:
            self._apply()

    def on_input_submitted(self) -> None:
        self._apply()

    def _apply(self) -> None:
        values = {
            field: self.query_one(f"#{field}", Input).value for field in ("temperature", "top_p", "max_tokens", "seed")
        }
        try:
            sampling = Sampling(
                temperature=float(values["temperature"]),
                top_p=float(values["top_p"]),
                max_tokens=int(values["max_tokens"]),
                seed=int(values["seed"]),
            )
        except ValueError:
            self.query_one("#error", Label).update("numbers only: temperature and top p may have decimals")
            return
        except EmolabError as error:
            self.query_one("#error", Label).update(str(error))
            return
        self.dismiss(sampling)

    def action_cancel(self) -> None:
        self.dismiss(None)


class PathScreen(ModalScreen[str | None]):
    DEFAULT_CSS = FORM_CSS.format(name="PathScreen")
    BINDINGS: ClassVar = [Binding("escape", "cancel", "cancel", id="form.cancel")]

    def __init__(self, title: str, default: str) -> None:
        super().__init__()
        self.title_text = title
        self.default = default

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"[b]{self.title_text}[/b]")
            yield Input(self.default, id="path")
            with Horizontal():
                yield Button("OK", variant="primary", id="ok")
                yield Button("Cancel", id="cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None if event.button.id == "cancel" else self.query_one("#path", Input).value.strip() or None)

    def on_input_submitted(self) -> None:
        self.dismiss(self.query_one("#path", Input).value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)
