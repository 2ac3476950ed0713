"""Handing finished messages to the world: SMTP, or a maildir on disk.

A transport is used as a context manager for a batch, so SMTP opens one
connection for many messages; after a batch that went well the connection is
kept for the next one (at most :data:`IDLE_SECONDS` idle, checked with NOOP),
so a worker delivering one prompt per task does not pay a connection, STARTTLS
and login for each. Failures raise :class:`DeliveryError`, marked
transient (try again later: a connection refused, a 4xx reply) or permanent (a
5xx reply, a refused recipient). The SMTP password never appears in an error.
"""

from __future__ import annotations

import contextlib
import functools
import mailbox
import re
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Protocol

from workflow.errors import DeliveryError
from workflow.mail.wire import Wire
from workflow.settings import Settings, SmtpSecurity


class Transport(Protocol):
    """Sends messages; open with ``with``, then :meth:`send` any number of them."""

    def __enter__(self) -> Transport: ...

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    def send(self, message: EmailMessage | Wire) -> None: ...


class MaildirTransport:
    """Writes each message into a maildir (``new/``), the embedded default."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._box: mailbox.Maildir | None = None

    def __enter__(self) -> MaildirTransport:
        try:
            self._box = mailbox.Maildir(self.path, create=True)
        except OSError as exc:
            raise DeliveryError(
                f"cannot open maildir {self.path}: {exc.strerror}", transient=True
            ) from None
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._box = None

    def send(self, message: EmailMessage | Wire) -> None:
        assert self._box is not None, "use the transport in a with block"
        try:  # a maildir file ends its lines in LF, as the mailbox module writes them
            self._box.add(
                message.data.replace(b"\r\n", b"\n") if isinstance(message, Wire) else message
            )
        except OSError as exc:
            raise DeliveryError(
                f"cannot write to maildir: {exc.strerror}", transient=True
            ) from None


#: How long an idle SMTP connection is kept for the next batch (servers drop idle
#: clients after a minute or more; RFC 5321 asks them to wait at least 5 minutes).
IDLE_SECONDS = 30.0
#: Idle connections by server and account, each with when it was last used.
_idle: dict[tuple[object, ...], tuple[smtplib.SMTP, float]] = {}
_idle_lock = threading.Lock()


def close_idle_connections() -> None:
    """Say goodbye to every kept connection (at shutdown, or between tests)."""
    with _idle_lock:
        kept = [client for client, _ in _idle.values()]
        _idle.clear()
    for client in kept:
        _quit(client)


def forget_idle_connections() -> None:
    """Drop kept connections without closing them: after a fork, they are the parent's."""
    with _idle_lock:
        _idle.clear()


class Stage(StrEnum):
    """Where an SMTP handshake stopped."""

    CONNECT = "connect"  # TCP, and TLS from the start (port 465)
    GREETING = "greeting"  # EHLO
    STARTTLS = "starttls"
    LOGIN = "login"


class HandshakeFailed(Exception):
    """The SMTP handshake stopped at ``stage``; ``cause`` is smtplib's or ssl's own error."""

    def __init__(self, stage: Stage, cause: BaseException) -> None:
        super().__init__(f"{stage.value}: {cause!r}")
        self.stage = stage
        self.cause = cause


@dataclass(frozen=True)
class Handshake:
    """An SMTP connection ready to send, and what it took to get there (for `council doctor`)."""

    client: smtplib.SMTP
    #: In order: "TLS" (from the start), "STARTTLS", "logged in as NAME".
    done: tuple[str, ...]


@contextlib.contextmanager
def _stage(stage: Stage) -> Iterator[None]:
    try:
        yield
    except (OSError, smtplib.SMTPException) as exc:  # ssl.SSLError is an OSError
        raise HandshakeFailed(stage, exc) from None


