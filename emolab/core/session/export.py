"""Exporting a session: a timeline plot (PNG or SVG), a per-token CSV, a Markdown transcript."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from emolab.core.errors import EmolabError
from emolab.core.readouts import strongest
from emolab.core.session.format import SessionData
from emolab.core.smoothing import DEFAULT_HALF_LIFE, smooth, turn_starts

MARKDOWN_TOKENS_PER_TURN = 400  # a transcript stays readable; the CSV has every token


def check_exportable(data: SessionData, path: str | Path) -> None:
    if not data.token_count:
        raise EmolabError(f"{path}: the session has no tokens to export (no message was sent)")


def choose_emotions(data: SessionData, requested: list[str] | None, count: int = 6) -> list[str]:
    """The requested emotions; else the ones pinned in the console when the session ended; else the
    `count` most active (the largest root-mean-square z over the tokens, the attention sink left out)."""
    if requested:
        unknown = [name for name in requested if name not in data.emotions]
        if unknown:
            raise EmolabError(f"the session has no emotion {unknown[0]!r}")
        return requested
    pins = [
        note["emotions"] for note in data.notes if note["kind"] == "pinned" and isinstance(note.get("emotions"), list)
    ]
    pinned = [name for name in pins[-1] if name in data.emotions] if pins else []
    if pinned:
        return pinned
    probes = data.probe_matrix().astype(np.float32)[np.array(data.columns["position"], dtype=int) > 0]
    if len(probes) == 0:
        probes = data.probe_matrix().astype(np.float32)
    activity = np.sqrt(np.nanmean(probes**2, axis=0)) if len(probes) else np.zeros(len(data.emotions))
    return [data.emotions[i] for i in np.argsort(-activity, kind="stable")[:count]]


def session_half_life(data: SessionData) -> float:
    """The smoothing the console showed this session with: its pack's, or the default if the pack is gone."""
    from emolab.core.pack import load_pack

    try:
        return load_pack(data.meta["pack"]["path"]).smoothing_half_life
    except EmolabError:
        return DEFAULT_HALF_LIFE


def readouts(data: SessionData, half_life: float) -> np.ndarray:
    """The recorded raw readouts [T, E], smoothed as the console showed them (half-life 0: raw)."""
    raw = data.probe_matrix().astype(np.float32)
    return smooth(raw, half_life, turn_starts(data.columns["source"])) if half_life > 0 and len(raw) else raw


def plot_timeline(data: SessionData, out: Path, emotions: list[str], half_life: float = 0.0) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    probes = readouts(data, half_life)
    indices = np.array(data.columns["index"])
    figure, axis = plt.subplots(figsize=(12, 4.5), dpi=120)
    columns = [data.emotions.index(name) for name in emotions]
    shown = np.array(data.columns["position"]) > 0  # leave out the attention sink at position 0
    for name, column in zip(emotions, columns, strict=True):
        axis.plot(indices[shown], probes[shown, column], label=name, linewidth=1.2)
    axis.axhline(0, color="grey", linewidth=0.6)
    sources = data.columns["source"]
    for row in range(1, len(sources)):  # shade the prompts, so the turns stand out
        if sources[row] == "prompt":
            axis.axvspan(indices[row] - 0.5, indices[row] + 0.5, color="#dde6f3", linewidth=0)
    for change in data.steering_with_first_tokens():
        if change["first_token"] is not None:
            axis.axvline(change["first_token"], color="#c0392b", linestyle="--", linewidth=0.9)
            axis.annotate(
                f"{change['emotion']} {change['strength']:+.2f}",
                (change["first_token"], axis.get_ylim()[1]),
                rotation=90,
                va="top",
                ha="right",
                fontsize=7,
                color="#c0392b",
            )
    axis.set_xlabel("token (blue: prompt; dashed: steering change)")
    axis.set_ylabel(f"readout (z), smoothed over {half_life:g} tokens" if half_life > 0 else "readout (z), raw")
    axis.set_title(
        f"{data.meta['model']['id']} · pack {data.meta['pack']['name']} · {data.meta['created']}", fontsize=9
    )
    axis.legend(loc="upper left", fontsize=8, ncol=min(6, len(emotions)))
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, format=out.suffix.lstrip(".").lower())
    plt.close(figure)
    return out


