"""The backlog: every open point across all assignments, oldest decision first.

Auditors ask each year how old each open item is and which decisions are the
oldest still not carried out. Ages count from the council's decision; points
older than the configured limit (11 months by default) are flagged.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import defaultdict
from collections.abc import Callable, Iterable
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict

from workflow.core.calendar import Calendar
from workflow.core.events import Event
from workflow.core.plan import Definitions
from workflow.core.state import Category, category, is_at_risk, is_overdue, replay
from workflow.report.model import end_of_day

OPEN = (Category.TO_START, Category.ONGOING)


class BacklogItem(BaseModel):
    model_config = ConfigDict(frozen=True)

    assignment: str
    point: int
    address: str
    title: str
    reference: str
    decided_on: dt.date
    age_days: int
    age_months: int
    category: Category
    due: dt.date | None
    overdue: bool
    at_risk: bool
    old: bool


def months_between(start: dt.date, end: dt.date) -> int:
    """Whole months from ``start`` to ``end`` (14 Nov -> 13 Dec is 0, -> 14 Dec is 1)."""
    months = (end.year - start.year) * 12 + end.month - start.month
    return months - 1 if end.day < start.day else months


def points_as_of(definitions: Definitions, as_of: dt.date) -> int:
    """How many points the backlog looks at (those of assignments decided by ``as_of``)."""
    return sum(len(p.points) for p in definitions.assignments.values() if p.decided_on <= as_of)


def build_backlog(
    definitions: Definitions,
    events: Iterable[Event],
    *,
    as_of: dt.date,
    tz: ZoneInfo,
    calendar: Calendar,
    at_risk_days: int,
    age_limit_months: int,
    on_point: Callable[[int], None] | None = None,
) -> list[BacklogItem]:
    """The open points as of ``as_of``; ``on_point(1)`` after each point (a progress bar)."""
    cutoff = end_of_day(as_of, tz)
    by_point: dict[tuple[str, int], list[Event]] = defaultdict(list)
    for event in events:
        if event.point is not None and event.occurred_at < cutoff:
            by_point[(event.assignment, event.point)].append(event)
    items = []
    for plan in definitions.assignments.values():
        if plan.decided_on > as_of:
            continue
        for point in plan.points:
            if on_point is not None:
                on_point(1)
            state = replay(point, by_point.get((plan.id, point.number), []))
            cat = category(point, state)
            if cat not in OPEN:
                continue
            months = months_between(plan.decided_on, as_of)
            items.append(
                BacklogItem(
                    assignment=plan.id,
                    point=point.number,
                    address=point.address,
                    title=str(point.title),
                    reference=plan.reference,
                    decided_on=plan.decided_on,
                    age_days=(as_of - plan.decided_on).days,
                    age_months=months,
                    category=cat,
                    due=point.due,
                    overdue=is_overdue(point, state, as_of),
                    at_risk=is_at_risk(point, state, as_of, within=at_risk_days, calendar=calendar),
                    old=months >= age_limit_months,
                )
            )
    items.sort(key=lambda item: (item.decided_on, item.assignment, item.point))
    return items


COLUMNS = ["point", "title", "reference", "decided", "age (months)", "category", "due", "marks"]


def marks(item: BacklogItem) -> str:
    flags = []
    if item.overdue:
        flags.append("OVERDUE")
    elif item.at_risk:
        flags.append("at risk")
    if item.old:
        flags.append("OLD")
    return ", ".join(flags)


def rows(items: list[BacklogItem]) -> list[list[str]]:
    return [
        [
            i.address,
            i.title,
            i.reference,
            i.decided_on.isoformat(),
            str(i.age_months),
            i.category.value,
            i.due.isoformat() if i.due else "",
            marks(i),
        ]
        for i in items
    ]


def to_csv(items: list[BacklogItem]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(rows(items))
    return out.getvalue()


def to_markdown(items: list[BacklogItem]) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows(items)]
    return "\n".join(lines) + "\n"
