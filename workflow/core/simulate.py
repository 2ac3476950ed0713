"""`council simulate`: what would fire, day by day, if nobody acted (nothing is written)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from workflow.core import deadlines, recurrence
from workflow.core.actions import SYSTEM, StartPoint
from workflow.core.calendar import Calendar
from workflow.core.events import StepActivated
from workflow.core.machine import execute
from workflow.core.plan import AssignmentPlan, Directory, PointPlan, StepPlan
from workflow.core.state import (
    PointState,
    StepState,
    StepStatus,
    duty_periods,
    duty_since,
    initial,
)


def timeline(
    directory: Directory,
    plan: AssignmentPlan,
    snapshot: dict[tuple[str, int], PointState],
    *,
    start: dt.date,
    until: dt.date,
    calendar: Calendar,
    fired: set[str],
) -> list[dict[str, Any]]:
    """Each firing still to come between ``start`` and ``until``, on the day it would fire.

    Sweeping once a day from ``start``: on each day, what :func:`deadlines.due_now`
    would fire that has not fired yet (nor on an earlier simulated day). A point not
    started yet starts on its planned day (or on ``start`` when that day has passed) and
    its steps' firings follow from then. A recurring duty's occurrences open on their
    days (kind ``occurrence``) and their firings follow.
    """
    rows: list[dict[str, Any]] = []
    seen = set(fired)
    for point in plan.points:
        state = snapshot.get((plan.id, point.number))
        first = start
        if state is None:  # not started: it starts on its planned day, if one comes
            planned = _planned_start(point, plan.coordinator, start, until, calendar)
            if planned is None:
                continue
            first, state, row = planned
            rows.append(row)
        steps = [(point.step(s.id), s, first) for s in state.steps if s.id not in duties(point)]
        for duty in point.duties():
            for opens_on, occurrence in _occurrences(point, state, duty, first, until, calendar):
                steps.append((point.step(occurrence.id), occurrence, opens_on))
                rows.append({
                    "point": point.address, "step": occurrence.id, "kind": "occurrence",
                    "level": 0, "fires_on": opens_on.isoformat(), "due": _iso(occurrence.due),
                    "owner": occurrence.owner, "to": occurrence.owner, "via": None,
                    "days_overdue": 0,
                })  # fmt: skip
        for step, step_state, day in steps:
            schedule = deadlines.schedule(point, step, step_state, calendar)
            while day <= until and schedule:
                for firing in deadlines.due_now(schedule, day):
                    if firing.key in seen:
                        continue
                    seen.add(firing.key)
                    item = deadlines.resolve(firing, step, step_state, directory, plan.coordinator,
                                             day, calendar).as_dict()  # fmt: skip
                    rows.append({**item, "fires_on": day.isoformat()})
                # what due_now passed over (superseded reminders) never fires later
                seen.update(f.key for f in schedule if f.fires_on <= day)
                day += dt.timedelta(days=1)
    rows.sort(key=lambda r: (r["fires_on"], r["point"], r["step"] or "", r["level"]))
    return rows


def _planned_start(
    point: PointPlan, coordinator: str, start: dt.date, until: dt.date, calendar: Calendar
) -> tuple[dt.date, PointState, dict[str, Any]] | None:
    """(the day, the state after it, its row) for a point the sweep would start by ``until``."""
    if point.rejected or point.start is None:
        return None
    day = max(calendar.start_on(point.start), start)
    if day > until:
        return None
    moment = dt.datetime.combine(day, dt.time(7), tzinfo=calendar.timezone or dt.UTC)
    transition = execute(point, initial(point), StartPoint(actor=SYSTEM), now=moment,
                         calendar=calendar)  # fmt: skip
    owners = [
        e.payload.owner
        for e in transition.events
        if isinstance(e.payload, StepActivated) and e.payload.owner
    ]
    row = {
        "point": point.address, "step": None, "kind": "start", "level": 0,
        "fires_on": day.isoformat(), "due": None, "owner": None,
        "to": ", ".join(dict.fromkeys(owners)) or coordinator, "via": None, "days_overdue": 0,
    }  # fmt: skip
    return day, transition.state, row


def duties(point: PointPlan) -> set[str]:
    return {duty.id for duty in point.duties()}


def _iso(day: dt.date | None) -> str | None:
    return day.isoformat() if day else None


def _occurrences(
    point: PointPlan,
    state: PointState,
    duty: StepPlan,
    first: dt.date,
    until: dt.date,
    calendar: Calendar,
) -> list[tuple[dt.date, StepState]]:
    """The duty's occurrences not open yet that open by ``until``, as they would be then."""
    current = state.step(duty.id)
    since = duty_since(state, duty.id, calendar)
    if duty.repeat is None or since is None or current.status.finished:
        return []
    opened = duty_periods(state, duty.id)
    found = []
    for occurrence in recurrence.occurrences(duty.repeat, since, calendar):
        if occurrence.opens_on > until:
            break
        if occurrence.period in opened:
            continue
        day = max(occurrence.opens_on, first)
        moment = dt.datetime.combine(day, dt.time(7), tzinfo=calendar.timezone or dt.UTC)
        found.append((day, StepState(
            id=occurrence.step_id(duty.id), owner=current.owner, status=StepStatus.ACTIVE,
            due=calendar.adjust_due(occurrence.due), activated_at=moment,
        )))  # fmt: skip
    return found
