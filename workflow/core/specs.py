"""Pydantic models of the three kinds of definition file, exactly as written.

These are the *neutral* models: they check shape and types of one file at a
time. Cross-references (owners, workflows, the ``after:`` DAG) are checked by
:mod:`workflow.definitions.checks`, and :mod:`workflow.core.plan` turns the models into the
resolved plans the machine runs.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    PlainSerializer,
    StrictBool,
    StrictInt,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.json_schema import models_json_schema

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


# --- files -----------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Rung(_Model):
    """One rung of an escalation ladder."""

    after: DurationField = Field(description="How long after the due date this rung fires.")
    to: Annotated[str, Field(min_length=1)] = Field(
        description="`manager` (the owner's manager), a person id or a role."
    )

    @field_validator("after")
    @classmethod
    def _positive(cls, value: Duration) -> Duration:
        if value.days <= 0:
            raise ValueError(f"escalation must come after the due date, got {value}")
        return value


class StepFields(_Model):
    """The fields of a step that a point may override."""

    title: LocalLine | None = None
    description: LocalProse | None = Field(None, description="What is asked of the owner.")
    owner: str | None = Field(None, description="A person id or a role.")
    due: DueField | None = None
    remind: list[DurationField] | None = Field(
        None, description="Offsets before the due date, e.g. [-10bd, -2bd]."
    )
    escalate: list[Rung] | None = None
    requires_note: StrictBool | None = Field(None, description="Completing needs a note.")
    after: list[Id] | None = Field(None, description="Steps that must finish first.")
    delegable: StrictBool | None = Field(
        None,
        description="The owner may hand the step to another person by replying DELEGATE "
        "(DELEGERA) to its e-mail.",
    )
    assembles_report: StrictBool | None = Field(
        None,
        description="When this step activates, a worker assembles the report back to the "
        "council and mails it to the coordinator.",
    )

    @field_validator("remind")
    @classmethod
    def _before_due(cls, value: list[Duration] | None) -> list[Duration] | None:
        for offset in value or []:
            if offset.days > 0:
                raise ValueError(
                    f"reminder {offset} is after the due date; reminders are offsets before "
                    "it (-5bd); use escalate: for what follows"
                )
        return value


class StepSpec(StepFields):
    """One step of a workflow: a unit of human work."""

    id: Id
    title: LocalLine


class WorkflowSpec(_Model):
    """A reusable workflow: steps forming a DAG through ``after:``."""

    id: Id
    title: LocalLine
    description: LocalProse | None = None
    steps: list[StepSpec] = Field(min_length=1)


class Absence(_Model):
    """A period a person is away (used by deadlines to reach a substitute)."""

    from_: Day = Field(alias="from")
    to: Day
    substitute: Id | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Absence:
        if self.to < self.from_:
            raise ValueError(f"absence ends ({self.to}) before it begins ({self.from_})")
        return self


class Person(_Model):
    """Someone in the directory."""

    id: Id
    name: Line
    email: EmailStr
    language: Language = Language.SV
    manager: Id | None = None
    roles: list[Id] = Field(default_factory=list)
    away: list[Absence] = Field(default_factory=list)


class PeopleFile(_Model):
    """``people.yaml``: the directory of owners, coordinators and managers."""

    people: list[Person] = Field(min_length=1)


class AssignedTo(_Model):
    """Who the council gave the assignment to."""

    lead: Line
    co_owners: list[Line] = Field(default_factory=list)


class PointSpec(_Model):
    """One numbered point of an assignment."""

    number: Annotated[StrictInt, Field(gt=0)]
    title: LocalLine
    description: LocalProse | None = None
    workflow: Id | None = Field(None, description="A workflow id from workflows/.")
    steps: list[StepSpec] | None = Field(
        None, min_length=1, description="Steps declared inline instead."
    )
    override: dict[Id, StepFields] = Field(
        default_factory=dict, description="Per step id, fields that replace the workflow's."
    )
    owner: str | None = Field(None, description="Default owner of steps that name none.")
    start: Day | None = None
    due: Day | None = None
    decision: Literal["rejected"] | None = Field(
        None, description="`rejected` when the council decided against the point (avslag)."
    )
    report_back: StrictBool = Field(
        False, description="This point is the report back to the council."
    )

    @model_validator(mode="after")
    def _shape(self) -> PointSpec:
        if self.decision == "rejected":
            if self.workflow or self.steps:
                raise ValueError("a rejected point declares no workflow or steps")
            return self
        if (self.workflow is None) == (self.steps is None):
            raise ValueError("a point needs exactly one of workflow: or steps:")
        if self.steps is not None and self.override:
            raise ValueError("override: applies to a workflow; edit inline steps directly")
        if self.start and self.due and self.due < self.start:
            raise ValueError(f"due ({self.due}) is before start ({self.start})")
        return self


class AssignmentSpec(_Model):
    """One council assignment (uppdrag) and its numbered points."""

    id: Id
    title: LocalLine
    reference: Line = Field(description="Diarienummer, free text, e.g. KS 2022/123.")
    decided_by: Line
    decided_on: Day
    paragraph: Line | None = Field(None, description="Paragraph of the minutes, e.g. § 87.")
    assigned_to: AssignedTo
    coordinator: str = Field(min_length=1)
    report_back: Day
    language: Language = Language.SV
    description: LocalProse | None = None
    points: list[PointSpec] = Field(min_length=1)


class FileKind(StrEnum):
    """The three kinds of definition file."""

    PEOPLE = "people"
    WORKFLOW = "workflow"
    ASSIGNMENT = "assignment"


MODELS: dict[FileKind, type[_Model]] = {
    FileKind.PEOPLE: PeopleFile,
    FileKind.WORKFLOW: WorkflowSpec,
    FileKind.ASSIGNMENT: AssignmentSpec,
}


def json_schema() -> dict[str, Any]:
    """The JSON Schema of all three file kinds, for editor completion.

    One document with shared ``$defs``; its top level accepts any of the kinds.
    """
    refs, schema = models_json_schema(
        [(model, "validation") for model in MODELS.values()], by_alias=True
    )
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "council definitions",
        "anyOf": [refs[(model, "validation")] for model in MODELS.values()],
        **schema,
    }
