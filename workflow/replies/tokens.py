"""Reply addresses: every e-mail about a step can be answered to move it.

Each prompt, reminder and overdue notice carries ``Reply-To:
council+TOKEN@domain``. The token names the event that gave the step its
current owner (its activation or its latest reassignment) and is signed with
HMAC-SHA256 under ``reply_secret``, so it cannot be forged or altered. It
expires by itself: once the step is done, skipped, reassigned or reopened,
another event owns it and the old token no longer matches.

Tokens are lower-case base 36 and base 32, because mail servers may change the
case of a local part.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from pydantic import SecretStr

#: Bytes of HMAC kept: 120 bits, 24 base-32 characters.
_MAC_BYTES = 15
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
TOKEN = re.compile(r"^([0-9a-z]{1,13})\.([a-z2-7]{24})$")


def _base36(number: int) -> str:
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = _DIGITS[rest] + out
        if not number:
            return out


def _mac(secret: SecretStr, event_id: int) -> str:
    digest = hmac.new(
        secret.get_secret_value().encode(), f"council-reply:v1:{event_id}".encode(), hashlib.sha256
    ).digest()[:_MAC_BYTES]
    return base64.b32encode(digest).decode().lower()


def token(secret: SecretStr, event_id: int) -> str:
    """The signed token for the event that gave a step its current owner."""
    if event_id < 1:
        raise ValueError("event ids are positive")
    return f"{_base36(event_id)}.{_mac(secret, event_id)}"


def verify(secret: SecretStr, candidate: str) -> int | None:
    """The event id a token names, or None if it is malformed or its signature is wrong."""
    found = TOKEN.match(candidate.lower())
    if found is None:
        return None
    event_id = int(found[1], 36)
    if event_id < 1 or not hmac.compare_digest(found[2], _mac(secret, event_id)):
        return None
    return event_id


def address(mailbox: str, secret: SecretStr, event_id: int) -> str:
    """``mailbox`` plus-addressed with the token: council+TOKEN@kommun.example."""
    local, _, domain = mailbox.rpartition("@")
    return f"{local.partition('+')[0]}+{token(secret, event_id)}@{domain}"


def tokens_in(mailbox: str, addresses: list[str]) -> list[str]:
    """The tokens of those ``addresses`` that are plus-addresses of ``mailbox``."""
    local, _, domain = mailbox.lower().rpartition("@")
    local = local.partition("+")[0]
    found = []
    for candidate in addresses:
        their_local, _, their_domain = candidate.strip().strip("<>").lower().rpartition("@")
        base, plus, tag = their_local.partition("+")
        if plus and base == local and their_domain == domain and tag:
            found.append(tag)
    return found
