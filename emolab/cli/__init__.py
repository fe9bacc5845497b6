"""The `emolab` command: a thin layer over the engine (and, for `chat`, the TUI)."""

from __future__ import annotations

import sys

import click

from emolab import __version__
from emolab.core.errors import EmolabError


class EmolabGroup(click.Group):
    """Turns the user's mistakes into one line on stderr and exit code 2, never a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except EmolabError as error:
            click.echo(f"emolab: error: {error}", err=True)
            ctx.exit(2)
        except KeyboardInterrupt:
            click.echo("emolab: interrupted", err=True)
            ctx.exit(130)
        except BrokenPipeError:  # `emolab run ... | head`
            sys.stderr.close()
            ctx.exit(0)


@click.group(cls=EmolabGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="emolab")
def main() -> None:
    """emolab: watch and steer a language model's emotion vectors."""


def _register() -> None:
    from emolab.cli import build, chat, export, pack_commands, probe, replay, run, sweep

    main.add_command(chat.chat)
    main.add_command(run.run)
    main.add_command(probe.probe)
    main.add_command(pack_commands.pack)
    main.add_command(build.build_pack)
    main.add_command(build.validate)
    main.add_command(replay.replay)
    main.add_command(export.export)
    main.add_command(sweep.sweep)


_register()
