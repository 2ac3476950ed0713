"""Pydantic models of the kinds of definition file, exactly as written.

The value types they are made of (ids, texts, days, durations, due rules, languages)
are in :mod:`workflow.core.values`; this module offers them too (``__all__``).

These are the *neutral* models: they check shape and types of one file at a
time. Cross-references (owners, workflows, the ``after:`` DAG) are checked by
:mod:`workflow.definitions.checks`, and :mod:`workflow.core.plan` turns the models into the
resolved plans the machine runs.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StrictBool,
    StrictInt,
    field_validator,
    model_validator,
)
from pydantic.json_schema import models_json_schema

from workflow.core.recurrence import (
    FIRST_BUSINESS_DAY,
    LAST_BUSINESS_DAY,
    WEEKDAYS,
    Every,
    Rule,
)
from workflow.core.values import (
    DUE_PATTERN,
    DURATION_PATTERN,
    ID_PATTERN,
    ID_RULE,
    Day,
    DayKind,
    DueAnchor,
    DueField,
    DueRule,
    Duration,
    DurationField,
    Id,
    Language,
    Line,
    LocalLine,
    LocalProse,
    Prose,
)

# --- files -----------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, str_strip_whitespace=True, defer_build=True
    )


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


class Repeat(_Model):
    """How a recurring duty repeats: each period (week, month, quarter, year) gives one
    occurrence of the step, with its own due date, prompt, reminders and escalation."""

    every: Every = Field(description="week, month, quarter or year.")
    on: StrictInt | str | None = Field(
        None,
        description="The day in each period the occurrence is due: a weekday (monday ... "
        "sunday; default friday) for a weekly duty; first-business-day, last-business-day "
        "(the default) or a day of the month (1-31) for the others.",
    )
    month: Annotated[StrictInt, Field(ge=1, le=12)] | None = Field(
        None, description="For a yearly duty: the month it falls in (1-12)."
    )
    until: Day | None = Field(None, description="No occurrence is due after this day.")
    count: Annotated[StrictInt, Field(gt=0)] | None = Field(
        None, description="How many occurrences in all."
    )

    @model_validator(mode="after")
    def _consistent(self) -> Repeat:
        if self.until is not None and self.count is not None:
            raise ValueError("a duty ends by until: or by count:, not both")
        if self.month is not None and self.every is not Every.YEAR:
            raise ValueError("month: is for a yearly duty (every: year)")
        if self.every is Every.WEEK:
            if self.on is not None and self.on not in WEEKDAYS:
                raise ValueError(
                    f"a weekly duty is due on a weekday ({', '.join(WEEKDAYS)}), not {self.on!r}"
                )
        elif isinstance(self.on, int):
            if not 1 <= self.on <= 31:
                raise ValueError(f"a day of the month is 1-31, not {self.on}")
        elif self.on is not None and self.on not in (FIRST_BUSINESS_DAY, LAST_BUSINESS_DAY):
            raise ValueError(
                f"on: is {FIRST_BUSINESS_DAY}, {LAST_BUSINESS_DAY} or a day of the month "
                f"(1-31), not {self.on!r}"
            )
        return self

    def rule(self) -> Rule:
        """The resolved recurrence, with its default day."""
        default = "friday" if self.every is Every.WEEK else LAST_BUSINESS_DAY
        on = self.on if self.on is not None else default
        return Rule(self.every, on=on, month=self.month, until=self.until, count=self.count)


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
    repeat: Repeat | None = Field(
        None,
        description="Makes the step a recurring duty: it is never worked on itself; each "
        "period gives an occurrence (STEP@PERIOD) of its own.",
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
    """Who the council gave the assignment to: body ids when bodies are declared."""

    lead: Line = Field(description="The body that leads (a body id from bodies.yaml).")
    co_owners: list[Line] = Field(default_factory=list, description="Co-owning bodies.")


class Body(_Model):
    """A committee or board (nämnd, styrelse): leads or co-owns assignments, receives reports."""

    id: Id
    name: LocalLine
    chief: str = Field(
        min_length=1,
        description="Who answers for the body (its chief officer): a person id or a role. "
        "Steps the body owns (`owner: BODY`) prompt this person.",
    )
    registrar: EmailStr | None = Field(
        None, description="The body's registry (registrator): receives occasions' reports."
    )


class BodiesFile(_Model):
    """``bodies.yaml``: the council's committees and boards."""

    bodies: list[Body] = Field(min_length=1)


