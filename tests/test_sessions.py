"""Sessions: record, load, recover after a kill, reject bad files with one line, stay small."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emolab.cli import main
from emolab.core.engine import Engine
from emolab.core.events import Token
from emolab.core.sampling import Sampling
from emolab.core.session import SessionError, SessionRecorder, load_session, session_meta
from emolab.core.session.store import journal_path


def record_chat(path, model, pack, *, turns=("hello", "and again"), steer_after=3):
    engine = Engine(model, pack, sampling=Sampling(temperature=0, max_tokens=8))
    recorder = SessionRecorder(path, session_meta(engine, pack.path))
    events = []
    for text in turns:
        recorder.record_note("message", text=text)
        replies = 0
        for event in engine.chat(text):
            recorder.record_event(event)
            events.append(event)
            if isinstance(event, Token) and event.source == "reply":
                replies += 1
                if replies == steer_after and not engine.steering.snapshot().strengths:
                    engine.steering.set("calm", 0.5)
                    snap = engine.steering.snapshot()
                    recorder.record_steering("calm", 0.5, snap.version, snap.as_dict())
    recorder.record_note("alert", emotion="afraid", z=3.2, threshold=3.0, token_index=5, token_text="x")
    recorder.close()
    return events


def test_round_trip(tmp_path, tiny_model, tiny_pack):
    path = tmp_path / "s.json"
    events = record_chat(path, tiny_model, tiny_pack)
    data, recovered = load_session(path)
    assert recovered == 0 and not journal_path(path).exists()
    tokens = [e for e in events if isinstance(e, Token)]
    assert data.columns["token_id"] == [e.token_id for e in tokens]
    assert data.columns["text"] == [e.text for e in tokens]
    np.testing.assert_allclose(
        data.probe_matrix().astype(np.float32), np.stack([e.probe for e in tokens]), rtol=1e-3, atol=1e-3
    )
    assert [t["role"] for t in data.turns] == ["user", "assistant", "user", "assistant"]
    assert data.meta["pack"]["sha256"] == tiny_pack.sha256 and data.meta["sampling"]["temperature"] == 0
    (change,) = data.steering_with_first_tokens()
    first = next(e for e in tokens if e.source == "reply" and e.steering)
    assert change["emotion"] == "calm" and change["first_token"] == first.index
    assert data.states[str(change["version"])] == {"calm": 0.5}
    assert data.notes[-1]["kind"] == "alert"


def test_a_thousand_tokens_of_171_emotions_stay_under_a_megabyte(tmp_path):
    from emolab.core.pack import default_emotions
    from emolab.core.session.format import SessionData
    from emolab.core.session.store import apply_entry, write_atomically

    emotions = default_emotions()
    meta = {
        "emolab_version": "x",
        "created": "now",
        "model": {"id": "m", "weights": "w"},
        "pack": {"name": "p", "path": "p", "sha256": "s"},
        "device": "cpu",
        "dtype": "float32",
        "sampling": {"temperature": 0.7, "top_p": 0.9, "max_tokens": 200, "seed": 0},
        "emotions": emotions,
    }
    data = SessionData(meta=meta)
    rng = np.random.default_rng(0)
    import base64

    for i in range(1000):
        row = rng.normal(size=len(emotions)).astype("<f2")
        apply_entry(
            data,
            {
                "k": "tok",
                "i": i,
                "pos": i,
                "id": 1000 + i,
                "x": " word",
                "s": "reply",
                "t": i * 50,
                "v": 0,
                "p": base64.b64encode(row.tobytes()).decode(),
            },
        )
    write_atomically(tmp_path / "big.json", data, 0)
    size = (tmp_path / "big.json").stat().st_size
    assert size < 1_000_000, size
    loaded, _ = load_session(tmp_path / "big.json")
    assert loaded.token_count == 1000


KILLED_RECORDER = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {root!r})
    from tests.tiny import tiny_loaded_model, write_tiny_pack
    from emolab.core.engine import Engine
    from emolab.core.pack import load_pack
    from emolab.core.sampling import Sampling
    from emolab.core.session import SessionRecorder, session_meta
    model = tiny_loaded_model()
    pack = load_pack({pack!r})
    engine = Engine(model, pack, sampling=Sampling(temperature=1.0, max_tokens=5000, seed=1))
    engine._eos_ids = set()
    recorder = SessionRecorder({path!r}, session_meta(engine, {pack!r}))
    recorder.record_note("message", text="go on")
    for event in engine.chat("go on"):
        recorder.record_event(event)
        time.sleep(0.005)
""")


