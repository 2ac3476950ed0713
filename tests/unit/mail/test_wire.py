"""The bytes delivery sends parse into what the stdlib's EmailMessage would have built.

The reference below is how council composed a prompt before 0.6 (EmailMessage, its
header registry and generator); :mod:`workflow.mail.wire` writes the same message
directly. A receiver must see the same headers, the same structure and the same
contents, whatever the names, titles and notes hold.
"""

from __future__ import annotations

import base64
import datetime as dt
import email
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workflow.core.specs import Language
from workflow.mail import wire
from workflow.mail.compose import (
    NoteView,
    Prompt,
    Rendered,
    compose_rendered_wire,
    compose_wire,
    header_text,
    message_id,
    render,
    subject,
    vtodo,
)

CREATED = dt.datetime(2023, 1, 9, 9, 0, tzinfo=dt.UTC)
DOMAIN = "kommun.example"
HEADERS = ("From", "Reply-To", "To", "Subject", "Message-ID", "Date", "Auto-Submitted",
           "Content-Language", "In-Reply-To", "References")  # fmt: skip


def reference(prompt: Prompt, *, key: str, sender: str, reply_to: str | None) -> EmailMessage:
    """The prompt as the stdlib composes it (council's way before 0.6)."""
    text, html = render(prompt, reply_to=reply_to)
    msg = EmailMessage()
    msg["From"] = header_text(sender)
    if reply_to:
        msg["Reply-To"] = header_text(reply_to)
    msg["To"] = formataddr((header_text(prompt.to_name), header_text(prompt.to_email)))
    msg["Subject"] = subject(prompt)
    msg["Message-ID"] = message_id(key, DOMAIN)
    msg["Date"] = format_datetime(CREATED)
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    uid = message_id(f"{prompt.point}/{prompt.step}", DOMAIN).strip("<>")
    msg.add_attachment(
        vtodo(prompt, uid=uid, stamp=CREATED), subtype="calendar",
        filename="uppgift.ics" if prompt.language is Language.SV else "task.ics",
    )  # fmt: skip
    msg["Content-Language"] = prompt.language.value
    return received(msg.as_bytes())


def received(data: bytes) -> EmailMessage:
    parsed = email.message_from_bytes(data, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def seen(message: EmailMessage) -> dict[str, Any]:
    """What a receiver sees: headers decoded, the parts' types, names and contents."""
    parts = []
    for part in message.walk():
        entry: dict[str, Any] = {"type": part.get_content_type()}
        if not part.is_multipart():
            entry["name"] = part.get_filename()
            content = part.get_content()
            if isinstance(content, str):
                content = content.replace("\r\n", "\n")
            entry["content"] = content
        parts.append(entry)
    return {"headers": {h: str(message[h]) if h in message else None for h in HEADERS},
            "parts": parts}  # fmt: skip


def check_wire(sent: wire.Wire) -> None:
    """Seven-bit (for ASCII addresses), CRLF line ends, no line over 998 octets."""
    if not sent.international:
        assert sent.data.isascii()
    assert b"\n" not in sent.data.replace(b"\r\n", b"")
    assert b"\r" not in sent.data.replace(b"\r\n", b"")
    assert max(len(line) for line in sent.data.split(b"\r\n")) <= 998


words = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=120)
names = st.one_of(
    words,
    st.sampled_from(["Åsa Öberg", "Amir Hassan", 'Nils "Nisse" Ek', "Zoë, Ltd.", "A" * 90]),
)
addresses = st.sampled_from(
    ["amir.hassan@kommun.example", "asa.oberg@kommun.example", "x+tag@sub.kommun.example"]
)


@st.composite
def prompts(draw: st.DrawFn) -> Prompt:
    return Prompt(
        language=draw(st.sampled_from(list(Language))),
        to_name=draw(names),
        to_email=draw(addresses),
        assignment="kf-2022-hedersvald",
        assignment_title=draw(words),
        reference="KS 2022/123",
        point="kf-2022-hedersvald/4",
        point_title=draw(words),
        step="map",
        step_title=draw(words),
        description=draw(st.none() | words),
        due=draw(st.none() | st.dates(dt.date(2020, 1, 1), dt.date(2030, 1, 1))),
        notes=tuple(
            NoteView(at=dt.date(2023, 1, 2), author=draw(names), text=draw(words))
            for _ in range(draw(st.integers(0, 3)))
        ),
        reassigned=draw(st.booleans()),
        coordinator_name=draw(names),
        coordinator_email="sara.nilsson@kommun.example",
    )


senders = st.sampled_from(
    ["council@kommun.example", "Kommunen <council@kommun.example>",
     "Nämndkansliet <council@kommun.example>", "Kansli, Ks <council@kommun.example>"]
)  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prompt=prompts(), sender=senders, reply=st.booleans())
def test_a_prompt_on_the_wire_is_what_the_stdlib_would_send(
    prompt: Prompt, sender: str, reply: bool
) -> None:
    reply_to = "svar+abc.def@kommun.example" if reply else None
    sent = compose_wire(prompt, key="prompt:7:amir", sender=sender, domain=DOMAIN,
                        created=CREATED, reply_to=reply_to)  # fmt: skip
    check_wire(sent)
    assert seen(received(sent.data)) == seen(
        reference(prompt, key="prompt:7:amir", sender=sender, reply_to=reply_to)
    )
    assert sent.recipients == (prompt.to_email,)
    assert sent.sender == "council@kommun.example"
    assert sent.message_id == message_id("prompt:7:amir", DOMAIN)