def handshake(
    settings: Settings, *, timeout: float | None = None, context: ssl.SSLContext | None = None
) -> Handshake:
    """Connect, greet, STARTTLS and log in as configured: delivery and the doctor alike.

    ``context`` verifies the server (default: the process's, built once); raises
    :class:`HandshakeFailed` naming the stage, the socket closed.
    """
    s = settings
    assert s.smtp_host is not None
    wait = s.smtp_timeout if timeout is None else timeout
    tls = context or _tls_context()
    with _stage(Stage.CONNECT):
        if s.smtp_security is SmtpSecurity.TLS:
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                s.smtp_host, s.smtp_port, timeout=wait, context=tls
            )
        else:
            client = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=wait)
    done = ["TLS"] if s.smtp_security is SmtpSecurity.TLS else []
    try:
        with _stage(Stage.GREETING):  # EHLO, or HELO for a server that does not speak ESMTP
            client.ehlo_or_helo_if_needed()
        if s.smtp_security is SmtpSecurity.STARTTLS:
            with _stage(Stage.STARTTLS):
                if not client.has_extn("starttls"):
                    raise smtplib.SMTPNotSupportedError("the server does not offer STARTTLS")
                client.starttls(context=tls)
                client.ehlo()
            done.append("STARTTLS")
        if s.smtp_username:
            password = s.smtp_password.get_secret_value() if s.smtp_password else ""
            with _stage(Stage.LOGIN):
                client.login(s.smtp_username, password)
            done.append(f"logged in as {s.smtp_username}")
    except BaseException:
        client.close()  # a refused STARTTLS or login must not leak the socket
        raise
    return Handshake(client, tuple(done))


class SmtpTransport:
    """Sends through an SMTP server with STARTTLS or TLS, authenticating if configured."""

    def __init__(self, settings: Settings) -> None:
        assert settings.smtp_host is not None
        self.settings = settings
        self._client: smtplib.SMTP | None = None
        s = settings
        self._key = (s.smtp_host, s.smtp_port, s.smtp_security, s.smtp_username, s.smtp_password)

    def _kept(self) -> smtplib.SMTP | None:
        """The connection the last batch left, if it is recent and still answers."""
        with _idle_lock:
            found = _idle.pop(self._key, None)
        if found is None:
            return None
        client, since = found
        try:
            if time.monotonic() - since < IDLE_SECONDS and client.noop()[0] == 250:
                return client
        except (OSError, smtplib.SMTPException):
            pass
        with contextlib.suppress(OSError, smtplib.SMTPException):
            client.close()
        return None

    def __enter__(self) -> SmtpTransport:
        self._client = self._kept()
        if self._client is not None:
            return self
        try:
            self._client = handshake(self.settings).client
        except HandshakeFailed as failed:
            cause = failed.cause
            if isinstance(cause, smtplib.SMTPAuthenticationError):
                raise DeliveryError(
                    f"SMTP login refused ({cause.smtp_code})", transient=False
                ) from None
            where = f"{self.settings.smtp_host}:{self.settings.smtp_port}"
            raise _delivery_error(cause, where) from None
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._client is None:
            return
        client, self._client = self._client, None
        if kind is None:  # all went well: keep it for the next batch
            with _idle_lock:
                previous = _idle.pop(self._key, None)
                _idle[self._key] = (client, time.monotonic())
            if previous is not None:
                _quit(previous[0])
            return
        _quit(client)

    def send(self, message: EmailMessage | Wire) -> None:
        assert self._client is not None, "use the transport in a with block"
        try:
            if isinstance(message, Wire) and pipelines(self._client, message):
                refused = pipelined_sendmail(self._client, message)
            elif isinstance(message, Wire):
                options = ["SMTPUTF8"] if message.international else []
                refused = self._client.sendmail(
                    message.sender, list(message.recipients), message.data, mail_options=options
                )
            else:
                refused = self._client.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = sorted({code for code, _ in exc.recipients.values()})
            raise DeliveryError(
                f"recipient refused ({codes})", transient=all(c < 500 for c in codes)
            ) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise _delivery_error(exc, "sending") from None
        if refused:
            raise DeliveryError(f"some recipients refused: {sorted(refused)}", transient=False)


def pipelines(client: smtplib.SMTP, message: Wire) -> bool:
    """Whether to send ``message`` pipelined: the server offers PIPELINING (RFC 2920) and
    the message needs no other extension (an internationalised address goes through
    ``smtplib``, which checks SMTPUTF8)."""
    return bool(client.does_esmtp and client.has_extn("pipelining") and not message.international)


