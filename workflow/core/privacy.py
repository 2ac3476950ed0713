"""Guarding free text: council tracks work, never individuals' cases.

Every record may be requested as a public document, and the seed's subject is
honour-related violence. Notes and reasons that contain a Swedish personal
identity number (personnummer, or samordningsnummer with day + 60) are refused.
"""

from __future__ import annotations

import re
from typing import Literal, overload

from workflow.errors import InvalidInput, PersonalDataRefused

#: Longest note or reason accepted, in characters.
MAX_TEXT = 4000

_CANDIDATE = re.compile(r"(?<!\d)(?:(?:19|20)\d{2}|\d{2})(\d{2})(\d{2})[-+ ]?(\d{4})(?!\d)")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def luhn_ok(digits: str) -> bool:
    """The Luhn check used by personnummer (over the ten-digit form)."""
    total = 0
    for i, char in enumerate(digits):
        value = int(char) * (2 if i % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def find_personal_number(text: str) -> str | None:
    """Return the first personal identity number in ``text``, or None."""
    for match in _CANDIDATE.finditer(text):
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
    if _CONTROL.search(text):
        raise InvalidInput(f"{field} contains control characters")
    if find_personal_number(text):
        raise PersonalDataRefused(field)
    return text
