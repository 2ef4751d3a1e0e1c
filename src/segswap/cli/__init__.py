"""The ``segswap`` command: :mod:`~segswap.cli.app` registers the commands of one module per command
group (``pair``, ``backbones``, ``train``, ``synth``, ``collection``, ``verify``, ``evaluation``);
:mod:`~segswap.cli.options` holds what they share. Commands are thin: they check their arguments, then
call the package's functions.
"""

from .app import app, main

__all__ = ["app", "main"]
