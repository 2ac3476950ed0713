"""What the public site says about an assignment: its open data, one plain dict.

The site is a view of its open data: :func:`assignment_data` turns a public assignment
and its events up to a day into the JSON document published as
``data/uppdrag/<id>.json`` (schema in docs/open-data.md), and every page is rendered
from these documents. So an incremental build reads the unchanged assignments back from
the previous build's files, and the pages can show nothing the open data does not.

Only public facts go in: titles, bodies (by name), decisions, categories, due dates,
the dated public events (a point started, a step or a point completed, a point written
off, a note marked public, a report requested) and the reports as delivered, rebuilt
with public notes only. No person appears: no owner, no coordinator, no e-mail address,
no internal note, no hold or reopen reason, no skip reason.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any
from zoneinfo import ZoneInfo

from workflow.core.calendar import Calendar
from workflow.core.events import (
    Event,
    EventType,
    NoteAdded,
    PointWrittenOff,
    ReportRequested,
)
from workflow.core.plan import AssignmentPlan, Definitions
from workflow.core.privacy import find_personal_number
from workflow.core.specs import Language
from workflow.core.state import Category
from workflow.report.model import Report, ReportPoint, build_report, end_of_day
from workflow.report.register import assignment_category, work_points

#: The open data's schema; a change that removes or renames a field raises it.
SCHEMA = "council-open-data/1"
LANGUAGES = (Language.SV, Language.EN)
#: A category's slug in each language's URLs (``status/pagaende/``, ``en/status/ongoing/``).
CATEGORY_SLUGS: dict[Language, dict[Category, str]] = {
    Language.SV: {
        Category.COMPLETED: "avslutade",
        Category.ONGOING: "pagaende",
        Category.TO_START: "ska-paborjas",
        Category.WRITTEN_OFF: "avskrivna",
        Category.REJECTED: "avslag",
    },
    Language.EN: {
        Category.COMPLETED: "completed",
        Category.ONGOING: "ongoing",
        Category.TO_START: "to-start",
        Category.WRITTEN_OFF: "written-off",
        Category.REJECTED: "rejected",
    },
}
#: Each language's path segments: the site is Swedish at its root, English under en/.
PATHS: dict[Language, dict[str, str]] = {
    Language.SV: {
        "root": "",
        "assignment": "uppdrag",
        "body": "organ",
        "year": "ar",
        "status": "status",
        "accessibility": "tillganglighet",
        "reports": "rapporter",
    },
    Language.EN: {
        "root": "en/",
        "assignment": "assignments",
        "body": "bodies",
        "year": "years",
        "status": "status",
        "accessibility": "accessibility",
        "reports": "reports",
    },
}


def assignment_path(lang: Language, assignment: str, point: int | None = None) -> str:
    """The page of an assignment (or one of its points), relative to the site's root."""
    p = PATHS[lang]
    path = f"{p['root']}{p['assignment']}/{assignment}/"
    return f"{path}{point}/" if point is not None else path


def _both(plan_text: Any) -> dict[str, str]:
    return {lang.value: plan_text.get(lang) for lang in LANGUAGES}


def _body(definitions: Definitions, body: str) -> dict[str, Any]:
    return {
        "id": body,
        "name": {lang.value: definitions.body_name(body, lang) for lang in LANGUAGES},
    }