def test_a_recording_killed_mid_reply_is_recovered_up_to_the_last_token(tmp_path, tiny_pack):
    path = tmp_path / "killed.json"
    root = str(__import__("pathlib").Path(__file__).resolve().parents[1])
    script = KILLED_RECORDER.format(root=root, pack=str(tiny_pack.path), path=str(path))
    process = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    journal = journal_path(path)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if journal.exists() and journal.read_text().count('"k":"tok"') >= 60:
            break
        assert process.poll() is None, process.stderr.read().decode()
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    lines = journal.read_text().splitlines()
    complete_tokens = sum('"k":"tok"' in line and line.endswith("}") for line in lines)

    result = CliRunner().invoke(main, ["replay", "--headless", str(path)])
    assert result.exit_code == 0, result.output
    assert "recovered" in result.output
    data, again = load_session(path)
    assert again == 0 and not journal.exists()
    assert data.token_count >= complete_tokens >= 60
    assert data.turns[0] == {
        "id": 0,
        "parent": None,
        "role": "user",
        "text": "go on",
        "t": data.turns[0]["t"],
        "seq": 1,
    }


@pytest.fixture
def session_file(tmp_path, tiny_model, tiny_pack):
    path = tmp_path / "good.json"
    record_chat(path, tiny_model, tiny_pack, turns=("hello",))
    return path


def rewrite(path, change):
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))


def expect_error(path, *fragments):
    with pytest.raises(SessionError) as caught:
        load_session(path)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message
    for fragment in fragments:
        assert fragment in message, message


