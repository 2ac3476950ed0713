"""Guarding free text: council tracks work, never individuals' cases.

Every record may be requested as a public document, and the seed's subject is
honour-related violence. Notes and reasons that contain a Swedish personal
identity number (personnummer, or samordningsnummer with day + 60) are refused.

The text is normalised before it is looked at, so that a number written as
``19121212–1212`` (an en dash), ``191212 - 1212``, with fullwidth digits, or
wrapped across two lines is found like ``19121212-1212``. Control characters
(C0 and C1) and bidirectional overrides, which can make text read differently
from what it holds, are refused too.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Literal, overload

from workflow.errors import InvalidInput, PersonalDataRefused

#: Longest note or reason accepted, in characters.
MAX_TEXT = 4000

#: YYMMDD or YYYYMMDD, then a separator (a dash or plus, spaces around it, or a space), then
#: four digits; the text is normalised first (see :func:`normalised`).
_CANDIDATE = re.compile(
    r"(?<!\d)(?:(?:19|20)\d{2}|\d{2})(\d{2})(\d{2})(?:[ \t]*[-+][ \t]*|[ \t]+)?(\d{4})(?!\d)"
)
#: C0 controls but tab and line feed, DEL, C1 controls (U+0080-U+009F, such as CSI), and
#: the bidirectional embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069).
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
#: Every dash and minus sign Unicode has that a number could be written with.
_DASHES = re.compile(r"[\u2010-\u2015\u2212\u2043\ufe58\ufe63\uff0d\u00ad]")
#: Line breaks (blank lines too) between two parts of a number (a mail client wrapped it).
_WRAPPED = re.compile(r"(?<=[\d+-])[ \t]*(?:\r?\n[ \t]*)+(?=[\d+-])")


def normalised(text: str) -> str:
    """The text as the guard reads it: NFKC (fullwidth digits are digits, a no-break space a
    space), without invisible format characters (zero-width spaces, joiners, marks), one
    kind of dash, and numbers wrapped across lines joined again."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(c for c in text if unicodedata.category(c) != "Cf")
    return _WRAPPED.sub("", _DASHES.sub("-", text))


def luhn_ok(digits: str) -> bool:
    """The Luhn check used by personnummer (over the ten-digit form)."""
    total = 0
    for i, char in enumerate(digits):
        value = int(char) * (2 if i % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def find_personal_number(text: str) -> str | None:
    """Return the first personal identity number in ``text`` (as normalised), or None."""
    for match in _CANDIDATE.finditer(normalised(text)):
        month, day, tail = int(match.group(1)), int(match.group(2)), match.group(3)
        if not 1 <= month <= 12:
            continue
        if not (1 <= day <= 31 or 61 <= day <= 91):  # 61-91: samordningsnummer
            continue
        digits = re.sub(r"\D", "", match.group(0))[-10:]
        if luhn_ok(digits) and tail:
            return match.group(0)
    return None


@overload
def clean_text(field: str, text: str | None, *, required: Literal[True]) -> str: ...


@overload
def clean_text(field: str, text: str | None, *, required: bool = False) -> str | None: ...


def clean_text(field: str, text: str | None, *, required: bool = False) -> str | None:
    """Validate a note or reason; return it stripped, or raise a clear error."""
    if text is None or not text.strip():
        if required:
            raise InvalidInput(f"{field} is required")
        return None
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    if len(text) > MAX_TEXT:
        raise InvalidInput(f"{field} is too long ({len(text)} characters; at most {MAX_TEXT})")
    if CONTROL.search(text):
        raise InvalidInput(f"{field} contains control characters or direction overrides")
    if find_personal_number(text):
        raise PersonalDataRefused(field)
    return text
