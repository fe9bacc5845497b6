"""What the console view shows of one token: the selected, hovered or live token's readout in the
side panel, the tint and the smoothing of every transcript (the compare's two included).

A part of ConsoleView (tui/view.py), kept apart so that each file holds one job: it only reads
the view's turns and writes to its widgets.
"""

from __future__ import annotations

from emolab.tui.turns import TokenView

TINTS = ["emotion", "valence", "off"]


class TokenInspection:
    """Mixed into ConsoleView, whose side panel, status bar, transcripts and turns these use."""

    def _show_token(self, token: TokenView, title: str | None = None) -> None:
        readout = token.readout(self.smoothed)
        if readout is not None:
            self.side.show_readout(readout, title or f"token {token.text!r}", self.top_k)

    def show_live(self) -> None:
        """The newest token's readout: the stream's (a compare's side A), else the conversation's."""
        token = self._live or self.turn_log.last_token
        if token is not None:
            self._show_token(token)

    def smoothing_changed(self, smoothed: bool) -> None:
        for transcript in self.transcripts():
            transcript.smoothed = smoothed
        tokens = [token for token in self.shown_tokens() if token.readable]
        self.side.strip.clear()
        self.side.strip.push([token.readout(smoothed) for token in tokens])
        selected = next((token for token in tokens if token.index == self.transcript.selected), None)
        if selected is not None:
            self._show_token(selected, f"token {selected.index} {selected.text!r}")
        else:
            self.show_live()
        self._describe_readouts()

    def _describe_readouts(self) -> None:
        # short, so that the context count still fits an 80-column bar
        self.status.readouts = f"smooth h={self.pack.smoothing_half_life:g}" if self.smoothed else "raw"

    def cycle_tint(self) -> str:
        tint = TINTS[(TINTS.index(self.transcript.tint) + 1) % len(TINTS)]
        for transcript in self.transcripts():
            transcript.tint = tint
        return tint

    def shown_tokens(self) -> list[TokenView]:
        """The tokens with a readout on screen: a compare's two lanes, in lane order, or the transcript's."""
        if self.compare is None:
            return self.turn_log.tokens()
        return [token for log in self.compare.lanes for token in log.tokens()]

    def selected_token(self) -> TokenView | None:
        return next((token for token in self.shown_tokens() if token.index == self.transcript.selected), None)

    def step_selection(self, step: int) -> None:
        """Select the token `step` tokens away from the selected one (or the newest, if none is)."""
        tokens = self.shown_tokens()
        if not tokens:
            return
        positions = [token.index for token in tokens]
        selected = self.transcript.selected
        at = min(len(tokens) - 1, max(0, positions.index(selected) + step)) if selected in positions else -1
        self.select(tokens[at])

    def select(self, token: TokenView) -> None:
        for transcript in self.transcripts():
            transcript.selected = token.index
        self._show_token(token, f"token {token.index} {token.text!r} (F4: live)")

    def follow_live(self) -> None:
        for transcript in self.transcripts():
            transcript.selected = None
        self.show_live()

    def hovered(self, token: TokenView | None) -> None:
        if self.transcript.selected is not None:
            return  # a selected token keeps the bars until F4
        if token is not None and token.probe is not None:
            self._show_token(token, f"hover: token {token.index} {token.text!r}")
        else:
            self.show_live()
