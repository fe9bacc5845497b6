"""The dose-response sweep: every prompt × strength × seed through the engine, one CSV row per run.

    plan = SweepPlan(emotion="happy", strengths=(0.0, 0.1), prompts=("Hi.",), seeds=(0,), sampling=...)
    rows = run_sweep(engine, plan, Path("sweeps/x"), progress=report)   # resumable

Each finished run is appended to `runs.csv` at once, so an interrupted sweep resumes where it
stopped: a rerun skips the (prompt, strength, seed) rows already there. `sweep.json` holds the
settings every row depends on; a rerun with other settings is refused rather than mixed in.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emolab.core.errors import EmolabError
from emolab.core.events import Token, TurnFinished
from emolab.core.pack import VectorPack
from emolab.core.sampling import Sampling
from emolab.core.steering import SteeringState
from emolab.core.valence import valence, valence_axis
from emolab.lab.measures import (
    compile_patterns,
    count_matches,
    distinct_n,
    perplexity,
    repeated_ngram_share,
    vader_compound,
)

RUNS = "runs.csv"
SETTINGS = "sweep.json"
MAX_STRENGTHS = 1000
PROMPT_SEPARATOR = "---"
# column → label; "{emotion}" is the swept emotion
MEASURES = {
    "readout": "{emotion} readout (z)",
    "readout_smoothed": "{emotion} readout, smoothed (z)",
    "valence": "valence readout",
    "distinct_2": "distinct-2",
    "repeated_4gram_share": "repeated 4-gram share",
    "perplexity": "perplexity under the unsteered model",
    "vader": "VADER compound sentiment",
}
KEY_COLUMNS = ["prompt", "strength", "seed"]
TAIL_COLUMNS = ["reply_tokens", "end", "reply"]


@dataclass(frozen=True)
class RunKey:
    prompt: str
    strength: float
    seed: int


@dataclass(frozen=True)
class SweepPlan:
    emotion: str
    strengths: tuple[float, ...]
    prompts: tuple[str, ...]
    seeds: tuple[int, ...]
    sampling: Sampling  # its seed is replaced by each run's
    layers: tuple[int, ...] = ()  # the layers the engine steers, recorded with the settings
    counts: tuple[str, ...] = ()  # --count regular expressions
    system: str | None = None

    def runs(self) -> list[RunKey]:
        """Strengths innermost: an interrupted sweep still has whole dose curves for its first prompts."""
        return [
            RunKey(prompt, strength_key(strength), seed)
            for prompt in self.prompts
            for seed in self.seeds
            for strength in self.strengths
        ]

    @property
    def count_columns(self) -> list[str]:
        return [count_column(pattern) for pattern in self.counts]

    @property
    def columns(self) -> list[str]:
        return KEY_COLUMNS + list(MEASURES) + self.count_columns + TAIL_COLUMNS

    def check(self, pack: VectorPack) -> None:
        """Names, strengths and expressions, checked before any model loads."""
        state = SteeringState(pack)
        for strength in self.strengths:
            state.set(self.emotion, strength)  # the pack's own errors: unknown names, out-of-range strengths
        compile_patterns(self.counts)

    def settings(self, pack: VectorPack, model: str, dtype: str) -> dict:
        """What every row depends on; prompts, strengths and seeds may grow between reruns."""
        return {
            "pack": pack.name,
            "pack_sha256": pack.sha256,
            "model": model,
            "dtype": dtype,
            "emotion": self.emotion,
            "layers": list(self.layers),
            "temperature": self.sampling.temperature,
            "top_p": self.sampling.top_p,
            "max_tokens": self.sampling.max_tokens,
            "system": self.system,
            "counts": list(self.counts),
        }


def count_column(pattern: str) -> str:
    return f"count {pattern}"


def strength_key(value: float | str) -> float:
    """One spelling per strength, so 0.30000000000000004 from a range finds 0.3 in the CSV."""
    return round(float(value), 9) + 0.0  # + 0.0 turns -0.0 into 0.0


def parse_strengths(text: str) -> tuple[float, ...]:
    """`START:STOP:STEP` (STOP included) or a list `0,0.1,0.25`; sorted, each once."""
    usage = f"--strengths {text!r}: expected START:STOP:STEP such as -0.5:0.5:0.1, or a list such as 0,0.1,0.25"
    parts = text.split(":") if ":" in text else text.split(",")
    try:
        numbers = [float(part) for part in parts]
    except ValueError:
        raise EmolabError(usage) from None
    if not numbers or not all(math.isfinite(number) for number in numbers):
        raise EmolabError(usage)
    if ":" in text:
        if len(numbers) != 3:
            raise EmolabError(usage)
        start, stop, step = numbers
        if step <= 0:
            raise EmolabError(f"--strengths {text!r}: the step must be above 0")
        if start > stop:
            raise EmolabError(f"--strengths {text!r}: START {start:g} is above STOP {stop:g}")
        count = int(math.floor((stop - start) / step + 1e-9)) + 1
        if count > MAX_STRENGTHS:
            raise EmolabError(f"--strengths {text!r}: {count} strengths; at most {MAX_STRENGTHS}")
        numbers = [start + index * step for index in range(count)]
    return tuple(sorted({strength_key(number) for number in numbers}))


def read_prompts(path: str | Path) -> tuple[str, ...]:
    """One prompt per line; or, where a line is just `---`, the blocks between such lines (several
    lines each). Lines starting with # are comments."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise EmolabError(f"{path}: no such prompts file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise EmolabError(f"{path}: unreadable prompts file ({error})") from None
    lines = [line.rstrip() for line in text.splitlines() if not line.startswith("#")]
    if PROMPT_SEPARATOR in lines:
        blocks, current = [], []
        for line in lines + [PROMPT_SEPARATOR]:
            if line == PROMPT_SEPARATOR:
                blocks.append("\n".join(current).strip())
                current = []
            else:
                current.append(line)
        prompts = [block for block in blocks if block]
    else:
        prompts = [line.strip() for line in lines if line.strip()]
    if not prompts:
        raise EmolabError(f"{path}: no prompts in the file")
    seen: dict[str, int] = {}
    for number, prompt in enumerate(prompts, 1):
        if prompt in seen:
            raise EmolabError(f"{path}: prompt {number} repeats prompt {seen[prompt]}")
        seen[prompt] = number
    return tuple(prompts)


