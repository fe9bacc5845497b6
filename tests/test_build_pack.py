"""`emolab build-pack` and `emolab validate` end to end on a tiny random model, including a real kill."""

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from emolab.cli import main
from emolab.core.pack import load_pack

NORMS = Path(__file__).resolve().parents[2] / "shared" / "data" / "warriner2013_vad.csv"
EMOTIONS = ["happy", "sad", "afraid", "calm"]


def build_args(model_dir, out, emotions_file):
    return [
        "build-pack",
        "--model",
        str(model_dir),
        "--out",
        str(out),
        "--emotions",
        str(emotions_file),
        "--topics",
        "5",
        "--stories-per-topic",
        "1",
        "--neutral-per-task",
        "1",
        "--max-new-tokens",
        "8",
        "--layers",
        "1,2,3",
        "--start-token",
        "2",
        "--batch-size",
        "1",
    ]


@pytest.fixture
def emotions_file(tmp_path):
    path = tmp_path / "emotions.txt"
    path.write_text("\n".join(EMOTIONS) + "\n")
    return path


def corpus_keys(path):
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as handle:
        lines = handle.read().splitlines()
    return [json.loads(line)["key"] for line in lines[1:]]


def test_a_killed_build_resumes_without_loss_or_duplicates_then_validates(tmp_path, tiny_model_dir, emotions_file):
    out = tmp_path / "pack"
    command = [sys.executable, "-m", "emolab", *build_args(tiny_model_dir, out, emotions_file)]
    build = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    corpus = out / "corpus.jsonl"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if corpus.exists() and corpus.read_text().count("\n") >= 8 or build.poll() is not None:
            break
        time.sleep(0.05)
    assert build.poll() is None, "the build finished before it could be killed"
    os.kill(build.pid, signal.SIGKILL)
    build.wait()
    written_before = corpus_keys(corpus)
    assert 7 <= len(written_before) < 60

    result = CliRunner().invoke(main, build_args(tiny_model_dir, out, emotions_file))
    assert result.exit_code == 0, result.output
    keys = corpus_keys(out / "corpus.jsonl.gz")
    assert len(keys) == len(set(keys)) == 5 * 4 + 40
    assert keys[: len(written_before)] == written_before
    assert not (out / "corpus.jsonl").exists()

    pack = load_pack(out)
    assert pack.emotions == EMOTIONS and sorted(pack.layers) == [1, 2, 3]
    assert pack.probe_layer in (1, 2, 3) and pack.steer_layers[0] in (1, 2, 3)
    assert sorted(pack.probes) == [1, 2, 3]  # probes of their own at every stored layer
    provenance = pack.manifest["provenance"]
    assert provenance["counts"]["stories_planned"] == 20
    assert set(provenance["layer_quality"]) == {"1", "2", "3"}
    assert provenance["plan"]["topics"][0] == "an eviction notice taped to the door"
    alerts = json.loads((out / "alerts.json").read_text())
    assert alerts["layer"] == pack.probe_layer and alerts["neutral_tokens"] > provenance["counts"]["neutral_tokens"]
    assert alerts["half_life"] == pack.smoothing_half_life and len(alerts["candidates"]) > 1
    assert set(pack.alert_thresholds) == set(EMOTIONS)
    written = (out / "alerts.json").read_text()
    (out / "alerts.json").unlink()  # a pack built before build-pack wrote it
    result = CliRunner().invoke(main, ["pack", "alerts", str(out), "--model", str(tiny_model_dir)])
    assert result.exit_code == 0, result.output
    assert (out / "alerts.json").read_text() == written

    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    refused = CliRunner().invoke(main, ["validate", str(out), "--out", str(blocker / "report")])
    assert refused.exit_code == 2 and "cannot write there" in refused.output
    assert "Traceback" not in refused.output

    args = ["validate", str(out), "--out", str(tmp_path / "reports" / "new" / "report")]  # folders are created
    if NORMS.exists():
        args += ["--norms", str(NORMS)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "reports" / "new" / "report.json").read_text())
    assert set(report["layers"]) == {"1", "2", "3"}
    for row in report["layers"].values():
        assert row["heldout"]["n"] == 4 and row["heldout"]["n_classes"] == 4
        assert 0 <= row["heldout"]["top1"] <= row["heldout"]["top5"] == 1.0  # 5 of 4 classes always hits
    assert {row["emotion"] for row in report["steering"]} == set(EMOTIONS)
    assert set(report["logit_lens"]) == set(EMOTIONS)
    if NORMS.exists():
        assert report["layers"]["1"]["pc1_valence"]["n"] == 4  # all four words are in the norms
        assert "pc1_valence_abs_r" in report["targets"]
    assert [row["topics"] for row in report["stories_sweep"]] == [1, 2, 3, 4]  # 4 training topics of 5
    assert [row["stories"] for row in report["stories_sweep"]] == sorted(
        row["stories"] for row in report["stories_sweep"]
    )
    assert all("top5_over_chance" in row or "skipped" in row for row in report["stories_sweep"])
    markdown = (tmp_path / "reports" / "new" / "report.md").read_text()
    assert "## Number of stories" in markdown
    assert "## Layers" in markdown and "## Steering dose-response" in markdown


def test_resuming_with_other_settings_is_refused(tmp_path, tiny_model_dir, emotions_file):
    out = tmp_path / "pack"
    assert CliRunner().invoke(main, build_args(tiny_model_dir, out, emotions_file)).exit_code == 0
    (out / "manifest.json").unlink()
    args = build_args(tiny_model_dir, out, emotions_file)
    args[args.index("--max-new-tokens") + 1] = "9"
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert "different settings (max_new_tokens)" in result.output


def test_an_emotion_file_with_duplicates_is_refused(tmp_path, tiny_model_dir):
    emotions = tmp_path / "e.txt"
    emotions.write_text("happy\nsad\nHappy\n")
    result = CliRunner().invoke(main, build_args(tiny_model_dir, tmp_path / "p", emotions))
    assert result.exit_code == 2 and "'happy' is listed twice" in result.output


def test_an_unwritable_output_is_refused(tmp_path, tiny_model_dir, emotions_file):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = CliRunner().invoke(main, build_args(tiny_model_dir, blocker / "pack", emotions_file))
    assert result.exit_code == 2 and "cannot write there" in result.output


def test_an_unknown_model_is_refused(tmp_path, emotions_file):
    result = CliRunner().invoke(main, build_args(tmp_path / "nothing", tmp_path / "p", emotions_file))
    assert result.exit_code == 2 and "no such directory" in result.output


def test_dry_run_prints_counts_and_an_estimate(tmp_path, tiny_model_dir, emotions_file):
    result = CliRunner().invoke(main, build_args(tiny_model_dir, tmp_path / "p", emotions_file) + ["--dry-run"])
    assert result.exit_code == 0, result.output
    assert "stories    20 (+ 40 neutral dialogues)" in result.output
    assert "estimate   about" in result.output
    assert not (tmp_path / "p").exists()
