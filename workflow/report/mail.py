"""Mailing the report back to the coordinator, and an occasion's register to its recipients:
HTML body, DOCX attached, recorded once; the reminder before an occasion."""

from __future__ import annotations

import base64
import datetime as dt
from html import escape
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Connection

from workflow import store
from workflow.core.calendar import Calendar
from workflow.core.plan import Definitions, OccasionPlan
from workflow.core.specs import Language
from workflow.mail.compose import Rendered
from workflow.mail.templating import format_date
from workflow.report.model import NotesMode, build_report, end_of_day
from workflow.report.register import OPEN, Register, Selection, build_register, work_points
from workflow.report.render import (
    LABELS,
    register_heading,
    register_to_docx,
    register_to_html,
    register_to_markdown,
    to_docx,
    to_html,
    to_markdown,
)
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


# --- reporting occasions ------------------------------------------------------------------

#: The reminder before an occasion, in the coordinator's language.
REMINDER_LABELS = {
    Language.SV: {
        "subject": "Påminnelse: {occasion} {year} sammanställs {day}",
        "hello": "Hej",
        "text": "{occasion} {year}{to} sammanställs och skickas {day}. Läget just nu: {count} "
        "uppdrag med {points} punkter; {overdue} punkter är försenade och {silent} saknar "
        "lägesbeskrivning.",
        "to": " till {receiver}",
        "silent_heading": "Uppdrag med punkter utan lägesbeskrivning:",
        "command": "Se läget med",
        "footer": "Detta meddelande skickades automatiskt av council.",
    },
    Language.EN: {
        "subject": "Reminder: {occasion} {year} is assembled on {day}",
        "hello": "Hello",
        "text": "{occasion} {year}{to} is assembled and sent on {day}. Where it stands now: "
        "{count} assignments with {points} points; {overdue} points are overdue and {silent} "
        "have no progress reported.",
        "to": " for {receiver}",
        "silent_heading": "Assignments with points without progress reported:",
        "command": "See where it stands with",
        "footer": "This message was sent automatically by council.",
    },
}


def _occasion_register(
    conn: Connection,
    definitions: Definitions,
    occasion: OccasionPlan,
    year: int,
    as_of: dt.date,
    language: Language,
    *,
    tz: ZoneInfo,
    notes: NotesMode,
    calendar: Calendar | None,
    at_risk_days: int,
) -> Register:
    selection = Selection(occasion=occasion, year=year)
    cutoff = end_of_day(as_of, tz)
    plans = {
        plan.id: plan_in_force(conn, plan, cutoff)
        for plan in definitions.assignments.values()
        if selection.admits(plan, as_of)
    }
    events = (e for _, e in store.list_events(conn))
    return build_register(definitions, plans, events, selection, as_of=as_of, tz=tz,
                          lang=language, notes=notes, calendar=calendar,
                          at_risk_days=at_risk_days)  # fmt: skip


def occasion_recipients(
    definitions: Definitions, occasion: OccasionPlan
) -> list[tuple[str, str, str]]:
    """Who an occasion's report goes to, as (key part, name, address): its coordinator and
    the receiving body's registrar, when it declares one."""
    person = definitions.directory.people[occasion.coordinator]
    found = [(person.id, person.name, str(person.email))]
    body = definitions.bodies.get(occasion.report_to or "")
    if body is not None and body.registrar and body.registrar != person.email:
        found.append((f"registrar:{body.id}", body.name.get(occasion.language), body.registrar))
    return found


