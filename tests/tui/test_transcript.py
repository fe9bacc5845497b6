"""The transcript on its own: wrapping as tokens stream in, and the turns it draws, in a small host app."""

import random
from itertools import pairwise

import numpy as np
from rich.style import Style
from rich.text import Text

from emolab.tui.turns import TokenView, TurnView
from emolab.tui.widgets.transcript import Transcript
from emolab.tui.widgets.wrapping import WrappedLines
from tests.tui.harness import Host

PROSE = (
    "The keeper climbed the stairs at dusk, as he had for thirty years, and trimmed the wick. "
    "Below, the sea\nthrew itself at the rocks; a gull, startled, wheeled off into the weather. "
    "Supercalifragilisticexpialidocious-length-words-fold-where-no-space-is. 灯台守は窓を拭いた。"
)


def wrapped(pieces: list[str], width: int) -> list[str]:
    lines = WrappedLines(width)
    for piece in pieces:
        lines.append(piece, Style())
    return [strip.text for strip in lines.lines()]


def test_wrapping_agrees_with_rich_on_prose():
    for width in (7, 12, 20, 33, 60):
        expected = [line.plain for line in Text(PROSE).wrap(_console(), width)]
        assert wrapped([PROSE], width) == [line.rstrip() if line.strip() else line for line in expected], width


def test_a_word_that_arrives_in_pieces_wraps_as_if_it_came_whole():
    generator = random.Random(0)
    for width in (9, 17, 40):
        pieces, at = [], 0
        while at < len(PROSE):  # token-like pieces: 1 to 6 characters
            step = generator.randint(1, 6)
            pieces.append(PROSE[at : at + step])
            at += step
        assert wrapped(pieces, width) == wrapped([PROSE], width)


def test_lines_fit_the_width_in_cells_and_keep_each_piece_style():
    bold, red = Style(bold=True), Style(color="red")
    lines = WrappedLines(8)
    lines.append("model  ", bold)
    lines.append("灯台守は窓を", red)  # two cells a character
    strips = lines.lines()
    assert [strip.text for strip in strips] == ["model", "灯台守は", "窓を"]
    assert all(strip.cell_length <= 8 for strip in strips)
    assert {segment.style for strip in strips[1:] for segment in strip} == {red}


def test_a_line_narrower_than_a_character_holds_that_character_alone():
    assert wrapped(["灯台 a"], 1) == ["灯", "台", "a"]


def turn(role: str, texts: list[str], start: int = 0) -> TurnView:
    tokens = [TokenView(start + k, text, np.zeros(3)) for k, text in enumerate(texts)]
    return TurnView(role, tokens)


def hosted() -> tuple[Transcript, Host]:
    """A transcript of three emotions, alone in a host app."""
    transcript = Transcript(["calm", "happy", "sad"], np.array([0.0, 1.0, -1.0]))
    return transcript, Host(transcript)


def shown(transcript: Transcript) -> list[str]:
    return [transcript.render_line(y).text.rstrip() for y in range(transcript.size.height)]


async def test_turns_are_drawn_with_their_edge_and_a_blank_line_after_each():
    transcript, app = hosted()
    async with app.run_test(size=(30, 10)) as pilot:
        prompt, reply = turn("prompt", ["hello"]), turn("reply", ["Hi", " there", "."], start=1)
        transcript.show([prompt, reply], [prompt, reply])
        await pilot.pause()
        assert shown(transcript)[:4] == ["█ you  hello", "", "█ model  Hi there.", ""]
        assert transcript.line_of(reply) == 2 and transcript.text_of(reply) == "model  Hi there."


async def test_a_streaming_reply_wraps_only_what_it_gained_and_the_view_follows_it():
    transcript, app = hosted()
    async with app.run_test(size=(24, 6)) as pilot:
        reply = turn("reply", [])
        transcript.show([reply], [reply])
        for k, word in enumerate(PROSE.split(" ")[:40]):
            reply.tokens.append(TokenView(k, " " + word, np.zeros(3)))
            lines = transcript._lines[reply]
            before = lines.wrapped.count
            transcript.show([reply], [reply])
            assert len(lines.pieces) == k + 2  # "model  " and the tokens so far
            assert lines.wrapped.count >= before  # appended, never re-wrapped from the top
        await pilot.pause()
        expected = wrapped([piece for piece, _ in lines.pieces], transcript.scrollable_content_region.width - 3)
        assert transcript.text_of(reply).splitlines() == expected
        assert transcript.following and transcript.scroll_y == transcript.max_scroll_y > 0
        assert transcript.vertical_scrollbar.window_virtual_size == transcript.virtual_size.height == len(expected) + 1
        assert shown(transcript)[-2] == "█ " + expected[-1]  # the last line above the blank one


