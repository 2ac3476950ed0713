"""`council simulate`: what would fire, day by day, if nobody acted (nothing is written)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from workflow.core import deadlines
from workflow.core.calendar import Calendar
from workflow.core.plan import AssignmentPlan, Directory
from workflow.core.state import PointState


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
    would fire that has not fired yet (nor on an earlier simulated day).
    """
    rows: list[dict[str, Any]] = []
    seen = set(fired)
    for point in plan.points:
        state = snapshot.get((plan.id, point.number))
        if state is None:
            continue
        for step in point.steps:
            step_state = state.step(step.id)
            schedule = deadlines.schedule(point, step, step_state, calendar)
            day = start
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
    rows.sort(key=lambda r: (r["fires_on"], r["point"], r["step"], r["level"]))
    return rows
