"""Events: immutable facts that transitions produce. Workers react only to these.

An event says who did what to which point (and step), when, and its
:class:`Payload`: one frozen model per event type, so a reader gets typed fields
(``event.payload.due``), never a dictionary read with string keys. The payload
is stored as JSON (``Event.data``); unknown keys from a newer release are
ignored when it is read back.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializeAsAny,
    model_validator,
)

from workflow.core.specs import Language

#: Bumped when the payload of an event type changes shape; stored with each event.
SCHEMA_VERSION = 1


class EventType(StrEnum):
    """Every kind of event, named ``subject.verb_in_past_tense``."""

    POINT_STARTED = "point.started"
    POINT_COMPLETED = "point.completed"
    POINT_WRITTEN_OFF = "point.written_off"
    STEP_ACTIVATED = "step.activated"
    STEP_BEGUN = "step.begun"
    STEP_COMPLETED = "step.completed"
    STEP_SKIPPED = "step.skipped"
    STEP_REOPENED = "step.reopened"
    STEP_REASSIGNED = "step.reassigned"
    NOTE_ADDED = "note.added"
    STEP_HELD = "step.held"
    STEP_RESUMED = "step.resumed"
    STEP_EXTENDED = "step.extended"
    # An owner asked for more time (by replying DELAY); the coordinator decides
    # with `council extend`. Changes no state.
    STEP_EXTENSION_REQUESTED = "step.extension_requested"
    # Deadline firings: facts the sweep records; they change no state.
    STEP_REMINDER_DUE = "step.reminder_due"
    STEP_OVERDUE = "step.overdue"
    STEP_ESCALATED = "step.escalated"
    EFFECT_FAILED = "effect.failed"  # a side effect (an e-mail) gave up; changes no state
    # A coordinator asked for the report to be mailed (`council report --send`); an
    # event of the whole assignment (no point). Changes no state.
    REPORT_REQUESTED = "report.requested"
    # The council amended the assignment: a new version of its definition took effect (an
    # event of the whole assignment). What it did to each running point follows as the
    # points' own events (step.activated, step.removed, step.extended, step.reassigned).
    DEFINITION_AMENDED = "definition.amended"
    # An amendment removed a step that was open; its work is kept in the history.
    STEP_REMOVED = "step.removed"
    # An amendment moved an open step's due date (not a note: the council's decision).
    STEP_RESCHEDULED = "step.rescheduled"
    # Events of the register (assignment REGISTER): a reporting occasion comes near, and
    # its day came (the sweep) or a coordinator asked for its report (`report --send`).
    OCCASION_REMINDER_DUE = "occasion.reminder_due"
    OCCASION_REACHED = "occasion.reached"


#: The ``assignment`` of the register's own events (occasions), which name no assignment.
REGISTER = ""


class FiringKind(StrEnum):
    """What a deadline firing is (:mod:`workflow.core.deadlines` says when each fires)."""

    REMINDER = "reminder"  # before the due date, to the owner
    OVERDUE = "overdue"  # the first working day after it, to the owner
    ESCALATION = "escalation"  # a rung of the ladder, to a manager, person or role


# --- payloads --------------------------------------------------------------------


class Payload(BaseModel):
    """What an event says beyond who, when and where."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True, defer_build=True)

    def stored(self) -> dict[str, Any]:
        """The payload as JSON is stored: defaults left out, so old and new rows read alike."""
        return self.model_dump(mode="json", by_alias=True, exclude_defaults=True)


class PointStarted(Payload):
    #: The day the point's clock starts (its planned start, or the day it was started).
    start_date: dt.date


class PointCompleted(Payload):
    pass


class PointWrittenOff(Payload):
    reason: str
    #: The steps that were not finished when the point was written off.
    open_steps: tuple[str, ...] = ()


class StepActivated(Payload):
    owner: str | None = None
    due: dt.date | None = None
    #: The due date as the definition gave it, when a day off moved it.
    due_declared: dt.date | None = None
    #: For an occurrence of a duty: no occurrence follows it (the duty ends with it).
    last: bool = False
    #: The step is a recurring duty, in force from now: its occurrences open on their days.
    recurring: bool = False


class StepBegun(Payload):
    pass


class StepCompleted(Payload):
    note: str | None = None


class StepSkipped(Payload):
    reason: str


class StepReopened(Payload):
    reason: str | None = None
    #: The step waits on unfinished steps (pending), instead of being active again.
    waiting: bool = False
    #: Active steps that go back to pending because they wait on the reopened one.
    deactivated: tuple[str, ...] = ()
    due: dt.date | None = None
    due_declared: dt.date | None = None


class StepReassigned(Payload):
    from_: str = Field(alias="from")
    to: str


class NoteAdded(Payload):
    text: str
    #: Marked public: the progress site shows it (default left out of the stored JSON).
    public: bool = False


class StepHeld(Payload):
    reason: str


class StepResumed(Payload):
    #: Working days the step was held; its due date moved out by as many.
    held_days: int
    due: dt.date | None = None


class StepExtended(Payload):
    reason: str
    due: dt.date
    previous: dt.date | None = None
    due_declared: dt.date | None = None


