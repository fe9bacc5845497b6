"""`emolab chat`: the lab console."""

from __future__ import annotations

import click

from emolab.cli.options import model_options
from emolab.core.errors import EmolabError


@click.command()
@model_options
@click.option("--system", default=None, help="A system prompt (default: the chat template's own).")
@click.option("--pin", "pinned", multiple=True, metavar="EMOTION", help="Emotions with sliders at start. Repeatable.")
@click.option("--max-tokens", default=200, show_default=True, type=click.IntRange(min=1))
@click.option("--temperature", default=0.7, show_default=True, type=float)
@click.option("--top-p", default=0.9, show_default=True, type=float)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option(
    "--session",
    "session_path",
    default=None,
    type=click.Path(dir_okay=False),
    help="Record to this file (default: sessions/<time>-<pack>.json, or under $EMOLAB_SESSIONS).",
)
@click.option("--no-record", is_flag=True, help="Do not record this session.")
@click.option(
    "--in-process",
    is_flag=True,
    help="Run the engine in the console's own process instead of a child process (slower: the two "
    "share the interpreter; for debugging).",
)
@click.option(
    "--keymap",
    "keymap_path",
    default=None,
    type=click.Path(dir_okay=False),
    help="A JSON file of binding id → keys (default: $EMOLAB_KEYMAP, else keymap.json in the user's "
    "config directory, if there is one).",
)
def chat(
    vectors,
    model,
    device,
    dtype,
    trust_remote_code,
    system,
    pinned,
    max_tokens,
    temperature,
    top_p,
    seed,
    session_path,
    no_record,
    in_process,
    keymap_path,
):
    """Open the lab console: chat, steer with sliders, watch per-token readouts."""
    from dataclasses import asdict

    from emolab.core.sampling import Sampling
    from emolab.process.commands import EngineSpec

    if vectors is None:
        raise EmolabError("the console needs a vector pack: --vectors PACK (for example vectors/sonnet-proxy)")
    sampling = Sampling(temperature=temperature, top_p=top_p, max_tokens=max_tokens, seed=seed)
    spec = EngineSpec(
        pack=str(vectors),
        model=model or "",
        device=device,
        dtype=dtype,
        trust_remote_code=trust_remote_code,
        sampling=asdict(sampling),
        system=system,
    )
    app = console_app(
        spec,
        pinned=list(pinned),
        record=not no_record,
        session_path=session_path,
        in_process=in_process,
        keymap_path=keymap_path,
    )
    recorded = app.run()
    if recorded:
        click.echo(f"session recorded to {recorded}; replay it with: emolab replay {recorded}")
    elif not no_record:
        click.echo("no message was sent, so no session was recorded")


def console_app(
    spec,
    *,
    pinned: list[str] = (),
    record: bool = True,
    session_path=None,
    in_process: bool = False,
    keymap_path=None,
    thresholds: dict[str, float] | None = None,
):
    """The console for an EngineSpec, checked before it opens: a bad pack, model, pin or keymap is one line.

    The engine runs in a child process unless `in_process`; this process then reads only the pack's
    manifest and the model's config, and never imports torch.
    """
    from dataclasses import replace

    from emolab.core.model_sources import preflight
    from emolab.core.pack_manifest import read_pack_manifest
    from emolab.core.session import SessionRecorder, default_session_path
    from emolab.tui.app import EmolabApp, load_keymap
    from emolab.tui.child_link import child_process
    from emolab.tui.engine_link import in_process as in_this_process

    pack = read_pack_manifest(spec.pack)
    spec = replace(spec, model=spec.model or pack.model_id)
    pins = [pack.resolve(name) for name in pinned] or None
    config = preflight(spec.model)  # a bad model or pack fails here, before the app opens
    if config and "hidden_size" in config:
        pack.check_model(int(config["hidden_size"]), int(config.get("num_hidden_layers", 10**6)), spec.model)
    keymap = load_keymap(keymap_path)  # a bad keymap fails here too
    target = (session_path or default_session_path(pack.name)) if record else None

    if in_process:

        def loader(progress):
            from emolab.process.commands import open_engine

            return open_engine(spec, progress, ui_in_this_process=True)

        link = in_this_process(loader, spec.pack)
    else:
        link = child_process(spec)
    factory = (lambda meta: SessionRecorder(target, meta)) if target else None
    return EmolabApp(
        pack, link, model_label=spec.model, pinned=pins, keymap=keymap, recorder_factory=factory, thresholds=thresholds
    )