class RunsFile:
    """runs.csv: a header, then one row per finished run, appended and flushed as each run ends."""

    def __init__(self, path: Path, columns: Sequence[str]):
        self.path = path
        self.columns = list(columns)
        self.rows: list[dict[str, str]] = []
        if path.exists():
            self._read()
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._write_all()

    def keys(self) -> set[tuple[str, float, int]]:
        return {row_key(row) for row in self.rows}

    def append(self, row: dict) -> None:
        cells = [_cell(row.get(column, "")) for column in self.columns]
        with self.path.open("a", encoding="utf-8", newline="") as file:
            file.write(_csv_line(cells))  # one write per row: a kill leaves whole rows and at most one torn one
            file.flush()
            os.fsync(file.fileno())
        self.rows.append(dict(zip(self.columns, cells, strict=True)))

    def _read(self) -> None:
        text = self.path.read_text(encoding="utf-8")
        records = list(csv.reader(io.StringIO(text, newline="")))
        if not records or records[0] != self.columns:
            raise EmolabError(f"{self.path}: its columns are not this sweep's; choose another --out")
        body = records[1:]
        torn = bool(body) and not text.endswith("\n")  # the last run was cut short: it runs again
        whole = [record for record in body[: len(body) - torn] if len(record) == len(self.columns)]
        self.rows = [dict(zip(self.columns, record, strict=True)) for record in whole]
        if len(whole) != len(body):
            self._write_all()

    def _write_all(self) -> None:
        lines = [_csv_line(self.columns)] + [_csv_line([row[column] for column in self.columns]) for row in self.rows]
        scratch = self.path.with_name(self.path.name + ".tmp")
        scratch.write_text("".join(lines), encoding="utf-8", newline="")
        scratch.replace(self.path)


