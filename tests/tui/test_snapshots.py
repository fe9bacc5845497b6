"""SVG snapshots of the console's layout, at 80×24 and 160×48.

Deterministic: a seeded tiny model, greedy decoding, no alerts, no blinking cursor, and
the one timing-dependent field (tokens per second) blanked.
Update them with `python -m pytest tests/tui/test_snapshots.py --snapshot-update`, then look.
"""

from tests.tui.helpers import make_app, ready, send, settle


async def after_one_reply(pilot):
    app = pilot.app
    await ready(pilot)
    app.query_one("#prompt").cursor_blink = False
    app.query_one("#slider-calm").set_value(0.3)
    await send(pilot, "hello there")
    await settle(pilot)
    app.chat.view.status.speed = "— tok/s"
    await pilot.pause(0.1)
    app.chat.view.transcript.scroll_end(animate=False)  # where following the stream ends up, without its timing
    await pilot.pause(0.1)


def test_layout_80x24(snap_compare, tiny_model, tiny_pack):
    assert snap_compare(
        make_app(tiny_model, tiny_pack, thresholds={}), terminal_size=(80, 24), run_before=after_one_reply
    )


def test_layout_160x48(snap_compare, tiny_model, tiny_pack):
    assert snap_compare(
        make_app(tiny_model, tiny_pack, thresholds={}), terminal_size=(160, 48), run_before=after_one_reply
    )


async def after_a_compare(pilot):
    app = pilot.app
    await after_one_reply(pilot)
    await pilot.press("f6")
    await pilot.pause()
    await settle(pilot)
    app.chat.view.status.speed = "— tok/s"
    for lane in (0, 1):
        app.chat.view.panes.lane(lane).scroll_end(animate=False)
    await pilot.pause(0.1)


def test_compare_layout_160x48(snap_compare, tiny_model, tiny_pack):
    """Two panes side by side: A with the sliders (calm +0.30), B with none, ≠ at the first difference."""
    assert snap_compare(
        make_app(tiny_model, tiny_pack, thresholds={}), terminal_size=(160, 48), run_before=after_a_compare
    )
