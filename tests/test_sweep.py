"""`emolab sweep` on the tiny model: the grid, resuming, the measures, the outputs, and bad input."""

import csv
import math
import sys

import numpy as np
import pytest

from emolab.core.errors import EmolabError
from emolab.core.valence import valence, valence_axis
from emolab.lab.measures import compile_patterns, count_matches, distinct_n, repeated_ngram_share, vader_available
from emolab.lab.sweep import parse_strengths, read_prompts
from tests.test_cli import assert_one_line_error, invoke


def sweep(tiny_model_dir, tiny_pack, out, *args):
    return invoke(
        "sweep",
        "--vectors",
        tiny_pack.path,
        "--model",
        tiny_model_dir,
        "--emotion",
        "happy",
        "--max-tokens",
        "5",
        "--out",
        out,
        *args,
    )


def read_rows(path):
    with path.open(encoding="utf-8", newline="") as file:
        return list(csv.DictReader(file))


def test_one_row_per_prompt_strength_and_seed_and_the_outputs(tmp_path, tiny_model_dir, tiny_pack):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("# two prompts\nTell me about your day.\nWhat do you think of me?\n", encoding="utf-8")
    out = tmp_path / "sweep"
    result = sweep(
        tiny_model_dir,
        tiny_pack,
        out,
        "--strengths=-0.5:0.5:0.5",
        "--prompts",
        prompts,
        "--seeds",
        "2",
        "--count",
        "a",
        "--count",
        "th[ae]",
    )
    assert result.exit_code == 0, result.output
    rows = read_rows(out / "runs.csv")
    assert len(rows) == 2 * 3 * 2
    assert {(r["prompt"], float(r["strength"]), int(r["seed"])) for r in rows} == {
        (p, s, seed)
        for p in ("Tell me about your day.", "What do you think of me?")
        for s in (-0.5, 0.0, 0.5)
        for seed in (0, 1)
    }
    for row in rows:
        assert math.isfinite(float(row["readout"])) and math.isfinite(float(row["readout_smoothed"]))
        assert -1 <= float(row["valence"]) <= 1
        assert float(row["perplexity"]) > 1
        assert int(row["count a"]) == len([m for m in row["reply"] if m in "aA"])
        assert row["vader"] == "" if not vader_available() else -1 <= float(row["vader"]) <= 1
    summary = read_rows(out / "summary.csv")
    assert [float(r["strength"]) for r in summary] == [-0.5, 0.0, 0.5]
    assert all(int(r["runs"]) == 4 for r in summary)
    assert {"readout mean", "readout sd", "perplexity mean", "count a rate"} <= set(summary[0])
    markdown = (out / "summary.md").read_text(encoding="utf-8")
    assert "| +0.5 | 4 |" in markdown and "happy readout (z)" in markdown
    assert ("vaderSentiment is not installed" in markdown) == (not vader_available())
    assert (out / "dose_response.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert markdown in result.output  # the table is printed too


def test_a_rerun_runs_only_the_missing_rows(tmp_path, tiny_model_dir, tiny_pack):
    out = tmp_path / "sweep"
    first = sweep(tiny_model_dir, tiny_pack, out, "--strengths=0,0.5", "--prompt", "hello")
    assert first.exit_code == 0, first.output
    before = (out / "runs.csv").read_text(encoding="utf-8")

    grown = sweep(tiny_model_dir, tiny_pack, out, "--strengths=0:0.5:0.25", "--prompt", "hello")
    assert grown.exit_code == 0, grown.output
    assert "ran 1 of 3 runs" in grown.output
    after = (out / "runs.csv").read_text(encoding="utf-8")
    assert after.startswith(before)  # the finished rows are untouched; the new one is appended
    assert [float(r["strength"]) for r in read_rows(out / "runs.csv")] == [0.0, 0.5, 0.25]

    again = sweep(tiny_model_dir, tiny_pack, out, "--strengths=0:0.5:0.25", "--prompt", "hello")
    assert "ran 0 of 3 runs" in again.output
    assert (out / "runs.csv").read_text(encoding="utf-8") == after


def test_a_run_torn_by_a_kill_runs_again(tmp_path, tiny_model_dir, tiny_pack):
    out = tmp_path / "sweep"
    assert sweep(tiny_model_dir, tiny_pack, out, "--strengths=0,0.5", "--prompt", "hello").exit_code == 0
    whole = (out / "runs.csv").read_text(encoding="utf-8")
    (out / "runs.csv").write_text(whole[:-7], encoding="utf-8")  # the last row lost its end
    result = sweep(tiny_model_dir, tiny_pack, out, "--strengths=0,0.5", "--prompt", "hello")
    assert "ran 1 of 2 runs" in result.output
    assert (out / "runs.csv").read_text(encoding="utf-8") == whole  # greedy: the same row again


def test_other_layers_are_steered_and_recorded(tmp_path, tiny_model_dir, tiny_pack):
    out = tmp_path / "layers"
    result = sweep(tiny_model_dir, tiny_pack, out, "--strengths=0,1", "--prompt", "hello", "--layers", "2,1")
    assert result.exit_code == 0, result.output
    assert "layers 1, 2" in (out / "summary.md").read_text(encoding="utf-8")
    assert '"layers": [\n    1,\n    2\n  ]' in (out / "sweep.json").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--strengths=abc", "--prompt", "hi"], ["expected START:STOP:STEP"]),
        (["--strengths=0.5:0:0.1", "--prompt", "hi"], ["START 0.5 is above STOP 0"]),
        (["--strengths=0:1:0", "--prompt", "hi"], ["the step must be above 0"]),
        (["--strengths=0:1:0.5:2", "--prompt", "hi"], ["expected START:STOP:STEP"]),
        (["--strengths=0:3:1", "--prompt", "hi"], ["out of range", "-2 to 2"]),
        (["--strengths=0", "--prompt", "hi", "--count", "(unclosed"], ["not a regular expression"]),
        (["--strengths=0", "--prompt", "hi", "--count", "x*"], ["matches the empty text"]),
        (["--strengths=0"], ["give one of --prompt TEXT or --prompts FILE"]),
        (["--strengths=0", "--prompt", "hi", "--prompts", "p.txt"], ["give one of --prompt TEXT or --prompts FILE"]),
        (["--strengths=0", "--prompts", "nowhere.txt"], ["no such prompts file"]),
        (["--strengths=0", "--prompt", "hi", "--layers", "3"], ["layer 3 is not stored", "1, 2"]),
        (["--strengths=0", "--prompt", "hi", "--layers", "x"], ["expected block indices"]),
        (["--strengths=0", "--prompt", "hi", "--seeds", "3", "--temperature", "0"], ["3 identical greedy runs"]),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(tmp_path, tiny_model_dir, tiny_pack, args, fragments):
    result = sweep(tiny_model_dir, tiny_pack, tmp_path / "never", *args)
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "never").exists()


