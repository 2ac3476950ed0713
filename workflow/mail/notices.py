"""Deadline e-mails: reminders and overdue notices to owners, escalation digests to managers.

Rendered when the effect is recorded (plain text + HTML, sv or en by the
recipient's language) and stored with it, so a resend is the same message.
"""

from __future__ import annotations

from typing import Any

from workflow.core.events import DeadlineFired, Event, FiringKind, StepExtensionRequested
from workflow.core.plan import BodyPlan, Definitions
from workflow.core.specs import Language
from workflow.mail.compose import Rendered
from workflow.mail.templating import environment, format_date

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
        "report": "Så rapporterar du",
        "write_to": "skriv till samordnaren",
        "footer": "Detta meddelande skickades automatiskt av council.",
        "steps": "försenade moment",
        "copy": "Kopia: skickades till din ersättare medan du var borta.",
        "body_late": "Försenat i uppdrag för {body}",
        "body_digest_text": "Följande moment i uppdrag där {body} är ansvarig eller medansvarig "
        "har blivit försenade. Ansvariga har fått besked.",
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
        "report": "To report progress",
        "write_to": "write to the coordinator",
        "footer": "This message was sent automatically by council.",
        "steps": "overdue steps",
        "copy": "Copy: this went to your substitute while you were away.",
        "body_late": "Overdue in assignments of {body}",
        "body_digest_text": "These steps of assignments that {body} leads or co-owns have become "
        "overdue. Their owners have been told.",
    },
}


def _render(name: str, context: dict[str, Any]) -> tuple[str, str]:
    env = environment()
    return (
        env.get_template(f"{name}.txt").render(context),
        env.get_template(f"{name}.html").render(context),
    )


def _row(
    definitions: Definitions, point_address: str, step_id: str, owner_id: str, lang: Language
) -> dict[str, Any]:
    """Titles and names for a step's line in a notice, in the recipient's language."""
    assignment_id, _, number = point_address.partition("/")
    plan = definitions.assignments.get(assignment_id)
    point = plan.point(int(number)) if plan else None
    step = point.step(step_id) if point else None
    owner = definitions.directory.people.get(owner_id)
    return {
        "point": point_address,
        "step": step_id,
        "owner": owner_id,
        "point_title": point.title.get(lang) if point else "",
        "step_title": step.title.get(lang) if step else step_id,
        "owner_name": owner.name if owner else owner_id,
    }


def _fired_row(definitions: Definitions, item: DeadlineFired, lang: Language) -> dict[str, Any]:
    return {**item.model_dump(), **_row(definitions, item.point, item.step, item.owner, lang)}


def notice(
    definitions: Definitions,
    item: DeadlineFired,
    *,
    copy: bool = False,
    reply_event: int | None = None,
) -> Rendered:
    """A reminder or overdue notice for one firing (the event's payload).

    With ``reply_event``, it explains how to answer by e-mail and is sent with
    a signed Reply-To (the owner's copy after an absence is not: it is a record).
    """
    person = definitions.directory.people[item.to if not copy else item.owner]
    lang = person.language
    labels = LABELS[lang]
    row = _fired_row(definitions, item, lang)
    kind = labels["reminder" if item.kind is FiringKind.REMINDER else "overdue"]
    address = f"{item.point}/{item.step}"
    plan = definitions.assignments.get(item.point.partition("/")[0])
    coordinator = definitions.directory.people.get(plan.coordinator) if plan else None
    context = {"l": labels, "lang": lang, "name": person.name, "r": row, "kind": kind,
               "copy": copy, "address": address, "person": person.id,
               "replies": reply_event is not None,
               "coordinator_name": coordinator.name if coordinator else "",
               "coordinator_email": str(coordinator.email) if coordinator else ""}  # fmt: skip
    text, html = _render("notice", context)
    subject = f"{kind}: {row['step_title']} ({format_date(item.due, lang)})"
    return Rendered(language=lang, to_name=person.name, to_email=person.email,
                    subject=subject, text=text, html=html, reply_event=reply_event)  # fmt: skip


