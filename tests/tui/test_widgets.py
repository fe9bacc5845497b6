"""Each widget on its own, in a small host app: keys, mouse, what it draws."""

import numpy as np

from emolab.tui.widgets.heat_strip import HeatStrip, z_levels
from emolab.tui.widgets.signed_bars import SignedBars
from emolab.tui.widgets.slider import FloatSlider
from emolab.tui.widgets.va_plane import ValenceArousalPlane
from tests.tui.harness import Host


def lines(widget) -> list[str]:
    return [widget.render_line(y).text for y in range(widget.size.height)]


async def test_a_slider_steps_clamps_resets_and_announces_each_change():
    slider = FloatSlider("apprehensive", minimum=-1.0, maximum=1.0, step=0.1, coarse_step=0.5)
    app = Host(slider)
    async with app.run_test(size=(60, 3)) as pilot:
        slider.focus()
        await pilot.press("right", "right", "shift+right")
        assert slider.value == 0.7
        await pilot.press("shift+right")
        assert slider.value == 1.0  # clamped at the maximum
        await pilot.press("shift+right")  # no change, no message
        await pilot.press("0")
        await pilot.pause()
        assert slider.value == 0
        assert [message.value for message in app.of_type(FloatSlider.Changed)] == [0.1, 0.2, 0.7, 1.0, 0.0]
        text = slider.render().plain
        assert text.startswith("apprehensi… ") and text.endswith("+0.00")  # the label cut to its column


async def test_a_slider_follows_the_mouse_and_can_be_set_quietly():
    slider = FloatSlider("calm", minimum=-2.0, maximum=2.0, step=0.05, coarse_step=0.5)
    app = Host(slider)
    async with app.run_test(size=(60, 3)) as pilot:
        start, width = slider._track_geometry()
        await pilot.click(slider, offset=(start + width - 1, 0))  # the right end of the track
        assert slider.value == 2.0 and app.focused is slider
        await pilot.click(slider, offset=(start, 0))
        assert slider.value == -2.0
        count = len(app.of_type(FloatSlider.Changed))
        slider.set_value(0.3, announce=False)
        await pilot.pause()
        assert slider.value == 0.3 and len(app.of_type(FloatSlider.Changed)) == count


async def test_signed_bars_grow_left_for_negative_and_right_for_positive():
    bars = SignedBars(label_width=8)
    app = Host(bars)
    async with app.run_test(size=(40, 6)) as pilot:
        assert "no readout yet" in lines(bars)[0]
        bars.show([("happy", 2.0), ("resentful", -4.0)], title="token 'x'")
        await pilot.pause()
        title, happy, resentful = lines(bars)[:3]
        assert title.startswith("token 'x'")
        axis = happy.index("│")
        assert happy.startswith("happy") and "█" in happy[axis:] and "█" not in happy[:axis] and "+2.0" in happy
        assert resentful.startswith("resentf… ") and "█" in resentful[:axis] and "-4.0" in resentful
        assert resentful[:axis].count("█") == 2 * happy[axis:].count("█")  # twice the value, twice the bar


async def test_a_heat_strip_shows_one_row_per_emotion_and_the_latest_tokens():
    strip = HeatStrip(history=5, label_width=6)
    app = Host(strip)
    async with app.run_test(size=(30, 4)) as pilot:
        strip.set_rows(["calm", "afraid"], [0, 2])
        strip.push([np.array([z, 0.0, -z]) for z in (0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0)])
        await pilot.pause()
        assert len(strip.history) == 5  # only the last five are kept
        calm, afraid = lines(strip)[:2]
        assert calm.startswith("calm   ") and afraid.startswith("afraid ")
        assert calm[7:].rstrip() == "▇" * 5
        assert list(z_levels(np.array([-8.0, -1.0, 0.0, 1.0, 8.0]))) == [-8, -2, 0, 2, 8]
        strip.clear()
        await pilot.pause()
        assert lines(strip)[0].strip() == "calm"


async def test_the_plane_marks_the_weighted_position_of_the_emotions_that_read_positive():
    coords = {"happy": (1.0, 1.0), "sad": (-1.0, -1.0), "calm": (1.0, -1.0)}
    plane = ValenceArousalPlane(coords, ["happy", "sad", "calm"])
    app = Host(plane)
    async with app.run_test(size=(41, 8)) as pilot:
        plane.place(np.array([3.0, -2.0, 0.0]))  # only happy reads positive: top right
        await pilot.pause()
        rows = [line.rstrip() for line in lines(plane)]
        row = next(i for i, line in enumerate(rows) if "◉" in line)
        assert row == 0 and rows[row].index("◉") == 40 and rows[-1].endswith("happy")
        plane.place(np.array([-1.0, -1.0, -1.0]))  # nothing positive: the centre, no label
        await pilot.pause()
        rows = [line.rstrip() for line in lines(plane)]
        marked = [line for line in rows if "◉" in line]
        assert len(marked) == 1 and marked[0].index("◉") == 20 and not rows[-1].endswith("happy")


async def test_the_status_line_draws_live_values_at_most_once_a_period_and_then_the_latest():
    from emolab.tui.throttle import latest
    from emolab.tui.widgets.status_bar import LIVE_SECONDS, StatusBar

    bar = StatusBar()
    app = Host(bar)
    async with app.run_test(size=(60, 1)) as pilot:
        bar.show_live(speed="AAA")  # the first change in a period is drawn at once
        await pilot.pause()
        assert "AAA" in app.export_screenshot()
        bar.show_live(speed="BBB", context="CCC")  # the next waits for the period's end
        await pilot.pause()
        shown = app.export_screenshot()
        assert "AAA" in shown and "BBB" not in shown
        await pilot.pause(latest(LIVE_SECONDS) + 0.2)
        shown = app.export_screenshot()
        assert "BBB" in shown and "CCC" in shown
