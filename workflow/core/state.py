"""The state of a point and its steps, rebuilt from events by :func:`evolve`.

State is never edited directly: the machine decides events, and ``evolve``
folds each event into a new frozen state. Replaying a point's events from
:func:`initial` gives its state at any moment of its history.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

from workflow.core.calendar import Calendar
from workflow.core.events import (
    DeadlineFired,
    DefinitionAmended,
    EffectFailed,
    Event,
    NoteAdded,
    PointCompleted,
    PointStarted,
    PointWrittenOff,
    ReportRequested,
    StepActivated,
    StepBegun,
    StepCompleted,
    StepExtended,
    StepExtensionRequested,
    StepHeld,
    StepReassigned,
    StepRemoved,
    StepReopened,
    StepRescheduled,
    StepResumed,
    StepSkipped,
)
from workflow.core.plan import PointPlan
from workflow.core.recurrence import split


class StepStatus(StrEnum):
    """Where a step is in its life."""

    PENDING = "pending"  # waiting on its after: steps
    ACTIVE = "active"  # the owner has been asked to act
    IN_PROGRESS = "in_progress"  # the owner has begun
    DONE = "done"
    SKIPPED = "skipped"
    #: A recurring duty whose occurrences are opening: it is never worked on itself.
    RECURRING = "recurring"

    @property
    def finished(self) -> bool:
        return self in (StepStatus.DONE, StepStatus.SKIPPED)

    @property
    def open(self) -> bool:
        return self in (StepStatus.ACTIVE, StepStatus.IN_PROGRESS)


class Category(StrEnum):
    """A point's report bucket, derived from its state."""

    TO_START = "to_start"  # ska påbörjas
    ONGOING = "ongoing"  # pågående
    COMPLETED = "completed"  # avslutad
    WRITTEN_OFF = "written_off"  # avskriven
    REJECTED = "rejected"  # avslag


@dataclass(frozen=True, slots=True)
class Note:
    """A progress note, on the point or one of its steps."""

    at: dt.datetime
    actor: str
    text: str
    step: str | None = None
    #: Marked public (``council note --public``): the progress site may show it.
    public: bool = False


@dataclass(frozen=True, slots=True)
class StepState:
    """One step of a running point."""

    id: str
    owner: str
    status: StepStatus = StepStatus.PENDING
    due: dt.date | None = None
    activated_at: dt.datetime | None = None
    begun_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    #: Set while the step's clock is paused (waiting on someone outside).
    held_since: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class PointState:
    """One point: whether it runs, its steps and its notes."""

    assignment: str
    number: int
    steps: tuple[StepState, ...]
    started_at: dt.datetime | None = None
    start_date: dt.date | None = None
    completed_at: dt.datetime | None = None
    written_off_at: dt.datetime | None = None
    written_off_reason: str | None = None
    notes: tuple[Note, ...] = field(default=())

    @property
    def address(self) -> str:
        return f"{self.assignment}/{self.number}"

    def step(self, step_id: str) -> StepState:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)

    def with_step(self, new: StepState) -> PointState:
        return replace(self, steps=tuple(new if s.id == new.id else s for s in self.steps))

    def open_steps(self) -> list[StepState]:
        return [s for s in self.steps if s.status.open]


def initial(plan: PointPlan) -> PointState:
    """The state of a point that has not been started."""
    return PointState(
        assignment=plan.assignment,
        number=plan.number,
        steps=tuple(StepState(id=s.id, owner=s.owner) for s in plan.steps),
    )


def category(plan: PointPlan, state: PointState) -> Category:
    """The report bucket of a point, derived from its state alone: its :func:`lifecycle`,
    except that a point whose steps were all skipped is reported as written off."""
    cat = lifecycle(plan, state)
    if cat is Category.COMPLETED and all_skipped(state):
        return Category.WRITTEN_OFF
    return cat


def lifecycle(plan: PointPlan, state: PointState) -> Category:
    """Where a point is in its life, as the machine sees it: written off only by
    ``point.written_off`` (a point with its steps all skipped is completed, and a step
    may still be reopened)."""
    if plan.rejected:
        return Category.REJECTED
    if state.written_off_at is not None:
        return Category.WRITTEN_OFF
    if state.started_at is not None and all(s.status.finished for s in state.steps):
        return Category.COMPLETED
    if any(s.status in (StepStatus.IN_PROGRESS, StepStatus.RECURRING, *_FINISHED)
           for s in state.steps):  # fmt: skip
        return Category.ONGOING
    return Category.TO_START


