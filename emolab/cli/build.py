"""`emolab build-pack` and `emolab validate`: the paper's recipe, and the proof that it worked."""

from __future__ import annotations

from pathlib import Path

import click

from emolab.cli.options import parse_layers
from emolab.cli.progress import conversion_progress, staged_progress
from emolab.core.errors import EmolabError


def _emotions(path: str | None) -> tuple[str, ...]:
    from emolab.core.pack import default_emotions

    if path is None:
        return tuple(default_emotions())
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise EmolabError(f"{path}: no such emotion file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise EmolabError(f"{path}: unreadable emotion file ({error})") from None
    names = [" ".join(line.strip().lower().split()) for line in lines if line.strip() and not line.startswith("#")]
    seen = set()
    for name in names:
        if name in seen:
            raise EmolabError(f"{path}: {name!r} is listed twice")
        seen.add(name)
    return tuple(names)


def _layers(text: str | None) -> tuple[int, ...] | None:
    if not text or text == "auto":
        return None
    return parse_layers(text, example="12,16,20 or auto")


def _load(model, device, dtype, trust_remote_code):
    from emolab.core.models import load_model

    with conversion_progress() as progress:
        return load_model(model, device=device, dtype=dtype, trust_remote_code=trust_remote_code, progress=progress)


@click.command("build-pack")
@click.option("--model", default="bundled", show_default=True, help="A local directory, a hub id, or bundled.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="The pack directory, e.g. vectors/NAME.")
@click.option("--name", default=None, help="The pack's name (default: the folder's name).")
@click.option(
    "--emotions",
    "emotions_file",
    default=None,
    type=click.Path(dir_okay=False),
    help="A file of emotion names, one per line (default: the paper's 171).",
)
@click.option(
    "--corpus",
    default=None,
    metavar="NAME|PATH",
    help="Read a written corpus instead of having the model write stories: 'written' (shipped) or a file.",
)
@click.option("--topics", default=20, show_default=True, type=int, help="How many of the 100 story topics to use.")
@click.option("--stories-per-topic", default=1, show_default=True, type=int)
@click.option(
    "--neutral-per-task", default=2, show_default=True, type=int, help="Neutral dialogues per task (40 tasks)."
)
@click.option("--max-new-tokens", default=160, show_default=True, type=int, help="Length limit of each story.")
@click.option(
    "--layers", default="auto", show_default=True, help="Blocks to store, e.g. 12,16,20; auto sweeps around 2/3 depth."
)
@click.option("--start-token", default=20, show_default=True, type=int, help="Average each story from this token on.")
@click.option("--batch-size", default=32, show_default=True, type=int)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--device", default="auto", show_default=True)
@click.option("--dtype", default="auto", show_default=True)
@click.option("--trust-remote-code", is_flag=True)
@click.option("--dry-run", is_flag=True, help="Print the planned counts and an estimated time, and stop.")
def build_pack(
    model,
    out,
    name,
    emotions_file,
    corpus,
    topics,
    stories_per_topic,
    neutral_per_task,
    max_new_tokens,
    layers,
    start_token,
    batch_size,
    seed,
    device,
    dtype,
    trust_remote_code,
    dry_run,
):
    """Build a vector pack with the paper's recipe. Resumes where a killed build stopped."""
    from emolab.core.conversation import PLAIN_TRANSCRIPT_NOTE
    from emolab.recipe.build import BuildSettings, build, corpus_plan, default_layers, estimate_seconds

    out_path = Path(out)
    settings = BuildSettings(
        name=name or out_path.name,
        emotions=_emotions(emotions_file),
        topics=topics,
        stories_per_topic=stories_per_topic,
        neutral_per_task=neutral_per_task,
        max_new_tokens=max_new_tokens,
        seed=seed,
        layers=_layers(layers),
        start_token=start_token,
        batch_size=batch_size,
        corpus=corpus,
    )
    if corpus:  # bad corpora fail before the model loads
        from emolab.recipe.written import read_written

        texts = read_written(corpus).texts(settings.emotions)
    loaded = _load(model, device, dtype, trust_remote_code)
    if corpus and dry_run:
        from emolab.recipe.build import estimate_reading_seconds

        stories = sum(len(rows) for rows in texts.stories.values())
        click.echo(f"model      {loaded.describe()}")
        click.echo(
            f"corpus     {corpus}: {stories} stories for {len(settings.emotions)} emotions, "
            f"{len(texts.neutral)} neutral texts (read, not generated)"
        )
        click.echo(f"layers     {', '.join(map(str, settings.layers or default_layers(loaded.num_layers)))}")
        click.echo(
            f"estimate   about {estimate_reading_seconds(loaded, texts, settings) / 60:.1f} minutes of reading "
            f"on {loaded.device.type} (measured on one batch)"
        )
        return
    plan = corpus_plan(loaded, settings)
    if dry_run:
        jobs = plan.jobs()
        stories = sum(job.kind == "story" for job in jobs)
        seconds = estimate_seconds(loaded, plan, settings)
        click.echo(f"model      {loaded.describe()}")
        click.echo(
            f"emotions   {len(plan.emotions)}; topics {len(plan.topics)}; stories per topic {plan.stories_per_topic}"
        )
        click.echo(
            f"stories    {stories} (+ {len(jobs) - stories} neutral dialogues), up to {plan.max_new_tokens} tokens each"
        )
        click.echo(f"layers     {', '.join(map(str, settings.layers or default_layers(loaded.num_layers)))}")
        click.echo(
            f"estimate   about {seconds / 60:.0f} minutes of generation on {loaded.device.type} "
            f"(measured on one batch of {settings.batch_size})"
        )
        return
    if loaded.prompt_format == "plain":
        click.echo(f"{loaded.reference}: {PLAIN_TRANSCRIPT_NOTE} (the story prompts are given as one)", err=True)
    with staged_progress("", rates=True) as progress:
        pack, provenance = build(loaded, settings, out_path, progress)
    click.echo(f"wrote {pack.path}: {len(pack.emotions)} emotions, layers {', '.join(map(str, sorted(pack.layers)))}")
    click.echo(provenance["layer_choice"])
    click.echo(f"next: emolab validate {pack.path} --norms PATH/TO/warriner2013_vad.csv")


@click.command()
@click.argument("pack_path", metavar="PACK")
@click.option(
    "--norms",
    default=None,
    type=click.Path(dir_okay=False),
    help="Human valence/arousal norms (Warriner et al. 2013 CSV) for the geometry checks.",
)
@click.option("--out", "report_path", default=None, help="Report path without suffix (default: PACK/REPORT).")
@click.option("--model", default=None, help="Default: the model the pack was built for.")
@click.option("--device", default="auto", show_default=True)
@click.option("--dtype", default="auto", show_default=True)
@click.option("--trust-remote-code", is_flag=True)
def validate(pack_path, norms, report_path, model, device, dtype, trust_remote_code):
    """Validate a pack: held-out accuracy, logit lens, geometry, neighbours, steering."""
    from emolab.core.pack import load_pack
    from emolab.recipe.build import writable_folder
    from emolab.recipe.metrics import read_norms
    from emolab.recipe.validate import validate as run_validation
    from emolab.recipe.validate import write_report

    pack = load_pack(pack_path)
    target = Path(report_path) if report_path else pack.path / "REPORT"
    writable_folder(target.parent)  # before the long validation, not after it
    human = read_norms(norms) if norms else None
    loaded = _load(model or pack.model_id, device, dtype, trust_remote_code)
    pack.check_model(loaded.hidden_size, loaded.num_layers, loaded.reference)
    with staged_progress("", rates=True) as progress:
        report = run_validation(pack, loaded, norms=human, progress=progress)
    markdown, data = write_report(report, target)
    for key, row in report["targets"].items():
        click.echo(f"{key:<20} {row['value']:>8}  target {row['target']}  {'met' if row['met'] else 'NOT met'}")
    click.echo(f"wrote {markdown} and {data}")