EXTENSION: dict[Language, dict[str, str]] = {
    Language.SV: {
        "subject": "Begäran om mer tid",
        "text": "ber om {days} dagar mer för ett moment.",
        "current": "Klart senast nu",
        "proposed": "Föreslaget nytt datum",
        "reason": "Skäl",
        "grant": "Bevilja med",
        "deny": "Gör ingenting om du inte vill bevilja; den ansvariga får ingen automatisk "
        "påminnelse om beslutet.",
    },
    Language.EN: {
        "subject": "Request for more time",
        "text": "asks for {days} more days for a step.",
        "current": "Due now",
        "proposed": "Proposed new date",
        "reason": "Reason",
        "grant": "Grant it with",
        "deny": "Do nothing if you do not grant it; the owner is not told of the decision "
        "automatically.",
    },
}


def extension_request(definitions: Definitions, event: Event) -> Rendered | None:
    """To the coordinator: an owner asks for more time (``step.extension_requested``)."""
    plan = definitions.assignments.get(event.assignment)
    asked = event.payload
    if (
        plan is None or event.step is None or not isinstance(asked, StepExtensionRequested)
        or plan.coordinator not in definitions.directory.people
    ):  # fmt: skip
        return None
    coordinator = definitions.directory.people[plan.coordinator]
    asker = definitions.directory.people.get(event.actor)
    lang = coordinator.language
    labels = {**LABELS[lang], **EXTENSION[lang]}
    point_address = f"{plan.id}/{event.point}"
    row = {**_row(definitions, point_address, event.step, event.actor, lang),
           "due": asked.due or asked.proposed}  # fmt: skip
    context = {
        "l": labels, "lang": lang, "name": coordinator.name, "r": row,
        "asker": asker.name if asker else event.actor, "days": asked.days,
        "current": asked.due, "proposed": asked.proposed, "reason": asked.reason,
        "address": f"{point_address}/{event.step}",
    }  # fmt: skip
    text, html = _render("extension", context)
    subject = f"{labels['subject']}: {row['step_title']} ({point_address})"
    return Rendered(language=lang, to_name=coordinator.name, to_email=coordinator.email,
                    subject=subject, text=text, html=html)  # fmt: skip


def body_digest(definitions: Definitions, body: BodyPlan, items: list[DeadlineFired]) -> Rendered:
    """One e-mail to a body's chief officer with its assignments' steps that became overdue
    in one sweep (the escalation digest's layout, in the chief's language)."""
    person = definitions.directory.people[body.chief]
    lang = person.language
    labels = LABELS[lang]
    name = body.name.get(lang)
    words = {**labels, "digest_text": labels["body_digest_text"].format(body=name),
             "escalation": labels["body_late"].format(body=name)}  # fmt: skip
    rows = [_fired_row(definitions, item, lang) for item in items]
    context = {"l": words, "lang": lang, "name": person.name, "rows": rows}
    text, html = _render("digest", context)
    subject = f"{words['escalation']}: {len(rows)} {labels['steps']}"
    return Rendered(language=lang, to_name=person.name, to_email=person.email,
                    subject=subject, text=text, html=html)  # fmt: skip


def digest(definitions: Definitions, to: str, items: list[DeadlineFired]) -> Rendered:
    """One e-mail to one person with every step escalated to them in one sweep."""
    person = definitions.directory.people[to]
    lang = person.language
    labels = LABELS[lang]
    rows = [_fired_row(definitions, item, lang) for item in items]
    context = {"l": labels, "lang": lang, "name": person.name, "rows": rows}
    text, html = _render("digest", context)
    subject = f"{labels['escalation']}: {len(rows)} {labels['steps']}"
    return Rendered(language=lang, to_name=person.name, to_email=person.email,
                    subject=subject, text=text, html=html)  # fmt: skip
