"""`emolab probe`: per-token emotion readouts of a text."""

from __future__ import annotations

import sys

import click
import numpy as np

from emolab.cli.jsonl import dumps, event_record
from emolab.cli.options import model_options, open_model, open_pack
from emolab.cli.render import token_line, top_emotions
from emolab.core.errors import EmolabError


@click.command()
@model_options
@click.argument("source", metavar="FILE|-")
@click.option(
    "--top", "top_k", default=3, show_default=True, type=click.IntRange(min=1), help="Emotions shown per token."
)
@click.option("--json", "as_json", is_flag=True, help="Write token events as JSON lines, as `run --json` does.")
@click.option("--raw", is_flag=True, help="Show each token's own readout, not the smoothed one the console shows.")
def probe(vectors, model, device, dtype, trust_remote_code, source, top_k, as_json, raw):
    """Read every token of a text (a file, or - for stdin) through the pack's probes."""
    from emolab.core.engine import Engine

    text = _read_source(source)
    pack = open_pack(vectors, required=True)
    loaded = open_model(pack, model, device, dtype, trust_remote_code)
    engine = Engine(loaded, pack)
    events = list(engine.read_text(text))
    if as_json:
        for event in events:
            click.echo(dumps(event_record(event, pack.emotions)))
        return
    for event in events:
        click.echo(token_line(event.index, event.text, event.probe if raw else event.smoothed, pack.emotions, top_k))
    mean = np.mean([event.probe if raw else event.smoothed for event in events], axis=0)
    shown = "raw" if raw else f"smoothed (half-life {pack.smoothing_half_life:g} tokens)"
    click.echo(click.style(f"\nwhole text, mean {shown} z over {len(events)} tokens", bold=True))
    for name, value in top_emotions(mean, pack.emotions, max(top_k, 10)):
        click.echo(f"  {name:<16} {value:+.2f}")


def _read_source(source: str) -> str:
    if source == "-":
        return sys.stdin.read()
    try:
        with open(source, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        raise EmolabError(f"{source}: no such file") from None
    except UnicodeDecodeError:
        raise EmolabError(f"{source}: not UTF-8 text") from None
    except OSError as error:
        raise EmolabError(f"{source}: {error.strerror}") from None
