"""Starting the viewer: checks first (index, options, address, port), then uvicorn on the address."""

from __future__ import annotations

import errno
import ipaddress
import socket
import sys

from ..errors import SegswapError
from .settings import ViewerSettings, check_settings

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) is reached only from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def listen(host: str, port: int) -> socket.socket:
    """A socket listening on ``host``:``port``, or a one-line error if ``host`` is not an address of this
    machine or ``port`` is taken. Binding before the server starts is the check itself (no race with
    another program), and connections wait in its backlog until the server takes them."""
    if not 0 <= port < 65536:
        raise SegswapError(f"--port must be between 1 and 65535 (0: any free port), not {port}")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as err:
        raise SegswapError(f"--host {host}: not an address or a known name ({err})") from None
    family, _, _, _, address = infos[0]
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: TIME_WAIT is no conflict
    try:
        listener.bind(address)
        listener.listen(128)
    except OSError as err:
        listener.close()
        reason = "already in use (another `segswap serve`? try --port)" if err.errno == errno.EADDRINUSE else err.strerror
        raise SegswapError(f"{host}:{port}: cannot listen there: {reason}") from None
    return listener


def serve(settings: ViewerSettings, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *, open_message=print) -> None:
    """Check everything, build the viewer, print its address and serve until interrupted."""
    check_settings(settings)
    listener = listen(host, port)
    if not is_loopback(host):
        print(f"warning: --host {host} shares the viewer with the network: anyone who reaches this machine can "
              f"see the collection's images and run searches. There is no password.", file=sys.stderr, flush=True)
    import uvicorn

    from .app import create_app
    from .viewer import Viewer

    try:
        viewer = Viewer(settings)
    except BaseException:
        listener.close()
        raise
    shown = f"[{host}]" if ":" in host else host
    port = listener.getsockname()[1]  # the one the system chose for --port 0
    open_message(f"segswap viewer of {settings.index} ({len(viewer.catalog)} images): http://{shown}:{port}/  (Ctrl-C stops it)")
    config = uvicorn.Config(create_app(viewer), host=host, port=port, log_level="warning", access_log=False,
                            h11_max_incomplete_event_size=16 * 1024)  # bounds a request's line and headers
    uvicorn.Server(config).run(sockets=[listener])