_FINISHED = (StepStatus.DONE, StepStatus.SKIPPED)


def all_skipped(state: PointState) -> bool:
    """Every step of a started point was skipped: it finished without any work done.

    Such a point is reported as written off, its skip reasons as the reason, never as
    completed work (docs/register.md, "A point whose steps were all skipped").
    """
    return (
        state.started_at is not None
        and bool(state.steps)
        and all(s.status is StepStatus.SKIPPED for s in state.steps)
    )


def skip_reasons(state: PointState) -> tuple[str, ...]:
    """The reasons the point's steps were skipped, in step order: skipping notes its reason
    on the step, so a skipped step's last note is why."""
    last = {n.step: n.text for n in state.notes if n.step is not None}
    reasons = (last.get(s.id) for s in state.steps if s.status is StepStatus.SKIPPED)
    return tuple(dict.fromkeys(r for r in reasons if r))


def late_since(plan: PointPlan, state: PointState, today: dt.date) -> dt.date | None:
    """When an overdue point became late: the earliest due date that has passed (an open
    step's, or the point's); None when it is not overdue."""
    if not is_overdue(plan, state, today):
        return None
    dues = [s.due for s in overdue_steps(state, today) if s.due is not None]
    passed = [d for d in [*dues, plan.due] if d is not None and d < today]
    return min(passed) if passed else None


def point_due(plan: PointPlan, state: PointState) -> dt.date | None:
    """The due date a point shows, the same in status, show, backlog and reports: the
    council's date for the point when it set one, else the earliest of its open steps'."""
    if plan.due is not None or state.written_off_at is not None:
        return plan.due
    dues = [s.due for s in state.open_steps() if s.due is not None]
    return min(dues) if dues else None


def overdue_steps(state: PointState, today: dt.date) -> list[StepState]:
    """Open steps whose due date has passed."""
    return [
        s
        for s in state.open_steps()
        if s.due is not None and s.due < today and s.held_since is None
    ]


def is_overdue(plan: PointPlan, state: PointState, today: dt.date) -> bool:
    """Derived, never typed in: an open step is past due, or the point itself is."""
    if category(plan, state) in (Category.COMPLETED, Category.WRITTEN_OFF, Category.REJECTED):
        return False
    if overdue_steps(state, today):
        return True
    return plan.due is not None and plan.due < today


def is_at_risk(
    plan: PointPlan, state: PointState, today: dt.date, *, within: int, calendar: Calendar
) -> bool:
    """Snart försenad: not overdue yet, but something open is due within ``within`` working days."""
    if is_overdue(plan, state, today):
        return False
    if category(plan, state) in (Category.COMPLETED, Category.WRITTEN_OFF, Category.REJECTED):
        return False
    running = [s for s in state.open_steps() if s.held_since is None]
    dues = [s.due for s in running if s.due is not None]
    if plan.due is not None and (running or not state.open_steps()):
        dues.append(plan.due)
    return any(calendar.business_days_between(today, due) <= within for due in dues)


@dataclass(frozen=True, slots=True)
class DutyTally:
    """A recurring duty's occurrences so far: what reports and `show` count per duty."""

    duty: str
    done: int
    skipped: int
    #: Open occurrences whose due date has passed (not held).
    missed: int
    #: Open occurrences not yet due (or held).
    open: int
    latest_note: str | None
    #: No occurrence is to come: the duty's last has opened, or the duty was skipped.
    ended: bool

    @property
    def total(self) -> int:
        return self.done + self.skipped + self.missed + self.open


def duty_periods(state: PointState, duty: str) -> set[str]:
    """The periods of the duty's occurrences that have opened."""
    periods = set()
    for step in state.steps:
        owner, period = split(step.id)
        if owner == duty and period is not None:
            periods.add(period)
    return periods


def duty_since(state: PointState, duty: str, calendar: Calendar) -> dt.date | None:
    """The day a duty's occurrences count from: the point's start (its planned day), or the
    day an amendment put the duty in force, if later; None before the point starts."""
    if state.start_date is None:
        return None
    current = state.step(duty)
    if current.activated_at and state.started_at and current.activated_at > state.started_at:
        return max(state.start_date, calendar.day_of(current.activated_at))
    return state.start_date


