"""The pure transition logic: (plan, state, command, now) -> (new state, events).

No I/O and no clock reads: ``now`` and the :class:`Calendar` are parameters,
so every rule can be tested and a coordinator can ask "what if" for any date.
Each command handler decides the events; :func:`workflow.state.evolve` folds
them into the new state, so decisions and replays can never disagree.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, TypeAlias

from workflow.calendar import Calendar
from workflow.definitions import DueAnchor
from workflow.errors import InvalidInput, TransitionNotAllowed
from workflow.events import Event, EventType
from workflow.plan import PointPlan, StepPlan
from workflow.privacy import clean_text
from workflow.state import Category, PointState, StepState, StepStatus, category, evolve

# --- commands --------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Command:
    """Something a person (or the system) asks of a point."""

    actor: str


@dataclass(frozen=True, kw_only=True)
class StartPoint(Command):
    """Start the point: its first steps become active."""


@dataclass(frozen=True, kw_only=True)
class BeginStep(Command):
    step: str


@dataclass(frozen=True, kw_only=True)
class CompleteStep(Command):
    step: str
    note: str | None = None


@dataclass(frozen=True, kw_only=True)
class SkipStep(Command):
    step: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class ReopenStep(Command):
    step: str
    reason: str | None = None


@dataclass(frozen=True, kw_only=True)
class ReassignStep(Command):
    step: str
    to: str


@dataclass(frozen=True, kw_only=True)
class AddNote(Command):
    text: str
    step: str | None = None


@dataclass(frozen=True, kw_only=True)
class WriteOff(Command):
    reason: str


@dataclass(frozen=True, kw_only=True)
class HoldStep(Command):
    """Pause the step's clock while it waits on someone outside."""

    step: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class ResumeStep(Command):
    """Restart a held step's clock; its due date moves out by the working days held."""

    step: str


@dataclass(frozen=True, kw_only=True)
class ExtendStep(Command):
    """Move the step's due date (an extension granted by the coordinator)."""

    step: str
    to: dt.date
    reason: str


@dataclass(frozen=True, kw_only=True)
class RequestExtension(Command):
    """Ask the coordinator for a later due date (an owner replying DELAY); changes no state."""

    step: str
    days: int
    reason: str | None = None


StepCommand: TypeAlias = (
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
}
_VERB: dict[type[Command], str] = {
    BeginStep: "begin",
    CompleteStep: "complete",
    SkipStep: "skip",
    ReopenStep: "reopen",
    ReassignStep: "assign",
    HoldStep: "hold",
    ResumeStep: "resume",
    ExtendStep: "extend",
    RequestExtension: "delay",
}


def allowed_for(step: StepState) -> tuple[str, ...]:
    """The verbs a step accepts: a held step can be resumed, not held again."""
    verbs = ALLOWED[step.status]
    if step.held_since is not None:
        return tuple("resume" if verb == "hold" else verb for verb in verbs)
    return verbs


@dataclass(frozen=True)
class Transition:
    """The outcome of one command: the new state and the events that led there."""

    state: PointState
    events: tuple[Event, ...]


# --- the machine -----------------------------------------------------------------


class _Decision:
    """Accumulates events for one command, evolving the state as it goes."""

    def __init__(
        self,
        plan: PointPlan,
        state: PointState,
        command: Command,
        now: dt.datetime,
        calendar: Calendar,
    ) -> None:
        self.plan = plan
        self.state = state
        self.command = command
        self.now = now
        self.calendar = calendar
        self.events: list[Event] = []

    def emit(self, type_: EventType, step: str | None = None, **data: Any) -> None:
        event = Event(
            type=type_,
            assignment=self.plan.assignment,
            point=self.plan.number,
            step=step,
            actor=self.command.actor,
            occurred_at=self.now,
            data={k: v for k, v in data.items() if v is not None},
        )
        self.state = evolve(self.state, event)
        self.events.append(event)

    def due_for(self, step: StepPlan) -> tuple[dt.date | None, dt.date | None]:
        """(due date after the day-off policy, the date as declared when it moved)."""
        rule = step.due
        if rule is None:
            declared = self.plan.due
        elif rule.anchor is DueAnchor.DATE:
            declared = rule.date
        else:
            assert rule.after is not None
            anchor = self.state.start_date if rule.anchor is DueAnchor.START else None
            declared = self.calendar.shift(anchor or self.now.date(), rule.after)
        if declared is None:
            return None, None
        due = self.calendar.adjust_due(declared)
        return due, (declared if due != declared else None)

    def activate(self, step: StepPlan, *, reopened: bool = False, **data: Any) -> None:
        due, declared = self.due_for(step)
        kind = EventType.STEP_REOPENED if reopened else EventType.STEP_ACTIVATED
        owner = None if reopened else self.state.step(step.id).owner
        self.emit(
            kind,
            step.id,
            owner=owner,
            due=due.isoformat() if due else None,
            due_declared=declared.isoformat() if declared else None,
            **data,
        )

    def satisfied(self, step_id: str) -> bool:
        """A step no longer holds up the steps after it.

        Done counts; skipped counts only once the steps *it* waits on are
        satisfied too, so skipping a step in advance never lets later work
        start before earlier work is finished.
        """
        status = self.state.step(step_id).status
        if status is StepStatus.DONE:
            return True
        if status is StepStatus.SKIPPED:
            return all(self.satisfied(dep) for dep in self.plan.step(step_id).after)
        return False

    def ready(self, step: StepPlan) -> bool:
        return all(self.satisfied(dep) for dep in step.after)

    def activate_ready(self) -> None:
        """Activate every pending step whose after: steps are all satisfied."""
        for step in self.plan.steps:
            if self.state.step(step.id).status is StepStatus.PENDING and self.ready(step):
                self.activate(step)

    def finish_if_complete(self) -> None:
        if all(s.status.finished for s in self.state.steps) and self.state.completed_at is None:
            self.emit(EventType.POINT_COMPLETED)