def row_key(row: dict[str, str]) -> tuple[str, float, int]:
    return row["prompt"], strength_key(row["strength"]), int(row["seed"])


def _csv_line(cells: Sequence[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(cells)
    return buffer.getvalue()


def _cell(value) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return str(value)


def check_settings(out: Path, settings: dict) -> None:
    """Write sweep.json, or refuse an out directory that holds a sweep with other settings."""
    path = out / SETTINGS
    if path.exists():
        try:
            recorded = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            raise EmolabError(f"{path}: not a sweep settings file; choose another --out") from None
        for name, value in settings.items():
            if recorded.get(name) != value:
                raise EmolabError(
                    f"{out} holds a sweep with {name} {recorded.get(name)!r}, not {value!r}; choose another --out"
                )
        return
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(settings, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def measure_run(engine, plan: SweepPlan, key: RunKey, patterns, axis: np.ndarray) -> dict:
    """One reply from a fresh conversation, and everything measured on it."""
    engine.set_sampling(plan.sampling.with_(seed=key.seed))
    engine.reset()  # empty history and cache, the run's seed
    engine.steering.set(plan.emotion, key.strength)  # 0 clears it
    prompt_ids, reply, finished = [], [], None
    for event in engine.chat(key.prompt):
        if isinstance(event, Token):
            if event.source == "prompt":
                prompt_ids.append(event.token_id)
            else:
                reply.append(event)
        elif isinstance(event, TurnFinished):
            finished = event
    text = finished.text
    column = engine.pack.emotion_index[plan.emotion]
    raw = np.stack([token.probe for token in reply]) if reply else np.zeros((0, len(axis)), np.float32)
    smoothed = np.stack([token.smoothed for token in reply]) if reply else raw
    row = {
        "prompt": key.prompt,
        "strength": repr(key.strength),
        "seed": key.seed,
        "readout": _mean(raw[:, column]),
        "readout_smoothed": _mean(smoothed[:, column]),
        "valence": _mean(valence(raw, axis)) if reply else math.nan,
        "distinct_2": distinct_n(text, 2),
        "repeated_4gram_share": repeated_ngram_share(text, 4),
        "perplexity": perplexity(engine.log_probs(prompt_ids, [token.token_id for token in reply])),
        "vader": vader_compound(text) if text.strip() else math.nan,
        "reply_tokens": len(reply),
        "end": finished.reason,
        "reply": text,
    }
    for pattern, name in zip(patterns, plan.count_columns, strict=True):
        row[name] = count_matches(pattern, text)
    return row


def _mean(values: np.ndarray) -> float:
    return float(np.mean(values)) if len(values) else math.nan


def run_sweep(
    engine, plan: SweepPlan, out: Path, progress: Callable[[str, int, int], None] | None = None
) -> tuple[list[dict[str, str]], int]:
    """Run what runs.csv lacks; return the plan's rows (in plan order) and how many ran now."""
    if list(plan.layers) != engine.steer_layers:
        raise ValueError(f"the plan records layers {list(plan.layers)}, but the engine steers {engine.steer_layers}")
    store = RunsFile(out / RUNS, plan.columns)
    finished = store.keys()
    planned = plan.runs()
    todo = [key for key in planned if (key.prompt, key.strength, key.seed) not in finished]
    patterns = compile_patterns(plan.counts)
    axis = valence_axis(engine.pack)
    done = len(planned) - len(todo)
    if progress is not None:
        progress("runs", done, len(planned))
    for key in todo:
        store.append(measure_run(engine, plan, key, patterns, axis))
        done += 1
        if progress is not None:
            progress("runs", done, len(planned))
    by_key = {row_key(row): row for row in store.rows}
    return [by_key[(key.prompt, key.strength, key.seed)] for key in planned], len(todo)
