"""The command line reference page (docs/cli.md), written from the commands themselves by typer's own
generator, so that it says what ``--help`` says: ``python -m segswap.cli.reference docs/cli.md``
(`make docs`)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from typer.cli import get_docs_for_click

from .app import app


def command_reference() -> str:
    """Markdown for every command and its options."""
    command = typer.main.get_command(app)
    with typer.Context(command) as ctx:
        text = get_docs_for_click(obj=command, ctx=ctx, name="segswap", title="Command line")
    return text.strip() + "\n"


if __name__ == "__main__":
    Path(sys.argv[1]).write_text(command_reference())
