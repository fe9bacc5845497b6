"""The console with its engine in a child process (what `emolab chat` runs): the wire, a killed
engine, a killed console, quitting, and sessions that verify token for token."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from types import MappingProxyType

import numpy as np
import psutil
import pytest

from emolab.cli.chat import console_app
from emolab.core.events import (
    BranchStarted,
    CompareFinished,
    CompareStarted,
    LaneEvent,
    Token,
    TurnFinished,
    TurnStarted,
)
from emolab.core.session import load_session
from emolab.process.commands import EngineSpec
from emolab.process.wire import WireError, decode, decode_events, encode, encode_events
from tests.tui.helpers import wait_until
from tests.tui.test_steering_live import reply_tokens

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def spec_for(pack, model_dir, max_tokens=240) -> EngineSpec:
    return EngineSpec(
        pack=str(pack.path),
        model=str(model_dir),
        dtype="float32",
        sampling={"temperature": 0.0, "top_p": 0.9, "max_tokens": max_tokens, "seed": 0},
    )


def no_keymap(folder) -> str:
    path = folder / "keys.json"
    path.write_text("{}")
    return str(path)


def gone(pid: int, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            return True
        time.sleep(0.05)
    return False


def test_events_cross_the_wire_unchanged_with_readouts_as_raw_float32():
    probe = np.arange(6, dtype=np.float32) / 7
    events = [
        TurnStarted(3, 0, 256, 0.5),
        Token(0, 0, 11, "<|im_start|>", "prompt", probe, MappingProxyType({}), 0, 0.6, probe * 2),
        Token(1, 1, 12, " héllo\n", "reply", -probe, MappingProxyType({"calm": 0.25}), 3, 0.7, -probe),
        TurnFinished("eos", " héllo\n", 1, 0.2, 0.8, tokens_per_second=5.0),
    ]
    message = encode_events(events)
    assert probe.tobytes() in message  # the readouts travel as bytes, not as text
    back = decode_events(*decode(message))
    assert [type(event) for event in back] == [type(event) for event in events]
    for sent, received in zip(events, back, strict=True):
        if isinstance(sent, Token):
            assert np.array_equal(received.probe, sent.probe) and np.array_equal(received.smoothed, sent.smoothed)
            assert (received.index, received.text, received.steering_version, dict(received.steering)) == (
                sent.index,
                sent.text,
                sent.steering_version,
                dict(sent.steering),
            )
        else:
            assert received == sent


def test_compare_and_branch_events_cross_the_wire_with_each_lane_s_readouts_as_raw_float32():
    probe = np.arange(6, dtype=np.float32) / 7
    steering = (MappingProxyType({"happy": 2.0}), MappingProxyType({}))
    events = [
        CompareStarted(5, 4, steering, "batched", 0.5),
        LaneEvent(0, Token(7, 4, 11, "a", "reply", probe, steering[0], 2, 0.6, probe * 2)),
        LaneEvent(1, Token(8, 4, 12, "b", "reply", -probe, steering[1], 0, 0.6, -probe)),
        LaneEvent(1, TurnFinished("eos", "b", 1, 0.0, 0.7)),
        LaneEvent(0, TurnFinished("max_tokens", "a", 1, 0.0, 0.7)),
        CompareFinished(0, (1, 1), 0.3, 0.8, tokens_per_second=6.5),
        BranchStarted(1, 9, 3, 9, 0.9),
    ]
    message = encode_events(events)
    assert probe.tobytes() in message and (-probe).tobytes() in message
    back = decode_events(*decode(message))
    assert [type(event) for event in back] == [type(event) for event in events]
    for sent, received in zip(events, back, strict=True):
        if isinstance(sent, LaneEvent) and isinstance(sent.event, Token):
            assert received.lane == sent.lane and isinstance(received.event, Token)
            assert np.array_equal(received.event.probe, sent.event.probe)
            assert np.array_equal(received.event.smoothed, sent.event.smoothed)
            assert (received.event.index, received.event.text, dict(received.event.steering)) == (
                sent.event.index,
                sent.event.text,
                dict(sent.event.steering),
            )
        else:
            assert received == sent
    assert isinstance(back[5].reply_tokens, tuple) and isinstance(back[0].steering, tuple)


@pytest.mark.parametrize(
    "message",
    [
        b"not json\n",
        encode({"kind": "x"})[:-1] + b"!",  # no header; bytes after a header that lists no arrays
        b'{"kind":"events","arrays":[["probe","|O",[1]]]}\n12345678',  # an object array: never unpickled
        b'{"kind":"events","arrays":[["probe","<f4",[4]]]}\n1234',  # cut short
    ],
)
def test_a_message_off_the_format_is_refused(message):
    with pytest.raises(WireError):
        decode(message)


def test_the_console_process_imports_neither_torch_nor_transformers(tmp_path, tiny_pack, tiny_model_dir):
    """The console's code path with the child link, one reply, then a look at sys.modules."""
    script = textwrap.dedent(f"""
        import asyncio, json, sys, time
        from emolab.cli.chat import console_app
        from emolab.process.commands import EngineSpec

        async def main():
            spec = EngineSpec(pack={str(tiny_pack.path)!r}, model={str(tiny_model_dir)!r}, dtype="float32",
                              sampling={{"temperature": 0.0, "top_p": 0.9, "max_tokens": 8, "seed": 0}})
            app = console_app(spec, record=False, keymap_path=None)
            async with app.run_test(size=(120, 40)) as pilot:
                deadline = time.monotonic() + 120
                while not app.chat.link.ready and time.monotonic() < deadline:
                    await pilot.pause(0.05)
                app.query_one("#prompt").value = "hello"
                await pilot.press("enter")
                while app.chat.link.generating and time.monotonic() < deadline:
                    await pilot.pause(0.05)
                tokens = len(app.chat.view.turn_log.tokens())
                await pilot.press("ctrl+q")
            loaded = [name for name in ("torch", "transformers") if name in sys.modules]
            print(json.dumps({{"tokens": tokens, "loaded": loaded}}))

        asyncio.run(main())
    """)
    environment = {**os.environ, "PYTHONPATH": ROOT, "EMOLAB_KEYMAP": no_keymap(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=environment, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["tokens"] > 0 and report["loaded"] == []


@pytest.fixture(scope="module")
def long_replies(tmp_path_factory):
    """A tiny model with an 8192-token context, saved, and its pack: its greedy reply to "hello" runs
    4000 tokens without an EOS (several seconds, about 500 tokens/s here under load), so a SIGKILL
    sent once the first few tokens are shown lands mid-reply."""
    from tests.tiny import tiny_loaded_model, write_tiny_pack

    model = tiny_loaded_model(context=8192, hidden=128)
    folder = tmp_path_factory.mktemp("long-context-model")
    model.model.save_pretrained(folder, safe_serialization=True)
    model.tokenizer.save_pretrained(folder)
    return model, write_tiny_pack(tmp_path_factory.mktemp("long-context-pack") / "pack", model), folder


async def test_a_killed_engine_is_one_line_keeps_the_transcript_restarts_and_the_session_verifies(
    tmp_path, long_replies
):
    from emolab.core.engine import Engine
    from emolab.core.session.verify import verify

    model, pack, model_dir = long_replies
    session = tmp_path / "killed.json"
    app = console_app(spec_for(pack, model_dir, max_tokens=4000), session_path=session, keymap_path=no_keymap(tmp_path))
    async with app.run_test(size=(120, 40)) as pilot:
        link = app.chat.link
        await wait_until(pilot, lambda: link.ready, timeout=120, what="the engine's process")
        first = link.child.pid
        app.query_one("#slider-happy").focus()
        await pilot.press("right")  # steering before the death: the restart keeps it
        prompt = app.query_one("#prompt")
        prompt.focus()
        prompt.value = "hello"
        await pilot.press("enter")
        await wait_until(pilot, lambda: len(reply_tokens(app)) >= 3, what="reply tokens")
        os.kill(first, signal.SIGKILL)
        await wait_until(pilot, lambda: not link.generating, what="the reply to end or the death to be seen")
        await wait_until(pilot, lambda: not link.ready and not link.generating, what="the death to be seen")
        shown = len(app.chat.view.turn_log.tokens())
        assert shown > 0 and app.chat.view.turn_log.turns[-1].note == "engine_died"
        status = app.chat.view.status.model
        assert "killed by SIGKILL" in status and "F5" in status and "\n" not in status
        assert prompt.disabled
        await pilot.press("f5")
        await wait_until(pilot, lambda: link.ready, timeout=120, what="the restarted engine")
        assert link.child.pid != first and gone(first)
        assert len(app.chat.view.turn_log.tokens()) == shown  # the transcript stays
        await pilot.press("ctrl+o")  # a short second reply, through the sampling form (recorded)
        app.screen.query_one("#max_tokens").value = "8"
        await pilot.click("#apply")
        await wait_until(pilot, lambda: link.sampling.max_tokens == 8, what="the new sampling")
        prompt.focus()
        prompt.value = "again"
        await pilot.press("enter")
        await wait_until(
            pilot, lambda: not link.generating and link.status["has_reply"], timeout=60, what="the second reply"
        )
        second = link.child.pid
        await pilot.press("ctrl+q")
    assert gone(second), "quitting must end the engine's process"
    data, _ = load_session(session)
    assert next(turn.get("finish") for turn in data.turns if turn["role"] == "assistant") == "engine_died"
    restart = ("engine_died", "engine_restarted", "new_chat")
    assert [note["kind"] for note in data.notes if note["kind"] in restart] == list(restart)
    indices = data.columns["index"]
    assert indices == sorted(set(indices)), "a restarted engine's tokens continue the numbering"
    assert any(state for state in data.states.values()), "the steering was recorded"
    result = verify(data, Engine(model, pack))
    assert result.identical, result.divergence


def test_a_killed_console_leaves_no_orphan_and_no_lost_tokens(tmp_path, tiny_pack, tiny_model_dir):
    """The real `emolab chat` in a terminal, killed with SIGKILL mid-reply."""
    import pexpect

    session = tmp_path / "console.json"
    environment = {
        **os.environ,
        "TERM": "xterm-256color",
        "PYTHONPATH": ROOT,
        "COLUMNS": "120",
        "LINES": "40",
        "EMOLAB_KEYMAP": no_keymap(tmp_path),
    }
    console = pexpect.spawn(
        sys.executable,
        [
            "-m",
            "emolab",
            "chat",
            "--vectors",
            str(tiny_pack.path),
            "--model",
            str(tiny_model_dir),
            "--dtype",
            "float32",
            "--temperature",
            "0",
            "--max-tokens",
            "240",
            "--session",
            str(session),
        ],
        env=environment,
        dimensions=(40, 120),
        timeout=120,
        encoding="utf-8",
        codec_errors="replace",
        cwd=str(tmp_path),
    )
    journal = session.with_name(session.name + ".journal")
    try:
        console.expect("Message the model")
        engine = psutil.Process(console.pid).children()[0].pid
        console.send("hello\r")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (journal.exists() and journal.read_text().count('"k":"tok"') > 20):
            console.expect([pexpect.TIMEOUT], timeout=0.05)
        journalled = journal.read_text().count('"k":"tok"')
        os.kill(console.pid, signal.SIGKILL)
        assert gone(engine), "the engine outlived its console"
    finally:
        console.close(force=True)
    data, _ = load_session(session)  # recovers from the journal
    assert data.token_count >= journalled > 20
    assert [turn["role"] for turn in data.turns][:1] == ["user"]


async def test_compare_and_branch_through_the_engine_process_and_the_session_verifies(
    tmp_path, tiny_model, tiny_pack, tiny_model_dir
):
    from emolab.core.engine import Engine
    from emolab.core.session.verify import verify

    session = tmp_path / "tree.json"
    app = console_app(
        spec_for(tiny_pack, tiny_model_dir, max_tokens=10), session_path=session, keymap_path=no_keymap(tmp_path)
    )
    async with app.run_test(size=(160, 48)) as pilot:
        link, view = app.chat.link, app.chat.view
        await wait_until(pilot, lambda: link.ready, timeout=120, what="the engine's process")
        app.query_one("#slider-happy").set_value(2.0)
        prompt = app.query_one("#prompt")
        prompt.focus()
        prompt.value = "how are you"
        await pilot.press("enter")
        await wait_until(pilot, lambda: not link.generating and link.status["has_reply"], timeout=60, what="a reply")
        await pilot.press("f6")
        await wait_until(
            pilot, lambda: view.compare is not None and view.compare.finished and not link.generating, timeout=60
        )
        lanes = [view.compare.reply_tokens(lane) for lane in (0, 1)]
        assert all(lanes) and all(token.probe is not None for lane in lanes for token in lane)
        await pilot.press("f6")
        await pilot.pause()
        view.select(lanes[0][1])
        await pilot.press("f7")
        await wait_until(pilot, lambda: not link.generating and view.turn_log.turns[-1].label, timeout=60)
        branch = view.turn_log.turns[-1]
        assert branch.label == "branch 4/4" and branch.tokens[:2] == lanes[0][:2]
        await pilot.press("f8")  # to side B's reply: the engine in the child goes on from it
        await wait_until(pilot, lambda: view.turn_log.turns[-1].label == "branch 3/4", timeout=10)
        assert view.turn_log.turns[-1].tokens == lanes[1]
        prompt.focus()
        prompt.value = "go on"
        await pilot.press("enter")
        await wait_until(pilot, lambda: not link.generating and len(view.turn_log.turns) == 5, timeout=60)
        await pilot.press("ctrl+q")
    data, _ = load_session(session)
    side_b = next(turn for turn in data.turns if (turn.get("compare") or {}).get("lane") == 1)
    assert [turn for turn in data.turns if turn["role"] == "user"][-1]["parent"] == side_b["id"]
    assert [turn.get("branch", {}).get("kept") for turn in data.turns if turn["role"] == "assistant"][3] == 2
    result = verify(data, Engine(tiny_model, tiny_pack))
    assert result.identical, result.divergence
