"""A sweep's summary (per strength: mean and spread over prompts × seeds) and its dose-response plot."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from emolab.lab.sweep import MEASURES, SweepPlan, strength_key

SUMMARY_CSV = "summary.csv"
SUMMARY_MD = "summary.md"
PLOT = "dose_response.png"


def labels(plan: SweepPlan) -> dict[str, str]:
    """Every measured column → its label, the counts last."""
    named = {column: label.format(emotion=plan.emotion) for column, label in MEASURES.items()}
    return named | {
        column: f"count of /{pattern}/" for column, pattern in zip(plan.count_columns, plan.counts, strict=True)
    }


def _number(text: str) -> float:
    return float(text) if text not in ("", None) else math.nan


def values_by_strength(rows: Sequence[dict[str, str]], column: str) -> dict[float, np.ndarray]:
    grouped: dict[float, list[float]] = {}
    for row in rows:
        grouped.setdefault(strength_key(row["strength"]), []).append(_number(row[column]))
    return {strength: np.array(values, dtype=float) for strength, values in sorted(grouped.items())}


def summarise(rows: Sequence[dict[str, str]], plan: SweepPlan) -> list[dict]:
    """One row per strength: runs, then each measure's mean and standard deviation over the runs
    that have it (NaN where none do); for counts also `rate`, the share of runs with a match."""
    strengths = sorted({strength_key(row["strength"]) for row in rows})
    table = {strength: {"strength": strength, "runs": 0} for strength in strengths}
    for row in rows:
        table[strength_key(row["strength"])]["runs"] += 1
    for column in labels(plan):
        for strength, values in values_by_strength(rows, column).items():
            present = values[~np.isnan(values)]
            entry = table[strength]
            entry[f"{column} mean"] = float(present.mean()) if len(present) else math.nan
            entry[f"{column} sd"] = float(present.std(ddof=1)) if len(present) > 1 else math.nan
            if column in plan.count_columns:
                entry[f"{column} rate"] = float((present > 0).mean()) if len(present) else math.nan
    return list(table.values())


def write_summary(summary: list[dict], plan: SweepPlan, out: Path, *, about: str, notes: Sequence[str]) -> list[Path]:
    """summary.csv (every number) and summary.md (a table to read); returns both paths."""
    columns = list(summary[0]) if summary else ["strength", "runs"]
    csv_path, md_path = out / SUMMARY_CSV, out / SUMMARY_MD
    with csv_path.open("w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(columns)
        for entry in summary:
            writer.writerow(
                [
                    ""
                    if isinstance(entry[c], float) and math.isnan(entry[c])
                    else (f"{entry[c]:.6g}" if isinstance(entry[c], float) else entry[c])
                    for c in columns
                ]
            )
    md_path.write_text(render_markdown(summary, plan, about=about, notes=notes), encoding="utf-8")
    return [csv_path, md_path]


def render_markdown(summary: list[dict], plan: SweepPlan, *, about: str, notes: Sequence[str]) -> str:
    names = labels(plan)
    header = ["strength", "runs"] + [names[c] + (" (mean, rate)" if c in plan.count_columns else "") for c in names]
    lines = [
        f"# Sweep: {plan.emotion}",
        "",
        about,
        "",
        "Each cell: the mean ± the standard deviation over prompts × seeds at that strength.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---:|" * len(header),
    ]
    for entry in summary:
        cells = [f"{entry['strength']:+g}", str(entry["runs"])]
        for column in names:
            cell = _mean_sd(entry[f"{column} mean"], entry[f"{column} sd"])
            if column in plan.count_columns and not math.isnan(entry[f"{column} rate"]):
                cell += f", {entry[f'{column} rate']:.0%}"
            cells.append(cell)
        lines.append("| " + " | ".join(cells) + " |")
    lines += [""] + [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n"


def _mean_sd(mean: float, sd: float) -> str:
    if math.isnan(mean):
        return "–"
    return f"{mean:.3g}" if math.isnan(sd) else f"{mean:.3g} ± {sd:.2g}"


def plot_dose_response(rows: Sequence[dict[str, str]], plan: SweepPlan, path: Path, *, title: str) -> Path:
    """Each measure against strength: every run as a dot, the mean as a line, ±1 sd shaded."""
    from matplotlib.figure import Figure  # no pyplot: no global state, no display
    from matplotlib.ticker import FuncFormatter

    shown = [
        (column, label)
        for column, label in labels(plan).items()
        if any(not math.isnan(_number(row[column])) for row in rows)
    ]
    columns = 3
    lines = max(1, math.ceil(len(shown) / columns))
    figure = Figure(figsize=(4.2 * columns, 3.1 * lines), dpi=110, layout="constrained")
    axes = figure.subplots(lines, columns, squeeze=False).ravel()
    for axis, (column, label) in zip(axes, shown, strict=False):  # the grid may have spare axes
        grouped = values_by_strength(rows, column)
        strengths = np.array(list(grouped))
        for strength, values in grouped.items():
            axis.plot(np.full(len(values), strength), values, "o", color="#7f8c8d", alpha=0.35, markersize=3)
        means = np.array([np.nanmean(v) if np.isfinite(v).any() else np.nan for v in grouped.values()])
        sds = np.array([np.nanstd(v, ddof=1) if np.isfinite(v).sum() > 1 else 0.0 for v in grouped.values()])
        axis.fill_between(strengths, means - sds, means + sds, color="#2e86c1", alpha=0.2, linewidth=0)
        axis.plot(strengths, means, "-o", color="#2e86c1", markersize=4)
        axis.axvline(0, color="grey", linewidth=0.6)
        if column == "perplexity":
            axis.set_yscale("log")  # word salad sends it up by orders of magnitude
            for axis_format in (axis.yaxis.set_major_formatter, axis.yaxis.set_minor_formatter):
                axis_format(FuncFormatter(lambda value, _: f"{value:g}"))
        axis.set_title(label, fontsize=9)
        axis.set_xlabel(f"{plan.emotion} strength", fontsize=8)
        axis.tick_params(which="both", labelsize=7)
    for axis in axes[len(shown) :]:
        axis.set_visible(False)
    figure.suptitle(title, fontsize=9)
    figure.savefig(path)
    return path
