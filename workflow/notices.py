"""Deadline e-mails: reminders and overdue notices to owners, escalation digests to managers.

Rendered when the effect is recorded (plain text + HTML, sv or en by the
recipient's language) and stored with it, so a resend is the same message.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.engine import Connection

from workflow import effects
from workflow.definitions import Language
from workflow.loader import Definitions
from workflow.mail import Rendered
from workflow.templating import environment, format_date

LABELS: dict[Language, dict[str, str]] = {
    Language.SV: {
        "hello": "Hej",
        "reminder": "Påminnelse",
        "overdue": "Försenad",
        "reminder_text": "Ett moment du ansvarar för ska vara klart snart.",
        "overdue_text": "Ett moment du ansvarar för är försenat.",
        "escalation": "Eskalering",
        "digest_text": "Följande moment är försenade och har eskalerats till dig.",
        "step": "Moment",
        "point": "Punkt",
        "owner": "Ansvarig",
        "due": "Klart senast",
        "days_overdue": "Arbetsdagar försenat",
        "via": "Du får detta som",
        "report": "Så rapporterar ansvarig",
        "footer": "Detta meddelande skickades automatiskt av council.",
        "steps": "försenade moment",
        "copy": "Kopia: skickades till din ersättare medan du var borta.",
    },
    Language.EN: {
        "hello": "Hello",
        "reminder": "Reminder",
        "overdue": "Overdue",
        "reminder_text": "A step you own is due soon.",
        "overdue_text": "A step you own is overdue.",
        "escalation": "Escalation",
        "digest_text": "These steps are overdue and have been escalated to you.",
        "step": "Step",
        "point": "Point",
        "owner": "Owner",
        "due": "Due",
        "days_overdue": "Working days overdue",
        "via": "You receive this as",
        "report": "How the owner reports progress",
        "footer": "This message was sent automatically by council.",
        "steps": "overdue steps",
        "copy": "Copy: this went to your substitute while you were away.",
    },
}


def _render(name: str, context: dict[str, Any]) -> tuple[str, str]:
    env = environment()
    return (
        env.get_template(f"{name}.txt").render(context),
        env.get_template(f"{name}.html").render(context),
    )


def _row(definitions: Definitions, item: dict[str, Any], lang: Language) -> dict[str, Any]:
    assignment_id, _, number = item["point"].partition("/")
    plan = definitions.assignments.get(assignment_id)
    point = plan.point(int(number)) if plan else None
    step = point.step(item["step"]) if point else None
    owner = definitions.directory.people.get(item["owner"])
    return {
        **item,
        "due": dt.date.fromisoformat(item["due"]),
        "point_title": point.title.get(lang) if point else "",
        "step_title": step.title.get(lang) if step else item["step"],
        "owner_name": owner.name if owner else item["owner"],
    }


def notice(definitions: Definitions, item: dict[str, Any], *, copy: bool = False) -> Rendered:
    """A reminder or overdue notice for one firing (``item`` is the event's data)."""
    person = definitions.directory.people[item["to"] if not copy else item["owner"]]
    lang = person.language
    labels = LABELS[lang]
    row = _row(definitions, item, lang)
    kind = labels["reminder" if item["kind"] == "reminder" else "overdue"]
    address = f"{item['point']}/{item['step']}"
    context = {"l": labels, "lang": lang, "name": person.name, "r": row, "kind": kind,
               "copy": copy, "address": address, "person": person.id}  # fmt: skip
    text, html = _render("notice", context)
    subject = f"{kind}: {row['step_title']} ({format_date(row['due'], lang)})"
    return Rendered(language=lang, to_name=person.name, to_email=person.email,
                    subject=subject, text=text, html=html)  # fmt: skip


def digest(definitions: Definitions, to: str, items: list[dict[str, Any]]) -> Rendered:
    """One e-mail to one person with every step escalated to them in one sweep."""
    person = definitions.directory.people[to]
    lang = person.language
    labels = LABELS[lang]
    rows = [_row(definitions, item, lang) for item in items]
    context = {"l": labels, "lang": lang, "name": person.name, "rows": rows}
    text, html = _render("digest", context)
    subject = f"{labels['escalation']}: {len(rows)} {labels['steps']}"
    return Rendered(language=lang, to_name=person.name, to_email=person.email,
                    subject=subject, text=text, html=html)  # fmt: skip


def record_digests(
    conn: Connection, definitions: Definitions, fired: list[Any], today: dt.date,
    first_event: int, now: dt.datetime,
) -> list[int]:  # fmt: skip
    """One digest effect per recipient of this sweep's escalations."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for item in fired:
        grouped.setdefault(item.to, []).append(item.as_dict())
    ids = []
    for to, items in sorted(grouped.items()):
        if to not in definitions.directory.people:
            continue
        rendered = digest(definitions, to, items)
        effect_id = effects.record(
            conn, key=f"digest:{first_event}:{to}", kind="digest", event_id=first_event,
            payload={"message": rendered.model_dump(mode="json"), "created": now.isoformat()},
            now=now,
        )  # fmt: skip
        if effect_id is not None:
            ids.append(effect_id)
    return ids
