"""Versions of an assignment's definition: a resolved plan as stored data, and back.

The store keeps every version of an assignment that was started or amended (its digest,
its file's text and when it took effect), with the resolved plan as JSON, so a report
as of a date renders with the definition in force on that date, whatever came after.
:func:`to_data` and :func:`from_data` are exact inverses (tested: the digest survives).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from workflow.core.plan import AssignmentPlan, Localized, PointPlan, Rung, StepPlan
from workflow.core.recurrence import Every, Rule
from workflow.core.values import DueRule, Duration, Language

#: Bumped when the stored shape changes.
FORMAT = 1


def _text(value: Localized | None) -> dict[str, str | None] | None:
    return None if value is None else {"sv": value.sv, "en": value.en}


def _localized(value: dict[str, str | None] | None) -> Localized | None:
    return None if value is None else Localized(sv=value.get("sv"), en=value.get("en"))


def _title(value: dict[str, str | None]) -> Localized:
    localized = _localized(value)
    assert localized is not None
    return localized


def _day(value: dt.date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _date(value: str | None) -> dt.date | None:
    return dt.date.fromisoformat(value) if value is not None else None


def _rule(rule: Rule | None) -> dict[str, Any] | None:
    if rule is None:
        return None
    return {
        "every": rule.every.value, "on": rule.on, "month": rule.month,
        "until": _day(rule.until), "count": rule.count,
    }  # fmt: skip


def _step(step: StepPlan) -> dict[str, Any]:
    return {
        "id": step.id,
        "title": _text(step.title),
        "owner": step.owner,
        "after": list(step.after),
        "description": _text(step.description),
        "due": str(step.due) if step.due is not None else None,
        "remind": [str(d) for d in step.remind] if step.remind is not None else None,
        "escalate": [{"level": r.level, "after": str(r.after), "to": r.to} for r in step.escalate],
        "requires_note": step.requires_note,
        "assembles_report": step.assembles_report,
        "delegable": step.delegable,
        "repeat": _rule(step.repeat),
    }


def _point(point: PointPlan) -> dict[str, Any]:
    return {
        "number": point.number,
        "title": _text(point.title),
        "owner": point.owner,
        "steps": [_step(s) for s in point.steps],
        "workflow": point.workflow,
        "description": _text(point.description),
        "start": _day(point.start),
        "due": _day(point.due),
        "rejected": point.rejected,
        "report_back": point.report_back,
    }


def to_data(plan: AssignmentPlan) -> dict[str, Any]:
    """The plan as JSON-ready data."""
    return {
        "format": FORMAT,
        "id": plan.id,
        "title": _text(plan.title),
        "reference": plan.reference,
        "decided_by": plan.decided_by,
        "decided_on": plan.decided_on.isoformat(),
        "lead": plan.lead,
        "coordinator": plan.coordinator,
        "report_back": plan.report_back.isoformat(),
        "language": plan.language.value,
        "points": [_point(p) for p in plan.points],
        "paragraph": plan.paragraph,
        "co_owners": list(plan.co_owners),
        "description": _text(plan.description),
        # Kept so a stored plan reads back whole; the site reads publicity from
        # the definitions, since it is not part of the digest a version is keyed by.
        "public": plan.public,
    }


def _from_rule(data: dict[str, Any] | None) -> Rule | None:
    if data is None:
        return None
    return Rule(Every(data["every"]), on=data["on"], month=data["month"],
                until=_date(data["until"]), count=data["count"])  # fmt: skip


def _from_step(data: dict[str, Any]) -> StepPlan:
    return StepPlan(
        id=data["id"],
        title=_title(data["title"]),
        owner=data["owner"],
        after=tuple(data["after"]),
        description=_localized(data["description"]),
        due=DueRule.parse(data["due"]) if data["due"] is not None else None,
        remind=tuple(Duration.parse(d) for d in data["remind"])
        if data["remind"] is not None
        else None,
        escalate=tuple(
            Rung(r["level"], Duration.parse(r["after"]), r["to"]) for r in data["escalate"]
        ),
        requires_note=data["requires_note"],
        assembles_report=data["assembles_report"],
        delegable=data["delegable"],
        repeat=_from_rule(data["repeat"]),
    )


def _from_point(assignment: str, data: dict[str, Any]) -> PointPlan:
    return PointPlan(
        assignment=assignment,
        number=data["number"],
        title=_title(data["title"]),
        owner=data["owner"],
        steps=tuple(_from_step(s) for s in data["steps"]),
        workflow=data["workflow"],
        description=_localized(data["description"]),
        start=_date(data["start"]),
        due=_date(data["due"]),
        rejected=data["rejected"],
        report_back=data["report_back"],
    )


def from_data(data: dict[str, Any]) -> AssignmentPlan:
    """The plan :func:`to_data` stored."""
    if data.get("format") != FORMAT:
        raise ValueError(f"stored plan of format {data.get('format')!r}, expected {FORMAT}")
    decided_on, report_back = _date(data["decided_on"]), _date(data["report_back"])
    assert decided_on is not None
    assert report_back is not None
    return AssignmentPlan(
        id=data["id"],
        title=_title(data["title"]),
        reference=data["reference"],
        decided_by=data["decided_by"],
        decided_on=decided_on,
        lead=data["lead"],
        coordinator=data["coordinator"],
        report_back=report_back,
        language=Language(data["language"]),
        points=tuple(_from_point(data["id"], p) for p in data["points"]),
        paragraph=data["paragraph"],
        co_owners=tuple(data["co_owners"]),
        description=_localized(data["description"]),
        public=bool(data.get("public", False)),
    )
