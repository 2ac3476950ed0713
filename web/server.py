"""Serving the application with waitress: a pure-Python, production WSGI server."""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any

#: Threads answering requests (the pages are database reads).
THREADS = 8


def make_server(app: Any, host: str, port: int) -> Any:
    """A waitress server bound to ``host:port`` (port 0: any free one), not yet serving.

    ``ident`` names no server software or version in the ``Server`` header."""
    from waitress.server import create_server

    return create_server(
        app, host=host, port=port, threads=THREADS, ident="council",
        channel_timeout=60, max_request_body_size=64 * 1024, clear_untrusted_proxy_headers=True,
    )  # fmt: skip


def url_of(server: Any) -> str:
    host = server.effective_host
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{server.effective_port}/"


def serve(app: Any, host: str, port: int, ready: Callable[[str], None]) -> None:
    """Bind, say where (``ready(url)``), and serve until SIGTERM or Ctrl-C."""
    server = make_server(app, host, port)

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    ready(url_of(server))
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