@settings(max_examples=60, deadline=None)
@given(
    title=words, body=words, name=st.sampled_from(["rapport.docx", "Återrapport 2024.docx"]),
    attached=st.binary(min_size=1, max_size=3000),
    reply=st.none() | st.just("<abc@kommun.example>"),
)  # fmt: skip
def test_a_rendered_message_on_the_wire_is_what_the_stdlib_would_send(
    title: str, body: str, name: str, attached: bytes, reply: str | None
) -> None:
    rendered = Rendered(
        language=Language.SV, to_name="Åsa Öberg", to_email="asa.oberg@kommun.example",
        subject=title, text=body, html=f"<p>{body}</p>",
        attachment=base64.b64encode(attached).decode(), attachment_name=name,
        attachment_type="application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        in_reply_to=reply,
    )  # fmt: skip
    sent = compose_rendered_wire(rendered, key="report:1", sender="council@kommun.example",
                                 domain=DOMAIN, created=CREATED)  # fmt: skip
    check_wire(sent)

    msg = EmailMessage()  # the stdlib's way, as compose_rendered built it before 0.6
    msg["From"] = "council@kommun.example"
    if reply:
        msg["In-Reply-To"] = reply
        msg["References"] = reply
    msg["To"] = formataddr(("Åsa Öberg", "asa.oberg@kommun.example"))
    msg["Subject"] = header_text(title)
    msg["Message-ID"] = message_id("report:1", DOMAIN)
    msg["Date"] = format_datetime(CREATED)
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(body)
    msg.add_alternative(f"<p>{body}</p>", subtype="html")
    maintype, _, subtype = rendered.attachment_type.partition("/")  # type: ignore[union-attr]
    msg.add_attachment(attached, maintype=maintype, subtype=subtype, filename=name)
    msg["Content-Language"] = "sv"
    assert seen(received(sent.data)) == seen(received(msg.as_bytes()))


def test_an_address_that_is_not_ascii_is_refused_as_before() -> None:
    """An internationalised address (RFC 6531) is not supported: composing refuses it, as
    the stdlib's formataddr did before 0.6, and delivery records the effect as failed."""
    prompt = Prompt(
        language=Language.SV, to_name="Åsa", to_email="åsa@kommun.example",
        assignment="a", assignment_title="A", reference="R", point="a/1", point_title="P",
        step="s", step_title="S", coordinator_name="Sara", coordinator_email="s@kommun.example",
    )  # fmt: skip
    with pytest.raises(UnicodeEncodeError):
        compose_wire(prompt, key="k", sender="council@kommun.example", domain=DOMAIN,
                     created=CREATED)  # fmt: skip
    with pytest.raises(UnicodeEncodeError):
        formataddr(("Åsa", "åsa@kommun.example"))


def test_a_boundary_never_occurs_in_the_content() -> None:
    """Text that holds what looks like a boundary does not end its part."""
    trap = "--===============council" + "0" * 20 + "==\n" * 3
    part = wire.multipart("alternative", wire.text("plain", trap), wire.text("html", trap))
    sent = wire.message([("Subject", "x")], part, sender="a@b.example", recipients=["c@d.example"],
                        message_id="<x@y>")  # fmt: skip
    parsed = received(sent.data)
    assert [p.get_content().replace("\r\n", "\n") for p in parsed.iter_parts()] == [trap, trap]


#: Subjects as prompts have them, and text shaped to trip a parser: encoded words,
#: quotes, brackets, runs of spaces, long words.
SUBJECTS = st.one_of(
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=90),
    st.builds(lambda a, b: f"{a}=?{b}", st.text(max_size=20), st.text(max_size=20)),
    st.text(alphabet=' ()<>@,;:"\\.[]=?abc', max_size=40),
)


@settings(max_examples=400, deadline=None)
@given(value=SUBJECTS, international=st.booleans())
def test_a_subject_written_without_the_registry_is_what_the_registry_writes(
    value: str, international: bool
) -> None:
    """The shortcut for short plain subjects returns what the registry folds."""
    assert wire.header("Subject", value, international=international) == wire._folded(
        "Subject", value, international
    )


@settings(max_examples=200, deadline=None)
@given(key=st.text(max_size=30), domain=st.from_regex(r"[a-z0-9]([a-z0-9.-]{0,30}[a-z0-9])?",
                                                       fullmatch=True))  # fmt: skip
def test_a_message_id_written_without_the_registry_is_what_the_registry_writes(
    key: str, domain: str
) -> None:
    """Council's Message-IDs (a digest at the configured domain) skip the registry, and
    come out as it would write them."""
    mid = message_id(key, domain)
    assert wire.header("Message-ID", mid) == wire._folded("Message-ID", mid, False)
    assert wire._VERBATIM["message-id"].fullmatch(mid)
