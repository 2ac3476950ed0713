"""The value types definitions are written in: ids, texts, days, durations, due rules.

Each is an annotated type with its own check and its JSON Schema, used by the models of
:mod:`workflow.core.specs` (and, for durations and due rules, by the plans and the
machine). A value that breaks its rule says so in words a coordinator can act on.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, PlainSerializer, WithJsonSchema

from workflow.core.privacy import CONTROL


class Language(StrEnum):
    """Languages that owners and the council read council's output in."""

    SV = "sv"
    EN = "en"


#: Ids of people, workflows, steps and assignments: lower case, no spaces.
ID_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
_ID = re.compile(ID_PATTERN)
#: The id rule in words, for the error a coordinator reads.
ID_RULE = (
    "use lower-case letters a-z, digits, '.', '_' and '-', starting with a letter or digit, "
    "at most 64 characters (å, ä, ö, capitals and spaces are not allowed)"
)


def _an_id(value: Any) -> Any:
    if isinstance(value, str) and not _ID.match(value):
        shown = value if len(value) <= 70 else f"{value[:67]}..."
        raise ValueError(f"{shown!r} is not a valid id: {ID_RULE}")
    return value


Id = Annotated[
    str,
    Field(json_schema_extra={"pattern": ID_PATTERN}),
    BeforeValidator(_an_id),
]


def _no_control_characters(value: Any) -> Any:
    if isinstance(value, str) and CONTROL.search(value):
        raise ValueError("control characters and direction overrides are not allowed here")
    return value


def _single_line(value: Any) -> Any:
    if isinstance(value, str) and ("\n" in value or "\r" in value):
        raise ValueError("must be a single line")
    return _no_control_characters(value)


#: One line of text (titles, names): no line breaks, no control characters,
#: so it can never inject an e-mail header.
Line = Annotated[str, BeforeValidator(_single_line), Field(min_length=1, max_length=500)]
#: Longer free text (descriptions): line breaks allowed, control characters not.
Prose = Annotated[str, BeforeValidator(_no_control_characters), Field(min_length=1)]

#: Text in the file's language, or one entry per language.
LocalLine = Line | dict[Language, Line]
LocalProse = Prose | dict[Language, Prose]


def _iso_day(value: Any) -> Any:
    """Dates are written YYYY-MM-DD; numbers and times are not dates."""
    if isinstance(value, dt.datetime) or not isinstance(value, str | dt.date):
        raise ValueError(f"expected a date written YYYY-MM-DD, got {value!r}")
    if isinstance(value, str):
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
            raise ValueError(f"{value!r} is not a date written YYYY-MM-DD")
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"{value!r} is not a valid date") from None
    return value


#: A calendar date, written YYYY-MM-DD.
Day = Annotated[
    dt.date,
    BeforeValidator(_iso_day),
    WithJsonSchema({"type": "string", "format": "date", "examples": ["2023-06-12"]}),
]


# --- durations -------------------------------------------------------------------

_DURATION = re.compile(r"^([+-]?)(\d{1,4})(bd|d)$")
DURATION_PATTERN = r"^[+-]?\d{1,4}(bd|d)$"


class DayKind(StrEnum):
    """How a duration counts days."""

    BUSINESS = "bd"
    CALENDAR = "d"


@dataclass(frozen=True, slots=True)
class Duration:
    """A signed number of business (``bd``) or calendar (``d``) days."""

    days: int
    kind: DayKind

    def __str__(self) -> str:
        return f"{self.days}{self.kind.value}"

    @classmethod
    def parse(cls, value: Any) -> Duration:
        if isinstance(value, Duration):
            return value
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ValueError(f"expected a duration such as 10bd or 14d, got {value!r}")
        match = _DURATION.match(str(value).strip())
        if not match:
            raise ValueError(
                f"{value!r} is not a duration: write a number of business days (10bd) "
                "or calendar days (14d)"
            )
        sign, number, unit = match.groups()
        days = -int(number) if sign == "-" else int(number)
        return cls(days, DayKind(unit))


DurationField = Annotated[
    Duration,
    BeforeValidator(Duration.parse),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": "string", "pattern": DURATION_PATTERN, "examples": ["10bd", "14d"]}),
]


class DueAnchor(StrEnum):
    """What a relative due date counts from."""

    DATE = "date"  # an absolute date
    START = "start"  # the point's start
    ACTIVATION = "activation"  # the moment the step became active


_DUE_RELATIVE = re.compile(r"^(?:(start|activation)\s*\+\s*)?(\d{1,4}(?:bd|d))$")
DUE_PATTERN = r"^(\d{4}-\d{2}-\d{2}|((start|activation)\+)?\d{1,4}(bd|d))$"


@dataclass(frozen=True, slots=True)
class DueRule:
    """When a step is due: a date, or a duration from the point's start or activation."""

    anchor: DueAnchor
    date: dt.date | None = None
    after: Duration | None = None

    def __str__(self) -> str:
        if self.anchor is DueAnchor.DATE:
            return str(self.date)
        return f"{self.anchor.value}+{self.after}"

    @classmethod
    def parse(cls, value: Any) -> DueRule:
        if isinstance(value, DueRule):
            return value
        if isinstance(value, dt.date):
            return cls(DueAnchor.DATE, date=value)
        if not isinstance(value, str):
            raise ValueError(f"expected a date (2023-05-31) or a duration (10bd), got {value!r}")
        text = value.strip()
        if re.match(r"^\d{4}-", text):
            try:
                return cls(DueAnchor.DATE, date=dt.date.fromisoformat(text))
            except ValueError:
                raise ValueError(f"{value!r} is not a valid date (YYYY-MM-DD)") from None
        match = _DUE_RELATIVE.match(text)
        if not match:
            raise ValueError(
                f"{value!r} is not a due rule: write a date (2023-05-31), a duration from "
                "activation (10bd) or from the point's start (start+60bd)"
            )
        anchor = DueAnchor(match.group(1) or "activation")
        return cls(anchor, after=Duration.parse(match.group(2)))


DueField = Annotated[
    DueRule,
    BeforeValidator(DueRule.parse),
    PlainSerializer(str, return_type=str),
    WithJsonSchema(
        {"type": "string", "pattern": DUE_PATTERN, "examples": ["2023-05-31", "10bd", "start+60bd"]}
    ),
]
