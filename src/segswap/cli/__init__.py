"""The ``segswap`` command: :mod:`~segswap.cli.app` registers the commands of one module per command
group (``two_images``, ``backbones``, ``train``, ``synth``, ``collection``, ``verify``, ``evaluation``);
:mod:`~segswap.cli.common` holds what they share. Commands are thin: they check their arguments, then
call the package's functions.
"""

from .app import app, main

__all__ = ["app", "main"]