def duty_tallies(plan: PointPlan, state: PointState, today: dt.date) -> list[DutyTally]:
    """Per recurring duty of the point: done, skipped, missed and open occurrences."""
    tallies = []
    late = {s.id for s in overdue_steps(state, today)}
    for duty in plan.duties():
        ids = {s.id for s in state.steps if split(s.id)[0] == duty.id and s.id != duty.id}
        mine = [s for s in state.steps if s.id in ids]
        notes = [n.text for n in state.notes if n.step in ids]
        tallies.append(
            DutyTally(
                duty=duty.id,
                done=sum(s.status is StepStatus.DONE for s in mine),
                skipped=sum(s.status is StepStatus.SKIPPED for s in mine),
                missed=sum(s.id in late for s in mine),
                open=sum(s.status.open and s.id not in late for s in mine),
                latest_note=notes[-1] if notes else None,
                ended=state.step(duty.id).status.finished,
            )
        )
    return tallies


def _on_step(state: PointState, event: Event, **changes: object) -> PointState:
    """The event's step changed; a step the plan no longer has (an amendment removed it)
    keeps its history in the log, not in the state."""
    assert event.step is not None
    try:
        current = state.step(event.step)
    except KeyError:
        return state
    return state.with_step(replace(current, **changes))  # type: ignore[arg-type]


def evolve(state: PointState, event: Event) -> PointState:  # noqa: C901 - one arm per payload
    """Fold one event into the state; the only place state changes."""
    at = event.occurred_at
    match event.payload:
        case PointStarted(start_date=start):
            return replace(state, started_at=at, start_date=start)
        case PointCompleted():
            return replace(state, completed_at=at)
        case PointWrittenOff(reason=reason):
            return _noted(
                replace(state, written_off_at=at, written_off_reason=reason), event, reason
            )
        case StepActivated(owner=owner, due=due, last=last) if _is_new_occurrence(state, event):
            return _occurrence_opened(state, event, owner or "", due, last)
        case StepActivated(owner=owner, recurring=True):
            return _on_step(
                state, event, status=StepStatus.RECURRING, activated_at=at,
                owner=owner or _owner(state, event.step),
            )  # fmt: skip
        case StepActivated(owner=owner, due=due):
            return _on_step(
                replace(state, completed_at=None), event, status=StepStatus.ACTIVE, due=due,
                activated_at=at, owner=owner or _owner(state, event.step), begun_at=None,
                finished_at=None,
            )  # fmt: skip
        case StepBegun():
            return _on_step(state, event, status=StepStatus.IN_PROGRESS, begun_at=at)
        case StepCompleted(note=note):
            new = _on_step(state, event, status=StepStatus.DONE, finished_at=at, held_since=None)
            return _noted(new, event, note) if note else new
        case StepSkipped(reason=reason):
            new = _on_step(state, event, status=StepStatus.SKIPPED, finished_at=at, held_since=None)
            return _noted(new, event, reason)
        case StepReopened() as reopened:
            return _reopened(state, event, reopened)
        case StepReassigned(to=to):
            return _on_step(state, event, owner=to)
        case NoteAdded(text=text, public=public):
            return _noted(state, event, text, public=public)
        case StepHeld(reason=reason):
            return _noted(_on_step(state, event, held_since=at), event, reason)
        case StepResumed(due=due):
            return _on_step(state, event, held_since=None, due=due)
        case StepExtended(due=due, reason=reason):
            return _noted(_on_step(state, event, due=due), event, reason)
        case StepRescheduled(due=due):
            return _on_step(state, event, due=due)
        case (
            EffectFailed()
            | DeadlineFired()
            | StepExtensionRequested()
            | ReportRequested()
            | DefinitionAmended()
            | StepRemoved()
        ):  # facts beside the state (a removed step is no longer in it): they change nothing
            return state
    raise ValueError(f"unknown event type {event.type!r}")  # pragma: no cover


def _owner(state: PointState, step_id: str | None) -> str:
    try:
        return state.step(step_id or "").owner
    except KeyError:
        return ""


