"""`emolab run`: one steered, probed chat turn, streamed to stdout."""

from __future__ import annotations

import click

from emolab.cli.jsonl import dumps, event_record
from emolab.cli.options import model_options, open_model, open_pack, weights_warning
from emolab.cli.render import token_line
from emolab.core.errors import EmolabError
from emolab.core.events import Token, Truncated, TurnFinished, TurnStarted


@click.command()
@model_options
@click.option("--prompt", "-p", required=True, help="The user message.")
@click.option("--system", default=None, help="A system prompt (default: the chat template's own).")
@click.option(
    "--steer",
    "steer",
    multiple=True,
    metavar="EMOTION=STRENGTH",
    help="Steer toward an emotion, in units of the layer's mean residual norm. Repeatable.",
)
@click.option("--max-tokens", default=200, show_default=True, type=click.IntRange(min=1))
@click.option("--temperature", default=0.7, show_default=True, type=float, help="0 is greedy.")
@click.option("--top-p", default=0.9, show_default=True, type=float)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option(
    "--top", "top_k", default=3, show_default=True, type=click.IntRange(min=1), help="Emotions shown per token."
)
@click.option("--show-prompt", is_flag=True, help="Also show the prompt's tokens and readouts.")
@click.option("--json", "as_json", is_flag=True, help="Write one JSON object per line (see README).")
@click.option(
    "--session",
    "session_path",
    default=None,
    type=click.Path(dir_okay=False),
    help="Also record the turn to this session file (needs --vectors).",
)
@click.option("--raw", is_flag=True, help="Show each token's own readout, not the smoothed one the console shows.")
def run(
    vectors,
    model,
    device,
    dtype,
    trust_remote_code,
    prompt,
    system,
    steer,
    max_tokens,
    temperature,
    top_p,
    seed,
    top_k,
    show_prompt,
    as_json,
    session_path,
    raw,
):
    """Run one chat turn with live probes, and optional steering."""
    from emolab.core.engine import Engine
    from emolab.core.sampling import Sampling
    from emolab.core.steering import SteeringState, parse_steer_option

    sampling = Sampling(temperature=temperature, top_p=top_p, max_tokens=max_tokens, seed=seed)
    requested = [parse_steer_option(option) for option in steer]
    if not prompt.strip():
        raise EmolabError("--prompt is empty")
    if requested and vectors is None:
        raise EmolabError("--steer needs a vector pack: add --vectors PACK")
    if session_path and vectors is None:
        raise EmolabError("--session needs a vector pack: add --vectors PACK")

    pack = open_pack(vectors, required=False)
    if requested:
        SteeringState(pack).update(dict(requested))  # names and ranges fail here, before the model loads
    loaded = open_model(pack, model, device, dtype, trust_remote_code, decoding=True)
    engine = Engine(loaded, pack, sampling=sampling, system_prompt=system)
    recorder = None
    if session_path:
        from emolab.core.session import SessionRecorder, session_meta

        recorder = SessionRecorder(session_path, session_meta(engine, vectors))
    if requested:
        engine.steering.update(dict(requested))
        if recorder:
            snapshot = engine.steering.snapshot()
            for name, strength in snapshot.strengths.items():
                recorder.record_steering(name, strength, snapshot.version, snapshot.as_dict())
    events = _recorded(engine.chat(prompt), recorder, prompt)
    emotions = pack.emotions if pack is not None else None
    warning = weights_warning(pack, loaded) if pack is not None else None

    if as_json:
        start = {
            "type": "start",
            "model": loaded.reference,
            "weights": loaded.weights_id,
            "device": loaded.device.type,
            "dtype": str(loaded.dtype).removeprefix("torch."),
            "decoder": engine.decoder.name,
            "matmul": engine.decoder.matmul,
            "prompt_format": loaded.prompt_format,
            "pack": pack.name if pack else None,
            "emotions": emotions or [],
            "steering": engine.steering.snapshot().as_dict() if engine.steering else {},
            "sampling": {"temperature": temperature, "top_p": top_p, "max_tokens": max_tokens, "seed": seed},
        }
        click.echo(dumps(start))
        if warning:
            click.echo(dumps({"type": "warning", "message": warning}))
        for event in events:
            click.echo(dumps(event_record(event, emotions)))
        return

    steering = (
        ", ".join(f"{name} {value:+g}" for name, value in engine.steering.snapshot().strengths.items())
        if engine.steering
        else ""
    )
    click.echo(
        click.style(
            f"{loaded.describe()} · pack {pack.name if pack else 'none'} · steering {steering or 'off'}", dim=True
        ),
        err=True,
    )
    if warning:
        click.echo(click.style(f"warning: {warning}", fg="yellow"), err=True)
    for event in events:
        if isinstance(event, Truncated):
            click.echo(f"[truncated {event.dropped_messages} old messages to fit the context]", err=True)
        elif isinstance(event, TurnStarted):
            if show_prompt:
                click.echo(click.style("prompt", bold=True))
        elif isinstance(event, Token):
            if event.source == "prompt" and not show_prompt:
                continue
            click.echo(token_line(event.index, event.text, event.probe if raw else event.smoothed, emotions, top_k))
        elif isinstance(event, TurnFinished):
            click.echo(click.style("\nreply", bold=True))
            click.echo(event.text)
            click.echo(
                click.style(
                    f"\n{event.reply_tokens} tokens, {event.tokens_per_second:.1f} tokens/s, ended by {event.reason}",
                    dim=True,
                ),
                err=True,
            )


def _recorded(events, recorder, prompt):
    """Pass events through, recording them when a session file was asked for."""
    if recorder is None:
        yield from events
        return
    recorder.record_note("message", text=prompt)
    try:
        for event in events:
            recorder.record_event(event)
            yield event
    finally:
        recorder.close()
