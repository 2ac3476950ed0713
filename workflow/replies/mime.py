"""Reading a received message safely: its key, its addresses, whether a machine sent it.

Whatever a header holds (encoded words, raw 8-bit bytes, CR/LF), these functions
return plain values or raise :class:`~workflow.errors.ReplyRefused`; they never let a
parser error out.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from email import errors, policy
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.utils import getaddresses

from workflow.core.privacy import CONTROL, find_personal_number
from workflow.errors import RefusalReason, ReplyRefused
from workflow.mail.compose import MESSAGE_ID
from workflow.settings import Settings


def refused_text(value: str) -> bool:
    """Whether the guard refuses this text (a personal identity number, control characters):
    it is then never stored, logged or sent back, not even as a key or an address."""
    return find_personal_number(value) is not None or CONTROL.search(value) is not None


def key_of(raw: bytes, message: EmailMessage | None = None) -> str:
    """The message's Message-ID when it has a sane one the guard accepts, else a digest of
    its bytes (a Message-ID may hold anything: ``<19121212-1212@...>`` is keyed by digest)."""
    if message is not None:
        try:
            value = str(message.get("Message-ID", "")).strip()
        except Exception:
            value = ""
        if MESSAGE_ID.fullmatch(value) and not refused_text(value):
            # Long ones by digest: the key column holds 200 characters.
            return (
                value if len(value) <= 200 else "mid:" + hashlib.sha256(value.encode()).hexdigest()
            )
    return "sha256:" + _digest(raw)


#: Headers each server on the way adds: not part of what the sender wrote.
_TRACE = frozenset({b"received", b"return-path", b"delivered-to", b"x-original-to",
                    b"envelope-to", b"dkim-signature", b"arc-seal", b"arc-message-signature",
                    b"arc-authentication-results", b"authentication-results"})  # fmt: skip


def _digest(raw: bytes) -> str:
    """A digest of what the sender wrote: the same message by two routes gives the same one."""
    head, _, body = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
    kept = [
        field
        for field in re.split(rb"\n(?![ \t])", head)
        if (name := field.split(b":", 1)[0].strip().lower()) not in _TRACE
        and not name.startswith(b"x-")
    ]
    return hashlib.sha256(b"\n".join(kept) + b"\n\n" + body).hexdigest()


#: Defects that mean a body part decoded to a guess.
DECODING_DEFECTS = (
    errors.InvalidBase64CharactersDefect,
    errors.InvalidBase64PaddingDefect,
    errors.InvalidBase64LengthDefect,
)


def decoded_badly(message: EmailMessage) -> bool:
    """Whether a part's body decoded to a guess (broken base64)."""
    return any(isinstance(d, DECODING_DEFECTS) for part in message.walk() for d in part.defects)


def addresses(message: EmailMessage, names: Sequence[str]) -> list[str]:
    """The addresses in these headers, as parsed (an encoded word is never an address)."""
    found: list[str] = []
    try:
        for name in names:
            for value in message.get_all(name) or []:
                parsed = getattr(value, "addresses", None)
                if parsed is None:  # an unstructured header (Delivered-To, X-Original-To)
                    found.extend(a for _, a in getaddresses([str(value)]) if "@" in a)
                    continue
                found.extend(a.addr_spec for a in parsed if a.username and a.domain)
    except Exception:  # a header the parser refuses (CR/LF in an address, say)
        raise ReplyRefused(RefusalReason.MALFORMED) from None
    return [header_str(a).lower() for a in found]


def header_str(value: str) -> str:
    """Text from a header: raw 8-bit bytes (kept as surrogates) read as UTF-8, or replaced."""
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def headers_only(raw: bytes) -> EmailMessage | None:
    try:
        parsed = BytesHeaderParser(policy=policy.default).parsebytes(raw[:65536])
    except Exception:
        return None
    return parsed if isinstance(parsed, EmailMessage) else None


def automatic(message: EmailMessage, settings: Settings) -> bool:
    """Sent by a machine (RFC 3834, bounces, lists, our own mail): never answered."""

    def header(name: str) -> str:
        return str(message.get(name, "")).strip().lower()

    if header("Auto-Submitted") not in ("", "no"):
        return True
    if header("Precedence") in ("bulk", "junk", "list", "auto_reply"):
        return True
    if any(message.get(h) for h in ("X-Autoreply", "X-Autorespond", "List-Id", "List-Unsubscribe")):
        return True
    if header("Return-Path") == "<>":
        return True
    sender = header("From")
    ours = settings.mail_from.lower()
    return "mailer-daemon" in sender or "postmaster@" in sender or ours in sender