def _iso(value: dt.date | dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _timeline(
    plan: AssignmentPlan, events: Iterable[tuple[int, Event]], tz: ZoneInfo
) -> list[dict[str, Any]]:
    """The public events, oldest first: each with its id, time, point and kind."""
    entries: list[dict[str, Any]] = []
    numbers = {p.number for p in plan.points}
    for event_id, event in events:
        entry: dict[str, Any] = {
            "event": event_id,
            "at": event.occurred_at.astimezone(tz).isoformat(),
            "point": event.point,
        }
        if event.point is not None and event.point not in numbers:
            continue  # a point an amendment removed
        match event.type, event.payload:
            case EventType.POINT_STARTED, _:
                entry["kind"] = "started"
            case EventType.POINT_COMPLETED, _:
                entry["kind"] = "completed"
            case EventType.STEP_COMPLETED, _ if event.step is not None and event.point is not None:
                try:
                    step = plan.point(event.point).step(event.step)
                except KeyError:
                    continue  # a step an amendment removed
                entry |= {"kind": "step_completed", "step": _both(step.title)}
            case EventType.POINT_WRITTEN_OFF, PointWrittenOff(reason=reason):
                entry |= {"kind": "written_off", "text": _public(reason),
                          "language": plan.language.value}  # fmt: skip
            case EventType.NOTE_ADDED, NoteAdded(text=text, public=True) if _public(text):
                entry |= {"kind": "note", "text": text, "language": plan.language.value}
            case EventType.REPORT_REQUESTED, ReportRequested(as_of=as_of, language=language):
                entry |= {"kind": "report", "as_of": as_of.isoformat(), "report_language": language}
            case _:
                continue
        entries.append(entry)
    return entries


def _public(text: str) -> str | None:
    """``text``, unless the personal-number guard would refuse it. Commands refuse such text
    as it is entered; this keeps a row written before the guard, or by hand, off the site."""
    return None if find_personal_number(text) else text


def _latest_notes(timeline: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    latest: dict[int, dict[str, Any]] = {}
    for entry in timeline:
        if entry["kind"] == "note" and entry["point"] is not None:
            latest[entry["point"]] = entry
    return latest


def _point(
    point: ReportPoint, titles: dict[str, str], note: dict[str, Any] | None
) -> dict[str, Any]:
    return {
        "number": point.number,
        "title": titles,
        "category": point.category.value,
        "report_back": point.report_back,
        "due": _iso(point.due),
        "overdue": point.overdue,
        "late_since": _iso(point.late_since),
        "closed_on": _iso(point.closed_on),
        "delivered_on": _iso(point.delivered_on),
        # The council's reason for a write-off is public; an owner's reasons for skipping
        # steps are not.
        "reason": _public(point.reason)
        if point.reason and point.category is Category.WRITTEN_OFF and not point.all_skipped
        else None,
        "status_text": note["text"] if note else None,
        "status_at": note["at"] if note else None,
    }  # fmt: skip


def public_report(report: Report, notes: Mapping[int, str]) -> Report:
    """``report`` with nothing but public facts: each point's progress is its latest public
    note (``notes``), and no person is named (no owner, no coordinator)."""

    def clean(point: ReportPoint) -> ReportPoint:
        text = notes.get(point.number)
        return point.model_copy(
            update={
                "progress": (text,) if text else (),
                "owner": None,
                "reason": point.reason if not point.all_skipped else None,
                "duties": tuple(d.model_copy(update={"latest_note": None}) for d in point.duties),
            }
        )

    return report.model_copy(
        update={
            "coordinator": "",
            "groups": {cat: tuple(map(clean, pts)) for cat, pts in report.groups.items()},
            "apart": {cat: tuple(map(clean, pts)) for cat, pts in report.apart.items()},
            "report_back_points": tuple(map(clean, report.report_back_points)),
        }
    )


def public_notes(events: Iterable[Event], as_of: dt.date, tz: ZoneInfo) -> dict[int, str]:
    """Each point's latest public note written by the end of ``as_of``."""
    cutoff = end_of_day(as_of, tz)
    notes: dict[int, str] = {}
    for event in events:
        match event.payload:
            case NoteAdded(text=text, public=True) if (
                event.point is not None and event.occurred_at < cutoff and _public(text)
            ):
                notes[event.point] = text
    return notes


def assignment_data(
    definitions: Definitions,
    plan: AssignmentPlan,
    events: list[tuple[int, Event]],
    *,
    as_of: dt.date,
    tz: ZoneInfo,
    calendar: Calendar | None = None,
    at_risk_days: int = 5,
) -> dict[str, Any]:
    """The open data of one public assignment as it stood at the end of ``as_of``."""
    cutoff = end_of_day(as_of, tz)
    kept = [(i, e) for i, e in events if e.occurred_at < cutoff]
    report = build_report(
        definitions, plan, [e for _, e in kept], as_of=as_of, tz=tz, lang=Language.SV,
        calendar=calendar, at_risk_days=at_risk_days,
    )  # fmt: skip
    timeline = _timeline(plan, kept, tz)
    notes = _latest_notes(timeline)
    titles = {p.number: _both(p.title) for p in plan.points}
    points = [
        _point(p, titles[p.number], notes.get(p.number))
        for p in sorted([*work_points(report), *report.report_back_points], key=lambda p: p.number)
    ]
    latest = max(notes.values(), key=lambda n: (n["at"], n["point"]), default=None)
    counts: dict[str, int] = defaultdict(int)
    for p in work_points(report):
        counts[p.category.value] += 1
    return {
        "id": plan.id,
        "reference": plan.reference,
        "title": _both(plan.title),
        "description": _both(plan.description) if plan.description else None,
        "language": plan.language.value,
        "decided_by": _body(definitions, plan.decided_by),
        "decided_on": plan.decided_on.isoformat(),
        "year": plan.decided_on.year,
        "paragraph": plan.paragraph,
        "lead": _body(definitions, plan.lead),
        "co_owners": [_body(definitions, b) for b in plan.co_owners],
        "report_to": _body(definitions, plan.receiver),
        "report_back": plan.report_back.isoformat(),
        "tags": list(plan.tags),
        "category": assignment_category(report).value,
        "points_total": len(work_points(report)),
        "points_overdue": report.summary.overdue,
        "counts": {cat.value: counts.get(cat.value, 0) for cat in Category},
        "status_text": latest["text"] if latest else None,
        "status_at": latest["at"] if latest else None,
        "points": points,
        "timeline": timeline,
        "reports": [
            {"as_of": e["as_of"], "language": e["report_language"], "requested_at": e["at"]}
            for e in timeline
            if e["kind"] == "report"
        ],
    }
