"""The report back to the council (återrapport): a model built from the event log.

The state of every point is replayed from its events up to the end of the
as-of day, so a report as of last June reads what was true in June, whatever
happened since. Points are grouped the way councils read them: completed
(avslutade), ongoing (pågående), to be started (ska påbörjas); points written
off or decided against are listed apart, and report-back points say when the
report was delivered. Renderers live in :mod:`workflow.report.render`.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict

from workflow.core.calendar import Calendar
from workflow.core.events import Event
from workflow.core.plan import AssignmentPlan, Definitions, PointPlan
from workflow.core.specs import Language
from workflow.core.state import (
    Category,
    PointState,
    all_skipped,
    category,
    duty_tallies,
    is_at_risk,
    is_overdue,
    late_since,
    point_due,
    replay,
    skip_reasons,
)

NotesMode = Literal["latest", "all"]
#: The groups of work points, in the order a council reads them.
GROUPS = (Category.COMPLETED, Category.ONGOING, Category.TO_START)
#: Points listed apart, after the groups.
APART = (Category.WRITTEN_OFF, Category.REJECTED)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class ReportDuty(_Frozen):
    """A recurring duty of a point, counted over its occurrences up to the report's date."""

    title: str
    done: int
    skipped: int
    missed: int
    open: int
    latest_note: str | None = None
    ended: bool = False


class ReportPoint(_Frozen):
    """One point as the report shows it."""

    number: int
    title: str
    category: Category
    progress: tuple[str, ...] = ()
    owner: str | None = None
    due: dt.date | None = None
    overdue: bool = False
    #: When overdue: the earliest due date that has passed (a step's, or the point's).
    late_since: dt.date | None = None
    at_risk: bool = False
    report_back: bool = False
    delivered_on: dt.date | None = None
    #: Why it was written off; for a point whose steps were all skipped, their reasons.
    reason: str | None = None
    #: Every step was skipped: written off, never counted as completed work.
    all_skipped: bool = False
    #: Its recurring duties, each with its occurrences counted.
    duties: tuple[ReportDuty, ...] = ()
    #: When its latest progress note was written (the register's "latest status").
    noted_at: dt.datetime | None = None
    #: The day it was completed or written off (None while open, and for a rejected point).
    closed_on: dt.date | None = None


class Summary(_Frozen):
    completed: int
    ongoing: int
    to_start: int
    written_off: int
    rejected: int
    overdue: int


class Report(_Frozen):
    """An assignment's status, as of a date, in one language.

    Bodies appear by name in the report's language (``decided_by``, ``lead``,
    ``co_owners``, ``receiver``); their ids are kept beside for selecting and grouping.
    """

    assignment: str
    title: str
    reference: str
    decided_by: str
    decided_on: dt.date
    paragraph: str | None
    lead: str
    co_owners: tuple[str, ...]
    #: The body the report goes to, by name.
    receiver: str
    lead_id: str
    co_owner_ids: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    coordinator: str
    report_back: dt.date
    description: str | None
    as_of: dt.date
    language: Language
    #: The language progress notes are written in (the assignment's).
    source_language: Language
    summary: Summary
    groups: dict[Category, tuple[ReportPoint, ...]]
    apart: dict[Category, tuple[ReportPoint, ...]]
    report_back_points: tuple[ReportPoint, ...]


def end_of_day(day: dt.date, tz: ZoneInfo) -> dt.datetime:
    """The first moment after ``day`` in ``tz``: events before it belong to the day."""
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tz)


def _progress(state: PointState, mode: NotesMode) -> tuple[str, ...]:
    texts = [note.text for note in state.notes]
    if mode == "latest":
        return tuple(texts[-1:])
    return tuple(texts)


def _owner_name(plan: PointPlan, state: PointState, definitions: Definitions) -> str | None:
    people = definitions.directory.people
    if plan.owner and plan.owner in people:
        return people[plan.owner].name
    owners = sorted({s.owner for s in state.open_steps()})
    return ", ".join(people[o].name if o in people else o for o in owners) or None


