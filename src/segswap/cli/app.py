"""The ``segswap`` app: every command module's commands registered in one place, in the order of
``segswap --help``, and the console entry point :func:`main`."""

from __future__ import annotations

import errno
import sqlite3
import sys

import typer
from typer.core import TyperCommand, TyperGroup

from ..errors import SegswapError
from . import backbones, collection, evaluation, serve, synth, train, two_images, verify


def _plain_help(params: list) -> list:
    """Flags without a type column (``--flip``, not ``--flip <bool>``)."""
    for param in params:
        if getattr(param, "is_flag", False):
            param.metavar = ""
    return params


class Command(TyperCommand):
    """A command whose help shows flags without ``<bool>`` and arguments as ``IMAGE_A``, not ``{image_a}``."""

    def get_params(self, ctx):
        return _plain_help(super().get_params(ctx))

    def collect_usage_pieces(self, ctx) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name == "argument":
                name = param.name.upper() + ("..." if param.nargs != 1 else "")
                pieces.append(name if param.required else f"[{name}]")
        return pieces


class Group(TyperGroup):
    """A command group with the same help conventions as :class:`Command`."""

    def get_params(self, ctx):
        return _plain_help(super().get_params(ctx))


class App(typer.Typer):
    """``typer.Typer`` whose commands are :class:`Command` and groups :class:`Group`, with ``commands``
    (name → function) registered in order."""

    def __init__(self, commands: dict, **kwargs):
        super().__init__(cls=Group, add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, **kwargs)
        for name, function in commands.items():
            self.command(name, cls=Command)(function)


def _version(value: bool):
    if value:
        from .. import __version__

        typer.echo(f"segswap {__version__}")
        raise typer.Exit()


app = App({name: function for module in (two_images, backbones, train, synth, collection, serve, verify)
           for name, function in module.COMMANDS.items()},
          help="Find what images have in common: co-segmentation masks and dense correspondences.")
app.add_typer(App(evaluation.COMMANDS, help=evaluation.HELP), name="eval")


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit.")):
    pass


def disk_full(err: Exception) -> str | None:
    """The one line for a write that failed because the disk (or the user's quota) is full, or None
    for any other error. Every output is written atomically and `segswap index` resumes from its last
    committed batch, so running the command again after freeing space is all it takes."""
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        where = f" while writing {err.filename}" if err.filename else ""
        what = "no space left on the disk" if err.errno == errno.ENOSPC else "disk quota exceeded"
    elif isinstance(err, sqlite3.Error) and getattr(err, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
        where, what = " (the index's database)", "no space left on the disk"
    else:
        return None
    return f"{what}{where}: free some space and run the command again"


def main() -> None:
    """Console entry point: user errors, and a full disk, become one line on stderr and exit status 2."""
    try:
        app(prog_name="segswap")
    except SegswapError as err:
        typer.echo(f"error: {err}", err=True)
        sys.exit(2)
    except (OSError, sqlite3.Error) as err:
        message = disk_full(err)
        if message is None:
            raise
        typer.echo(f"error: {message}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
