"""`emolab pack ...`: inspect vector packs."""

from __future__ import annotations

import click


@click.group()
def pack() -> None:
    """Inspect vector packs."""


@pack.command()
@click.argument("path", metavar="PACK")
def info(path):
    """Print a pack's manifest summary and validate it."""
    from emolab.core.pack import load_pack

    loaded = load_pack(path)  # raises a one-line PackError if anything is wrong
    for line in loaded.summary_lines():
        click.echo(line)
    click.echo(click.style("valid      yes: manifest, shapes, unit norms, finite statistics", fg="green"))


@pack.command()
@click.argument("path", metavar="PACK")
@click.option("--model", default=None, help="Default: the model the pack was built for.")
@click.option("--device", default="auto", show_default=True)
@click.option(
    "--dtype", default=None, help="Default: the dtype the pack was built in, so that its cached activations are reused."
)
@click.option("--trust-remote-code", is_flag=True)
def alerts(path, model, device, dtype, trust_remote_code):
    """Calibrate a pack's default alert thresholds and smoothing (alerts.json) again.

    For packs built before build-pack calibrated them. Reads the activations the build read
    (from the cache when they are there), so it needs the pack's corpus.
    """
    from emolab.cli.options import open_model
    from emolab.cli.progress import staged_progress
    from emolab.core.pack import load_pack
    from emolab.recipe.build import read_build_activations, write_calibrated_alerts

    vector_pack = load_pack(path)
    loaded = open_model(vector_pack, model, device, dtype or vector_pack.manifest["model"]["dtype"], trust_remote_code)
    with staged_progress("", rates=True) as progress:
        activations, settings, texts = read_build_activations(vector_pack, loaded, progress)
        write_calibrated_alerts(vector_pack, loaded, activations, texts, settings, progress)
    click.echo(load_pack(path).summary_lines()[-1])  # the alerts line, read back from the new file
