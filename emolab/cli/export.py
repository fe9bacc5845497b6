"""`emolab export`: a session as a plot, a table, or a transcript."""

from __future__ import annotations

from pathlib import Path

import click

from emolab.core.errors import EmolabError


@click.command()
@click.argument("session_path", metavar="SESSION")
@click.option("--png", type=click.Path(dir_okay=False), help="A timeline plot as PNG.")
@click.option("--svg", type=click.Path(dir_okay=False), help="A timeline plot as SVG.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), help="One row per token, one column per emotion.")
@click.option("--markdown", type=click.Path(dir_okay=False), help="The transcript with each token's top emotions.")
@click.option(
    "--emotion",
    "emotions",
    multiple=True,
    help="Emotions to plot (default: those pinned in the console, else the six most active).",
)
@click.option("--raw", is_flag=True, help="Each token's own readout, not the smoothed one the console showed.")
def export(session_path, png, svg, csv_path, markdown, emotions, raw):
    """Export a recorded session."""
    from emolab.core.session import load_session
    from emolab.core.session.export import (
        check_exportable,
        choose_emotions,
        plot_timeline,
        session_half_life,
        write_csv,
        write_markdown,
    )

    if not any((png, svg, csv_path, markdown)):
        raise EmolabError("say what to export: --png, --svg, --csv and/or --markdown")
    data, _ = load_session(session_path)
    check_exportable(data, session_path)
    chosen = choose_emotions(data, [" ".join(e.lower().split()) for e in emotions] or None)
    half_life = 0.0 if raw else session_half_life(data)
    for target in (png, svg):
        if target:
            click.echo(f"wrote {plot_timeline(data, Path(target), chosen, half_life)}")
    if csv_path:
        click.echo(f"wrote {write_csv(data, Path(csv_path), half_life)}")
    if markdown:
        click.echo(f"wrote {write_markdown(data, Path(markdown), half_life=half_life)}")