def test_an_unknown_emotion_gets_suggestions(tmp_path, tiny_model_dir, tiny_pack):
    result = invoke(
        "sweep",
        "--vectors",
        tiny_pack.path,
        "--model",
        tiny_model_dir,
        "--emotion",
        "hapy",
        "--strengths=0",
        "--prompt",
        "hi",
        "--out",
        tmp_path / "never",
    )
    assert_one_line_error(result, "unknown emotion 'hapy'", "did you mean happy")


def test_a_rerun_with_other_settings_is_refused(tmp_path, tiny_model_dir, tiny_pack):
    out = tmp_path / "sweep"
    assert sweep(tiny_model_dir, tiny_pack, out, "--strengths=0", "--prompt", "hi").exit_code == 0
    result = invoke(
        "sweep",
        "--vectors",
        tiny_pack.path,
        "--model",
        tiny_model_dir,
        "--emotion",
        "happy",
        "--max-tokens",
        "6",
        "--out",
        out,
        "--strengths=0",
        "--prompt",
        "hi",
    )
    assert_one_line_error(result, "holds a sweep with max_tokens 5, not 6", "choose another --out")


def test_strength_ranges_include_their_end_and_spell_each_value_once():
    grid = parse_strengths("-0.5:0.5:0.1")
    assert len(grid) == 11 and grid[0] == -0.5 and grid[-1] == 0.5 and 0.0 in grid and 0.3 in grid
    assert parse_strengths("0:0.2:0.2") == (0.0, 0.2)
    assert parse_strengths("0.25,0,0.1,0") == (0.0, 0.1, 0.25)
    assert str(parse_strengths("-0.1:0:0.1")[-1]) == "0.0"  # not -0.0


