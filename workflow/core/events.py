"""Events: immutable facts that transitions produce. Workers react only to these."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

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


class Event(BaseModel):
    """One fact: what happened to which point (and step), who did it and when.

    ``data`` carries the facts particular to the type (a due date, a note, the
    new owner); together the events of a point rebuild its state exactly.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: EventType
    assignment: str
    point: int
    step: str | None = None
    actor: str
    occurred_at: dt.datetime
    data: dict[str, Any] = Field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    @property
    def address(self) -> str:
        base = f"{self.assignment}/{self.point}"
        return f"{base}/{self.step}" if self.step else base
