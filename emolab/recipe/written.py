"""Written corpora: stories and neutral texts written for emolab as data, read by any model.

A written corpus is a JSONL file in the format `build-pack` writes when a model generates its
own stories (one record per text, keyed), under a header that says what it is:

    {"type": "header", "corpus": "emolab-written", "version": 1, "split": "train", "licence": "MIT",
     "written_for": "emolab", "counts": {...}}

The shipped corpus lives in `emolab/data/corpus/` as four files, one per use:
`train.jsonl` (stories and neutral texts a pack is built from), `test.jsonl` (stories on topics the
training split never uses, only ever reported), `calibration.jsonl` (neutral texts for alert
false-alarm rates, never built from) and `passages.jsonl` (short passages per emotion family).
"""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from emolab.core.errors import EmolabError
from emolab.recipe.corpus import CorpusTexts

SHIPPED = "written"  # the name `build-pack --corpus` takes for the shipped corpus
CORPUS_KIND = "emolab-written"
SPLITS = ("train", "test", "calibration", "passages")


@dataclass(frozen=True)
class WrittenCorpus:
    """One split of a written corpus, read and checked."""

    name: str  # SHIPPED for emolab's own corpus, else the file's path
    path: Path
    header: dict
    records: list[dict]
    sha256: str

    def describe(self) -> dict:
        """What a pack's provenance records about the corpus it read."""
        return {
            "corpus": self.name,
            "version": self.header.get("version"),
            "split": self.header.get("split"),
            "sha256": self.sha256,
        }

    def texts(self, emotions: list[str] | tuple[str, ...]) -> CorpusTexts:
        """Stories grouped by emotion in the given order, and the neutral texts; every emotion must
        have stories."""
        stories: dict[str, list[str]] = {emotion: [] for emotion in emotions}
        topics: dict[str, list[int]] = {emotion: [] for emotion in emotions}
        neutral: list[str] = []
        for record in self.records:
            if record["kind"] == "neutral":
                neutral.append(record["text"])
            elif record["subject"] in stories:
                stories[record["subject"]].append(record["text"])
                topics[record["subject"]].append(record["topic"])
        missing = [emotion for emotion in emotions if not stories[emotion]]
        if missing:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise EmolabError(f"{self.path}: the corpus has no stories for {shown}")
        return CorpusTexts(stories=stories, story_topics=topics, neutral=neutral, named={}, empty=0)


def shipped_path(split: str = "train") -> Path:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}")
    return Path(str(resources.files("emolab").joinpath(f"data/corpus/{split}.jsonl")))


def resolve(name_or_path: str, split: str = "train") -> Path:
    """`written` (or `written:SPLIT`) names the shipped corpus; anything else is a file path."""
    if name_or_path == SHIPPED or name_or_path.startswith(f"{SHIPPED}:"):
        return shipped_path(name_or_path.partition(":")[2] or split)
    path = Path(name_or_path)
    if not path.exists():
        raise EmolabError(
            f"--corpus {name_or_path}: no such file, and not a corpus name (the shipped one is {SHIPPED!r})"
        )
    return path


def read_written(name_or_path: str, split: str = "train") -> WrittenCorpus:
    path = resolve(name_or_path, split)
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        lines = raw.decode("utf-8").splitlines()
    except (OSError, EOFError, UnicodeDecodeError, gzip.BadGzipFile) as error:
        raise EmolabError(f"{path}: cannot read the corpus ({error})") from None
    header = _json_line(path, lines, 0)
    if not isinstance(header, dict) or header.get("type") != "header" or header.get("corpus") != CORPUS_KIND:
        raise EmolabError(f"{path}: not a written emolab corpus (its first line is not an {CORPUS_KIND} header)")
    records = []
    for number in range(1, len(lines)):
        if not lines[number].strip():
            continue
        record = _json_line(path, lines, number)
        if not _is_record(record):
            raise EmolabError(f"{path}: line {number + 1} is not a corpus record (kind, subject, topic, text)")
        records.append(record)
    keys = [record["key"] for record in records]
    if len(set(keys)) != len(keys):
        duplicate = next(key for key in keys if keys.count(key) > 1)
        raise EmolabError(f"{path}: the key {duplicate!r} appears twice")
    shipped = name_or_path == SHIPPED or name_or_path.startswith(f"{SHIPPED}:")
    return WrittenCorpus(SHIPPED if shipped else str(path), path, header, records, hashlib.sha256(raw).hexdigest())


def _json_line(path: Path, lines: list[str], number: int):
    if number >= len(lines):
        raise EmolabError(f"{path}: the corpus is empty")
    try:
        return json.loads(lines[number])
    except json.JSONDecodeError:
        raise EmolabError(f"{path}: line {number + 1} is not JSON") from None


def _is_record(record) -> bool:
    return (
        isinstance(record, dict)
        and record.get("kind") in ("story", "neutral", "passage")
        and isinstance(record.get("key"), str)
        and isinstance(record.get("subject"), str)
        and isinstance(record.get("topic"), int)
        and isinstance(record.get("text"), str)
        and bool(record["text"].strip())
    )