async def test_a_turn_that_gets_shorter_leaves_none_of_its_old_lines_painted():
    transcript, app = hosted()
    async with app.run_test(size=(24, 12)) as pilot:
        reply = turn("reply", [" " + word for word in PROSE.split(" ")[:12]])
        transcript.show([reply], [reply])
        await pilot.pause()
        assert "thirty" in app.export_screenshot()
        reply.tokens[:] = reply.tokens[:2]
        transcript.show([reply], [reply])
        await pilot.pause()
        painted = app.export_screenshot()
        assert "keeper" in painted and "thirty" not in painted


async def test_a_tall_view_follows_the_stream_a_step_of_lines_at_a_time_with_the_newest_in_view():
    transcript, app = hosted()
    async with app.run_test(size=(30, 36)) as pilot:
        reply = turn("reply", [])
        transcript.show([reply], [reply])
        await pilot.pause()
        height = transcript.scrollable_content_region.height
        offsets = []
        for k, word in enumerate((PROSE.split(" ") * 8)[:250]):
            reply.tokens.append(TokenView(k, " " + word, np.zeros(3)))
            transcript.show([reply], [reply])
            newest = transcript._lines[reply].wrapped.count - 1
            assert transcript.scroll_y <= newest < transcript.scroll_y + height
            offsets.append(transcript.scroll_y)
        assert transcript.virtual_size.height % 3 == 0  # 36 rows: a step of 3
        assert {after - before for before, after in pairwise(offsets) if after != before} == {3}


async def test_the_scrollbar_redraws_only_the_rows_a_moving_thumb_changes_and_draws_as_textuals_does():
    from textual.visual import Visual, visualize
    from textual.widget import Widget

    transcript, app = hosted()
    async with app.run_test(size=(30, 20)) as pilot:
        reply = turn("reply", [" " + word for word in (PROSE.split(" ") * 6)])
        transcript.show([reply], [reply])
        await pilot.pause()
        bar = transcript.vertical_scrollbar

        def drawn_as_textual_draws_it() -> bool:  # Widget._render_content's drawing of the same state
            width, height = bar.size
            textuals = Visual.to_strips(bar, visualize(bar, bar.render()), width, height, bar.visual_style)
            return [list(bar.render_line(y)) for y in range(height)] == [list(strip) for strip in textuals]

        assert drawn_as_textual_draws_it()
        bar.mouse_over = True  # the hover colours
        assert drawn_as_textual_draws_it()
        bar.mouse_over = False

        marked = []
        refresh = Widget.refresh

        def spy(widget, *regions, **options):
            if widget is bar:
                marked.append(regions)
            return refresh(widget, *regions, **options)

        Widget.refresh = spy
        try:
            transcript.scroll_to(y=transcript.scroll_y - 1, animate=False, immediate=True)
        finally:
            Widget.refresh = refresh
        assert marked and all(len(regions) == 1 and regions[0].height == 1 for regions in marked)
        assert len(marked) <= 2  # the thumb's two ends


async def test_a_new_selection_or_tint_redraws_the_tokens_it_touches():
    transcript, app = hosted()
    async with app.run_test(size=(40, 6)) as pilot:
        reply = turn("reply", ["a", "b", "c"])
        reply.tokens[1].probe = np.array([0.0, 3.0, 0.0])  # happy, strongly: tinted
        transcript.show([reply], [reply])
        await pilot.pause()
        styles = {piece: style for piece, style in transcript._lines[reply].pieces}
        assert styles["b"].color is not None and styles["a"].color is None
        transcript.selected = 1
        await pilot.pause()
        assert dict(transcript._lines[reply].pieces)["b"].reverse
        transcript.tint = "off"
        await pilot.pause()
        assert dict(transcript._lines[reply].pieces)["b"].color is None


def _console():
    from rich.console import Console

    return Console(width=200)
