"""What the pages show, as plain data: the CLI's views (:mod:`commands.views`) over the
engine's queries, on a database opened read-only. Nothing here writes."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from typing import Any

from commands import views
from workflow.core.events import (
    DefinitionAmended,
    Event,
    PointStarted,
    StepActivated,
    StepReassigned,
    StepRemoved,
    StepRescheduled,
)
from workflow.core.plan import AssignmentPlan, Definitions, PointPlan
from workflow.core.specs import Language
from workflow.engine import Engine
from workflow.mail.templating import format_date
from workflow.report import backlog as backlogs
from workflow.settings import Settings

#: Events on one page of the event log.
PAGE_SIZE = 50


@dataclass(frozen=True)
class Reader:
    """The read-only queries behind the pages."""

    engine: Engine
    settings: Settings

    @property
    def definitions(self) -> Definitions:
        return self.engine.definitions

    def today(self) -> dt.date:
        return dt.datetime.now(self.engine.timezone).date()

    def check(self) -> None:
        """The database answers and is migrated (``/healthz``)."""
        self.engine.check_ready()

    def _status(self, plans: list[AssignmentPlan], only: str | None) -> list[dict[str, Any]]:
        return views.status(
            self.definitions,
            plans,
            self.engine.snapshot(only),
            self.today(),
            self.settings.calendar(),
            self.settings.at_risk_days,
            self.engine.planned_starts(only),
        )

    def register(self) -> list[dict[str, Any]]:
        """One row per assignment: its facts and how many points are in each category."""
        plans = sorted(
            self.definitions.assignments.values(), key=lambda p: (p.decided_on, p.id), reverse=True
        )
        started = set(self.engine.started_assignments())
        rows = self._status(plans, None)
        result = []
        for plan in plans:
            mine = [r for r in rows if r["point"].startswith(f"{plan.id}/")]
            result.append(
                {
                    "plan": plan,
                    "started": plan.id in started,
                    "points": len(mine),
                    "categories": Counter(r["category"] for r in mine),
                    "overdue": sum(1 for r in mine if r["overdue"]),
                }
            )
        return result

    def assignment(self, plan: AssignmentPlan) -> list[dict[str, Any]]:
        """``council status ASSIGNMENT``: a row per point."""
        return self._status([plan], plan.id)

    def point(self, point: PointPlan, lang: Language) -> dict[str, Any]:
        """``council show POINT``: steps, duties, every note (internal ones too), history."""
        state, history = self.engine.point_state(point)
        detail = views.point_detail(
            point, state, history, self.today(), self.engine.timezone, self.settings.calendar(),
            self.engine.planned_starts(point.assignment),
        )  # fmt: skip
        detail["history"] = self._rows(history, lang)
        return detail

    def backlog(self, as_of: dt.date, body: str | None) -> list[backlogs.BacklogItem]:
        """``council backlog``: the open points, oldest decision first."""
        return backlogs.build_backlog(
            self.definitions, [e for _, e in self.engine.events()], as_of=as_of,
            tz=self.engine.timezone, calendar=self.settings.calendar(),
            at_risk_days=self.settings.at_risk_days,
            age_limit_months=self.settings.backlog_age_limit_months, body=body,
        )  # fmt: skip

    def events(
        self, assignment: str | None, point: int | None, since: int, lang: Language
    ) -> tuple[list[dict[str, Any]], bool]:
        """``council events``: one page after event ``since``, and whether more follow."""
        listed = self.engine.events(
            assignment=assignment, point=point, since=since, limit=PAGE_SIZE + 1
        )
        return self._rows(listed[:PAGE_SIZE], lang), len(listed) > PAGE_SIZE

    def _rows(self, listed: Any, lang: Language) -> list[dict[str, Any]]:
        tz = self.engine.timezone
        return [views.event_row(i, e, tz) | {"shown": detail(e, lang)} for i, e in listed]


def _day(value: dt.date | None, lang: Language) -> str:
    return format_date(value, lang) if value else ""


def detail(event: Event, lang: Language) -> str | None:
    """What a structured event says, in ``lang``; None: the CLI's detail (free text: a note,
    a reason, in the language it was written in)."""
    sv = lang is Language.SV
    match event.payload:
        case StepActivated(owner=owner, due=due, due_declared=declared):
            text = f"{'ansvarig' if sv else 'owner'} {owner}"
            if due:
                text += f", {'klart senast' if sv else 'due'} {_day(due, lang)}"
            if declared:
                moved = "flyttad från" if sv else "moved from"
                text += f" ({moved} {_day(declared, lang)})"
            return text
        case StepReassigned(from_=before, to=after):
            return f"{before} → {after}"
        case PointStarted(start_date=start):
            return f"{'startdatum' if sv else 'start date'} {_day(start, lang)}"
        case StepRescheduled(due=due, reason=text):
            return f"{'klart senast' if sv else 'due'} {_day(due, lang)}: {text}"
        case StepRemoved(status=status, reason=text):
            return f"{'var' if sv else 'was'} {status}: {text}"
        case DefinitionAmended(version=version, changes=changes):
            return f"version {version}: " + "; ".join(changes)
    return None