def _require_running(d: _Decision, verb: str, target: str) -> None:
    cat = category(d.plan, d.state)
    if cat is Category.REJECTED or cat is Category.WRITTEN_OFF:
        raise TransitionNotAllowed(command=verb, target=target, state=cat.value, allowed=[])
    if d.state.started_at is None:
        raise TransitionNotAllowed(
            command=verb,
            target=target,
            state="not started",
            allowed=["start"],
            reason=f"run `council start {d.plan.assignment} --point {d.plan.number}`",
        )


def _step(d: _Decision, command: StepCommand) -> StepPlan:
    verb = _VERB[type(command)]
    target = f"{d.plan.address}/{command.step}"
    try:
        plan = d.plan.step(command.step)
    except KeyError:
        from workflow.errors import NotFound

        known = ", ".join(s.id for s in d.plan.steps)
        raise NotFound("step", target, f"steps of this point are {known}") from None
    _require_running(d, verb, target)
    current = d.state.step(command.step)
    allowed = allowed_for(current)
    if verb not in allowed:
        state = f"{current.status.value}, held" if current.held_since else current.status.value
        raise TransitionNotAllowed(command=verb, target=target, state=state, allowed=allowed)
    return plan


def _start(d: _Decision, command: StartPoint) -> None:
    cat = category(d.plan, d.state)
    if cat in (Category.REJECTED, Category.WRITTEN_OFF) or d.state.started_at is not None:
        state = "started" if d.state.started_at else cat.value
        raise TransitionNotAllowed(command="start", target=d.plan.address, state=state, allowed=[])
    start = d.plan.start or d.now.date()
    d.emit(EventType.POINT_STARTED, start_date=start.isoformat())
    d.activate_ready()
    d.finish_if_complete()


def _begin(d: _Decision, command: BeginStep) -> None:
    _step(d, command)
    d.emit(EventType.STEP_BEGUN, command.step)


def _complete(d: _Decision, command: CompleteStep) -> None:
    step = _step(d, command)
    note = clean_text("note", command.note)
    if step.requires_note and not note:
        raise InvalidInput(
            f"{d.plan.address}/{step.id} needs a note to be completed: say what was done"
        )
    d.emit(EventType.STEP_COMPLETED, step.id, note=note)
    d.activate_ready()
    d.finish_if_complete()


def _skip(d: _Decision, command: SkipStep) -> None:
    _step(d, command)
    d.emit(
        EventType.STEP_SKIPPED,
        command.step,
        reason=clean_text("reason", command.reason, required=True),
    )
    d.activate_ready()
    d.finish_if_complete()


def _reopen(d: _Decision, command: ReopenStep) -> None:
    """A finished step becomes active again (or waits, if what it is after is not done).

    Steps that were active but not begun, and now wait on something unfinished,
    go back to pending in the same event; work already begun is left alone.
    """
    step = _step(d, command)
    reason = clean_text("reason", command.reason)
    waiting = not d.ready(step)
    reopened = replace(d.state.step(step.id), status=StepStatus.PENDING)
    probe = d.state.with_step(reopened)
    held_back = [
        s.id
        for s in d.plan.steps
        if probe.step(s.id).status is StepStatus.ACTIVE and not _ready_in(d, probe, s)
    ]
    if waiting:
        d.emit(
            EventType.STEP_REOPENED,
            step.id,
            reason=reason,
            waiting=True,
            deactivated=held_back or None,
        )
    else:
        d.activate(step, reopened=True, reason=reason, deactivated=held_back or None)


def _ready_in(d: _Decision, state: PointState, step: StepPlan) -> bool:
    """Whether ``step`` would be ready in ``state`` (a state not yet committed)."""
    saved = d.state
    d.state = state
    try:
        return d.ready(step)
    finally:
        d.state = saved