def _is_new_occurrence(state: PointState, event: Event) -> bool:
    """An activation of an occurrence the state does not hold yet, of a duty it holds."""
    step = event.step or ""
    duty, period = split(step)
    ids = {s.id for s in state.steps}
    return period is not None and step not in ids and duty in ids


def _occurrence_opened(
    state: PointState, event: Event, owner: str, due: dt.date | None, last: bool
) -> PointState:
    """A duty's occurrence opens: a step of its own, active; the duty recurs, or is done."""
    step = event.step or ""
    duty, _ = split(step)
    at = event.occurred_at
    opened = StepState(id=step, owner=owner, status=StepStatus.ACTIVE, due=due, activated_at=at)
    steps = tuple(
        replace(s, status=StepStatus.DONE, finished_at=at) if s.id == duty and last
        else replace(s, status=StepStatus.RECURRING) if s.id == duty
        else s
        for s in state.steps
    )  # fmt: skip
    return replace(state, steps=(*steps, opened), completed_at=None)


def _reopened(state: PointState, event: Event, reopened: StepReopened) -> PointState:
    """A finished step is active again, or pending when what it waits on is unfinished."""
    at, waiting = event.occurred_at, reopened.waiting
    new = _on_step(
        state,
        event,
        status=StepStatus.PENDING if waiting else StepStatus.ACTIVE,
        due=None if waiting else reopened.due,
        activated_at=None if waiting else at,
        begun_at=None,
        finished_at=None,
    )
    for step_id in reopened.deactivated:
        new = new.with_step(
            replace(new.step(step_id), status=StepStatus.PENDING, due=None, activated_at=None)
        )
    new = replace(new, completed_at=None)
    return _noted(new, event, reopened.reason) if reopened.reason else new


def _noted(state: PointState, event: Event, text: str, *, public: bool = False) -> PointState:
    note = Note(at=event.occurred_at, actor=event.actor, text=text, step=event.step, public=public)
    return replace(state, notes=(*state.notes, note))


def replay(plan: PointPlan, events: list[Event]) -> PointState:
    """The state after ``events``, from the beginning (the same as folding each in with
    :func:`evolve`; the notes are gathered aside, so that a long history is not copied
    note by note: ``evolve`` only ever appends to them)."""
    state = initial(plan)
    notes: list[Note] = []
    for event in events:
        state = evolve(state, event)
        if state.notes:
            notes.extend(state.notes)
            state = replace(state, notes=())
    return replace(state, notes=tuple(notes)) if notes else state


class Replayer:
    """The states of one point as of any of its events, from one fold of its log.

    ``at(event_id)`` is ``replay`` of the events up to that id (ids ascending in the log).
    Asked in ascending order, as a batch of events asks, the log is folded once for all
    of them; an earlier id than the last one folded starts the fold again. What was
    answered is kept.
    """

    def __init__(self, plan: PointPlan, log: Sequence[tuple[int, Event]]) -> None:
        self._plan, self._log = plan, log
        self._answers: dict[int | None, PointState] = {}
        self._restart()

    def _restart(self) -> None:
        self._next, self._state = 0, initial(self._plan)
        self._notes: list[Note] = []

    def at(self, event_id: int | None = None) -> PointState:
        """The state after the events up to ``event_id`` (all of them with None)."""
        if event_id in self._answers:
            return self._answers[event_id]
        if self._next and event_id is not None and self._log[self._next - 1][0] > event_id:
            self._restart()
        while self._next < len(self._log) and (
            event_id is None or self._log[self._next][0] <= event_id
        ):
            state = evolve(self._state, self._log[self._next][1])
            if state.notes:
                self._notes.extend(state.notes)
                state = replace(state, notes=())
            self._state, self._next = state, self._next + 1
        notes = tuple(self._notes)
        answer = replace(self._state, notes=notes) if notes else self._state
        self._answers[event_id] = answer
        return answer


def replay_key(plan: PointPlan) -> str:
    """What a replay takes from the plan (:func:`initial`: each step's id and owner), as a
    short digest: a point's snapshot is valid for the plans with its key."""
    text = "\n".join(f"{s.id}\t{s.owner}" for s in plan.steps)
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def without_notes(state: PointState) -> PointState:
    """The state as a snapshot keeps it: the notes are only in the event log."""
    return replace(state, notes=()) if state.notes else state
