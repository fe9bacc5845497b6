"""Writing sessions durably and reading them back, with journal recovery.

The session file is rewritten atomically (temporary file, then rename) after every turn.
Every token, slider change and note is also appended to a journal beside it
(`NAME.json.journal`, one JSON object per line, flushed per entry), so a process killed
mid-reply loses nothing that reached the journal. Each journal entry carries a sequence
number, and the session file records the last one it includes, so recovery applies only
what the file lacks, and nothing twice. A clean close removes the journal.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import threading
from pathlib import Path

import numpy as np

from emolab.core.session.format import TURN_FIELDS, SessionData, SessionError, from_json, parse

JOURNAL_SUFFIX = ".journal"


def journal_path(path: Path) -> Path:
    return path.with_name(path.name + JOURNAL_SUFFIX)


def write_atomically(path: Path, data: SessionData, journal_seq: int) -> None:
    document = data.to_json()
    document["journal_seq"] = journal_seq
    scratch = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with scratch.open("w", encoding="utf-8") as handle:
        json.dump(document, handle, ensure_ascii=False, separators=(",", ":"))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(scratch, path)


def apply_entry(data: SessionData, entry: dict) -> None:
    """One journal entry into the session: the same code records live and recovers after a kill."""
    kind = entry["k"]
    if kind == "tok":
        columns = data.columns
        columns["index"].append(entry["i"])
        columns["position"].append(entry["pos"])
        columns["token_id"].append(entry["id"])
        columns["text"].append(entry["x"])
        columns["source"].append(entry["s"])
        columns["t_ms"].append(entry["t"])
        columns["steering_version"].append(entry["v"])
        columns["turn"].append(entry.get("u", -1))
        row = (
            np.frombuffer(base64.b64decode(entry["p"]), dtype="<f2")
            if entry.get("p")
            else np.full(len(data.emotions), np.nan, dtype=np.float16)
        )
        data.probes.append(row.astype(np.float16))
    elif kind == "steer":
        data.steering.append(
            {"t": entry["t"], "emotion": entry["emotion"], "strength": entry["strength"], "version": entry["version"]}
        )
        data.states[str(entry["version"])] = entry["state"]
    elif kind == "state":  # a state that came from a preset or a reset, not from one slider
        data.states[str(entry["version"])] = entry["state"]
    elif kind == "turn":
        data.turns.append({**{key: entry[key] for key in TURN_FIELDS if key in entry}, "seq": entry["n"]})
    elif kind == "note":
        data.notes.append({**{key: value for key, value in entry.items() if key not in ("k", "n")}, "seq": entry["n"]})
    else:
        raise ValueError(f"unknown journal entry {kind!r}")


def read_journal(path: Path, after: int) -> list[dict]:
    """Complete entries with a sequence number above `after`; a half-written last line is dropped."""
    journal = journal_path(path)
    if not journal.exists():
        return []
    entries = []
    for line in journal.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            break  # the line being written when the process died
        if isinstance(entry, dict) and isinstance(entry.get("n"), int) and entry["n"] > after:
            entries.append(entry)
    return entries


def load_session(path: str | Path, *, recover: bool = True) -> tuple[SessionData, int]:
    """Read and validate a session; apply its journal if a recording was cut off.

    Returns the session and how many journal entries were recovered. Recovered sessions are
    written back (atomically) and their journal removed, so recovery happens once.
    """
    path = Path(path)
    if not path.is_file():
        raise SessionError(f"{path}: no such session file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise SessionError(f"{path}: not UTF-8 text") from None
    document = parse(text, path)
    data = from_json(document, path)
    recorded = document.get("journal_seq") if isinstance(document, dict) else None
    seq = recorded if isinstance(recorded, int) else 0
    entries = read_journal(path, seq) if recover else []
    applied = 0
    for entry in entries:
        try:
            apply_entry(data, entry)
        except (KeyError, TypeError, ValueError, binascii.Error):
            break  # a damaged entry ends recovery; the journal is kept for a closer look
        seq = entry["n"]
        applied += 1
    if applied:
        write_atomically(path, data, seq)
    if entries and applied == len(entries):
        journal_path(path).unlink(missing_ok=True)
    return data, applied