def record_occasion_report(
    conn: Connection,
    definitions: Definitions,
    *,
    occasion: OccasionPlan,
    year: int,
    as_of: dt.date,
    language: Language,
    event_id: int | None,
    now: dt.datetime,
    tz: ZoneInfo,
    notes: NotesMode = "latest",
    calendar: Calendar | None = None,
    at_risk_days: int = 5,
) -> list[int]:
    """Assemble an occasion's register and record it as an e-mail to each recipient, once
    per occasion, year, date and language: the HTML register as the body, the Markdown as
    its plain text, the DOCX attached. Returns the effects recorded now."""
    recipients = occasion_recipients(definitions, occasion)
    base = f"occasion-report:{occasion.id}:{year}:{as_of.isoformat()}:{language.value}"
    if all(effects.exists(conn, f"{base}:{key}") for key, _, _ in recipients):
        return []
    register = _occasion_register(
        conn, definitions, occasion, year, as_of, language, tz=tz, notes=notes,
        calendar=calendar, at_risk_days=at_risk_days,
    )  # fmt: skip
    heading = register_heading(register)
    labels = LABELS[language]
    subject = f"{heading} ({labels['as_of'].lower()} {format_date(as_of, language)})"
    attachment = base64.b64encode(register_to_docx(register)).decode()
    text, html = register_to_markdown(register), register_to_html(register)
    recorded = []
    for key, name, address in recipients:
        rendered = Rendered(
            language=language, to_name=name, to_email=address, subject=subject, text=text,
            html=html, attachment=attachment,
            attachment_name=f"{occasion.id}-{year}-{as_of.isoformat()}-{language.value}.docx",
            attachment_type=DOCX,
        )  # fmt: skip
        payload = {"message": rendered.model_dump(mode="json"), "created": now.isoformat()}
        effect = effects.record(conn, key=f"{base}:{key}", kind=EffectKind.REPORT,
                                event_id=event_id, payload=payload, now=now)  # fmt: skip
        if effect is not None:
            recorded.append(effect)
    return recorded


def record_occasion_reminder(
    conn: Connection,
    definitions: Definitions,
    *,
    occasion: OccasionPlan,
    year: int,
    day: dt.date,
    offset: str,
    event_id: int,
    now: dt.datetime,
    tz: ZoneInfo,
    calendar: Calendar | None = None,
    at_risk_days: int = 5,
) -> int | None:
    """Remind the coordinator of an occasion to come: what it will cover and what is
    missing (overdue points, points without a progress note), once per reminder."""
    key = f"occasion-reminder:{occasion.id}:{year}:{offset}:{occasion.coordinator}"
    if effects.exists(conn, key):
        return None
    person = definitions.directory.people[occasion.coordinator]
    lang = person.language
    today = now.astimezone(tz).date()
    register = _occasion_register(
        conn, definitions, occasion, year, today, lang, tz=tz, notes="latest",
        calendar=calendar, at_risk_days=at_risk_days,
    )  # fmt: skip
    words = REMINDER_LABELS[lang]
    points = [p for r in register.reports for p in work_points(r)]
    silent = {
        r.reference + " " + r.title: n
        for r in register.reports
        if (n := sum(not p.progress and p.category in OPEN for p in work_points(r)))
    }
    name, when = occasion.name.get(lang), format_date(day, lang)
    to = words["to"].format(receiver=register.receiver) if register.receiver else ""
    text_line = words["text"].format(
        occasion=name, year=year, to=to, day=when, count=len(register.rows), points=len(points),
        overdue=sum(p.overdue for p in points), silent=sum(silent.values()),
    )  # fmt: skip
    command = f"council report --occasion {occasion.id} --year {year}"
    lines = [f"{words['hello']} {person.name},", "", text_line, ""]
    if silent:
        lines += [words["silent_heading"], *(f"- {t} ({n})" for t, n in silent.items()), ""]
    lines += [f"{words['command']}: {command}", "", words["footer"], ""]
    items = "".join(f"<li>{escape(t)} ({n})</li>" for t, n in silent.items())
    html = (
        f'<!DOCTYPE html>\n<html lang="{lang.value}"><head><meta charset="utf-8">'
        f"<title>{escape(name)}</title></head>\n<body>\n"
        f"<p>{escape(words['hello'])} {escape(person.name)},</p>\n<p>{escape(text_line)}</p>\n"
        + (f"<p>{escape(words['silent_heading'])}</p>\n<ul>{items}</ul>\n" if silent else "")
        + f"<p>{escape(words['command'])}: <code>{escape(command)}</code></p>\n"
        f"<p>{escape(words['footer'])}</p>\n</body></html>\n"
    )
    rendered = Rendered(
        language=lang, to_name=person.name, to_email=person.email,
        subject=words["subject"].format(occasion=name, year=year, day=when),
        text="\n".join(lines), html=html,
    )  # fmt: skip
    payload = {"message": rendered.model_dump(mode="json"), "created": now.isoformat()}
    return effects.record(conn, key=key, kind=EffectKind.REMINDER, event_id=event_id,
                          payload=payload, now=now)  # fmt: skip
