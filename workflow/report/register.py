"""The register (uppdragslista): a report across assignments, as of a date.

A municipality reports on all its open assignments at fixed occasions (the first
tertial report, the interim report in August, the annual report), each committee its
own, and auditors ask for the oldest decisions not yet carried out. The register is
one table of assignments (reference, decision, title, lead body, category, due, the
latest status text) followed by each assignment's report back (:mod:`.model`), every
point in its group.

Which assignments it covers is a :class:`Selection`: named ones, every one, a body's,
those decided in a year, or an occasion's. An occasion covers the assignments it
selects (by body and tag) that were decided by its day and not closed before its year
began: an assignment finished in March is in the April report, as completed, and in no
report of the next year.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from workflow.core.calendar import Calendar
from workflow.core.events import Event
from workflow.core.plan import AssignmentPlan, Definitions, OccasionPlan
from workflow.core.specs import Language
from workflow.core.state import Category
from workflow.report.model import (
    APART,
    GROUPS,
    NotesMode,
    Report,
    ReportPoint,
    Summary,
    _Frozen,
    build_report,
)

#: A register row's category, from its points (see :func:`assignment_category`).
OPEN = (Category.TO_START, Category.ONGOING)


@dataclass(frozen=True)
class Selection:
    """Which assignments a register covers; the filters combine (all must hold)."""

    assignments: tuple[str, ...] = ()
    everything: bool = False
    body: str | None = None
    decided_in: int | None = None
    occasion: OccasionPlan | None = None
    #: The occasion's year.
    year: int | None = None

    def admits(self, plan: AssignmentPlan, as_of: dt.date) -> bool:
        """Whether ``plan`` is selected before looking at its points (decided by ``as_of``)."""
        if plan.decided_on > as_of:
            return False
        if self.assignments and plan.id not in self.assignments:
            return False
        if self.body is not None and not plan.involves(self.body):
            return False
        if self.decided_in is not None and plan.decided_on.year != self.decided_in:
            return False
        return self.occasion is None or self.occasion.covers(plan)


class RegisterRow(_Frozen):
    """One assignment as the register's table shows it."""

    assignment: str
    reference: str
    decided_by: str
    decided_on: dt.date
    paragraph: str | None
    title: str
    lead: str
    lead_id: str
    category: Category
    #: The date the council expects the report back.
    due: dt.date
    #: The latest progress note of any of its points, up to the as-of date.
    status: str | None
    points: int
    overdue: int
    #: The language its notes are written in (the assignment's).
    source_language: Language


class Register(_Frozen):
    """A report across assignments as of a date, in one language."""

    as_of: dt.date
    language: Language
    #: The body the register goes to, by name (the occasion's, else the one all its
    #: assignments report to); None when they report to different bodies.
    receiver: str | None
    occasion: str | None = None
    occasion_id: str | None = None
    year: int | None = None
    #: What was selected, as the heading says it ("Socialnämnden", "beslutade 2024").
    selection: tuple[str, ...] = ()
    rows: tuple[RegisterRow, ...]
    reports: tuple[Report, ...]
    #: Assignments per category (the register's own summary).
    assignments: dict[Category, int]
    #: Points per category across every assignment, and how many are overdue.
    summary: Summary


def work_points(report: Report) -> list[ReportPoint]:
    """The points that are work (not the report back itself), in number order."""
    points = [p for cat in GROUPS for p in report.groups[cat]]
    points += [p for cat in APART for p in report.apart[cat]]
    return sorted(points, key=lambda p: p.number)


def assignment_category(report: Report) -> Category:
    """An assignment's category from its points.

    Completed when no work point is open and at least one was completed; written off or
    rejected when every work point was; to be started while no work point has begun
    (apart from those written off or rejected); ongoing otherwise.
    """
    points = work_points(report) or list(report.report_back_points)
    cats = {p.category for p in points}
    if not cats & set(OPEN):
        for cat in (Category.COMPLETED, Category.WRITTEN_OFF, Category.REJECTED):
            if cat in cats:
                return cat
    if cats <= {Category.TO_START, *APART}:
        return Category.TO_START
    return Category.ONGOING


