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
