"""The preset store: slider values saved as a JSON object of emotion → strength."""

from __future__ import annotations

import json
from pathlib import Path

from emolab.core.documents import read_json
from emolab.core.errors import EmolabError
from emolab.core.pack_manifest import PackManifest

DEFAULT_PRESET = "presets/preset.json"


def write_preset(path: str | Path, values: dict[str, float]) -> Path:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values, indent=2) + "\n", encoding="utf-8")
    except OSError as error:
        raise EmolabError(f"{path}: {error.strerror}") from None
    return path


def read_preset(path: str | Path, pack: PackManifest) -> dict[str, float]:
    """A JSON object of emotion → strength, checked against the pack."""
    data = read_json(path, "preset")
    if not isinstance(data, dict) or not all(isinstance(v, (int, float)) for v in data.values()):
        raise EmolabError(f"{path}: a preset is a JSON object of emotion → strength")
    values = {}
    for name, value in data.items():
        emotion = pack.resolve(name)
        if not pack.slider.contains(float(value)):
            raise EmolabError(f"{path}: {emotion} {value} is outside {pack.slider.min:g} to {pack.slider.max:g}")
        values[emotion] = float(value)
    return values