def pipelined_sendmail(client: smtplib.SMTP, message: Wire) -> dict[str, tuple[int, bytes]]:
    """``smtplib.SMTP.sendmail`` with MAIL, RCPT and DATA sent in one write (RFC 2920):
    two round trips a message instead of three or more. The same commands, their replies
    judged the same way and the same exceptions: ``SMTPSenderRefused``,
    ``SMTPRecipientsRefused`` (every recipient refused, or a 421), ``SMTPDataError``; a
    failed transaction is reset (RSET), a 421 closes the connection. Returns the refused
    recipients, as ``sendmail`` does, when some were accepted."""
    size = f" size={len(message.data)}" if client.has_extn("size") else ""
    commands = [f"mail FROM:{smtplib.quoteaddr(message.sender)}{size}"]
    commands += [f"rcpt TO:{smtplib.quoteaddr(r)}" for r in message.recipients]
    commands.append("data")
    if any("\r" in c or "\n" in c for c in commands):  # what smtplib's putcmd refuses
        raise ValueError("command and arguments contain prohibited newline characters")
    client.send("".join(f"{c}\r\n" for c in commands))
    replies = _replies(client, message, len(commands))
    (mail_code, mail_reply), rcpt, (data_code, data_reply) = replies[0], replies[1:-1], replies[-1]
    refused = {r: reply for r, reply in zip(message.recipients, rcpt, strict=True)
               if reply[0] not in (250, 251)}  # fmt: skip
    nobody = len(refused) == len(message.recipients)
    gone = any(code == 421 for code, _ in replies)  # the server is closing the connection
    if data_code == 354 and not gone and (mail_code != 250 or nobody):
        client.send(b".\r\n")  # the server took DATA all the same: end an empty message
        client.getreply()
    if gone or mail_code != 250 or nobody or data_code != 354:
        _end(client, closing=gone)
        if mail_code != 250:
            raise smtplib.SMTPSenderRefused(mail_code, mail_reply, message.sender)
        if nobody or any(code == 421 for code, _ in rcpt):
            raise smtplib.SMTPRecipientsRefused(refused)
        raise smtplib.SMTPDataError(data_code, data_reply)
    body = re.sub(rb"(?m)^\.", b"..", message.data)
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    client.send(body + b".\r\n")
    code, reply = client.getreply()
    if code != 250:
        _end(client, closing=code == 421)
        raise smtplib.SMTPDataError(code, reply)
    return refused


def _replies(client: smtplib.SMTP, message: Wire, count: int) -> list[tuple[int, bytes]]:
    """The pipelined commands' replies, in order. A server that refused and then hung up
    is judged by the refusal it sent (as ``smtplib`` judges it), not as a lost
    connection: a 5xx stays permanent."""
    replies: list[tuple[int, bytes]] = []
    try:
        for _ in range(count):
            replies.append(client.getreply())
    except smtplib.SMTPServerDisconnected:
        if replies and replies[0][0] != 250:
            raise smtplib.SMTPSenderRefused(*replies[0], message.sender) from None
        read = zip(message.recipients, replies[1 : len(message.recipients) + 1], strict=False)
        refused = {r: reply for r, reply in read if reply[0] not in (250, 251)}
        if refused:
            raise smtplib.SMTPRecipientsRefused(refused) from None
        raise
    return replies


def _end(client: smtplib.SMTP, *, closing: bool) -> None:
    """After a refused transaction: close on a 421 (the server is going away), else RSET."""
    if closing:
        client.close()
        return
    with contextlib.suppress(smtplib.SMTPServerDisconnected):
        client.rset()


def _quit(client: smtplib.SMTP) -> None:
    try:
        client.quit()
    except (OSError, smtplib.SMTPException):
        client.close()


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """The TLS context, built once per process: loading the CA certificates takes ~15 ms,
    more than the rest of a delivery (bench/README.md, events)."""
    return ssl.create_default_context()


def _delivery_error(exc: BaseException, where: str) -> DeliveryError:
    code = getattr(exc, "smtp_code", None)
    if isinstance(code, int):
        return DeliveryError(f"SMTP {where}: reply {code}", transient=code < 500)
    if isinstance(exc, socket.timeout | TimeoutError):
        return DeliveryError(f"SMTP {where}: timed out", transient=True)
    reason = getattr(exc, "strerror", None) or type(exc).__name__
    return DeliveryError(f"SMTP {where}: {reason}", transient=True)


def transport_for(settings: Settings) -> Transport:
    """SMTP when a host is configured, else the maildir under var_dir."""
    if settings.smtp_host:
        return SmtpTransport(settings)
    return MaildirTransport(settings.effective_maildir)
