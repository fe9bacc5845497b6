"""What ships: the packs (two on the bundled model, one on Gemma 3), their validation reports, and the demo sessions."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from emolab.cli import main
from emolab.core.pack import default_emotions, load_pack

ROOT = Path(__file__).resolve().parents[1]
PACKS = {
    "sonnet-proxy": ROOT / "vectors" / "sonnet-proxy",  # read from the written corpus
    "smollm2-self": ROOT / "vectors" / "smollm2-self",  # the model's own stories
    "gemma3-270m": ROOT / "vectors" / "gemma3-270m",  # the written corpus, read by another model
}
MODELS = {"gemma3-270m": "bundled:gemma3-270m"}
DEMOS = sorted((ROOT / "sessions").glob("demo-*.json"))


@pytest.mark.parametrize("name", PACKS)
def test_the_shipped_packs_are_valid_cover_the_171_emotions_and_carry_probes(name):
    pack = load_pack(PACKS[name])
    assert pack.emotions == default_emotions()
    assert pack.model_id == MODELS.get(name, "bundled:smollm2-135m-instruct")
    assert pack.manifest["format_version"] == 2 and pack.probe_layer in pack.probes
    result = CliRunner().invoke(main, ["pack", "info", str(PACKS[name])])
    assert result.exit_code == 0 and "valid      yes" in result.output
    assert "probes of their own" in result.output and "smoothed, half-life" in result.output
    assert (PACKS[name] / "REPORT.md").is_file()


def test_the_rebuilt_packs_read_the_same_shipped_written_corpus():
    read = [load_pack(PACKS[name]).manifest["provenance"] for name in ("sonnet-proxy", "gemma3-270m")]
    assert all(p["corpus"]["corpus"] == "written" and "plan" not in p for p in read)
    assert read[0]["corpus"]["sha256"] == read[1]["corpus"]["sha256"]
    assert (PACKS["smollm2-self"] / "corpus.jsonl.gz").is_file()  # the model's own stories travel with it


def test_the_gemma_pack_carries_the_model_terms():
    assert "Gemma" in (PACKS["gemma3-270m"] / "GEMMA_TERMS.html").read_text(encoding="utf-8")
    assert (PACKS["gemma3-270m"] / "NOTICE.md").is_file()


@pytest.mark.parametrize("name", PACKS)
def test_the_readmes_quote_the_validation_numbers(name):
    report = json.loads((PACKS[name] / "REPORT.json").read_text())
    quoted = (PACKS[name] / "README.md").read_text()
    for key, row in report["targets"].items():
        assert f"`{key}` = {row['value']}" in quoted, key


@pytest.mark.slow
@pytest.mark.parametrize("session", DEMOS, ids=[p.stem for p in DEMOS])
def test_demo_sessions_verify_exactly(session, bundled_cache, monkeypatch):
    monkeypatch.chdir(ROOT)  # sessions name the pack by its path in the repository
    result = CliRunner().invoke(main, ["replay", "--verify", "--strict", str(session.relative_to(ROOT))])
    assert result.exit_code == 0, result.output
    assert "reproduces the recording exactly" in result.output


def test_there_are_demo_sessions_recorded_in_fp32_against_the_rebuilt_pack():
    assert len(DEMOS) >= 2
    for path in DEMOS:
        meta = json.loads(path.read_text())["meta"]
        assert meta["dtype"] == "float32" and meta["pack"]["sha256"] == load_pack(PACKS["sonnet-proxy"]).sha256


@pytest.mark.parametrize("name", PACKS)
def test_the_shipped_packs_set_alerts_above_their_neutral_tails(name):
    from emolab.tui.monitor import default_thresholds

    pack = load_pack(PACKS[name])
    assert set(pack.alert_thresholds) == set(pack.emotions)
    watched = default_thresholds(pack.alert_thresholds)
    assert watched == {name: pack.alert_thresholds[name] for name in ("desperate", "hostile", "afraid")}
    assert all(3.0 <= value < 50.0 for value in watched.values())