def test_prompt_files_are_lines_or_blocks(tmp_path):
    lines = tmp_path / "lines.txt"
    lines.write_text("# comment\none\n\ntwo\n", encoding="utf-8")
    assert read_prompts(lines) == ("one", "two")
    blocks = tmp_path / "blocks.txt"
    blocks.write_text("# scenario\nFirst line.\n\nSecond paragraph.\n---\nAnother prompt.\n---\n", encoding="utf-8")
    assert read_prompts(blocks) == ("First line.\n\nSecond paragraph.", "Another prompt.")
    repeated = tmp_path / "repeated.txt"
    repeated.write_text("same\nother\nsame\n", encoding="utf-8")
    with pytest.raises(EmolabError, match="prompt 3 repeats prompt 1"):
        read_prompts(repeated)


def test_degeneration_measures():
    assert distinct_n("the cat sat on the mat", 2) == 1.0
    assert distinct_n("I am a big hug. I do not lose, on an elephant.", 2) == 1.0  # word salad passes: why perplexity
    loop = "I am happy. " * 6
    assert distinct_n(loop, 2) == pytest.approx(3 / 17)
    assert repeated_ngram_share(loop, 4) == pytest.approx((15 - 3) / 15)
    assert repeated_ngram_share("one two three four five", 4) == 0.0
    assert math.isnan(distinct_n("one", 2)) and math.isnan(repeated_ngram_share("a b c", 4))


def test_counts_are_case_insensitive_matches():
    (threat,) = compile_patterns([r"\bthreat\w*"])
    assert count_matches(threat, "A threat. Threatening! No threats?") == 3


def test_valence_is_the_tints_average_of_the_positive_readouts(tiny_pack):
    axis = valence_axis(tiny_pack)
    assert np.abs(axis).max() == pytest.approx(1.0)
    readouts = np.array([[1.0, 0.0, -3.0, 0.0, 0.0, 1.0], [-1.0] * 6], dtype=np.float32)
    got = valence(readouts, axis)
    assert got[0] == pytest.approx((axis[0] + axis[5]) / 2) and got[1] == 0.0
    assert valence(readouts[0], axis) == pytest.approx(got[0])


def test_without_vader_the_column_is_empty_and_the_summary_says_so(tmp_path, tiny_model_dir, tiny_pack, monkeypatch):
    from emolab.lab import measures

    for name in ("vaderSentiment", "vaderSentiment.vaderSentiment"):
        monkeypatch.setitem(sys.modules, name, None)  # makes the import fail, as when it is not installed
    measures._vader.cache_clear()
    try:
        out = tmp_path / "sweep"
        result = sweep(tiny_model_dir, tiny_pack, out, "--strengths=0", "--prompt", "hello")
        assert result.exit_code == 0, result.output
        assert [row["vader"] for row in read_rows(out / "runs.csv")] == [""]
        assert "vaderSentiment is not installed" in (out / "summary.md").read_text(encoding="utf-8")
    finally:
        measures._vader.cache_clear()


def test_vader_scores_the_reply_independently_of_the_model():
    pytest.importorskip("vaderSentiment")
    from emolab.lab.measures import vader_compound

    assert vader_compound("What a wonderful, happy day!") > 0.5 > -0.5 > vader_compound("This is awful and sad.")


def test_the_shipped_scenarios_parse_and_their_suggested_counts_compile():
    import re
    import shlex
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    readme = (root / "examples" / "scenarios" / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```\n(.+?)\n```", readme, flags=re.S).group(1).replace("\\\n", " ")
    commands = [shlex.split(line) for line in block.splitlines() if line.strip()]
    assert len(commands) == 3
    for words in commands:
        assert words[:2] == ["emolab", "sweep"]
        prompts = read_prompts(root / words[words.index("--prompts") + 1])
        assert len(prompts) >= 3
        counts = [words[i + 1] for i, word in enumerate(words) if word == "--count"]
        assert len(compile_patterns(counts)) == 2
