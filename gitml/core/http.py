"""Listening sockets and a uvicorn server that stops quietly: what gitml's two servers share.

``gitml models serve`` and ``gitml ui`` bind their socket here before starting uvicorn (so a
port in use is a clear error before anything else happens, and port 0 picks a free one), and
run uvicorn's server with :func:`quiet_server`. uvicorn is imported only when a server is made.
"""

from __future__ import annotations

import contextlib
import ipaddress
import signal
import socket
import threading
from collections.abc import Callable
from typing import Any

from gitml.core.errors import BadInputError


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only (``127.0.0.1``, ``::1``, ``localhost``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (connections wait in its backlog until uvicorn runs).

    Raises:
        BadInputError: the address is in use, not this machine's, or not allowed.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP, and
    # without it each answer (headers, then body) waits ~40 ms for the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise BadInputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                            hint="choose another --port or --host") from None
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    """``http://host:port`` of a bound socket (an IPv6 host in brackets)."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def quiet_server(config: Any, on_started: Callable[[], None] | None = None) -> Any:
    """The uvicorn server for ``config``, stopped by Ctrl-C or SIGTERM as a finished command (exit 0).

    uvicorn raises the stopping signal again once it has shut down (so that the process dies
    of it); a stop the user asked for is the command's normal end, so it is not raised again.

    Args:
        config: uvicorn's ``Config``.
        on_started: called once the server answers and its signal handlers are in place (a
            URL printed then can be acted on at once: a SIGTERM right after it stops the server
            cleanly instead of killing the process).
    """
    import uvicorn

    class QuietServer(uvicorn.Server):
        async def startup(self, sockets=None) -> None:
            await super().startup(sockets)
            if self.started and on_started is not None:
                on_started()

        @contextlib.contextmanager
        def capture_signals(self):
            """Stop gracefully on SIGINT and SIGTERM while serving, then restore the handlers."""
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    return QuietServer(config)