def _report_point(
    plan: PointPlan,
    state: PointState,
    definitions: Definitions,
    *,
    as_of: dt.date,
    tz: ZoneInfo,
    lang: Language,
    notes: NotesMode,
    calendar: Calendar,
    at_risk_days: int,
) -> ReportPoint:
    cat = category(plan, state)
    overdue = is_overdue(plan, state, as_of)
    skipped = all_skipped(state) and state.written_off_at is None
    return ReportPoint(
        number=plan.number,
        title=plan.title.get(lang),
        category=cat,
        progress=_progress(state, notes),
        owner=_owner_name(plan, state, definitions),
        due=point_due(plan, state),
        overdue=overdue,
        late_since=late_since(plan, state, as_of),
        at_risk=is_at_risk(plan, state, as_of, within=at_risk_days, calendar=calendar),
        report_back=plan.report_back,
        delivered_on=(
            state.completed_at.astimezone(tz).date()
            if plan.report_back and state.completed_at and cat is Category.COMPLETED
            else None
        ),
        reason=("; ".join(skip_reasons(state)) or None) if skipped else state.written_off_reason,
        all_skipped=skipped,
        noted_at=state.notes[-1].at if state.notes else None,
        closed_on=_closed_on(cat, state, tz),
        duties=tuple(
            ReportDuty(
                title=plan.step(t.duty).title.get(lang),
                done=t.done,
                skipped=t.skipped,
                missed=t.missed,
                open=t.open,
                latest_note=t.latest_note,
                ended=t.ended,
            )
            for t in duty_tallies(plan, state, as_of)
        ),
    )


def _closed_on(cat: Category, state: PointState, tz: ZoneInfo) -> dt.date | None:
    if cat is Category.WRITTEN_OFF and state.written_off_at is not None:
        return state.written_off_at.astimezone(tz).date()
    if cat in (Category.COMPLETED, Category.WRITTEN_OFF) and state.completed_at is not None:
        return state.completed_at.astimezone(tz).date()
    return None


def build_report(
    definitions: Definitions,
    assignment: AssignmentPlan,
    events: Iterable[Event],
    *,
    as_of: dt.date,
    tz: ZoneInfo,
    lang: Language,
    notes: NotesMode = "latest",
    calendar: Calendar | None = None,
    at_risk_days: int = 5,
) -> Report:
    """The report of ``assignment`` as it stood at the end of ``as_of``."""
    calendar = calendar or Calendar()
    cutoff = end_of_day(as_of, tz)
    by_point: dict[int, list[Event]] = defaultdict(list)
    for event in events:
        if (
            event.assignment == assignment.id
            and event.point is not None
            and event.occurred_at < cutoff
        ):
            by_point[event.point].append(event)
    points = [
        _report_point(
            plan,
            replay(plan, by_point.get(plan.number, [])),
            definitions,
            as_of=as_of,
            tz=tz,
            lang=lang,
            notes=notes,
            calendar=calendar,
            at_risk_days=at_risk_days,
        )
        for plan in assignment.points
    ]
    work = [p for p in points if not p.report_back]
    people = definitions.directory.people
    coordinator = people[assignment.coordinator].name if assignment.coordinator in people else ""
    return Report(
        assignment=assignment.id,
        title=assignment.title.get(lang),
        reference=assignment.reference,
        decided_by=definitions.body_name(assignment.decided_by, lang),
        decided_on=assignment.decided_on,
        paragraph=assignment.paragraph,
        lead=definitions.body_name(assignment.lead, lang),
        co_owners=tuple(definitions.body_name(b, lang) for b in assignment.co_owners),
        receiver=definitions.body_name(assignment.receiver, lang),
        lead_id=assignment.lead,
        co_owner_ids=assignment.co_owners,
        tags=assignment.tags,
        coordinator=coordinator,
        report_back=assignment.report_back,
        description=assignment.description.get(lang) if assignment.description else None,
        as_of=as_of,
        language=lang,
        source_language=assignment.language,
        summary=Summary(
            **{cat.value: sum(p.category is cat for p in work) for cat in (*GROUPS, *APART)},
            overdue=sum(p.overdue for p in work),
        ),
        groups={cat: tuple(p for p in work if p.category is cat) for cat in GROUPS},
        apart={cat: tuple(p for p in work if p.category is cat) for cat in APART},
        report_back_points=tuple(p for p in points if p.report_back),
    )
