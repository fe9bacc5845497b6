"""Pack loading validates everything and fails with one line naming the file and the problem."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from emolab.core.errors import PackError
from emolab.core.pack import ProbeData, default_emotions, load_pack, write_pack
from emolab.core.probes import Probe
from tests.tiny import EMOTIONS


def edit_manifest(pack, change):
    path = pack.path / "manifest.json"
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))


def edit_tensors(pack, change):
    path = pack.path / "vectors.safetensors"
    tensors = load_file(str(path))
    change(tensors)
    save_file(tensors, str(path))


def expect_error(pack_path, *fragments):
    with pytest.raises(PackError) as caught:
        load_pack(pack_path)
    message = str(caught.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_a_written_pack_loads_back(tiny_pack):
    pack = load_pack(tiny_pack.path)
    assert pack.emotions == EMOTIONS
    assert sorted(pack.layers) == [1, 2]
    assert pack.steer_layers == [1] and pack.probe_layer == 2
    assert torch.allclose(pack.layers[1].directions.norm(dim=1), torch.ones(len(EMOTIONS)))
    assert len(pack.sha256) == 64


def test_missing_directory(tmp_path):
    expect_error(tmp_path / "nope", "nope", "no such pack directory")


def test_missing_manifest(tiny_pack):
    (tiny_pack.path / "manifest.json").unlink()
    expect_error(tiny_pack.path, "manifest.json", "missing")


def test_missing_vectors(tiny_pack):
    (tiny_pack.path / "vectors.safetensors").unlink()
    expect_error(tiny_pack.path, "vectors.safetensors", "missing")


def test_bad_json(tiny_pack):
    (tiny_pack.path / "manifest.json").write_text('{"name": "x",')
    expect_error(tiny_pack.path, "manifest.json", "invalid JSON at line 1")


def test_nan_in_manifest(tiny_pack):
    text = (tiny_pack.path / "manifest.json").read_text().replace('"mean_norm": 2.0', '"mean_norm": NaN')
    (tiny_pack.path / "manifest.json").write_text(text)
    expect_error(tiny_pack.path, "manifest.json", "NaN")


def test_schema_violation_names_the_field(tiny_pack):
    edit_manifest(tiny_pack, lambda m: m["model"].update(hidden_size="wide"))
    expect_error(tiny_pack.path, "manifest.json", "$.model.hidden_size", "not of type 'integer'")


def test_missing_required_field(tiny_pack):
    edit_manifest(tiny_pack, lambda m: m.pop("slider"))
    expect_error(tiny_pack.path, "'slider' is a required property")


def test_newer_format_version(tiny_pack):
    edit_manifest(tiny_pack, lambda m: m.update(format_version=99))
    expect_error(tiny_pack.path, "format version 99", "upgrade emolab")


def test_duplicate_emotion(tiny_pack):
    edit_manifest(tiny_pack, lambda m: m["emotions"].__setitem__(1, "happy"))
    expect_error(tiny_pack.path, "'happy' is listed twice")


def test_geometry_with_unknown_emotion(tiny_pack):
    edit_manifest(tiny_pack, lambda m: m["geometry"]["coords"].update(bliss=[0, 0]))
    expect_error(tiny_pack.path, "unknown emotion 'bliss'")


def test_probe_layer_not_stored(tiny_pack):
    edit_manifest(tiny_pack, lambda m: m.update(probe_layer=3))
    expect_error(tiny_pack.path, "probe layer 3")


def test_wrong_shape(tiny_pack):
    edit_tensors(tiny_pack, lambda t: t.update({"layer.1": torch.nn.functional.normalize(torch.randn(6, 31), dim=1)}))
    expect_error(tiny_pack.path, "vectors.safetensors", "'layer.1'", "[6, 31]", "[6, 32]")


def test_nan_in_tensor(tiny_pack):
    def poison(tensors):
        tensors["neutral_mean.2"][3] = float("nan")

    edit_tensors(tiny_pack, poison)
    expect_error(tiny_pack.path, "'neutral_mean.2'", "NaN or Inf")


def test_rows_must_be_unit_vectors(tiny_pack):
    def stretch(tensors):
        tensors["layer.2"][4] *= 2

    edit_tensors(tiny_pack, stretch)
    expect_error(tiny_pack.path, "layer.2 row 4", "'desperate'", "not 1")


def test_missing_statistic(tiny_pack):
    edit_tensors(tiny_pack, lambda t: t.pop("neutral_std.1"))
    expect_error(tiny_pack.path, "'neutral_std.1' is missing")


def test_corrupt_safetensors(tiny_pack):
    path = tiny_pack.path / "vectors.safetensors"
    path.write_bytes(path.read_bytes()[:100])
    expect_error(tiny_pack.path, "vectors.safetensors", "not a readable safetensors file")


def test_hidden_size_must_match_the_model(tiny_pack):
    with pytest.raises(PackError, match="built for hidden size 32 .* has hidden size 64"):
        tiny_pack.check_model(64, 4, "other-model")


def test_stored_layer_must_exist_in_the_model(tiny_pack):
    with pytest.raises(PackError, match="stores layer 2, but small-model has only 2 layers"):
        tiny_pack.check_model(32, 2, "small-model")


def test_default_emotions_are_the_papers_171():
    emotions = default_emotions()
    assert len(emotions) == 171 == len(set(emotions))
    assert {"at ease", "grief-stricken", "hope", "hopeful", "desperate", "calm"} <= set(emotions)


def test_pack_info_on_a_valid_pack(tiny_pack):
    from click.testing import CliRunner

    from emolab.cli import main

    result = CliRunner().invoke(main, ["pack", "info", str(tiny_pack.path)])
    assert result.exit_code == 0, result.output
    assert "valid      yes" in result.output and "probe at 2" in result.output
    assert "no alerts.json: the console alerts at z >= 3" in result.output


def test_pack_info_on_a_broken_pack_is_one_line_and_exit_2(tiny_pack):
    from click.testing import CliRunner

    from emolab.cli import main

    (tiny_pack.path / "manifest.json").write_text("[]")
    result = CliRunner().invoke(main, ["pack", "info", str(tiny_pack.path)])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and result.output.startswith("emolab: error: ")


def test_alert_thresholds_are_read_from_alerts_json_and_left_out_of_the_hash(tiny_pack):
    from emolab.core.pack import write_alert_thresholds

    before = tiny_pack.sha256
    assert tiny_pack.alert_thresholds == {}
    assert tiny_pack.smoothing_half_life == 4.0  # the default, without alerts.json
    write_alert_thresholds(tiny_pack.path, {"afraid": 4.234, "calm": 3.5}, about="test", layer=2, half_life=8.0)
    pack = load_pack(tiny_pack.path)
    assert pack.alert_thresholds == {"afraid": 4.23, "calm": 3.5} and pack.smoothing_half_life == 8.0
    assert pack.sha256 == before  # no readout changes, so sessions recorded before still verify


@pytest.mark.parametrize(
    "text, message",
    [
        ("{not json", "not an alert-threshold file"),
        ('{"z": [1, 2]}', "not an alert-threshold file"),
        ('{"z": {"nope": 3.0}}', "'nope', which is not one of the pack's emotions"),
        ('{"z": {"afraid": NaN}}', "threshold of 'afraid' is not a finite number"),
        ('{"z": {"afraid": "high"}}', "threshold of 'afraid' is not a finite number"),
        ('{"z": {}, "half_life": -1}', "not an alert-threshold file"),
    ],
)
def test_a_broken_alerts_json_is_a_one_line_pack_error(tiny_pack, text, message):
    (tiny_pack.path / "alerts.json").write_text(text)
    with pytest.raises(PackError, match=message.replace("(", r"\(")):
        load_pack(tiny_pack.path)


def test_pack_alerts_needs_the_build_corpus(tiny_pack, tiny_model_dir):
    from click.testing import CliRunner

    from emolab.cli import main

    result = CliRunner().invoke(main, ["pack", "alerts", str(tiny_pack.path), "--model", str(tiny_model_dir)])
    assert result.exit_code == 2 and "records no build plan" in result.output
    assert "Traceback" not in result.output


def probes_for(loaded, n_emotions, layers):
    generator = torch.Generator().manual_seed(7)
    return {
        layer: ProbeData(
            weights=torch.randn(n_emotions, loaded.hidden_size, generator=generator),
            mean=torch.randn(n_emotions, generator=generator),
            std=torch.rand(n_emotions, generator=generator) + 0.5,
            centre=True,
        )
        for layer in layers
    }


def test_a_version_2_pack_round_trips_its_probes_and_reads_with_them(tmp_path, tiny_model):
    from tests.tiny import tiny_layer_data, tiny_manifest

    probes = probes_for(tiny_model, len(EMOTIONS), [2])
    manifest = tiny_manifest(
        tiny_model, EMOTIONS, [1, 2], probes={"method": "lda", "reference": "stories", "centre": True}
    )
    data = {layer: tiny_layer_data(tiny_model, len(EMOTIONS), seed=layer) for layer in (1, 2)}
    pack = load_pack(write_pack(tmp_path / "v2", manifest, data, probes).path)
    assert pack.manifest["format_version"] == 2 and pack.manifest["probes"]["layers"] == [2]
    assert torch.equal(pack.readout(2).weights, probes[2].weights) and pack.readout(2).centre
    assert pack.readout(1).weights is pack.layers[1].directions  # no probe there: the steering directions
    hidden = torch.randn(3, tiny_model.hidden_size)
    np.testing.assert_allclose(Probe(pack).read(hidden), probes[2].z_scores(hidden).numpy(), atol=1e-5)


def test_a_version_1_pack_still_loads_and_reads_with_its_steering_directions(tiny_pack):
    edit_manifest(tiny_pack, lambda manifest: manifest.update(format_version=1))
    pack = load_pack(tiny_pack.path)
    assert pack.probes == {}
    hidden = torch.randn(3, pack.hidden_size)
    np.testing.assert_allclose(Probe(pack).read(hidden), pack.layers[2].z_scores(hidden).numpy(), atol=1e-5)


def test_a_probe_named_in_the_manifest_but_missing_is_one_line(tmp_path, tiny_model):
    from tests.tiny import tiny_layer_data, tiny_manifest

    data = {layer: tiny_layer_data(tiny_model, len(EMOTIONS), seed=layer) for layer in (1, 2)}
    pack = write_pack(
        tmp_path / "v2", tiny_manifest(tiny_model, EMOTIONS, [1, 2]), data, probes_for(tiny_model, len(EMOTIONS), [2])
    )
    edit_tensors(pack, lambda tensors: tensors.pop("probe_std.2"))
    expect_error(pack.path, "vectors.safetensors", "probe_std.2", "missing")
    edit_manifest(pack, lambda manifest: manifest["probes"].update(layers=[5]))
    expect_error(pack.path, "probes are stored for layer 5")
