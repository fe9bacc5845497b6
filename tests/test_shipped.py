"""What ships: the sonnet-proxy pack, its validation report, and the demo sessions."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from emolab.cli import main
from emolab.core.pack import default_emotions, load_pack

ROOT = Path(__file__).resolve().parents[1]
PACK = ROOT / "vectors" / "sonnet-proxy"
DEMOS = sorted((ROOT / "sessions").glob("demo-*.json"))


def test_the_shipped_pack_is_valid_and_covers_the_171_emotions():
    pack = load_pack(PACK)
    assert pack.emotions == default_emotions()
    assert pack.model_id == "bundled:smollm2-135m-instruct"
    result = CliRunner().invoke(main, ["pack", "info", str(PACK)])
    assert result.exit_code == 0 and "valid      yes" in result.output
    assert "171 thresholds in alerts.json; desperate z >= 4.29" in result.output
    assert (PACK / "corpus.jsonl.gz").is_file() and (PACK / "REPORT.md").is_file()


def test_the_readme_quotes_the_validation_numbers():
    report = json.loads((PACK / "REPORT.json").read_text())
    quoted = (PACK / "README.md").read_text()
    for key, row in report["targets"].items():
        assert f"`{key}` = {row['value']}" in quoted, key
    chosen = report["layers"][str(report["probe_layer"])]
    assert f"top-5 {chosen['heldout']['top5']:.3f}" in quoted


@pytest.mark.slow
@pytest.mark.parametrize("session", DEMOS, ids=[p.stem for p in DEMOS])
def test_demo_sessions_verify_exactly(session, bundled_cache, monkeypatch):
    monkeypatch.chdir(ROOT)  # sessions name the pack by its path in the repository
    result = CliRunner().invoke(main, ["replay", "--verify", "--strict", str(session.relative_to(ROOT))])
    assert result.exit_code == 0, result.output
    assert "reproduces the recording exactly" in result.output


def test_there_are_demo_sessions():
    assert len(DEMOS) >= 2


def test_the_shipped_pack_sets_alerts_above_its_neutral_tails():
    from emolab.tui.monitor import default_thresholds

    pack = load_pack(PACK)
    assert set(pack.alert_thresholds) == set(pack.emotions)
    watched = default_thresholds(pack.alert_thresholds)
    assert watched == {name: pack.alert_thresholds[name] for name in ("desperate", "hostile", "afraid")}
    assert all(3.0 < value < 10.0 for value in watched.values())
