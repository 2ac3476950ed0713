"""Real servers for integration tests: a private Redis, an SMTP catcher, Celery workers.

Each test gets its own redis-server on a unix socket (so a test may stop and
restart it without touching the machine's Redis), an aiosmtpd server on a free
loopback port that keeps every message it accepts, and worker subprocesses it
can kill with SIGKILL.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from tests.support import ROOT
from workflow.ops.embedded import ping


def wait_for(
    condition: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    step: float = 0.1,
    progress: Callable[[], object] | None = None,
) -> None:
    """Wait until ``condition()``; fail after ``timeout`` seconds without it.

    With ``progress``, the timeout counts from the last time its value changed: a slow
    machine that keeps going is waited for, one that is stuck fails.
    """
    deadline = time.monotonic() + timeout
    seen = progress() if progress is not None else None
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(step)
        if progress is not None and (now := progress()) != seen:
            seen, deadline = now, time.monotonic() + timeout
    stalled = f" (stuck at {seen!r})" if progress is not None else ""
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}{stalled}")


def council(env: dict[str, str], *args: str, actor: str = "sara.nilsson") -> str:
    """Run the real CLI in a subprocess, as a coordinator would; return its stdout."""
    result = subprocess.run(
        [sys.executable, "-c", "import cli; cli.main()", *args],
        cwd=ROOT,
        env={**env, "COUNCIL_ACTOR": actor},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


# --- Redis -------------------------------------------------------------------------


@dataclass
class RedisServer:
    """A redis-server of the test's own, on a unix socket, with the append-only file on."""

    binary: Path
    directory: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def socket_path(self) -> Path:
        return self.directory / "redis.sock"

    @property
    def url(self) -> str:
        return f"redis+socket://{self.socket_path}"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                str(self.binary), "--port", "0", "--unixsocket", str(self.socket_path),
                "--dir", str(self.directory), "--appendonly", "yes", "--appendfsync", "always",
                "--maxmemory-policy", "noeviction", "--save", "",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for(self.ping, timeout=10, what="redis-server to answer")

    def ping(self) -> bool:
        return ping(self.socket_path, timeout=0.5)

    def stop(self) -> None:
        """Stop it the way an operator would (SIGTERM: it flushes its AOF first)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None


# --- SMTP --------------------------------------------------------------------------


@dataclass
class Received:
    """One message the catcher accepted."""

    envelope_to: list[str]
    message: EmailMessage
    #: The client's (address, port): one per connection.
    peer: Any = None

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])


@dataclass
class _Handler:
    received: list[Received] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)
    #: The peers that said QUIT (a connection closed politely).
    quits: list[Any] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: Seconds to take over each message before accepting it (a slow server).
    delay: float = 0.0
    #: Offer PIPELINING (RFC 2920), as Postfix, Exim and Exchange do; aiosmtpd reads the
    #: pipelined commands in order either way, it only does not say so by itself.
    pipelining: bool = True
    #: Replies to give the next MAIL FROMs instead of 250 (a server refusing a sender).
    refuse_sender: list[str] = field(default_factory=list)
    #: Replies to give the next messages' end of DATA instead of accepting them.
    refuse_data: list[str] = field(default_factory=list)

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        if self.pipelining:
            responses.insert(1, "250-PIPELINING")
        return responses

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, mail_options: Any
    ) -> str:
        if self.refuse_sender:
            return self.refuse_sender.pop(0)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_QUIT(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.quits.append(session.peer)
        return "221 Bye"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.refuse_data:
            return self.refuse_data.pop(0)
        parsed = email.message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        with self.lock:
            self.received.append(Received(list(envelope.rcpt_tos), parsed, session.peer))
        return "250 Message accepted"


class SmtpCatcher:
    """An aiosmtpd server on loopback that keeps what it receives; it can go down and up."""

    def __init__(self) -> None:
        self.handler = _Handler()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._controller: Controller | None = None

    def start(self) -> None:
        self._controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def received(self) -> list[Received]:
        with self.handler.lock:
            return list(self.handler.received)

    def message_ids(self) -> list[str]:
        return [r.message_id for r in self.received]


# --- Celery workers ----------------------------------------------------------------


class WorkerProcess:
    """``celery -A worker worker`` in its own process group, beat embedded (-B)."""

    def __init__(self, env: dict[str, str], log: Path, *, concurrency: int = 2) -> None:
        self.env = env
        self.log = log
        self.concurrency = concurrency
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable, "-m", "celery", "-A", "worker", "worker", "-B",
                    "--pool=prefork", f"--concurrency={self.concurrency}", "--loglevel=INFO",
                    "--without-mingle", "--without-gossip",
                    "--schedule", str(self.log.parent / f"beat-{os.getpid()}-{time.time_ns()}"),
                ],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        wait_for(
            lambda: b" ready." in self.log.read_bytes()[offset:] or self.process.poll() is not None,  # type: ignore[union-attr]
            timeout=60,
            what="the Celery worker to be ready",
        )
        if self.process.poll() is not None:
            raise AssertionError(f"the worker exited: {self.log.read_text()[-2000:]}")

    def freeze(self, *, thaw: bool = False) -> None:
        """SIGSTOP the whole worker (it holds what it holds, changing nothing), or SIGCONT."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGCONT if thaw else signal.SIGSTOP)

    def kill(self) -> None:
        """SIGKILL the whole worker (main process, pool children and beat) at once."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None

    def stop(self) -> None:
        """A warm shutdown (SIGTERM), then SIGKILL if it lingers."""
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        # pool children left behind by a killed parent
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process = None
