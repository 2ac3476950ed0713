"""What people (and the system) ask of a point: the actions the machine runs.

Each action is a frozen value naming who acts and what they ask; the machine
(:func:`workflow.core.machine.execute`) decides whether the point's state allows it
and which events it produces. The CLI's verbs are the names in :data:`VERB`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TypeAlias

from workflow.core.plan import PointPlan
from workflow.core.state import PointState, StepState, StepStatus

#: The actor of what council does by itself (the sweep, a worker): no person of the directory.
SYSTEM = "council"


@dataclass(frozen=True, kw_only=True)
class Action:
    """Something a person (or the system) asks of a point.

    ``actor`` is the person it is done for, whose work it is; ``recorded_by`` is who
    entered it on their behalf (a coordinator taking a phone call), when that is
    someone else. Both are kept in the events.
    """

    actor: str
    recorded_by: str | None = None


@dataclass(frozen=True, kw_only=True)
class StartPoint(Action):
    """Start the point: its first steps become active."""


@dataclass(frozen=True, kw_only=True)
class BeginStep(Action):
    step: str


@dataclass(frozen=True, kw_only=True)
class CompleteStep(Action):
    step: str
    note: str | None = None


@dataclass(frozen=True, kw_only=True)
class SkipStep(Action):
    step: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class ReopenStep(Action):
    step: str
    reason: str | None = None


@dataclass(frozen=True, kw_only=True)
class ReassignStep(Action):
    step: str
    to: str


@dataclass(frozen=True, kw_only=True)
class AddNote(Action):
    text: str
    step: str | None = None
    #: The note may appear on the public progress site (``council note --public``).
    public: bool = False


@dataclass(frozen=True, kw_only=True)
class WriteOff(Action):
    reason: str


@dataclass(frozen=True, kw_only=True)
class HoldStep(Action):
    """Pause the step's clock while it waits on someone outside."""

    step: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class ResumeStep(Action):
    """Restart a held step's clock; its due date moves out by the working days held."""

    step: str


@dataclass(frozen=True, kw_only=True)
class ExtendStep(Action):
    """Move the step's due date (an extension granted by the coordinator)."""

    step: str
    to: dt.date
    reason: str


@dataclass(frozen=True, kw_only=True)
class RequestExtension(Action):
    """Ask the coordinator for a later due date (an owner replying DELAY); changes no state."""

    step: str
    days: int
    reason: str | None = None


@dataclass(frozen=True, kw_only=True)
class Amend(Action):
    """Carry a running point over to an amended definition (the machine's plan is the new
    one): ``previous`` is the point's plan before, ``before`` its state under it."""

    previous: PointPlan
    before: PointState
    reason: str


@dataclass(frozen=True, kw_only=True)
class OpenOccurrences(Action):
    """Open a duty's occurrences whose day has come (the sweep asks it of the system)."""

    step: str


StepAction: TypeAlias = (
    BeginStep
    | CompleteStep
    | SkipStep
    | ReopenStep
    | ReassignStep
    | HoldStep
    | ResumeStep
    | ExtendStep
    | RequestExtension
)

#: Which step commands each step status allows; the names are the CLI's verbs.
ALLOWED: dict[StepStatus, tuple[str, ...]] = {
    StepStatus.PENDING: ("skip", "assign"),
    StepStatus.ACTIVE: ("begin", "complete", "skip", "assign", "hold", "extend", "delay"),
    StepStatus.IN_PROGRESS: ("complete", "skip", "assign", "hold", "extend", "delay"),
    StepStatus.DONE: ("reopen",),
    StepStatus.SKIPPED: ("reopen",),
    # a duty: skipping it ends it (no more occurrences); assigning it names the owner of
    # the occurrences to come
    StepStatus.RECURRING: ("skip", "assign"),
}
VERB: dict[type[Action], str] = {
    BeginStep: "begin",
    CompleteStep: "complete",
    SkipStep: "skip",
    ReopenStep: "reopen",
    ReassignStep: "assign",
    HoldStep: "hold",
    ResumeStep: "resume",
    ExtendStep: "extend",
    RequestExtension: "delay",
    AddNote: "note",
    WriteOff: "write off",
    StartPoint: "start",
    OpenOccurrences: "open occurrences of",
    Amend: "amend",
}


def allowed_for(step: StepState) -> tuple[str, ...]:
    """The verbs a step accepts: a held step can be resumed, not held again."""
    verbs = ALLOWED[step.status]
    if step.held_since is not None:
        return tuple("resume" if verb == "hold" else verb for verb in verbs)
    return verbs