class Covers(_Model):
    """Which assignments an occasion's report covers: every open one, or those of some bodies
    or tags (an assignment is covered when it matches any body and any tag given)."""

    bodies: list[Id] = Field(default_factory=list, description="Lead or co-owning bodies.")
    tags: list[Id] = Field(default_factory=list)


class Occasion(_Model):
    """A fixed reporting occasion (rapporteringstillfälle), once a year."""

    id: Id
    name: LocalLine
    month: Annotated[StrictInt, Field(ge=1, le=12)] = Field(description="Its month (1-12).")
    on: StrictInt | str = Field(
        LAST_BUSINESS_DAY,
        description="first-business-day, last-business-day (the default) or a day of the "
        "month (1-31).",
    )
    covers: Covers = Field(default_factory=Covers)
    report_to: Id | None = Field(
        None, description="The body the report goes to (its heading names it)."
    )
    coordinator: str = Field(
        min_length=1, description="Who is reminded and receives the report: a person or role."
    )
    remind: list[DurationField] = Field(
        default_factory=list, description="Reminders to the coordinator before the day: [-10bd]."
    )
    language: Language = Language.SV

    @field_validator("on")
    @classmethod
    def _day(cls, value: int | str) -> int | str:
        if isinstance(value, int):
            if not 1 <= value <= 31:
                raise ValueError(f"a day of the month is 1-31, not {value}")
        elif value not in (FIRST_BUSINESS_DAY, LAST_BUSINESS_DAY):
            raise ValueError(
                f"a day of the month (1-31), {FIRST_BUSINESS_DAY} or {LAST_BUSINESS_DAY}, "
                f"not {value!r}"
            )
        return value

    @field_validator("remind")
    @classmethod
    def _before(cls, value: list[Duration]) -> list[Duration]:
        for offset in value:
            if offset.days >= 0:
                raise ValueError(f"reminder {offset} is not before the day; write -10bd")
        return value

    def rule(self) -> Rule:
        return Rule(Every.YEAR, on=self.on, month=self.month)


class OccasionsFile(_Model):
    """``occasions.yaml``: the council's fixed reporting occasions."""

    occasions: list[Occasion] = Field(min_length=1)


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
    decided_by: Line = Field(description="The body that decided (a body id).")
    decided_on: Day
    paragraph: Line | None = Field(None, description="Paragraph of the minutes, e.g. § 87.")
    assigned_to: AssignedTo
    coordinator: str = Field(min_length=1)
    report_back: Day
    report_to: Line | None = Field(
        None, description="The body the report goes to (a body id); default: decided_by."
    )
    tags: list[Id] = Field(
        default_factory=list, description="Free labels to select on (budget, audit, ...)."
    )
    language: Language = Language.SV
    description: LocalProse | None = None
    public: StrictBool = Field(
        False,
        description="Shown on the public progress site (`council publish`) and in its open data.",
    )
    points: list[PointSpec] = Field(min_length=1)


class FileKind(StrEnum):
    """The kinds of definition file."""

    PEOPLE = "people"
    WORKFLOW = "workflow"
    ASSIGNMENT = "assignment"
    BODIES = "bodies"
    OCCASIONS = "occasions"


MODELS: dict[FileKind, type[_Model]] = {
    FileKind.PEOPLE: PeopleFile,
    FileKind.BODIES: BodiesFile,
    FileKind.OCCASIONS: OccasionsFile,
    FileKind.WORKFLOW: WorkflowSpec,
    FileKind.ASSIGNMENT: AssignmentSpec,
}


def json_schema() -> dict[str, Any]:
    """The JSON Schema of every file kind, for editor completion.

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


__all__ = [
    "Absence",
    "AssignedTo",
    "AssignmentSpec",
    "BodiesFile",
    "Body",
    "Covers",
    "Day",
    "DayKind",
    "DUE_PATTERN",
    "DueAnchor",
    "DueField",
    "DueRule",
    "Duration",
    "DURATION_PATTERN",
    "DurationField",
    "Every",
    "FileKind",
    "Id",
    "ID_PATTERN",
    "ID_RULE",
    "json_schema",
    "Language",
    "Line",
    "LocalLine",
    "LocalProse",
    "MODELS",
    "Occasion",
    "OccasionsFile",
    "PeopleFile",
    "Person",
    "PointSpec",
    "Prose",
    "Repeat",
    "Rung",
    "StepFields",
    "StepSpec",
    "WorkflowSpec",
]
