"""What the CLI shows, as plain data: rows for tables and dicts for ``--json``."""

from __future__ import annotations

import datetime as dt
from typing import Any

from workflow.calendar import Calendar
from workflow.events import Event, EventType
from workflow.loader import Definitions
from workflow.plan import AssignmentPlan, PointPlan
from workflow.state import (
    Category,
    PointState,
    StepStatus,
    category,
    initial,
    is_at_risk,
    is_overdue,
    overdue_steps,
)


def _iso(value: dt.date | dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def point_summary(
    plan: PointPlan,
    state: PointState | None,
    today: dt.date,
    calendar: Calendar | None = None,
    at_risk_days: int = 5,
) -> dict[str, Any]:
    """One row of ``council status``."""
    state = state or initial(plan)
    closed = category(plan, state) in (Category.WRITTEN_OFF, Category.REJECTED)
    open_steps = [] if closed else state.open_steps()
    dues = [s.due for s in open_steps if s.due is not None]
    return {
        "point": plan.address,
        "number": plan.number,
        "title": str(plan.title),
        "category": category(plan, state).value,
        "started": state.started_at is not None,
        "current_steps": [s.id for s in open_steps],
        "owners": sorted({s.owner for s in open_steps} or ({plan.owner} if plan.owner else set())),
        "due": _iso(min(dues) if dues else plan.due),
        "overdue": is_overdue(plan, state, today),
        "at_risk": is_at_risk(
            plan, state, today, within=at_risk_days, calendar=calendar or Calendar()
        ),
        "held": [s.id for s in open_steps if s.held_since is not None],
    }


def status(
    definitions: Definitions,
    assignments: list[AssignmentPlan],
    snapshot: dict[tuple[str, int], PointState],
    today: dt.date,
    calendar: Calendar | None = None,
    at_risk_days: int = 5,
) -> list[dict[str, Any]]:
    return [
        point_summary(point, snapshot.get((plan.id, point.number)), today, calendar, at_risk_days)
        for plan in assignments
        for point in plan.points
    ]


def _event_detail(event: Event) -> str:
    data = event.data
    match event.type:
        case EventType.STEP_ACTIVATED:
            due = data.get("due")
            moved = (
                f" (moved from {data['due_declared']}, a day off)" if "due_declared" in data else ""
            )
            return f"owner {data.get('owner')}" + (f", due {due}{moved}" if due else "")
        case EventType.STEP_REASSIGNED:
            return f"{data.get('from')} -> {data.get('to')}"
        case EventType.POINT_STARTED:
            return f"start date {data.get('start_date')}"
        case EventType.POINT_WRITTEN_OFF:
            return str(data.get("reason", ""))
        case EventType.STEP_REOPENED:
            return str(data.get("reason") or "")
    return str(data.get("note") or data.get("reason") or data.get("text") or "")


#: Events that set a step's due date (and say when a day off moved it).
_SETS_DUE = (
    EventType.STEP_ACTIVATED,
    EventType.STEP_REOPENED,
    EventType.STEP_EXTENDED,
    EventType.STEP_RESUMED,
)


def event_row(event_id: int, event: Event, tz: dt.tzinfo) -> dict[str, Any]:
    return {
        "id": event_id,
        "at": event.occurred_at.astimezone(tz).isoformat(timespec="minutes"),
        "type": event.type.value,
        "point": f"{event.assignment}/{event.point}",
        "step": event.step,
        "actor": event.actor,
        "detail": _event_detail(event),
        "data": event.data,
    }


def point_detail(
    plan: PointPlan,
    state: PointState,
    history: list[tuple[int, Event]],
    today: dt.date,
    tz: dt.tzinfo,
) -> dict[str, Any]:
    """Everything ``council show`` prints about one point."""
    late = {s.id for s in overdue_steps(state, today)} if is_overdue(plan, state, today) else set()
    moved: dict[str | None, str | None] = {}
    for _, e in history:  # the latest event that set each step's due date decides
        if e.type in _SETS_DUE:
            moved[e.step] = e.data.get("due_declared")
    steps = []
    for step_plan in plan.steps:
        step = state.step(step_plan.id)
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
        **point_summary(plan, state, today),
        "workflow": plan.workflow,
        "planned_start": _iso(plan.start),
        "steps": steps,
        "notes": [
            {"at": _iso(n.at.astimezone(tz)), "actor": n.actor, "step": n.step, "text": n.text}
            for n in state.notes
        ],
        "history": [event_row(i, e, tz) for i, e in history],
    }