def write_csv(data: SessionData, out: Path, half_life: float = 0.0) -> Path:
    """The recorded raw readouts, one column per emotion, and with a half-life the smoothed ones after them."""
    probes = data.probe_matrix().astype(np.float32)
    smoothed = readouts(data, half_life) if half_life > 0 else None
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        extra = [f"smoothed:{name}" for name in data.emotions] if smoothed is not None else []
        writer.writerow(["index", "position", "token_id", "text", "source", "t_ms", *data.emotions, *extra])
        columns = data.columns
        for row in range(data.token_count):
            writer.writerow(
                [
                    columns["index"][row],
                    columns["position"][row],
                    columns["token_id"][row],
                    columns["text"][row],
                    columns["source"][row],
                    columns["t_ms"][row],
                    *(f"{value:.3f}" for value in probes[row]),
                    *(f"{value:.3f}" for value in (smoothed[row] if smoothed is not None else ())),
                ]
            )
    return out


def write_markdown(data: SessionData, out: Path, top_k: int = 3, half_life: float = 0.0) -> Path:
    """The transcript in recorded order; each reply says which branch of its message it is, what it
    kept of the reply it branches, and which side of a compare it is."""
    probes = readouts(data, half_life)
    columns = data.columns
    lines = [
        f"# Session {data.meta['created']}",
        "",
        f"Model `{data.meta['model']['id']}`, pack `{data.meta['pack']['name']}`, sampling "
        f"{data.meta['sampling']}. Readouts "
        + (f"smoothed over {half_life:g} tokens." if half_life > 0 else "raw, per token."),
        "",
    ]
    for turn in data.turns:
        if turn["role"] == "user":
            lines += [f"**user:** {turn['text']}", ""]
            continue
        rows = data.reply_rows(turn)[:MARKDOWN_TOKENS_PER_TURN]
        lines += [f"**assistant** ({', '.join(reply_labels(data, turn))}): {turn['text']}", ""]
        lines += _compare_lines(data, turn)
        lines += ["| token | top emotions |", "|---|---|"]
        for row in rows:
            cells = ", ".join(f"{name} {value:+.1f}" for name, value in strongest(probes[row], data.emotions, top_k))
            lines.append(f"| `{columns['text'][row].replace('|', '/').replace('`', '')}` | {cells} |")
        lines.append("")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def reply_labels(data: SessionData, turn: dict) -> list[str]:
    labels = [turn.get("finish", "")]
    siblings = data.branches(turn)
    if len(siblings) > 1:
        labels.append(f"branch {siblings.index(turn) + 1}/{len(siblings)} of this message")
    branch = turn.get("branch")
    if branch:
        labels.append(
            f"written on from branch {siblings.index(data.turn(branch['of'])) + 1}, kept {branch['kept']} tokens"
        )
    compare = turn.get("compare")
    if compare:
        steering = ", ".join(f"{name} {value:+.2f}" for name, value in compare["steering"].items()) or "no steering"
        labels.append(f"compare {compare['group']}, side {'AB'[compare['lane']]}: {steering}")
    return [label for label in labels if label]


def _compare_lines(data: SessionData, turn: dict) -> list[str]:
    """After a compare's side B: where the two replies first differ, and how their mean readouts differ."""
    compare = turn.get("compare")
    if not compare or compare["lane"] != 1:
        return []
    from emolab.core.compare import first_difference, mean_difference

    sides = sorted(
        (other for other in data.turns if (other.get("compare") or {}).get("group") == compare["group"]),
        key=lambda other: other["compare"]["lane"],
    )
    if len(sides) != 2:
        return []
    rows = [data.reply_rows(side) for side in sides]
    ids = [[data.columns["token_id"][row] for row in side_rows] for side_rows in rows]
    first = first_difference(*ids)
    where = "the two replies are the same" if first is None else f"the two replies first differ at reply token {first}"
    probes = data.probe_matrix().astype(np.float32)
    difference = mean_difference(probes[rows[0]], probes[rows[1]])
    shown = ", ".join(f"{name} {value:+.2f}" for name, value in strongest(difference, data.emotions, 5))
    return [f"{where.capitalize()}; mean readout A − B: {shown}.", ""]