def _reassign(d: _Decision, command: ReassignStep) -> None:
    _step(d, command)
    current = d.state.step(command.step).owner
    if command.to == current:
        raise InvalidInput(f"{d.plan.address}/{command.step} is already owned by {current}")
    d.emit(EventType.STEP_REASSIGNED, command.step, **{"from": current, "to": command.to})


def _note(d: _Decision, command: AddNote) -> None:
    if d.plan.rejected:
        raise TransitionNotAllowed(
            command="note", target=d.plan.address, state=Category.REJECTED.value, allowed=[]
        )
    if command.step is not None:
        try:
            d.plan.step(command.step)
        except KeyError:
            from workflow.errors import NotFound

            raise NotFound("step", f"{d.plan.address}/{command.step}") from None
    d.emit(EventType.NOTE_ADDED, command.step, text=clean_text("note", command.text, required=True))


def _write_off(d: _Decision, command: WriteOff) -> None:
    cat = category(d.plan, d.state)
    if cat in (Category.REJECTED, Category.WRITTEN_OFF, Category.COMPLETED):
        raise TransitionNotAllowed(
            command="write-off", target=d.plan.address, state=cat.value, allowed=[]
        )
    reason = clean_text("reason", command.reason, required=True)
    open_steps = [s.id for s in d.state.steps if not s.status.finished]
    d.emit(EventType.POINT_WRITTEN_OFF, reason=reason, open_steps=open_steps)


def _hold(d: _Decision, command: HoldStep) -> None:
    _step(d, command)
    reason = clean_text("reason", command.reason, required=True)
    d.emit(EventType.STEP_HELD, command.step, reason=reason)


def _resume(d: _Decision, command: ResumeStep) -> None:
    _step(d, command)
    step = d.state.step(command.step)
    assert step.held_since is not None
    held_on = step.held_since.astimezone(d.now.tzinfo).date()
    held_days = max(d.calendar.business_days_between(held_on, d.now.date()), 0)
    due = (
        d.calendar.adjust_due(d.calendar.add_business_days(step.due, held_days))
        if step.due
        else None
    )
    d.emit(
        EventType.STEP_RESUMED, command.step, held_days=held_days,
        due=due.isoformat() if due else None,
    )  # fmt: skip


def _extend(d: _Decision, command: ExtendStep) -> None:
    _step(d, command)
    reason = clean_text("reason", command.reason, required=True)
    due = d.calendar.adjust_due(command.to)
    if due < d.now.date():
        moved = f" (a day off: it would move to {due})" if due != command.to else ""
        raise InvalidInput(f"cannot extend to {command.to}{moved}: that day has passed")
    current = d.state.step(command.step).due
    d.emit(
        EventType.STEP_EXTENDED, command.step, reason=reason, due=due.isoformat(),
        previous=current.isoformat() if current else None,
        due_declared=command.to.isoformat() if due != command.to else None,
    )  # fmt: skip


def _request_extension(d: _Decision, command: RequestExtension) -> None:
    _step(d, command)
    if not 1 <= command.days <= 366:
        raise InvalidInput(f"ask for between 1 and 366 days, not {command.days}")
    current = d.state.step(command.step).due
    base = max(current, d.now.date()) if current else d.now.date()
    proposed = d.calendar.adjust_due(base + dt.timedelta(days=command.days))
    d.emit(
        EventType.STEP_EXTENSION_REQUESTED, command.step, days=command.days,
        due=current.isoformat() if current else None, proposed=proposed.isoformat(),
        reason=clean_text("reason", command.reason),
    )  # fmt: skip


_HANDLERS: dict[type[Command], Callable[[_Decision, Any], None]] = {
    StartPoint: _start,
    BeginStep: _begin,
    CompleteStep: _complete,
    SkipStep: _skip,
    ReopenStep: _reopen,
    ReassignStep: _reassign,
    AddNote: _note,
    WriteOff: _write_off,
    HoldStep: _hold,
    ResumeStep: _resume,
    ExtendStep: _extend,
    RequestExtension: _request_extension,
}


def execute(
    plan: PointPlan,
    state: PointState,
    command: Command,
    *,
    now: dt.datetime,
    calendar: Calendar,
) -> Transition:
    """Run one command; raise :class:`TransitionNotAllowed` if the state forbids it."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    decision = _Decision(plan, state, command, now, calendar)
    _HANDLERS[type(command)](decision, command)
    return Transition(decision.state, tuple(decision.events))


def allowed_commands(plan: PointPlan, state: PointState, step_id: str) -> tuple[str, ...]:
    """The CLI verbs a step accepts now (empty when the point is not running)."""
    cat = category(plan, state)
    if state.started_at is None or cat in (Category.REJECTED, Category.WRITTEN_OFF):
        return ()
    return allowed_for(state.step(step_id))
