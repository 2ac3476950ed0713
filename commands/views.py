"""What the CLI shows, as plain data: rows for tables and dicts for ``--json``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from workflow.core.calendar import Calendar
from workflow.core.events import (
    REGISTER,
    DefinitionAmended,
    Event,
    NoteAdded,
    OccasionReached,
    OccasionReminderDue,
    PointStarted,
    PointWrittenOff,
    StepActivated,
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
from workflow.core.plan import AssignmentPlan, Definitions, PointPlan
from workflow.core.state import (
    Category,
    PointState,
    StepStatus,
    category,
    duty_tallies,
    initial,
    is_at_risk,
    is_overdue,
    late_since,
    overdue_steps,
    point_due,
)


def _iso(value: dt.date | dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def point_summary(
    plan: PointPlan,
    state: PointState | None,
    today: dt.date,
    calendar: Calendar | None = None,
    at_risk_days: int = 5,
    planned_starts: Mapping[tuple[str, int], dt.date] | None = None,
) -> dict[str, Any]:
    """One row of ``council status``.

    With ``planned_starts`` (the sweep's rows), a point not started is planned only if the
    sweep will start it; one with a ``start:`` but no row says so (`not_planned`)."""
    state = state or initial(plan)
    closed = category(plan, state) in (Category.WRITTEN_OFF, Category.REJECTED)
    open_steps = [] if closed else state.open_steps()
    planned = planned_start(plan, state, calendar or Calendar())
    not_planned = False
    if planned is not None and planned_starts is not None:
        row = planned_starts.get((plan.assignment, plan.number))
        planned, not_planned = row, row is None
    return {
        "point": plan.address,
        "number": plan.number,
        "title": str(plan.title),
        "category": category(plan, state).value,
        "started": state.started_at is not None,
        "starts_on": _iso(planned),
        "late_to_start": planned is not None and planned < today,
        "not_planned": not_planned,
        "current_steps": [s.id for s in open_steps],
        "owners": sorted({s.owner for s in open_steps} or ({plan.owner} if plan.owner else set())),
        "due": _iso(point_due(plan, state)),
        "next_due": _iso(min(dues) if (dues := [s.due for s in open_steps if s.due]) else None),
        "overdue": is_overdue(plan, state, today),
        "late_since": _iso(late_since(plan, state, today)),
        "at_risk": is_at_risk(
            plan, state, today, within=at_risk_days, calendar=calendar or Calendar()
        ),
        "held": [s.id for s in open_steps if s.held_since is not None],
    }


def planned_start(plan: PointPlan, state: PointState, calendar: Calendar) -> dt.date | None:
    """The day a point not started yet is planned to start (the sweep starts it then)."""
    if plan.rejected or plan.start is None or state.started_at is not None:
        return None
    if state.written_off_at is not None:
        return None
    return calendar.start_on(plan.start)


def status(
    definitions: Definitions,
    assignments: list[AssignmentPlan],
    snapshot: dict[tuple[str, int], PointState],
    today: dt.date,
    calendar: Calendar | None = None,
    at_risk_days: int = 5,
    planned_starts: Mapping[tuple[str, int], dt.date] | None = None,
) -> list[dict[str, Any]]:
    return [
        point_summary(
            point,
            snapshot.get((plan.id, point.number)),
            today,
            calendar,
            at_risk_days,
            planned_starts,
        )
        for plan in assignments
        for point in plan.points
    ]


def _event_detail(event: Event) -> str:
    """One line of what an event says, for `council show` and `council events`."""
    match event.payload:
        case StepActivated(owner=owner, due=due, due_declared=declared):
            moved = f" (moved from {declared}, a day off)" if declared else ""
            return f"owner {owner}" + (f", due {due}{moved}" if due else "")
        case StepReassigned(from_=before, to=after):
            return f"{before} -> {after}"
        case PointStarted(start_date=start):
            return f"start date {start}"
        case StepCompleted(note=text) | StepReopened(reason=text):
            return text or ""
        case (
            PointWrittenOff(reason=text) | StepSkipped(reason=text) | StepHeld(reason=text)
            | StepExtended(reason=text) | NoteAdded(text=text)
        ):  # fmt: skip
            return text
        case StepExtensionRequested(reason=text):
            return text or ""
        case StepRescheduled(due=due, reason=text):
            return f"due {due}: {text}"
        case StepRemoved(status=status, reason=text):
            return f"was {status}: {text}"
        case DefinitionAmended(version=version, changes=changes):
            return f"version {version}: " + "; ".join(changes)
    return _register_detail(event)


def _register_detail(event: Event) -> str:
    """What an event of the register (an occasion's) says."""
    match event.payload:
        case OccasionReminderDue(occasion=occasion, year=year, day=day, offset=offset):
            return f"{occasion} {year}: reminder {offset} before {day}"
        case OccasionReached(occasion=occasion, year=year, as_of=as_of, language=language):
            return f"{occasion} {year}: report as of {as_of} ({language.value})"
    return ""


def _where(event: Event) -> str:
    """The point, the assignment, or (an occasion's events) the register."""
    if event.assignment == REGISTER:
        return "(register)"
    return event.address if event.point is None else f"{event.assignment}/{event.point}"


def event_row(event_id: int, event: Event, tz: dt.tzinfo) -> dict[str, Any]:
    return {
        "id": event_id,
        "at": event.occurred_at.astimezone(tz).isoformat(timespec="minutes"),
        "type": event.type.value,
        "point": _where(event),
        "step": event.step,
        "actor": event.actor,
        "recorded_by": event.recorded_by,
        "login": event.login,
        "detail": _event_detail(event),
        "data": event.data,
    }


def point_detail(
    plan: PointPlan,
    state: PointState,
    history: list[tuple[int, Event]],
    today: dt.date,
    tz: dt.tzinfo,
    calendar: Calendar | None = None,
    planned_starts: Mapping[tuple[str, int], dt.date] | None = None,
) -> dict[str, Any]:
    """Everything ``council show`` prints about one point."""
    late = {s.id for s in overdue_steps(state, today)} if is_overdue(plan, state, today) else set()
    moved: dict[str | None, str | None] = {}
    for _, e in history:  # the latest event that set each step's due date decides
        match e.payload:
            case (
                StepActivated(due_declared=declared) | StepReopened(due_declared=declared)
                | StepExtended(due_declared=declared)
            ):  # fmt: skip
                moved[e.step] = _iso(declared)
            case StepResumed():
                moved[e.step] = None
    steps = []
    for step in state.steps:  # the plan's steps, then each duty's occurrences as they opened
        step_plan = plan.step(step.id)
        steps.append(
            {
                "step": step.id,
                "title": str(step_plan.title),
                "status": step.status.value,
                "owner": step.owner,
                "after": list(step_plan.after),
                "due": _iso(step.due),
                "due_moved_from": moved.get(step.id)
                if step.status is not StepStatus.PENDING
                else None,
                "overdue": step.id in late,
                "requires_note": step_plan.requires_note,
                "activated_at": _iso(step.activated_at.astimezone(tz))
                if step.activated_at
                else None,
                "finished_at": _iso(step.finished_at.astimezone(tz)) if step.finished_at else None,
            }
        )
    return {
        **point_summary(plan, state, today, calendar, planned_starts=planned_starts),
        "workflow": plan.workflow,
        "planned_start": _iso(plan.start),
        "steps": steps,
        "duties": [
            {
                "step": t.duty,
                "title": str(plan.step(t.duty).title),
                "done": t.done,
                "skipped": t.skipped,
                "missed": t.missed,
                "open": t.open,
                "latest_note": t.latest_note,
                "ended": t.ended,
            }
            for t in duty_tallies(plan, state, today)
        ],
        "notes": [
            {
                "at": _iso(n.at.astimezone(tz)),
                "actor": n.actor,
                "step": n.step,
                "text": n.text,
                "public": n.public,
            }
            for n in state.notes
        ],
        "history": [event_row(i, e, tz) for i, e in history],
    }
