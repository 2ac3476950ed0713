"""Handing finished messages to the world: SMTP, or a maildir on disk.

A transport is used as a context manager for a batch, so SMTP opens one
connection for many messages. Failures raise :class:`DeliveryError`, marked
transient (try again later: a connection refused, a 4xx reply) or permanent (a
5xx reply, a refused recipient). The SMTP password never appears in an error.
"""

from __future__ import annotations

import functools
import mailbox
import smtplib
import socket
import ssl
from email.message import EmailMessage
from pathlib import Path
from types import TracebackType
from typing import Protocol

from workflow.errors import DeliveryError
from workflow.settings import Settings, SmtpSecurity


class Transport(Protocol):
    """Sends messages; open with ``with``, then :meth:`send` any number of them."""

    def __enter__(self) -> Transport: ...

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    def send(self, message: EmailMessage) -> None: ...


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

    def send(self, message: EmailMessage) -> None:
        assert self._box is not None, "use the transport in a with block"
        try:
            self._box.add(message)
        except OSError as exc:
            raise DeliveryError(
                f"cannot write to maildir: {exc.strerror}", transient=True
            ) from None


class SmtpTransport:
    """Sends through an SMTP server with STARTTLS or TLS, authenticating if configured."""

    def __init__(self, settings: Settings) -> None:
        assert settings.smtp_host is not None
        self.settings = settings
        self._client: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        assert s.smtp_host is not None
        if s.smtp_security is SmtpSecurity.TLS:
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                s.smtp_host, s.smtp_port, timeout=s.smtp_timeout, context=_tls_context()
            )
        else:
            client = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout)
        try:
            if s.smtp_security is SmtpSecurity.STARTTLS:
                client.starttls(context=_tls_context())
            if s.smtp_username:
                password = s.smtp_password.get_secret_value() if s.smtp_password else ""
                client.login(s.smtp_username, password)
        except BaseException:
            client.close()  # a refused STARTTLS or login must not leak the socket
            raise
        return client

    def __enter__(self) -> SmtpTransport:
        try:
            self._client = self._connect()
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(f"SMTP login refused ({exc.smtp_code})", transient=False) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise _delivery_error(
                exc, f"{self.settings.smtp_host}:{self.settings.smtp_port}"
            ) from None
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._client is not None:
            try:
                self._client.quit()
            except (OSError, smtplib.SMTPException):
                self._client.close()
            self._client = None

    def send(self, message: EmailMessage) -> None:
        assert self._client is not None, "use the transport in a with block"
        try:
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
