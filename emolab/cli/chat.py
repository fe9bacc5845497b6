"""`emolab chat`: the lab console."""

from __future__ import annotations

import click

from emolab.cli.options import load_checked, model_options
from emolab.core.errors import EmolabError


@click.command()
@model_options
@click.option("--system", default=None, help="A system prompt (default: the chat template's own).")
@click.option("--pin", "pinned", multiple=True, metavar="EMOTION", help="Emotions with sliders at start. Repeatable.")
@click.option("--max-tokens", default=200, show_default=True, type=click.IntRange(min=1))
@click.option("--temperature", default=0.7, show_default=True, type=float)
@click.option("--top-p", default=0.9, show_default=True, type=float)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--session", "session_path", default=None, type=click.Path(dir_okay=False),
              help="Record to this file (default: sessions/<time>-<pack>.json, or under $EMOLAB_SESSIONS).")
@click.option("--no-record", is_flag=True, help="Do not record this session.")
@click.option("--keymap", "keymap_path", default=None, type=click.Path(dir_okay=False),
              help="A JSON file of binding id → keys (default: $EMOLAB_KEYMAP, else keymap.json in the user's "
                   "config directory, if there is one).")
def chat(vectors, model, device, dtype, trust_remote_code, system, pinned, max_tokens, temperature, top_p, seed,
         session_path, no_record, keymap_path):
    """Open the lab console: chat, steer with sliders, watch per-token readouts."""
    from emolab.core.models import preflight
    from emolab.core.pack import load_pack
    from emolab.core.sampling import Sampling

    if vectors is None:
        raise EmolabError("the console needs a vector pack: --vectors PACK (for example vectors/sonnet-proxy)")
    pack = load_pack(vectors)
    sampling = Sampling(temperature=temperature, top_p=top_p, max_tokens=max_tokens, seed=seed)
    pins = [pack.resolve(name) for name in pinned] or None
    reference = model or pack.model_id
    config = preflight(reference)  # a bad model or pack fails here, before the app opens
    if config and "hidden_size" in config:
        pack.check_model(int(config["hidden_size"]), int(config.get("num_hidden_layers", 10**6)), reference)

    def loader(progress):
        from emolab.core.devices import threads_beside_a_ui
        from emolab.core.engine import Engine

        loaded = load_checked(pack, reference, device=device, dtype=dtype, trust_remote_code=trust_remote_code,
                              progress=progress)
        return Engine(loaded, pack, sampling=sampling, system_prompt=system,
                      decode_threads=threads_beside_a_ui(loaded.device))

    from emolab.core.session import SessionRecorder, default_session_path, session_meta
    from emolab.tui.app import EmolabApp, load_keymap

    keymap = load_keymap(keymap_path)  # a bad keymap fails here too
    target = None if no_record else (session_path or default_session_path(pack.name))

    def recorder_factory(engine):
        return SessionRecorder(target, session_meta(engine, vectors))

    app = EmolabApp(pack, loader, model_label=reference, pinned=pins, keymap=keymap,
                    recorder_factory=recorder_factory if target else None)
    recorded = app.run()
    if recorded:
        click.echo(f"session recorded to {recorded}; replay it with: emolab replay {recorded}")
    elif target:
        click.echo("no message was sent, so no session was recorded")
