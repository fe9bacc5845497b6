"""`emolab replay`: play a recorded session back."""

from __future__ import annotations

import click
import numpy as np

from emolab.cli.render import token_line, top_emotions
from emolab.core.errors import EmolabError


@click.command()
@click.argument("session_path", metavar="SESSION")
@click.option("--headless", is_flag=True, help="Print the transcript with per-token top emotions (no TUI).")
@click.option("--top", "top_k", default=3, show_default=True, type=click.IntRange(min=1))
@click.option("--all-tokens", is_flag=True, help="Also list the prompt tokens, not only the replies.")
@click.option("--verify", is_flag=True, help="Re-run the session and compare it token for token.")
@click.option(
    "--strict", is_flag=True, help="With --verify: a model or pack that differs from the recording is an error."
)
@click.option("--vectors", default=None, metavar="PACK", help="The pack (default: the recorded path).")
@click.option("--model", default=None, help="With --verify: the model (default: the recorded one).")
@click.option(
    "--device",
    default=None,
    help="With --verify: where to run (default: the recorded device, since another device computes other numbers).",
)
def replay(session_path, headless, top_k, all_tokens, verify, strict, vectors, model, device):
    """Play a recorded session back (recovering it first if the recording was cut off)."""
    from emolab.core.session import load_session

    data, recovered = load_session(session_path)
    if recovered:
        click.echo(f"recovered {recovered} journal entries from an interrupted recording", err=True)
    if verify:
        _verify(data, vectors=vectors, model=model, strict=strict, device=device)
        return
    if not headless:
        _interactive(data, vectors)
        return
    print_transcript(data, top_k=top_k, all_tokens=all_tokens)


def print_transcript(data, *, top_k: int, all_tokens: bool) -> None:
    """Every turn in recorded order, every branch and both sides of a compare included."""
    from emolab.core.session.export import reply_labels

    meta = data.meta
    click.echo(
        click.style(
            f"session  {meta['created']}  model {meta['model']['id']}  pack {meta['pack']['name']}  "
            f"{meta['device']}/{meta['dtype']}  seed {meta['sampling']['seed']}",
            dim=True,
        )
    )
    emotions = data.emotions
    probes = data.probe_matrix().astype(np.float32)
    columns = data.columns
    changes = {
        change["first_token"]: change
        for change in data.steering_with_first_tokens()
        if change["first_token"] is not None
    }
    alerts = {note["token_index"]: note for note in data.notes if note["kind"] == "alert" and "token_index" in note}
    for turn in data.turns:
        if turn["role"] == "user":
            click.echo(click.style(f"\nuser  {turn['text']}", bold=True))
            continue
        click.echo(click.style(f"\nassistant  ({', '.join(reply_labels(data, turn))})", bold=True))
        for row in data.reply_rows(turn):
            index = columns["index"][row]
            if index in changes:
                change = changes.pop(index)
                state = data.states.get(str(change["version"]), {})
                click.echo(
                    click.style(
                        f"      ⟂ steering now {', '.join(f'{k} {v:+.2f}' for k, v in state.items()) or 'off'}",
                        fg="yellow",
                    )
                )
            click.echo(token_line(index, columns["text"][row], probes[row], emotions, top_k))
            if index in alerts:
                click.echo(
                    click.style(f"      ⚠ {alerts[index]['emotion']} crossed {alerts[index]['threshold']}", fg="red")
                )
        click.echo(turn["text"])
    if all_tokens:
        click.echo(click.style("\nall tokens", bold=True))
        for row in range(data.token_count):
            click.echo(token_line(columns["index"][row], columns["text"][row], probes[row], emotions, top_k))
    if data.token_count:
        mean = probes[[r for r in range(data.token_count) if columns["source"][r] == "reply"] or [0]].mean(axis=0)
        click.echo(click.style("\nreplies, mean z", bold=True))
        for name, value in top_emotions(mean, emotions, max(top_k, 5)):
            click.echo(f"  {name:<16} {value:+.2f}")


def _verify(data, *, vectors, model, strict, device) -> None:
    from emolab.cli.progress import conversion_progress
    from emolab.core.engine import Engine
    from emolab.core.models import load_model
    from emolab.core.session.verify import hash_warnings, verify

    pack = _session_pack(data, vectors)
    meta = data.meta
    with conversion_progress() as progress:
        loaded = load_model(
            model or meta["model"]["id"], device=_verify_device(meta, device), dtype=meta["dtype"], progress=progress
        )
    engine = Engine(loaded, pack)
    warnings = hash_warnings(data, engine)
    for warning in warnings:
        if strict:
            raise EmolabError(f"--strict: {warning}")
        click.echo(click.style(f"warning: {warning}", fg="yellow"), err=True)
    result = verify(data, engine)
    click.echo(f"tokens      {result.matching}/{result.recorded} agree ({result.replayed} replayed)")
    click.echo(f"readouts    largest difference {result.max_readout_difference:.4f} z (float16 storage)")
    if result.identical:
        click.echo(click.style("verified    the replay reproduces the recording exactly", fg="green"))
        return
    click.echo(click.style(f"diverged    {result.divergence}", fg="red"))
    raise SystemExit(1)


def _verify_device(meta, device: str | None) -> str:
    """--device, else the recorded device: another device computes other numbers, so a CPU session
    verified on a GPU would report a false divergence."""
    if device is not None:
        return device
    from emolab.core.devices import pick_device

    try:
        pick_device(meta["device"])
    except EmolabError:
        raise EmolabError(
            f"the session was recorded on {meta['device']}, which this machine does not have; "
            "pass --device to verify elsewhere (the numbers may then differ)"
        ) from None
    return meta["device"]


def _interactive(data, vectors) -> None:
    from emolab.tui.replay import ReplayApp

    pack = _session_pack(data, vectors)
    if pack.emotions != data.emotions:
        raise EmolabError(f"pack {pack.name} has other emotions than the session was recorded with")
    ReplayApp(pack, data).run()


def _session_pack(data, vectors):
    """The pack a replay or a verify needs: --vectors, or the path the session recorded."""
    from pathlib import Path

    from emolab.core.pack import load_pack

    pack_path = vectors or data.meta["pack"]["path"]
    if vectors is None and not Path(pack_path).is_dir():
        raise EmolabError(
            f"the session was recorded with pack {data.meta['pack']['name']} at {pack_path}, "
            "which is not here; pass --vectors PACK"
        )
    return load_pack(pack_path)
