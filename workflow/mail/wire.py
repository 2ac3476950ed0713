"""Messages as the bytes that go on the wire, written without the stdlib's header registry.

Building an :class:`email.message.EmailMessage` and flattening it costs about 3 ms a
prompt on the project's machine: every header is parsed back through
``email.headerregistry`` when it is set, and folded again by the generator
(bench/README.md, *events*). Council's messages are few shapes of simple parts, so they
are written here directly, in 7-bit MIME: each header value folded once by the stdlib's
registry and then taken from a cache, text parts in quoted-printable (plain ASCII text
as 7bit), attachments in base64, lines ending in CRLF. A receiver parses them into the same
structure and content the :mod:`email` package would have built
(tests/unit/mail/test_wire.py checks every field against a parse).

:class:`Wire` also carries the SMTP envelope, so a transport sends it as it is.
"""

from __future__ import annotations

import base64
import binascii
import email
import functools
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.utils import encode_rfc2231, getaddresses

#: Longest header line written before folding (RFC 5322's recommended 78).
LINE = 78


@dataclass(frozen=True, slots=True)
class Wire:
    """A whole message as bytes (CRLF line ends), with its SMTP envelope."""

    data: bytes
    #: The envelope sender (MAIL FROM) and recipients (RCPT TO).
    sender: str
    recipients: tuple[str, ...]
    message_id: str

    @property
    def international(self) -> bool:
        """Whether an address is not ASCII: the server must offer SMTPUTF8 (RFC 6531)."""
        return not all(a.isascii() for a in (self.sender, *self.recipients))

    def parsed(self) -> EmailMessage:
        """The message as a receiver parses it (for callers that want the object)."""
        message = email.message_from_bytes(self.data, policy=policy.default)
        assert isinstance(message, EmailMessage)
        return message


@dataclass(frozen=True, slots=True)
class Part:
    """A MIME part: its headers (name, value already encoded) and its encoded body."""

    headers: tuple[tuple[str, str], ...]
    body: bytes = b""
    parts: tuple[Part, ...] = ()


#: Values the registry writes back unchanged when they fit on one line: printable ASCII
#: words with single spaces between them (no encoded word, ``=?``, to decode), and
#: Message-IDs of the plain ``<local@domain>`` shape council writes.
_VERBATIM = {
    "subject": re.compile(r"(?!.*=\?)[\x21-\x7e]+(?: [\x21-\x7e]+)*"),
    "message-id": re.compile(r"<[A-Za-z0-9._-]+@[A-Za-z0-9.-]+>"),
}


def header(name: str, value: str, *, international: bool = False) -> str:
    """A header's value folded as the stdlib's header registry folds it (addresses parsed,
    RFC 2047 encoded words where it is not ASCII), without the name.

    A short plain subject or Message-ID is what the registry would write back as it is,
    so it is returned without asking the registry (every prompt has a subject and an id
    of its own, so a cache does not help them; tests/unit/mail/test_wire.py checks the
    shortcut against the registry). Other values are cached: a worker writes the same
    senders and recipients again and again.
    """
    shape = _VERBATIM.get(name.lower())
    if shape is not None and len(name) + 2 + len(value) <= LINE and shape.fullmatch(value):
        return value
    return _folded(name, value, international)


@functools.lru_cache(maxsize=4096)
def _folded(name: str, value: str, international: bool) -> str:
    """What the registry folds (``header`` without its shortcut)."""
    rules = policy.SMTPUTF8 if international else policy.SMTP
    folded: str = rules.header_factory(name, value).fold(policy=rules)
    line = folded.replace("\r\n", "\n")
    return line[len(name) + 2 :].removesuffix("\n").replace("\n", "\r\n")


def envelope_sender(value: str) -> str:
    """The envelope sender of a ``From`` value: its first address with a domain (an
    unquoted comma in a display name, ``Kansli, KS <x@y>``, does not make it ``Kansli``)."""
    found = [addr for _, addr in getaddresses([value]) if "@" in addr]
    return found[0] if found else value


def text(subtype: str, content: str, *, headers: Sequence[tuple[str, str]] = ()) -> Part:
    """A text part in UTF-8: 7bit when it is short-lined ASCII, else quoted-printable."""
    normal = content.replace("\r\n", "\n").replace("\r", "\n")
    if not normal.endswith("\n"):
        normal += "\n"
    raw = normal.encode()
    if raw.isascii() and all(len(line) <= 998 for line in raw.split(b"\n")):
        cte, body = "7bit", raw
    else:
        cte, body = "quoted-printable", binascii.b2a_qp(raw, istext=True)
    return Part(
        headers=(
            ("Content-Type", f'text/{subtype}; charset="utf-8"'),
            ("Content-Transfer-Encoding", cte),
            *headers,
        ),
        body=body.replace(b"\n", b"\r\n"),
    )


def attachment(content: bytes, content_type: str, filename: str, *, charset: bool = False) -> Part:
    """An attachment in base64, its file name RFC 2231-encoded when it is not ASCII."""
    if filename.isascii() and '"' not in filename and "\\" not in filename:
        disposition = f'attachment; filename="{filename}"'
    else:
        disposition = f"attachment; filename*={encode_rfc2231(filename, 'utf-8')}"
    kind = f'{content_type}; charset="utf-8"' if charset else content_type
    return Part(
        headers=(
            ("Content-Type", kind),
            ("Content-Transfer-Encoding", "base64"),
            ("Content-Disposition", disposition),
        ),
        body=base64.encodebytes(content).replace(b"\n", b"\r\n"),
    )


def multipart(subtype: str, *parts: Part) -> Part:
    return Part(headers=(("Content-Type", f"multipart/{subtype}"),), parts=parts)


def message(
    headers: Sequence[tuple[str, str]], body: Part, *, sender: str, recipients: Sequence[str],
    message_id: str,
) -> Wire:  # fmt: skip
    """The whole message: its headers, ``MIME-Version``, then the body part's."""
    out = bytearray()
    for name, value in headers:  # ASCII, but for an internationalised address (SMTPUTF8)
        out += f"{name}: {value}\r\n".encode()
    out += b"MIME-Version: 1.0\r\n"
    _write(out, body)
    return Wire(bytes(out), sender, tuple(recipients), message_id)


def _write(out: bytearray, part: Part) -> None:
    if not part.parts:
        for name, value in part.headers:
            out += f"{name}: {value}\r\n".encode("ascii")
        out += b"\r\n"
        out += part.body
        return
    boundary = _boundary(part)
    (name, value), *rest = part.headers
    out += f'{name}: {value}; boundary="{boundary}"\r\n'.encode("ascii")
    for name, value in rest:
        out += f"{name}: {value}\r\n".encode("ascii")
    out += b"\r\n"
    for child in part.parts:
        out += f"--{boundary}\r\n".encode("ascii")
        _write(out, child)
        out += b"\r\n"  # the delimiter's own line break (RFC 2046), not the content's
    out += f"--{boundary}--\r\n".encode("ascii")


def _boundary(part: Part) -> str:
    """A boundary that no line of the part's encoded content contains."""
    while True:
        boundary = f"===============council{secrets.token_hex(10)}=="
        if not _contains(part, boundary.encode("ascii")):
            return boundary


def _contains(part: Part, boundary: bytes) -> bool:
    return boundary in part.body or any(_contains(child, boundary) for child in part.parts)
