"""The headless CLI: streaming output, the JSON-lines interface, and one-line errors."""

import json
import os
import subprocess
import sys

import torch
from click.testing import CliRunner

from emolab.cli import main
from tests.tiny import EMOTIONS


def invoke(*args, stdin=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=stdin)


def assert_one_line_error(result, *fragments):
    assert result.exit_code == 2, result.output
    assert result.output.startswith("emolab: error: ") and result.output.count("\n") == 1, result.output
    for fragment in fragments:
        assert fragment in result.output, result.output


def test_run_and_the_console_s_engine_load_for_decoding_and_say_which_dtype(tiny_model_dir, tiny_pack, monkeypatch):
    from emolab.core import devices, lean_llama
    from emolab.process.commands import EngineSpec, open_engine

    monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda: False)  # an AVX2-only CPU, where
    monkeypatch.setattr(lean_llama, "bf16_decodes_faster", lambda: True)  # bf16 decodes faster
    result = invoke(
        "run", "--vectors", tiny_pack.path, "--model", tiny_model_dir, "-p", "hi", "--max-tokens", "2", "--json"
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.splitlines()[0])["dtype"] == "bfloat16"
    engine = open_engine(EngineSpec(pack=str(tiny_pack.path), model=str(tiny_model_dir)), progress=None)
    assert engine.loaded.dtype == torch.bfloat16


def test_run_json_is_one_object_per_line(tiny_model_dir, tiny_pack):
    result = invoke(
        "run",
        "--vectors",
        tiny_pack.path,
        "--model",
        tiny_model_dir,
        "-p",
        "hello",
        "--steer",
        "happy=0.5",
        "--steer",
        "at ease=-0.25",
        "--max-tokens",
        "6",
        "--json",
    )
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.output.splitlines()]
    types = [r["type"] for r in records]
    assert types[0] == "start" and types[-1] == "end" and "turn_start" in types
    start = records[0]
    assert start["emotions"] == EMOTIONS and start["steering"] == {"happy": 0.5, "at ease": -0.25}
    tokens = [r for r in records if r["type"] == "token"]
    assert {t["source"] for t in tokens} == {"prompt", "reply"}
    for token in tokens:
        assert set(token) >= {"index", "token_id", "text", "t", "probe", "steering"}
        assert list(token["probe"]) == EMOTIONS
        assert token["steering"] == {"happy": 0.5, "at ease": -0.25}
    assert [t["index"] for t in tokens] == list(range(len(tokens)))
    assert records[-1]["reply_tokens"] == sum(t["source"] == "reply" for t in tokens)


def test_run_streams_readable_lines(tiny_model_dir, tiny_pack):
    result = invoke(
        "run",
        "--vectors",
        tiny_pack.path,
        "--model",
        tiny_model_dir,
        "-p",
        "hello",
        "--max-tokens",
        "4",
        "--temperature",
        "0",
        "--top",
        "2",
    )
    assert result.exit_code == 0, result.output
    assert "reply" in result.output
    assert any(name in result.output for name in EMOTIONS)


def test_run_without_a_pack_still_generates(tiny_model_dir):
    result = invoke("run", "--model", tiny_model_dir, "-p", "hello", "--max-tokens", "3", "--json")
    assert result.exit_code == 0, result.output
    token = next(json.loads(line) for line in result.output.splitlines() if '"type":"token"' in line)
    assert token["probe"] == {}


def test_unknown_emotion_suggests_the_closest_names(tiny_model_dir, tiny_pack):
    result = invoke(
        "run", "--vectors", tiny_pack.path, "--model", tiny_model_dir, "-p", "hi", "--steer", "desparate=0.1"
    )
    assert_one_line_error(result, "unknown emotion 'desparate'", "did you mean desperate")


def test_out_of_range_strength_gives_the_range(tiny_model_dir, tiny_pack):
    result = invoke("run", "--vectors", tiny_pack.path, "--model", tiny_model_dir, "-p", "hi", "--steer", "calm=9")
    assert_one_line_error(result, "out of range", "-2 to 2")


def test_malformed_steer_option(tiny_model_dir, tiny_pack):
    result = invoke("run", "--vectors", tiny_pack.path, "--model", tiny_model_dir, "-p", "hi", "--steer", "calm")
    assert_one_line_error(result, "EMOTION=STRENGTH")


def test_missing_pack(tmp_path, tiny_model_dir):
    result = invoke("run", "--vectors", tmp_path / "nowhere", "--model", tiny_model_dir, "-p", "hi")
    assert_one_line_error(result, "no such pack directory")


def test_pack_for_another_hidden_size(tmp_path, tiny_model_dir):
    from tests.tiny import tiny_loaded_model, write_tiny_pack

    wide = write_tiny_pack(tmp_path / "wide", tiny_loaded_model(hidden=64))
    result = invoke("run", "--vectors", wide.path, "--model", tiny_model_dir, "-p", "hi")
    assert_one_line_error(result, "hidden size 64", "hidden size 32")


def test_missing_model_directory(tmp_path, tiny_pack):
    result = invoke("run", "--vectors", tiny_pack.path, "--model", tmp_path / "no-model", "-p", "hi")
    assert_one_line_error(result, "no such directory")