class StepExtensionRequested(Payload):
    days: int
    proposed: dt.date
    due: dt.date | None = None
    reason: str | None = None


class DeadlineFired(Payload):
    """A reminder, overdue notice or escalation, as the sweep resolved it."""

    point: str
    step: str
    kind: FiringKind
    level: int
    fires_on: dt.date
    due: dt.date
    owner: str
    #: Who the firing goes to: the owner, a manager, a named person, or a substitute.
    to: str
    #: Why it goes to ``to`` when that is not the obvious person (stored even when None).
    via: str | None
    days_overdue: int
    #: The sweep transaction that fired it: one digest per recipient and sweep.
    sweep: str | None = None


class EffectFailed(Payload):
    effect: int
    key: str
    kind: str
    error: str


class ReportRequested(Payload):
    as_of: dt.date
    language: Language


class OccasionReminderDue(Payload):
    occasion: str
    year: int
    #: The occasion's day.
    day: dt.date
    #: The reminder as declared (-10bd).
    offset: str


class OccasionReached(Payload):
    occasion: str
    year: int
    as_of: dt.date
    language: Language


class DefinitionAmended(Payload):
    version: int
    digest: str
    #: What changed, one line each, as `council amend` showed it.
    changes: tuple[str, ...] = ()


class StepRescheduled(Payload):
    due: dt.date
    previous: dt.date | None = None
    #: The due date as the amended definition gives it, when a day off moved it.
    due_declared: dt.date | None = None
    reason: str


class StepRemoved(Payload):
    reason: str
    #: The step's status when it was removed.
    status: str


#: The payload model of each event type.
PAYLOADS: dict[EventType, type[Payload]] = {
    EventType.POINT_STARTED: PointStarted,
    EventType.POINT_COMPLETED: PointCompleted,
    EventType.POINT_WRITTEN_OFF: PointWrittenOff,
    EventType.STEP_ACTIVATED: StepActivated,
    EventType.STEP_BEGUN: StepBegun,
    EventType.STEP_COMPLETED: StepCompleted,
    EventType.STEP_SKIPPED: StepSkipped,
    EventType.STEP_REOPENED: StepReopened,
    EventType.STEP_REASSIGNED: StepReassigned,
    EventType.NOTE_ADDED: NoteAdded,
    EventType.STEP_HELD: StepHeld,
    EventType.STEP_RESUMED: StepResumed,
    EventType.STEP_EXTENDED: StepExtended,
    EventType.STEP_EXTENSION_REQUESTED: StepExtensionRequested,
    EventType.STEP_REMINDER_DUE: DeadlineFired,
    EventType.STEP_OVERDUE: DeadlineFired,
    EventType.STEP_ESCALATED: DeadlineFired,
    EventType.EFFECT_FAILED: EffectFailed,
    EventType.REPORT_REQUESTED: ReportRequested,
    EventType.DEFINITION_AMENDED: DefinitionAmended,
    EventType.STEP_REMOVED: StepRemoved,
    EventType.STEP_RESCHEDULED: StepRescheduled,
    EventType.OCCASION_REMINDER_DUE: OccasionReminderDue,
    EventType.OCCASION_REACHED: OccasionReached,
}


def payload_of(type_: EventType, data: dict[str, Any]) -> Payload:
    """Read a stored payload as its type's model."""
    return PAYLOADS[type_].model_validate(data)


class Event(BaseModel):
    """One fact: what happened to which point (and step), who did it and when.

    Build it with ``payload=`` (the typed model) or, from storage, ``data=``
    (the stored JSON, read as the type's model). Together the events of a point
    rebuild its state exactly.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    type: EventType
    assignment: str
    #: The point's number; None for an event of the whole assignment.
    point: int | None
    step: str | None = None
    #: The person it was done for (or ``council``, the system).
    actor: str
    occurred_at: dt.datetime
    payload: SerializeAsAny[Payload]
    schema_version: int = SCHEMA_VERSION
    #: Who entered it on the actor's behalf, when that was someone else.
    recorded_by: str | None = None
    #: The operating-system login of the process that wrote it: who was at the keyboard.
    login: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _read_data(cls, values: Any) -> Any:
        """``data=`` (stored JSON), or a payload given as a dict (JSON): the type's model."""
        if not isinstance(values, dict) or "type" not in values:
            return values
        values = dict(values)
        raw = values.pop("data", None) if "data" in values else values.get("payload")
        if not isinstance(raw, Payload):
            values["payload"] = payload_of(EventType(values["type"]), raw or {})
        return values

    @model_validator(mode="after")
    def _payload_fits_type(self) -> Event:
        expected = PAYLOADS[self.type]
        if type(self.payload) is not expected:
            raise ValueError(
                f"a {self.type.value} event carries a {expected.__name__}, "
                f"not a {type(self.payload).__name__}"
            )
        return self

    @property
    def data(self) -> dict[str, Any]:
        """The payload as stored (JSON types)."""
        return self.payload.stored()

    @property
    def address(self) -> str:
        if self.point is None:
            return self.assignment
        base = f"{self.assignment}/{self.point}"
        return f"{base}/{self.step}" if self.step else base