def test_truncated_file(session_file):
    text = session_file.read_text()
    session_file.write_text(text[: len(text) // 2])
    expect_error(session_file, "truncated")


def test_invalid_json(session_file):
    session_file.write_text("{not json")
    expect_error(session_file, "invalid JSON")


def test_wrong_format_version(session_file):
    rewrite(session_file, lambda d: d.update(format_version=7))
    expect_error(session_file, "format version 7", "upgrade emolab")


def test_missing_field(session_file):
    rewrite(session_file, lambda d: d["meta"].pop("sampling"))
    expect_error(session_file, "'sampling' is a required property")


def test_token_array_of_the_wrong_length(session_file):
    rewrite(session_file, lambda d: d["tokens"]["text"].pop())
    expect_error(session_file, "$.tokens.text has", "but count is")


def test_probe_blob_of_the_wrong_size(session_file):
    rewrite(session_file, lambda d: d["tokens"].update(probe_f16=d["tokens"]["probe_f16"][:-8]))
    expect_error(session_file, "probe_f16")


def test_missing_file(tmp_path):
    expect_error(tmp_path / "nope.json", "no such session file")


def test_replay_of_a_bad_file_is_one_line_and_exit_2(session_file):
    session_file.write_text("[]")
    result = CliRunner().invoke(main, ["replay", "--headless", str(session_file)])
    assert result.exit_code == 2 and result.output.count("\n") == 1


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzzed_session_files_fail_only_with_the_clean_error(session_file, data):
    original = session_file.read_bytes()
    mutated = bytearray(original)
    for _ in range(data.draw(st.integers(1, 4))):
        action = data.draw(st.sampled_from(["delete", "insert", "replace", "truncate"]))
        at = data.draw(st.integers(0, max(0, len(mutated) - 1)))
        if action == "delete":
            del mutated[at : at + data.draw(st.integers(1, 40))]
        elif action == "insert":
            mutated[at:at] = data.draw(st.binary(min_size=1, max_size=8))
        elif action == "replace" and mutated:
            mutated[at] = data.draw(st.integers(0, 255))
        else:
            del mutated[at:]
    session_file.write_bytes(bytes(mutated))
    try:
        load_session(session_file, recover=False)
    except SessionError:
        pass
    finally:
        session_file.write_bytes(original)


def test_run_records_a_session_and_replay_prints_it(tmp_path, tiny_model_dir, tiny_pack):
    path = tmp_path / "run.json"
    result = CliRunner().invoke(
        main,
        [
            "run",
            "--vectors",
            str(tiny_pack.path),
            "--model",
            str(tiny_model_dir),
            "-p",
            "hello",
            "--steer",
            "sad=0.5",
            "--max-tokens",
            "5",
            "--session",
            str(path),
        ],
    )
    assert result.exit_code == 0, result.output
    data, _ = load_session(path)
    assert [t["role"] for t in data.turns] == ["user", "assistant"]
    assert data.steering[0]["emotion"] == "sad"
    result = CliRunner().invoke(main, ["replay", "--headless", str(path)])
    assert result.exit_code == 0, result.output
    assert "user  hello" in result.output and "replies, mean z" in result.output


def test_verify_reproduces_a_steered_sampled_session_exactly(tmp_path, tiny_model, tiny_model_dir, tiny_pack):
    from emolab.core.session.verify import verify

    path = tmp_path / "v.json"
    engine = Engine(tiny_model, tiny_pack, sampling=Sampling(temperature=1.0, top_p=0.9, max_tokens=10, seed=4))
    engine._eos_ids = set()
    recorder = SessionRecorder(path, session_meta(engine, tiny_pack.path))
    for turn, text in enumerate(["first", "second"]):
        recorder.record_note("message", text=text)
        replies = 0
        for event in engine.chat(text):
            recorder.record_event(event)
            if isinstance(event, Token) and event.source == "reply":
                replies += 1
                if replies in (2, 6):
                    engine.steering.set("afraid", 0.4 * replies / 2)
                    snap = engine.steering.snapshot()
                    recorder.record_steering("afraid", 0.4 * replies / 2, snap.version, snap.as_dict())
                if turn == 1 and replies == 7:
                    engine.stop()
                    recorder.record_note("stop")
    recorder.record_note("regenerate")
    for event in engine.regenerate():
        recorder.record_event(event)
    recorder.close()

    data, _ = load_session(path)
    fresh = Engine(tiny_model, tiny_pack)
    fresh._eos_ids = set()
    result = verify(data, fresh)
    assert result.identical, result
    assert result.max_readout_difference == 0.0


def test_verify_names_the_first_divergent_token_when_the_pack_changes(tmp_path, tiny_model, tiny_pack):
    from emolab.core.session.verify import hash_warnings, verify
    from tests.tiny import write_tiny_pack

    path = tmp_path / "v.json"
    engine = Engine(tiny_model, tiny_pack, sampling=Sampling(temperature=0, max_tokens=10))
    engine._eos_ids = set()
    engine.steering.set("sad", 2.0)
    recorder = SessionRecorder(path, session_meta(engine, tiny_pack.path))
    recorder.record_note("message", text="hello")
    for event in engine.chat("hello"):
        recorder.record_event(event)
    recorder.close()
    data, _ = load_session(path)

    other = write_tiny_pack(tmp_path / "other", tiny_model, layers=(0, 3))  # other directions, other layers
    changed = Engine(tiny_model, other)
    changed._eos_ids = set()
    assert any("differs from the recording" in w for w in hash_warnings(data, changed))
    result = verify(data, changed)
    assert not result.identical and "first divergent token at index" in result.divergence


def test_replay_verify_cli(tmp_path, tiny_model_dir, tiny_pack):
    path = tmp_path / "cli.json"
    result = CliRunner().invoke(
        main,
        [
            "run",
            "--vectors",
            str(tiny_pack.path),
            "--model",
            str(tiny_model_dir),
            "-p",
            "hello",
            "--steer",
            "sad=0.5",
            "--max-tokens",
            "6",
            "--temperature",
            "0.8",
            "--session",
            str(path),
        ],
    )
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(main, ["replay", "--verify", str(path), "--model", str(tiny_model_dir)])
    assert result.exit_code == 0, result.output
    assert "reproduces the recording exactly" in result.output
    missing = CliRunner().invoke(main, ["replay", "--verify", str(path), "--vectors", str(tmp_path / "gone")])
    assert missing.exit_code == 2 and "no such pack directory" in missing.output


def test_export_writes_a_valid_png_svg_csv_and_markdown(tmp_path, session_file):
    import csv as csv_module

    out = tmp_path / "out"
    result = CliRunner().invoke(
        main,
        [
            "export",
            str(session_file),
            "--png",
            str(out / "t.png"),
            "--svg",
            str(out / "t.svg"),
            "--csv",
            str(out / "t.csv"),
            "--markdown",
            str(out / "t.md"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert (out / "t.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in (out / "t.svg").read_bytes()[:500]
    with (out / "t.csv").open() as handle:
        rows = list(csv_module.reader(handle))
    data, _ = load_session(session_file)
    emotions = len(data.emotions)
    assert rows[0][:6] == ["index", "position", "token_id", "text", "source", "t_ms"]
    assert rows[0][6 : 6 + emotions] == data.emotions  # the recorded raw readouts, then the smoothed ones
    assert rows[0][6 + emotions :] == [f"smoothed:{name}" for name in data.emotions]
    assert len(rows) == data.token_count + 1
    markdown = (out / "t.md").read_text()
    assert "**user:** hello" in markdown and "smoothed over 4 tokens" in markdown


def test_export_smooths_as_the_console_did_and_raw_on_request(tmp_path, session_file):
    import csv as csv_module

    from emolab.core.smoothing import smooth, turn_starts

    data, _ = load_session(session_file)
    raw = data.probe_matrix().astype(np.float32)
    expected = smooth(raw, 4, turn_starts(data.columns["source"]))  # the tiny pack has no alerts.json: the default
    result = CliRunner().invoke(main, ["export", str(session_file), "--csv", str(tmp_path / "s.csv")])
    assert result.exit_code == 0, result.output
    with (tmp_path / "s.csv").open() as handle:
        rows = list(csv_module.reader(handle))[1:]
    emotions = len(data.emotions)
    smoothed = np.array([[float(v) for v in row[6 + emotions :]] for row in rows])
    np.testing.assert_allclose(smoothed, expected, atol=1e-3)
    plain = CliRunner().invoke(main, ["export", str(session_file), "--raw", "--csv", str(tmp_path / "r.csv")])
    assert plain.exit_code == 0
    with (tmp_path / "r.csv").open() as handle:
        assert len(next(csv_module.reader(handle))) == 6 + emotions


def test_export_errors(tmp_path, session_file):
    result = CliRunner().invoke(main, ["export", str(session_file)])
    assert result.exit_code == 2 and "say what to export" in result.output
    result = CliRunner().invoke(
        main, ["export", str(session_file), "--csv", str(tmp_path / "x.csv"), "--emotion", "bliss"]
    )
    assert result.exit_code == 2 and "no emotion 'bliss'" in result.output


def test_each_assistant_turn_lists_only_its_own_reply_tokens(tmp_path, tiny_model, tiny_pack):
    from emolab.core.session.export import write_markdown

    path = tmp_path / "two.json"
    record_chat(path, tiny_model, tiny_pack)
    data, _ = load_session(path)
    replies = [e for e in zip(data.columns["index"], data.columns["source"], strict=True) if e[1] == "reply"]
    per_turn = [data.reply_rows(turn) for turn in data.turns if turn["role"] == "assistant"]
    assert sum(len(rows) for rows in per_turn) == len(replies)
    assert set(per_turn[0]).isdisjoint(per_turn[1])
    text = write_markdown(data, tmp_path / "two.md").read_text()
    first, second = text.split("**assistant**")[1:]
    assert first.count("\n| `") == len(per_turn[0]) and second.count("\n| `") == len(per_turn[1])


def test_a_recorder_writes_nothing_until_the_first_message(tmp_path, tiny_model, tiny_pack):
    engine = Engine(tiny_model, tiny_pack, sampling=Sampling(temperature=0, max_tokens=4))
    path = tmp_path / "later" / "s.json"
    recorder = SessionRecorder(path, session_meta(engine, tiny_pack.path))
    recorder.record_steering("calm", 0.5, 1, {"calm": 0.5})
    assert recorder.save() is None and not path.parent.exists()
    assert recorder.close() is None and not path.parent.exists()

    recorder = SessionRecorder(path, session_meta(engine, tiny_pack.path))
    recorder.record_steering("calm", 0.5, 1, {"calm": 0.5})
    recorder.record_note("message", text="hello")
    assert path.exists() and journal_path(path).exists()
    assert recorder.close() == path
    data, _ = load_session(path)
    assert data.steering[0]["emotion"] == "calm" and data.turns[0]["text"] == "hello"


def empty_session(path, emotions, notes=()):
    from emolab.core.session.format import SessionData
    from emolab.core.session.store import write_atomically

    meta = {
        "emolab_version": "x",
        "created": "now",
        "model": {"id": "m", "weights": "w"},
        "pack": {"name": "p", "path": "p", "sha256": "s"},
        "device": "cpu",
        "dtype": "float32",
        "sampling": {"temperature": 0.7, "top_p": 0.9, "max_tokens": 200, "seed": 0},
        "emotions": emotions,
    }
    write_atomically(path, SessionData(meta=meta, notes=list(notes)), 0)
    return path


def test_exporting_a_session_without_tokens_is_a_one_line_error(tmp_path, tiny_pack):
    path = empty_session(tmp_path / "empty.json", tiny_pack.emotions)
    for option in ("--png", "--csv", "--markdown"):
        result = CliRunner().invoke(main, ["export", str(path), option, str(tmp_path / "out")])
        assert result.exit_code == 2, result.output
        assert result.output.count("\n") == 1 and "no tokens" in result.output
        assert not (tmp_path / "out").exists()


def test_a_default_export_plots_the_pinned_emotions_or_else_the_most_active(tmp_path, session_file):
    from emolab.core.session.export import choose_emotions

    data, _ = load_session(session_file)
    probes = data.probe_matrix().astype(np.float32)[1:]
    activity = np.sqrt(np.mean(probes**2, axis=0))
    most_active = [data.emotions[i] for i in np.argsort(-activity, kind="stable")[:6]]
    assert choose_emotions(data, None) == most_active
    assert most_active != sorted(data.emotions)[:6]
    data.notes.append({"kind": "pinned", "t": 0.0, "emotions": ["sad", "calm"]})
    data.notes.append({"kind": "pinned", "t": 1.0, "emotions": ["calm", "afraid", "happy"]})
    assert choose_emotions(data, None) == ["calm", "afraid", "happy"]  # the last pins shown
    assert choose_emotions(data, ["sad"]) == ["sad"]


def test_a_verify_that_fails_midway_leaves_the_engine_unscheduled(session_file, tiny_model, tiny_pack):
    from emolab.core.session.verify import verify

    data, _ = load_session(session_file)
    engine = Engine(tiny_model, tiny_pack)

    def interrupted(text, sampling=None):
        raise KeyboardInterrupt  # what Ctrl+C does to a long verify

    engine.chat = interrupted
    with pytest.raises(KeyboardInterrupt):
        verify(data, engine)
    assert engine.schedule is None
