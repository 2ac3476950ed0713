"""Composing e-mail: task prompts as plain text + HTML, with an iCalendar VTODO.

Messages are built from a :class:`Prompt` (plain data the handler gathered),
with Jinja2 templates in Swedish and English rendered in a sandbox, HTML
autoescaped. Every message carries a Message-ID derived from its effect key,
so a resend after a crash is recognisably the same message. No tracking
pixels, no redirect links; plain text first, HTML second.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from email.message import EmailMessage
from email.utils import format_datetime, formataddr

from pydantic import BaseModel, ConfigDict

from workflow.core.specs import Language
from workflow.mail import wire
from workflow.mail.templating import environment

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
#: A Message-ID safe to copy into a header: <local@domain>, printable, no spaces.
MESSAGE_ID = re.compile(r"<[\x21-\x3b\x3d\x3f-\x7e]{1,250}@[\x21-\x3b\x3d\x3f-\x7e]{1,250}>")


class NoteView(BaseModel):
    """A progress note as an e-mail shows it."""

    model_config = ConfigDict(frozen=True)

    at: dt.date
    author: str
    text: str


class Prompt(BaseModel):
    """Everything a task prompt says; gathered by the handler, stored with the effect."""

    model_config = ConfigDict(frozen=True)

    language: Language
    to_name: str
    to_email: str
    assignment: str
    assignment_title: str
    reference: str
    point: str
    point_title: str
    step: str
    step_title: str
    description: str | None = None
    due: dt.date | None = None
    notes: tuple[NoteView, ...] = ()
    reassigned: bool = False
    coordinator_name: str
    coordinator_email: str
    #: Unused since 0.2 (prompts never tell an owner to run a command); kept so that a
    #: prompt recorded by an older release still composes.
    commands: tuple[str, ...] = ()
    #: The event that gave the step its owner: signed into the Reply-To address.
    reply_event: int | None = None


def header_text(value: str) -> str:
    """One header-safe line: control characters (CR, LF, ...) become spaces."""
    return " ".join(_CONTROL.sub(" ", value).split())


def message_id(key: str, domain: str) -> str:
    """The Message-ID of the effect ``key``: the same key always gives the same id."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:40]
    return f"<{digest}@{header_text(domain)}>"


def subject(prompt: Prompt) -> str:
    if prompt.language is Language.SV:
        verb = "Ny ansvarig för uppgift" if prompt.reassigned else "Uppgift"
    else:
        verb = "Task reassigned to you" if prompt.reassigned else "Task"
    return header_text(f"{verb}: {prompt.step_title} ({prompt.point})")


def _ics_escape(text: str) -> str:
    text = text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    return text.replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\n")


def _fold(line: str) -> str:
    """RFC 5545 folding: lines of at most 75 octets, continued with a space."""
    if len(line.encode()) <= 75:  # most lines: nothing to fold
        return line
    out, current = [], b""
    for char in line:
        encoded = char.encode()
        if len(current) + len(encoded) > 75:
            out.append(current.decode())
            current = b" "
        current += encoded
    out.append(current.decode())
    return "\r\n".join(out)


def vtodo(prompt: Prompt, *, uid: str, stamp: dt.datetime) -> str:
    """An iCalendar VTODO with the step's due date, for the owner's task list."""
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//council//council-workflow//EN",
        "METHOD:PUBLISH",
        "BEGIN:VTODO",
        f"UID:{uid}",
        f"DTSTAMP:{stamp.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}",
        f"SUMMARY:{_ics_escape(prompt.step_title)}",
        f"DESCRIPTION:{_ics_escape(f'{prompt.point}: {prompt.point_title}')}",
    ]
    if prompt.due is not None:
        lines.append(f"DUE;VALUE=DATE:{prompt.due:%Y%m%d}")
    lines += ["STATUS:NEEDS-ACTION", "END:VTODO", "END:VCALENDAR"]
    return "\r\n".join(_fold(line) for line in lines) + "\r\n"


def render(prompt: Prompt, *, reply_to: str | None = None) -> tuple[str, str]:
    """The plain-text and HTML bodies of a prompt, in the owner's language."""
    env = environment()
    lang = prompt.language.value
    context = {"p": prompt, "lang": prompt.language, "reply_to": reply_to}
    text = env.get_template(f"prompt.{lang}.txt").render(context)
    html = env.get_template(f"prompt.{lang}.html").render(context)
    return text, html


def compose(
    prompt: Prompt,
    *,
    key: str,
    sender: str,
    domain: str,
    created: dt.datetime,
    reply_to: str | None = None,
) -> EmailMessage:
    """The whole message: headers, text, HTML alternative and the VTODO attachment."""
    return compose_wire(
        prompt, key=key, sender=sender, domain=domain, created=created, reply_to=reply_to
    ).parsed()


