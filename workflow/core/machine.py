"""The pure transition logic: (plan, state, action, now) -> (new state, events).

No I/O and no clock reads: ``now`` and the :class:`Calendar` are parameters,
so every rule can be tested and a coordinator can ask "what if" for any date.
Each action's decision function decides the events; :func:`workflow.core.state.evolve`
folds them into the new state, so decisions and replays can never disagree.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from workflow.core import recurrence
from workflow.core.actions import (
    VERB,
    Action,
    AddNote,
    Amend,
    BeginStep,
    CompleteStep,
    ExtendStep,
    HoldStep,
    OpenOccurrences,
    ReassignStep,
    ReopenStep,
    RequestExtension,
    ResumeStep,
    SkipStep,
    StartPoint,
    StepAction,
    WriteOff,
    allowed_for,
)
from workflow.core.calendar import Calendar
from workflow.core.events import (
    Event,
    EventType,
    NoteAdded,
    Payload,
    PointCompleted,
    PointStarted,
    PointWrittenOff,
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
from workflow.core.plan import PointPlan, StepPlan
from workflow.core.privacy import clean_text
from workflow.core.specs import DueAnchor
from workflow.core.state import (
    Category,
    PointState,
    StepStatus,
    duty_periods,
    duty_since,
    evolve,
    lifecycle,
)
from workflow.errors import InvalidInput, NotFound, TransitionNotAllowed


@dataclass(frozen=True)
class Transition:
    """The outcome of one action: the new state and the events that led there."""

    state: PointState
    events: tuple[Event, ...]


# --- the machine -----------------------------------------------------------------


class _Decision:
    """Accumulates events for one action, evolving the state as it goes."""

    def __init__(
        self,
        plan: PointPlan,
        state: PointState,
        action: Action,
        now: dt.datetime,
        calendar: Calendar,
    ) -> None:
        self.plan = plan
        self.state = state
        self.action = action
        self.now = now
        self.calendar = calendar
        self.events: list[Event] = []

    def emit(self, type_: EventType, payload: Payload, step: str | None = None) -> None:
        event = Event(
            type=type_,
            assignment=self.plan.assignment,
            point=self.plan.number,
            step=step,
            actor=self.action.actor,
            recorded_by=self.action.recorded_by,
            occurred_at=self.now,
            payload=payload,
        )
        self.state = evolve(self.state, event)
        self.events.append(event)

    def due_for(
        self, step: StepPlan, activated: dt.date | None = None
    ) -> tuple[dt.date | None, dt.date | None]:
        """(due date after the day-off policy, the date as declared when it moved).

        ``activated`` is the day the step became active, for rules counted from it
        (default today: the step activates now)."""
        rule = step.due
        if rule is None:
            declared = self.plan.due
        elif rule.anchor is DueAnchor.DATE:
            declared = rule.date
        else:
            assert rule.after is not None
            anchor = self.state.start_date if rule.anchor is DueAnchor.START else activated
            declared = self.calendar.shift(anchor or self.now.date(), rule.after)
        if declared is None:
            return None, None
        due = self.calendar.adjust_due(declared)
        return due, (declared if due != declared else None)

    def activate(self, step: StepPlan) -> None:
        due, declared = self.due_for(step)
        owner = self.state.step(step.id).owner
        self.emit(
            EventType.STEP_ACTIVATED,
            StepActivated(owner=owner, due=due, due_declared=declared),
            step.id,
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
        """Activate every pending step whose after: steps are all satisfied (a duty is never
        activated: its occurrences open, by :meth:`open_occurrences`)."""
        for step in self.plan.steps:
            if step.repeat is not None:
                continue
            if self.state.step(step.id).status is StepStatus.PENDING and self.ready(step):
                self.activate(step)

    def activate_duty(self, duty: StepPlan) -> None:
        """Put a pending duty in force (``recurring``): its occurrences open from today."""
        current = self.state.step(duty.id)
        if duty.repeat is not None and current.status is StepStatus.PENDING:
            self.emit(EventType.STEP_ACTIVATED,
                      StepActivated(owner=current.owner, recurring=True), duty.id)  # fmt: skip

    def open_occurrences(self, duty: StepPlan) -> None:
        """Open each occurrence of ``duty`` whose day has come and that is not open yet."""
        current = self.state.step(duty.id)
        start = duty_since(self.state, duty.id, self.calendar)
        if duty.repeat is None or start is None or current.status.finished:
            return
        opened = duty_periods(self.state, duty.id)
        for occurrence in recurrence.due_to_open(
            duty.repeat, start, opened, self.now.date(), self.calendar
        ):
            due = self.calendar.adjust_due(occurrence.due)
            self.emit(
                EventType.STEP_ACTIVATED,
                StepActivated(
                    owner=current.owner, due=due, last=occurrence.last,
                    due_declared=occurrence.due if due != occurrence.due else None,
                ),
                occurrence.step_id(duty.id),
            )  # fmt: skip

    def finish_if_complete(self) -> None:
        if all(s.status.finished for s in self.state.steps) and self.state.completed_at is None:
            self.emit(EventType.POINT_COMPLETED, PointCompleted())


def _require_running(d: _Decision, verb: str, target: str) -> None:
    cat = lifecycle(d.plan, d.state)
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


def _step(d: _Decision, action: StepAction) -> StepPlan:
    verb = VERB[type(action)]
    target = f"{d.plan.address}/{action.step}"
    try:
        plan = d.plan.step(action.step)
        if plan.period is not None:
            d.state.step(action.step)  # an occurrence exists once it has opened
    except KeyError:
        known = ", ".join(s.id for s in d.plan.steps)
        hint = f"steps of this point are {known}"
        if recurrence.split(action.step)[1] is not None:
            hint = "no such occurrence has opened; `council show` lists those that have"
        raise NotFound("step", target, hint) from None
    _require_running(d, verb, target)
    current = d.state.step(action.step)
    if plan.duty and verb not in ("skip", "assign"):
        raise TransitionNotAllowed(
            command=verb, target=target, state="a recurring duty", allowed=["skip", "assign"],
            reason=f"act on one of its occurrences ({action.step}@PERIOD, see `council show "
            f"{d.plan.address}`); skipping the duty ends it, assigning it names the owner of "
            "the occurrences to come",
        )  # fmt: skip
    allowed = allowed_for(current)
    if verb not in allowed:
        state = f"{current.status.value}, held" if current.held_since else current.status.value
        raise TransitionNotAllowed(command=verb, target=target, state=state, allowed=allowed)
    return plan


def _start(d: _Decision, action: StartPoint) -> None:
    cat = lifecycle(d.plan, d.state)
    if cat in (Category.REJECTED, Category.WRITTEN_OFF) or d.state.started_at is not None:
        state = "started" if d.state.started_at else cat.value
        raise TransitionNotAllowed(command="start", target=d.plan.address, state=state, allowed=[])
    start = d.plan.start or d.now.date()
    d.emit(EventType.POINT_STARTED, PointStarted(start_date=start))
    d.activate_ready()
    for duty in d.plan.duties():
        d.activate_duty(duty)
        d.open_occurrences(duty)
    d.finish_if_complete()


def _amend(d: _Decision, action: Amend) -> None:
    """Carry a running point over to its amended definition; work done is never undone.

    Open steps the amendment removed are closed (``step.removed``, their history kept);
    open steps whose due rule (or the point's due date) moved get the new date
    (``step.rescheduled``), and those whose declared owner changed the new owner
    (``step.reassigned``, unless someone reassigned them by hand); then every pending
    step whose ``after:`` steps are finished becomes active (an added step after done
    work is prompted now), added duties open their occurrences, and the point completes
    if nothing is left.
    """
    _require_running(d, "amend", d.plan.address)
    reason = clean_text("reason", action.reason, required=True)
    kept = {s.id for s in d.state.steps}
    for old in action.before.steps:
        if old.id not in kept and old.status.open:
            d.emit(EventType.STEP_REMOVED, StepRemoved(reason=reason, status=old.status.value),
                   old.id)  # fmt: skip
    previous = {s.id: s for s in action.previous.steps}
    for step in d.plan.steps:
        before, current = previous.get(step.id), d.state.step(step.id)
        if before is None or step.duty or not current.status.open:
            continue
        if step.owner != before.owner and current.owner == before.owner:
            d.emit(EventType.STEP_REASSIGNED, StepReassigned(from_=current.owner, to=step.owner),
                   step.id)  # fmt: skip
        moved = step.due != before.due or (step.due is None and d.plan.due != action.previous.due)
        if moved and current.held_since is None:
            activated = d.calendar.day_of(current.activated_at) if current.activated_at else None
            due, declared = d.due_for(step, activated)
            if due is not None and due != current.due:
                payload = StepRescheduled(reason=reason, due=due, previous=current.due,
                                          due_declared=declared)  # fmt: skip
                d.emit(EventType.STEP_RESCHEDULED, payload, step.id)
    d.activate_ready()
    for duty in d.plan.duties():
        d.activate_duty(duty)
        d.open_occurrences(duty)
    d.finish_if_complete()


def _open(d: _Decision, action: OpenOccurrences) -> None:
    """The sweep opens a duty's occurrences as their days come (none opened twice)."""
    try:
        duty = d.plan.step(action.step)
    except KeyError:
        raise NotFound("step", f"{d.plan.address}/{action.step}") from None
    if not duty.duty:
        raise InvalidInput(f"{d.plan.address}/{action.step} is not a recurring duty")
    _require_running(d, "open occurrences of", f"{d.plan.address}/{action.step}")
    d.open_occurrences(duty)


def _begin(d: _Decision, action: BeginStep) -> None:
    _step(d, action)
    d.emit(EventType.STEP_BEGUN, StepBegun(), action.step)


def _complete(d: _Decision, action: CompleteStep) -> None:
    step = _step(d, action)
    note = clean_text("note", action.note)
    if step.requires_note and not note:
        raise InvalidInput(
            f"{d.plan.address}/{step.id} needs a note to be completed: say what was done"
        )
    d.emit(EventType.STEP_COMPLETED, StepCompleted(note=note), step.id)
    d.activate_ready()
    d.finish_if_complete()


def _skip(d: _Decision, action: SkipStep) -> None:
    _step(d, action)
    reason = clean_text("reason", action.reason, required=True)
    d.emit(EventType.STEP_SKIPPED, StepSkipped(reason=reason), action.step)
    d.activate_ready()
    d.finish_if_complete()


def _reopen(d: _Decision, action: ReopenStep) -> None:
    """A finished step becomes active again (or waits, if what it is after is not done).

    Steps that were active but not begun, and now wait on something unfinished,
    go back to pending in the same event; work already begun is left alone.
    """
    step = _step(d, action)
    reason = clean_text("reason", action.reason)
    waiting = not d.ready(step)
    reopened = replace(d.state.step(step.id), status=StepStatus.PENDING)
    probe = d.state.with_step(reopened)
    held_back = tuple(
        s.id
        for s in d.plan.steps
        if probe.step(s.id).status is StepStatus.ACTIVE and not _ready_in(d, probe, s)
    )
    due, declared = (None, None) if waiting else d.due_for(step)
    payload = StepReopened(
        reason=reason, waiting=waiting, deactivated=held_back, due=due, due_declared=declared
    )
    d.emit(EventType.STEP_REOPENED, payload, step.id)


def _ready_in(d: _Decision, state: PointState, step: StepPlan) -> bool:
    """Whether ``step`` would be ready in ``state`` (a state not yet committed)."""
    saved = d.state
    d.state = state
    try:
        return d.ready(step)
    finally:
        d.state = saved


def _reassign(d: _Decision, action: ReassignStep) -> None:
    _step(d, action)
    current = d.state.step(action.step).owner
    if action.to == current:
        raise InvalidInput(f"{d.plan.address}/{action.step} is already owned by {current}")
    d.emit(EventType.STEP_REASSIGNED, StepReassigned(from_=current, to=action.to), action.step)


def _note(d: _Decision, action: AddNote) -> None:
    if d.plan.rejected:
        raise TransitionNotAllowed(
            command="note", target=d.plan.address, state=Category.REJECTED.value, allowed=[]
        )
    if action.step is not None:
        try:
            d.plan.step(action.step)
            d.state.step(action.step)  # an occurrence exists once it has opened
        except KeyError:
            raise NotFound("step", f"{d.plan.address}/{action.step}") from None
    text = clean_text("note", action.text, required=True)
    d.emit(EventType.NOTE_ADDED, NoteAdded(text=text, public=action.public), action.step)


def _write_off(d: _Decision, action: WriteOff) -> None:
    cat = lifecycle(d.plan, d.state)
    if cat in (Category.REJECTED, Category.WRITTEN_OFF, Category.COMPLETED):
        raise TransitionNotAllowed(
            command="write-off", target=d.plan.address, state=cat.value, allowed=[]
        )
    reason = clean_text("reason", action.reason, required=True)
    open_steps = tuple(s.id for s in d.state.steps if not s.status.finished)
    d.emit(EventType.POINT_WRITTEN_OFF, PointWrittenOff(reason=reason, open_steps=open_steps))


def _hold(d: _Decision, action: HoldStep) -> None:
    _step(d, action)
    reason = clean_text("reason", action.reason, required=True)
    d.emit(EventType.STEP_HELD, StepHeld(reason=reason), action.step)


def _resume(d: _Decision, action: ResumeStep) -> None:
    _step(d, action)
    step = d.state.step(action.step)
    assert step.held_since is not None
    held_on = step.held_since.astimezone(d.now.tzinfo).date()
    held_days = max(d.calendar.business_days_between(held_on, d.now.date()), 0)
    due = (
        d.calendar.adjust_due(d.calendar.add_business_days(step.due, held_days))
        if step.due
        else None
    )
    d.emit(EventType.STEP_RESUMED, StepResumed(held_days=held_days, due=due), action.step)


def _extend(d: _Decision, action: ExtendStep) -> None:
    _step(d, action)
    reason = clean_text("reason", action.reason, required=True)
    due = d.calendar.adjust_due(action.to)
    if due < d.now.date():
        moved = f" (a day off: it would move to {due})" if due != action.to else ""
        raise InvalidInput(f"cannot extend to {action.to}{moved}: that day has passed")
    payload = StepExtended(
        reason=reason,
        due=due,
        previous=d.state.step(action.step).due,
        due_declared=action.to if due != action.to else None,
    )
    d.emit(EventType.STEP_EXTENDED, payload, action.step)


def _request_extension(d: _Decision, action: RequestExtension) -> None:
    _step(d, action)
    if not 1 <= action.days <= 366:
        raise InvalidInput(f"ask for between 1 and 366 days, not {action.days}")
    current = d.state.step(action.step).due
    base = max(current, d.now.date()) if current else d.now.date()
    payload = StepExtensionRequested(
        days=action.days,
        due=current,
        proposed=d.calendar.adjust_due(base + dt.timedelta(days=action.days)),
        reason=clean_text("reason", action.reason),
    )
    d.emit(EventType.STEP_EXTENSION_REQUESTED, payload, action.step)


_DECIDE: dict[type[Action], Callable[[_Decision, Any], None]] = {
    StartPoint: _start,
    OpenOccurrences: _open,
    Amend: _amend,
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
    action: Action,
    *,
    now: dt.datetime,
    calendar: Calendar,
) -> Transition:
    """Run one action; raise :class:`TransitionNotAllowed` if the state forbids it."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    decision = _Decision(plan, state, action, now, calendar)
    _DECIDE[type(action)](decision, action)
    return Transition(decision.state, tuple(decision.events))


def allowed_actions(plan: PointPlan, state: PointState, step_id: str) -> tuple[str, ...]:
    """The CLI verbs a step accepts now (empty when the point is not running)."""
    cat = lifecycle(plan, state)
    if state.started_at is None or cat in (Category.REJECTED, Category.WRITTEN_OFF):
        return ()
    return allowed_for(state.step(step_id))


def step_closed(plan: PointPlan, state: PointState, step_id: str) -> str | None:
    """Why a step no longer waits on its owner, or None while it does.

    It waits while it is active or in progress on a running point. A step done, skipped
    or pending again, and a point written off, rejected or not started, wait on nobody:
    reply addresses to the step expire and a prompt not yet sent is not sent.
    """
    status = state.step(step_id).status
    if not status.open:
        return status.value
    if not allowed_actions(plan, state, step_id):
        return lifecycle(plan, state).value
    return None