def closed_on(report: Report) -> dt.date | None:
    """The day an assignment's last open work point closed; None while one is open."""
    points = work_points(report)
    if any(p.category in OPEN for p in points):
        return None
    days = [p.closed_on for p in points if p.closed_on is not None]
    return max(days) if days else report.decided_on


def _row(report: Report) -> RegisterRow:
    noted = [p for p in [*work_points(report), *report.report_back_points] if p.noted_at]
    latest = max(noted, key=lambda p: (p.noted_at, p.number)) if noted else None
    return RegisterRow(
        assignment=report.assignment,
        reference=report.reference,
        decided_by=report.decided_by,
        decided_on=report.decided_on,
        paragraph=report.paragraph,
        title=report.title,
        lead=report.lead,
        lead_id=report.lead_id,
        category=assignment_category(report),
        due=report.report_back,
        status=latest.progress[-1] if latest and latest.progress else None,
        points=len(work_points(report)),
        overdue=report.summary.overdue,
        source_language=report.source_language,
    )


_DECIDED_IN = {Language.SV: "beslutade {year}", Language.EN: "decided in {year}"}


def _described(definitions: Definitions, selection: Selection, lang: Language) -> tuple[str, ...]:
    """The filters beyond the occasion, as the heading names them."""
    parts = []
    if selection.body is not None:
        parts.append(definitions.body_name(selection.body, lang))
    if selection.decided_in is not None:
        parts.append(_DECIDED_IN[lang].format(year=selection.decided_in))
    return tuple(parts)


def _receiver(
    definitions: Definitions, selection: Selection, reports: list[Report], lang: Language
) -> str | None:
    occasion = selection.occasion
    if occasion is not None and occasion.report_to:
        return definitions.body_name(occasion.report_to, lang)
    receivers = {r.receiver for r in reports}
    return receivers.pop() if len(receivers) == 1 else None


def build_register(
    definitions: Definitions,
    plans: Mapping[str, AssignmentPlan],
    events: Iterable[Event],
    selection: Selection,
    *,
    as_of: dt.date,
    tz: ZoneInfo,
    lang: Language,
    notes: NotesMode = "latest",
    calendar: Calendar | None = None,
    at_risk_days: int = 5,
) -> Register:
    """The register of the selected assignments as it stood at the end of ``as_of``.

    ``plans`` are the assignments' plans in force on the day (an amendment after it does
    not change the register), for at least every assignment the selection admits.
    """
    by_assignment: dict[str, list[Event]] = {}
    for event in events:
        by_assignment.setdefault(event.assignment, []).append(event)
    chosen = sorted(
        (p for p in definitions.assignments.values() if selection.admits(p, as_of)),
        key=lambda p: (p.decided_on, p.reference, p.id),
    )
    reports = [
        build_report(
            definitions, plans.get(p.id, p), by_assignment.get(p.id, ()), as_of=as_of, tz=tz,
            lang=lang, notes=notes, calendar=calendar, at_risk_days=at_risk_days,
        )
        for p in chosen
    ]  # fmt: skip
    if selection.occasion is not None and selection.year is not None:
        year_began = dt.date(selection.year, 1, 1)
        reports = [r for r in reports if (day := closed_on(r)) is None or day >= year_began]
    rows = [_row(r) for r in reports]
    totals = {
        field: sum(getattr(r.summary, field) for r in reports) for field in Summary.model_fields
    }
    return Register(
        as_of=as_of,
        language=lang,
        receiver=_receiver(definitions, selection, reports, lang),
        occasion=selection.occasion.name.get(lang) if selection.occasion else None,
        occasion_id=selection.occasion.id if selection.occasion else None,
        year=selection.year if selection.occasion else None,
        selection=_described(definitions, selection, lang),
        rows=tuple(rows),
        reports=tuple(reports),
        assignments={cat: sum(r.category is cat for r in rows) for cat in (*GROUPS, *APART)},
        summary=Summary(**totals),
    )