def _headers(
    *, sender: str, reply_to: str | None, to_name: str, to_email: str, subject_: str,
    key: str, domain: str, created: dt.datetime, in_reply_to: str | None = None,
) -> tuple[list[tuple[str, str]], str, str]:  # fmt: skip
    """The headers every council message has (header-safe, encoded), the envelope sender
    and the Message-ID."""
    world = not header_text(to_email).isascii()  # an internationalised address: SMTPUTF8
    sender = header_text(sender)
    headers = [("From", wire.header("From", sender, international=world))]
    if reply_to:
        headers.append(("Reply-To", wire.header("Reply-To", header_text(reply_to))))
    if in_reply_to and MESSAGE_ID.fullmatch(in_reply_to):
        headers += [("In-Reply-To", in_reply_to), ("References", in_reply_to)]
    mid = message_id(key, domain)
    to = formataddr((header_text(to_name), header_text(to_email)))  # raises for non-ASCII
    headers += [
        ("To", wire.header("To", to, international=world)),
        ("Subject", wire.header("Subject", subject_, international=world)),
        ("Message-ID", wire.header("Message-ID", mid)),
        ("Date", format_datetime(created.astimezone(dt.UTC))),
        ("Auto-Submitted", "auto-generated"),  # RFC 3834: no auto-replies to this
    ]
    envelope = wire.envelope_sender(sender)
    return headers, envelope, mid


def compose_wire(
    prompt: Prompt,
    *,
    key: str,
    sender: str,
    domain: str,
    created: dt.datetime,
    reply_to: str | None = None,
) -> wire.Wire:
    """:func:`compose` as the bytes delivery sends (no :class:`EmailMessage` built)."""
    text, html = render(prompt, reply_to=reply_to)
    headers, envelope, mid = _headers(
        sender=sender, reply_to=reply_to, to_name=prompt.to_name, to_email=prompt.to_email,
        subject_=subject(prompt), key=key, domain=domain, created=created,
    )  # fmt: skip
    headers.append(("Content-Language", prompt.language.value))
    uid = message_id(f"{prompt.point}/{prompt.step}", domain).strip("<>")
    name = "uppgift.ics" if prompt.language is Language.SV else "task.ics"
    body = wire.multipart(
        "mixed",
        wire.multipart("alternative", wire.text("plain", text), wire.text("html", html)),
        wire.text("calendar", vtodo(prompt, uid=uid, stamp=created),
                  headers=[("Content-Disposition", f'attachment; filename="{name}"')]),
    )  # fmt: skip
    return wire.message(headers, body, sender=envelope, recipients=[header_text(prompt.to_email)],
                        message_id=mid)  # fmt: skip


class Rendered(BaseModel):
    """A message rendered in full when its effect was recorded (a report, say)."""

    model_config = ConfigDict(frozen=True)

    language: Language
    to_name: str
    to_email: str
    subject: str
    text: str
    html: str
    attachment: str | None = None  # base64
    attachment_name: str | None = None
    attachment_type: str | None = None  # maintype/subtype
    #: The event that gave the step its owner: signed into the Reply-To address.
    reply_event: int | None = None
    #: The Message-ID this message answers (an answer to a reply).
    in_reply_to: str | None = None


def compose_rendered(
    rendered: Rendered,
    *,
    key: str,
    sender: str,
    domain: str,
    created: dt.datetime,
    reply_to: str | None = None,
) -> EmailMessage:
    """A pre-rendered message with the same headers and rules as a prompt."""
    return compose_rendered_wire(
        rendered, key=key, sender=sender, domain=domain, created=created, reply_to=reply_to
    ).parsed()


def compose_rendered_wire(
    rendered: Rendered,
    *,
    key: str,
    sender: str,
    domain: str,
    created: dt.datetime,
    reply_to: str | None = None,
) -> wire.Wire:
    """:func:`compose_rendered` as the bytes delivery sends."""
    import base64

    headers, envelope, mid = _headers(
        sender=sender, reply_to=reply_to, to_name=rendered.to_name, to_email=rendered.to_email,
        subject_=header_text(rendered.subject), key=key, domain=domain, created=created,
        in_reply_to=rendered.in_reply_to,
    )  # fmt: skip
    headers.append(("Content-Language", rendered.language.value))
    body = wire.multipart(
        "alternative", wire.text("plain", rendered.text), wire.text("html", rendered.html)
    )
    if rendered.attachment and rendered.attachment_name and rendered.attachment_type:
        attached = wire.attachment(
            base64.b64decode(rendered.attachment), header_text(rendered.attachment_type),
            header_text(rendered.attachment_name),
        )  # fmt: skip
        body = wire.multipart("mixed", body, attached)
    return wire.message(headers, body, sender=envelope,
                        recipients=[header_text(rendered.to_email)], message_id=mid)  # fmt: skip