def test_model_directory_without_safetensors(tmp_path, tiny_pack):
    (tmp_path / "pickles").mkdir()
    (tmp_path / "pickles" / "pytorch_model.bin").write_bytes(b"not loaded")
    result = invoke("run", "--vectors", tiny_pack.path, "--model", tmp_path / "pickles", "-p", "hi")
    assert_one_line_error(result, "no *.safetensors weights", "never loads pickled")


def test_unknown_hub_model_offline(tmp_path):
    # huggingface_hub reads HF_HUB_OFFLINE at import, so this runs in a fresh process
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    result = subprocess.run(
        [sys.executable, "-m", "emolab", "run", "--model", "nobody/no-such-model", "-p", "hi"],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1
    for fragment in ("nobody/no-such-model", "HF_HUB_OFFLINE", "bundled"):
        assert fragment in result.stderr


def test_empty_prompt(tiny_model_dir):
    assert_one_line_error(invoke("run", "--model", tiny_model_dir, "-p", "  "), "empty")


def test_steer_without_a_pack(tiny_model_dir):
    assert_one_line_error(
        invoke("run", "--model", tiny_model_dir, "-p", "hi", "--steer", "calm=0.1"), "needs a vector pack"
    )


def test_bad_device_and_dtype(tiny_model_dir):
    assert_one_line_error(invoke("run", "--model", tiny_model_dir, "-p", "hi", "--dtype", "int3"), "unknown dtype")
    assert_one_line_error(
        invoke("run", "--model", tiny_model_dir, "-p", "hi", "--device", "cuda"), "CUDA is not available"
    )


def test_probe_reads_stdin_as_json(tiny_model_dir, tiny_pack):
    result = invoke(
        "probe",
        "--vectors",
        tiny_pack.path,
        "--model",
        tiny_model_dir,
        "-",
        "--json",
        stdin="The train was late again.",
    )
    assert result.exit_code == 0, result.output
    tokens = [json.loads(line) for line in result.output.splitlines()]
    assert tokens and all(t["type"] == "token" and list(t["probe"]) == EMOTIONS for t in tokens)
    assert all(list(t["smoothed"]) == EMOTIONS for t in tokens)  # the console's readout, same keys
    first, second = tokens[0], tokens[1]
    assert all(abs(first["smoothed"][e] - first["probe"][e] * (1 - 2**-0.25)) < 2e-4 for e in EMOTIONS)
    assert second["smoothed"] != second["probe"]
    assert "".join(t["text"] for t in tokens) == "The train was late again."


def test_probe_prints_a_table(tiny_model_dir, tiny_pack, tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("She was afraid of the dark.")
    result = invoke("probe", "--vectors", tiny_pack.path, "--model", tiny_model_dir, text)
    assert result.exit_code == 0, result.output
    assert "whole text, mean smoothed (half-life 4 tokens) z over" in result.output


def test_probe_missing_file_and_missing_pack(tiny_model_dir, tiny_pack, tmp_path):
    assert_one_line_error(
        invoke("probe", "--vectors", tiny_pack.path, "--model", tiny_model_dir, tmp_path / "x.txt"), "no such file"
    )
    assert_one_line_error(invoke("probe", "--model", tiny_model_dir, "-", stdin="hi"), "needs a vector pack")


def test_probe_text_longer_than_the_context(tiny_model_dir, tiny_pack):
    result = invoke("probe", "--vectors", tiny_pack.path, "--model", tiny_model_dir, "-", stdin="word " * 400)
    assert_one_line_error(result, "context window is 256")


def test_the_installed_command_exits_2_without_a_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "emolab", "pack", "info", str(tmp_path / "missing")],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().endswith("no such pack directory")


def test_chat_refuses_a_bad_pack_before_the_app_opens(tmp_path):
    assert_one_line_error(invoke("chat", "--vectors", tmp_path / "missing"), "no such pack directory")


def test_chat_refuses_a_bad_model_before_the_app_opens(tmp_path, tiny_pack):
    assert_one_line_error(
        invoke("chat", "--vectors", tiny_pack.path, "--model", tmp_path / "nope"), "no such directory"
    )


def test_chat_refuses_a_pack_for_another_hidden_size_before_the_app_opens(tmp_path, tiny_model_dir):
    from tests.tiny import tiny_loaded_model, write_tiny_pack

    wide = write_tiny_pack(tmp_path / "wide", tiny_loaded_model(hidden=64))
    assert_one_line_error(invoke("chat", "--vectors", wide.path, "--model", tiny_model_dir), "hidden size 64")


def test_chat_refuses_an_unknown_pinned_emotion(tiny_pack, tiny_model_dir):
    assert_one_line_error(
        invoke("chat", "--vectors", tiny_pack.path, "--model", tiny_model_dir, "--pin", "blis"),
        "unknown emotion 'blis'",
    )


def test_steering_names_are_checked_before_the_model_loads(tmp_path, tiny_pack):
    result = invoke(
        "run", "--vectors", tiny_pack.path, "--model", tmp_path / "no-model", "-p", "hi", "--steer", "blis=0.1"
    )
    assert_one_line_error(result, "unknown emotion 'blis'")
