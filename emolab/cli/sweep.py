"""`emolab sweep`: a dose-response sweep of one emotion over prompts × strengths × seeds."""

from __future__ import annotations

from pathlib import Path

import click

from emolab.cli.options import model_options, open_model, open_pack, parse_layers, weights_warning
from emolab.core.errors import EmolabError

DEFAULT_TEMPERATURE = 0.7  # with --seeds above 1 and no --temperature: seeded sampling, as `emolab run` samples


@click.command()
@model_options
@click.option("--emotion", required=True, help="The emotion to steer, by the pack's name for it.")
@click.option(
    "--strengths",
    required=True,
    metavar="START:STOP:STEP",
    help="Strengths, STOP included: --strengths=-0.5:0.5:0.1 (with '=' before a minus), or 0,0.1,0.25.",
)
@click.option("--prompt", "prompt", default=None, help="One user message.")
@click.option(
    "--prompts",
    "prompts_file",
    default=None,
    type=click.Path(dir_okay=False),
    help="A file of user messages: one per line, or blocks between lines of '---'.",
)
@click.option(
    "--seeds",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Runs per prompt and strength, with seeds 0..N-1.",
)
@click.option(
    "--temperature",
    default=None,
    type=click.FloatRange(0, 5),
    help=f"Default: 0 (greedy) with one seed, {DEFAULT_TEMPERATURE} (seeded sampling) with more.",
)
@click.option("--top-p", default=0.9, show_default=True, type=float)
@click.option("--max-tokens", default=60, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--count",
    "counts",
    multiple=True,
    metavar="REGEX",
    help="Count this regular expression in every reply (case-insensitive). Repeatable.",
)
@click.option(
    "--layers",
    default=None,
    metavar="L,L,...",
    help="Steer these stored layers, each at the full strength (default: the pack's steer_layers).",
)
@click.option("--system", default=None, help="A system prompt (default: the chat template's own).")
@click.option(
    "--out",
    default=None,
    type=click.Path(file_okay=False),
    help="Output directory (default: sweeps/PACK-EMOTION[-LLAYERS]). A rerun resumes it.",
)
def sweep(
    vectors,
    model,
    device,
    dtype,
    trust_remote_code,
    emotion,
    strengths,
    prompt,
    prompts_file,
    seeds,
    temperature,
    top_p,
    max_tokens,
    counts,
    layers,
    system,
    out,
):
    """Steer one emotion at each strength over prompts and seeds; measure and plot every reply.

    Writes OUT/runs.csv (one row per run, resumable), OUT/summary.csv and .md, OUT/dose_response.png.
    """
    from emolab.cli.progress import staged_progress
    from emolab.core.engine import Engine
    from emolab.core.sampling import Sampling
    from emolab.core.steering import resolve_steer_layers
    from emolab.lab.measures import vader_available
    from emolab.lab.report import PLOT, plot_dose_response, summarise, write_summary
    from emolab.lab.sweep import RUNS, SweepPlan, check_settings, parse_strengths, read_prompts, run_sweep

    if (prompt is None) == (prompts_file is None):
        raise EmolabError("give one of --prompt TEXT or --prompts FILE")
    if prompt is not None and not prompt.strip():
        raise EmolabError("--prompt is empty")
    if seeds > 1 and temperature == 0:
        raise EmolabError(f"--seeds {seeds} with --temperature 0 would give {seeds} identical greedy runs")
    pack = open_pack(vectors, required=True)
    steered = resolve_steer_layers(pack, parse_layers(layers) if layers is not None else None)
    if temperature is None:
        temperature = 0.0 if seeds == 1 else DEFAULT_TEMPERATURE
    plan = SweepPlan(
        emotion=pack.resolve(emotion),
        strengths=parse_strengths(strengths),
        prompts=(prompt.strip(),) if prompt is not None else read_prompts(prompts_file),
        seeds=tuple(range(seeds)),
        sampling=Sampling(temperature=temperature, top_p=top_p, max_tokens=max_tokens),
        layers=tuple(steered),
        counts=tuple(counts),
        system=system,
    )
    plan.check(pack)
    model_reference = model or pack.model_id
    folder = Path(out) if out else Path("sweeps") / _default_name(pack.name, plan.emotion, steered if layers else None)
    check_settings(folder, plan.settings(pack, model_reference, dtype))  # before the model loads

    loaded = open_model(pack, model, device, dtype, trust_remote_code)
    warning = weights_warning(pack, loaded)
    if warning:
        click.echo(click.style(f"warning: {warning}", fg="yellow"), err=True)
    engine = Engine(loaded, pack, sampling=plan.sampling, system_prompt=system, steer_layers=steered)
    sampling = "greedy" if plan.sampling.greedy else f"temperature {temperature:g}, top-p {top_p:g}"
    about = (
        f"{loaded.describe()} · pack {pack.name} · steering {plan.emotion} at layer"
        f"{'s' if len(steered) > 1 else ''} {', '.join(map(str, steered))} · {sampling} · "
        f"up to {max_tokens} tokens · {len(plan.prompts)} prompt{'s' if len(plan.prompts) > 1 else ''} × "
        f"{seeds} seed{'s' if seeds > 1 else ''} per strength"
    )
    click.echo(click.style(about, dim=True), err=True)
    with staged_progress(f"sweep {plan.emotion}: ", rates=True) as progress:
        rows, ran = run_sweep(engine, plan, folder, progress)

    notes = [
        "Readouts are z-scores at the probe layer, averaged over the reply's tokens; valence weighs each "
        "emotion's positive readout by its valence coordinate in the pack's geometry, as the console's tint "
        "does.",
        "Perplexity is the reply's under the same model with no steering: word salad sends it up.",
    ]
    if not vader_available():
        notes.append(
            "VADER sentiment: vaderSentiment is not installed (pip install 'emolab[sweep]'); its column is empty."
        )
    summary = summarise(rows, plan)
    written = write_summary(summary, plan, folder, about=about, notes=notes)
    written.append(plot_dose_response(rows, plan, folder / PLOT, title=about))
    click.echo(written[1].read_text(encoding="utf-8"))
    click.echo(
        f"ran {ran} of {len(rows)} runs ({len(rows) - ran} were already in {folder / RUNS}); wrote "
        + ", ".join(str(path) for path in [folder / RUNS, *written]),
        err=True,
    )


def _default_name(pack: str, emotion: str, layers) -> str:
    name = f"{pack}-{emotion.replace(' ', '-')}"
    return name + ("-L" + "-".join(map(str, layers)) if layers else "")
