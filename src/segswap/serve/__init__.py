"""`segswap serve`: a local web viewer over an index — the collection, a detail's matches, discovered
patterns, co-segmentation masks.

:func:`serve` checks its settings and runs the server; :func:`~segswap.serve.app.create_app` is the
application (for tests and embedding). Pages are static files in ``static/`` over a JSON API; long work
runs on background lanes (:mod:`segswap.serve.jobs`). See docs/viewer.md.
"""

from .server import DEFAULT_HOST, DEFAULT_PORT, serve
from .settings import ViewerSettings

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "ViewerSettings", "serve"]
