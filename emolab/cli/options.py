"""Options shared by the commands that load a model and a pack."""

from __future__ import annotations

import functools

import click

from emolab.core.errors import EmolabError


def model_options(function):
    """--vectors, --model, --device, --dtype, --trust-remote-code."""

    @click.option("--vectors", "vectors", metavar="PACK", help="A vector pack directory, e.g. vectors/sonnet-proxy.")
    @click.option(
        "--model",
        "model",
        metavar="MODEL",
        help="A local directory, a hub id, or `bundled`. Default: the model the pack was built for.",
    )
    @click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N or mps.")
    @click.option("--dtype", default="auto", show_default=True, help="auto, float32, bfloat16 or float16.")
    @click.option("--trust-remote-code", is_flag=True, help="Allow the model repository's own Python code to run.")
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        return function(*args, **kwargs)

    return wrapper


def open_pack(vectors, *, required: bool):
    """The pack, validated: the cheap check that runs before any model loads."""
    from emolab.core.pack import load_pack

    if vectors is None and required:
        raise EmolabError("this command needs a vector pack: --vectors PACK (for example vectors/sonnet-proxy)")
    return load_pack(vectors) if vectors is not None else None


def open_model(pack, model, device, dtype, trust_remote_code, *, decoding: bool = False):
    """The model the user named, or the pack's; then check that the two fit."""
    from emolab.cli.progress import conversion_progress

    reference = model or (pack.model_id if pack is not None else "bundled")
    with conversion_progress() as progress:
        return load_checked(
            pack,
            reference,
            device=device,
            dtype=dtype,
            trust_remote_code=trust_remote_code,
            progress=progress,
            decoding=decoding,
        )


def load_checked(pack, reference: str, **options):
    """`load_model(reference, **options)`, then check that the pack (if any) was built for its shape."""
    from emolab.core.models import load_model

    loaded = load_model(reference, **options)
    if pack is not None:
        pack.check_model(loaded.hidden_size, loaded.num_layers, loaded.reference)
    return loaded


def weights_warning(pack, loaded) -> str | None:
    recorded = pack.model_weights
    if recorded and loaded.weights_id not in ("unknown", recorded):
        return (
            f"the pack {pack.name} was built on weights {recorded[:23]}, "
            f"but {loaded.reference} has {loaded.weights_id[:23]}: readouts may be off"
        )
    return None


def parse_layers(text: str, *, option: str = "--layers", example: str = "12,16,20") -> tuple[int, ...]:
    """`12,16,20` → (12, 16, 20): decoder block indices, sorted, each once."""
    try:
        layers = tuple(sorted({int(part) for part in text.split(",") if part.strip()}))
    except ValueError:
        layers = ()
    if not layers or layers[0] < 0:
        raise EmolabError(f"{option} {text!r}: expected block indices such as {example}")
    return layers
