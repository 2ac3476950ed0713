"""The doctor's look at e-mail: the SMTP handshake delivery uses, or a writable maildir.

The handshake is the transport's own (:func:`workflow.mail.transport.handshake`):
what the doctor proves is exactly what a worker will do, then a NOOP, then QUIT.
Nothing is sent.
"""

from __future__ import annotations

import os
import smtplib
import socket
import ssl
from pathlib import Path
from typing import TYPE_CHECKING

from workflow.ops.doctor.results import Result, fail, ok, warn

if TYPE_CHECKING:
    from workflow.mail.transport import HandshakeFailed
    from workflow.settings import Settings


def check_smtp(settings: Settings, timeout: float) -> list[Result]:
    """The mail line (the SMTP handshake, or the maildir), then whether owners can reply."""
    return [*_smtp(settings, timeout), check_replies(settings)]


def check_replies(settings: Settings) -> Result:
    """Replies by e-mail need a reply secret: configured, or generated on one machine."""
    if settings.reply_secret is not None:
        return ok("replies", f"on: reply addresses signed, to {settings.effective_reply_address}")
    if settings.embedded:
        return _generated_secret(settings.reply_secret_file)
    return warn(
        "replies",
        "off: no COUNCIL_REPLY_SECRET, so owners cannot answer by e-mail (prompts ask them "
        "to write to the coordinator instead)",
        'set COUNCIL_REPLY_SECRET to 32 or more random characters (python -c "import secrets; '
        'print(secrets.token_urlsafe(32))") on every worker and on `council inbox`',
    )


def _generated_secret(where: Path) -> Result:
    """The secret an embedded installation makes: read only, never made by the doctor."""
    try:
        length = len(where.read_text(encoding="ascii", errors="replace").strip())
    except FileNotFoundError:
        return ok("replies", f"on: the secret is made on first use in {where} (owner only)")
    except OSError as exc:
        return fail("replies", f"cannot read {where}: {exc.strerror}",
                    f"make {where} readable by council's user, or delete it")  # fmt: skip
    if length < 32:
        fix = f"delete {where}: council makes a new one (reply addresses sent stop working)"
        return fail("replies", f"{where} is damaged (under 32 characters)", fix)
    return ok("replies", f"on: reply addresses signed with the secret in {where}")


def _smtp(settings: Settings, timeout: float) -> list[Result]:
    from workflow.mail.transport import HandshakeFailed, handshake
    from workflow.settings import SmtpSecurity

    if not settings.smtp_host:
        return [_maildir(settings.effective_maildir)]
    where = f"{settings.smtp_host}:{settings.smtp_port}"
    # A context of its own: the doctor reads the CA certificates as they are now
    # (SSL_CERT_FILE, a CA just installed), where a worker keeps the one it started with.
    context = ssl.create_default_context()
    try:
        session = handshake(settings, timeout=min(timeout, settings.smtp_timeout), context=context)
    except HandshakeFailed as failed:
        return [_handshake_failed(where, settings, failed)]
    client = session.client
    try:
        client.noop()
        # Delivery pipelines MAIL, RCPT and DATA where the server offers it (RFC 2920).
        pipelining = " with PIPELINING" if client.has_extn("pipelining") else ""
    except (OSError, smtplib.SMTPException) as exc:
        return [
            fail("smtp", f"{where}: {_smtp_reason(exc)}",
                 "check the SMTP server and COUNCIL_SMTP_* settings", unreachable=True)
        ]  # fmt: skip
    finally:
        try:
            client.quit()
        except (OSError, smtplib.SMTPException):
            client.close()
    detail = f"{where} answers ({', '.join(session.done) or 'no TLS, no login'}){pipelining}"
    if settings.smtp_security is SmtpSecurity.NONE and not _is_loopback(settings.smtp_host):
        return [
            warn(
                "smtp",
                f"{detail}, but without TLS to a remote server mail crosses the network in clear",
                "set COUNCIL_SMTP_SECURITY=starttls (port 587) or tls (port 465)",
            )
        ]
    return [ok("smtp", detail)]


def _handshake_failed(where: str, settings: Settings, failed: HandshakeFailed) -> Result:
    """The line for a handshake that stopped, by its stage and smtplib's (or ssl's) error."""
    from workflow.mail.transport import Stage

    cause = failed.cause
    if isinstance(cause, ssl.SSLError):
        return _tls_failed(where, cause)
    if failed.stage is Stage.STARTTLS and isinstance(cause, smtplib.SMTPNotSupportedError):
        return fail(
            "smtp",
            f"{where} does not offer STARTTLS",
            "set COUNCIL_SMTP_SECURITY=tls if it speaks TLS from the start (port 465), "
            "or point COUNCIL_SMTP_HOST/PORT at the submission port (587)",
            unreachable=True,
        )
    if failed.stage is Stage.LOGIN and isinstance(cause, smtplib.SMTPAuthenticationError):
        return fail(
            "smtp",
            f"{where}: login as {settings.smtp_username} refused ({cause.smtp_code})",
            "check COUNCIL_SMTP_USERNAME and COUNCIL_SMTP_PASSWORD",
            unreachable=True,
        )
    if failed.stage is Stage.LOGIN and isinstance(cause, smtplib.SMTPNotSupportedError):
        clear = " without TLS" if settings.smtp_security.value == "none" else ""
        return fail(
            "smtp",
            f"{where} offers no login (AUTH){clear}",
            "use COUNCIL_SMTP_SECURITY=starttls or tls, or unset COUNCIL_SMTP_USERNAME",
            unreachable=True,
        )
    if failed.stage is Stage.CONNECT:
        return fail(
            "smtp",
            f"cannot connect to {where}: {_smtp_reason(cause)}",
            "check COUNCIL_SMTP_HOST and COUNCIL_SMTP_PORT, and that the server runs",
            unreachable=True,
        )
    return fail(
        "smtp",
        f"{where}: {_smtp_reason(cause)}",
        "check the SMTP server and COUNCIL_SMTP_* settings",
        unreachable=True,
    )


def _tls_failed(where: str, exc: ssl.SSLError) -> Result:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return fail(
            "smtp",
            f"{where}: TLS certificate not trusted ({exc.verify_message})",
            "install the CA that signed the server's certificate, and use the host name "
            "the certificate names as COUNCIL_SMTP_HOST",
            unreachable=True,
        )
    return fail(
        "smtp",
        f"{where}: TLS failed ({exc.reason or type(exc).__name__})",
        "check COUNCIL_SMTP_SECURITY and COUNCIL_SMTP_PORT (tls: 465, starttls: 587)",
        unreachable=True,
    )


def _smtp_reason(exc: BaseException) -> str:
    code = getattr(exc, "smtp_code", None)
    if isinstance(code, int):
        return f"reply {code}"
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timed out"
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return "the server closed the connection"
    return getattr(exc, "strerror", None) or type(exc).__name__


def _is_loopback(host: str) -> bool:
    return host == "localhost" or host.startswith("127.") or host == "::1"


def _maildir(path: Path) -> Result:
    """No SMTP server: delivery writes into a maildir, which must be writable."""
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing.is_dir() and _writable(existing):
        return ok("smtp", f"no smtp_host: e-mail is written to the maildir {path} (new/)")
    return fail(
        "smtp",
        f"no smtp_host, and the maildir {path} cannot be written",
        "make it writable, set COUNCIL_MAILDIR, or set COUNCIL_SMTP_HOST",
    )


def _writable(directory: Path) -> bool:
    return os.access(directory, os.W_OK | os.X_OK)
