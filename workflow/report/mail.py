"""Mailing the report back to the coordinator: HTML body, DOCX attached, recorded once."""

from __future__ import annotations

import base64
import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Connection

from workflow import store
from workflow.core.calendar import Calendar
from workflow.core.plan import Definitions
from workflow.core.specs import Language
from workflow.mail.compose import Rendered
from workflow.mail.templating import format_date
from workflow.report.model import NotesMode, build_report, end_of_day
from workflow.report.render import LABELS, to_docx, to_html, to_markdown
from workflow.store import effects
from workflow.store.effects import EffectKind
from workflow.store.versions import plan_in_force

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def record_report(
    conn: Connection,
    definitions: Definitions,
    *,
    assignment: str,
    as_of: dt.date,
    language: Language,
    key: str,
    event_id: int | None,
    now: dt.datetime,
    tz: ZoneInfo,
    notes: NotesMode = "latest",
    calendar: Calendar | None = None,
    at_risk_days: int = 5,
) -> int | None:
    """Assemble the report as of ``as_of`` and record it as an e-mail to the coordinator.

    Rendered now and stored with the effect, so a resend is the same message.
    Returns the new effect id, or None if this key was recorded before.
    """
    plan = plan_in_force(conn, definitions.assignment(assignment), end_of_day(as_of, tz))
    events = [e for _, e in store.list_events(conn, assignment=assignment)]
    report = build_report(
        definitions, plan, events, as_of=as_of, tz=tz, lang=language, notes=notes,
        calendar=calendar, at_risk_days=at_risk_days,
    )  # fmt: skip
    coordinator = definitions.directory.people[plan.coordinator]
    labels = LABELS[language]
    rendered = Rendered(
        language=language,
        to_name=coordinator.name,
        to_email=coordinator.email,
        subject=f"{labels['report']}: {report.title} ({labels['as_of'].lower()} "
        f"{format_date(as_of, language)})",
        text=to_markdown(report),
        html=to_html(report),
        attachment=base64.b64encode(to_docx(report)).decode(),
        attachment_name=f"{assignment}-{as_of.isoformat()}-{language.value}.docx",
        attachment_type=DOCX,
    )
    payload = {"message": rendered.model_dump(mode="json"), "created": now.isoformat()}
    return effects.record(
        conn, key=key, kind=EffectKind.REPORT, event_id=event_id, payload=payload, now=now
    )
