"""Where replies come from: a maildir, an mbox file, an IMAP mailbox, or SMTP.

Each source hands raw messages to a ``receive`` callable and marks a message
read only after it returns (its outcome is committed). A crash in between
means the message is read again, and :class:`~workflow.replies.inbox.Inbox` knows it
by its Message-ID: nothing happens twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import imaplib
import mailbox
import signal
import ssl
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from workflow.errors import InvalidInput, Unreachable
from workflow.ops.logs import get_logger
from workflow.replies.inbox import Receipt
from workflow.replies.tokens import tokens_in

log = get_logger(__name__)

Receive = Callable[[bytes, Sequence[str]], Receipt]


def read_maildir(path: Path, receive: Receive) -> Iterator[Receipt]:
    """Every message in ``new/``, moved to ``cur/`` (flagged seen) once handled."""
    if not (path / "new").is_dir() or not (path / "cur").is_dir():
        raise InvalidInput(f"{path} is not a maildir (it needs new/, cur/ and tmp/)")
    for file in sorted((path / "new").iterdir()):
        if not file.is_file() or file.name.startswith("."):
            continue
        receipt = receive(file.read_bytes(), ())
        target = path / "cur" / (file.name.partition(":")[0] + ":2,S")
        with contextlib.suppress(FileNotFoundError):  # another reader moved it first
            file.rename(target)
        yield receipt


def read_mbox(path: Path, receive: Receive) -> Iterator[Receipt]:
    """Every message of an mbox file; the file is left as it is (seen ones are known)."""
    if not path.is_file():
        raise InvalidInput(f"{path} is not an mbox file")
    box = mailbox.mbox(path, create=False)
    try:
        for key in box.iterkeys():
            yield receive(box.get_bytes(key), ())
    finally:
        box.close()


def read_imap(
    *,
    host: str,
    port: int,
    username: str | None,
    password: str | None,
    folder: str,
    receive: Receive,
    ca_file: Path | None = None,
    timeout: float = 30.0,
) -> Iterator[Receipt]:
    """Unseen messages of an IMAPS folder, flagged seen once handled."""
    try:
        context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        client = imaplib.IMAP4_SSL(host, port, ssl_context=context, timeout=timeout)
    except (OSError, imaplib.IMAP4.error) as exc:
        raise Unreachable(f"cannot reach the IMAP server {host}:{port}: {exc}") from None
    try:
        if username:
            try:
                client.login(username, password or "")
            except imaplib.IMAP4.error as exc:
                raise Unreachable(f"the IMAP server refused the login: {exc}") from None
        status, _ = client.select(_quoted(folder))
        if status != "OK":
            raise InvalidInput(f"the IMAP folder {folder!r} cannot be opened")
        _, found = client.uid("SEARCH", "UNSEEN")
        for uid in (found[0] or b"").decode().split():
            _, data = client.uid("FETCH", uid, "(BODY.PEEK[])")
            raw = next((part[1] for part in data if isinstance(part, tuple)), None)
            if raw is None:
                continue
            receipt = receive(bytes(raw), ())
            client.uid("STORE", uid, "+FLAGS", "(\\Seen)")
            yield receipt
    finally:
        with contextlib.suppress(Exception):
            client.logout()


def _quoted(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


# --- the SMTP listener -------------------------------------------------------------


class ReplyHandler:
    """aiosmtpd handler: accepts mail for reply addresses only, answers 250 once committed.

    Every message is judged on one thread of its own, in the order the messages end: the
    engine's transactions and, above all, the hand-off of answers and events to the
    workers (a Celery publisher, not safe to share between threads) never run at once.
    Parallel SMTP sessions still overlap in everything else.
    """

    def __init__(self, mailbox_address: str, receive: Receive) -> None:
        self.mailbox_address = mailbox_address
        self.receive = receive
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="council-inbox")

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if not tokens_in(self.mailbox_address, [address]):
            return "550 5.1.1 No such reply address"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any
    ) -> str:
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        try:
            receipt = await asyncio.get_running_loop().run_in_executor(
                self.executor, self.receive, bytes(raw), list(envelope.rcpt_tos)
            )
        except Exception as exc:  # the database is away: the sending server will retry
            log.error("inbox.smtp_failed", error=type(exc).__name__)
            return "451 4.3.0 Temporary failure, try again later"
        log.info("inbox.smtp_received", outcome=receipt.outcome, reason=receipt.reason)
        return "250 OK"


def serve(
    *,
    host: str,
    port: int,
    mailbox_address: str,
    max_bytes: int,
    receive: Receive,
    ready: Callable[[], None] | None = None,
) -> None:
    """Run the SMTP listener in the foreground until SIGINT or SIGTERM."""
    from aiosmtpd.smtp import SMTP

    async def main() -> None:
        loop = asyncio.get_running_loop()
        handler = ReplyHandler(mailbox_address, receive)

        def factory() -> SMTP:
            return SMTP(handler, data_size_limit=max_bytes, enable_SMTPUTF8=True)

        try:
            server = await loop.create_server(factory, host=host, port=port)
        except OSError as exc:
            raise Unreachable(f"cannot listen on {host}:{port}: {exc.strerror}") from None
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        log.info("inbox.listening", host=host, port=port)
        if ready is not None:
            ready()
        async with server:
            await stop.wait()
        handler.executor.shutdown(wait=True)  # the message being judged finishes first
        log.info("inbox.stopped", at=dt.datetime.now(dt.UTC).isoformat())

    asyncio.run(main())
