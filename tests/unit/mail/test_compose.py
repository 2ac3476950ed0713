"""Composing prompt e-mails: structure, languages, stable Message-IDs, safety, the VTODO."""

from __future__ import annotations

import datetime as dt
import email
import re
from email import policy
from email.message import EmailMessage
from typing import Any

import pytest
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

from workflow.core.specs import Language
from workflow.mail.compose import (
    NoteView,
    Prompt,
    compose,
    header_text,
    message_id,
    render,
    subject,
    vtodo,
)
from workflow.mail.templating import environment, format_date

CREATED = dt.datetime(2023, 1, 9, 9, 0, tzinfo=dt.UTC)
DOMAIN = "kommun.example"
INJECTION = "\r\nBcc: x@y"


def make_prompt(**changes: Any) -> Prompt:
    """A realistic prompt (English unless ``language`` says otherwise), with changes."""
    values: dict[str, Any] = {
        "language": Language.EN,
        "to_name": "Amir Hassan",
        "to_email": "amir.hassan@kommun.example",
        "assignment": "kf-2022-hedersvald",
        "assignment_title": "Honour-related violence",
        "reference": "KS 2022/123",
        "point": "kf-2022-hedersvald/4",
        "point_title": "Reporting routes",
        "step": "map",
        "step_title": "Map and evaluate reporting routes",
        "description": "Describe how reports reach the social services.",
        "due": dt.date(2023, 3, 6),
        "notes": (),
        "reassigned": False,
        "coordinator_name": "Sara Nilsson",
        "coordinator_email": "sara.nilsson@kommun.example",
        "commands": ("council begin kf-2022-hedersvald/4/map --as amir.hassan",),
    }
    values.update(changes)
    return Prompt(**values)


def build(prompt: Prompt, key: str = "prompt:1:amir.hassan") -> EmailMessage:
    return compose(prompt, key=key, sender="council@kommun.example", domain=DOMAIN, created=CREATED)


def reparse(message: EmailMessage) -> EmailMessage:
    """The message as a receiver sees it: serialised to bytes and parsed back."""
    parsed = email.message_from_bytes(message.as_bytes(), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def bodies(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert isinstance(text, EmailMessage)
    assert isinstance(html, EmailMessage)
    return text.get_content(), html.get_content()


def calendar_part(message: EmailMessage) -> EmailMessage:
    attachments = list(message.iter_attachments())
    assert len(attachments) == 1
    part = attachments[0]
    assert isinstance(part, EmailMessage)
    return part


# --- structure ---------------------------------------------------------------------


def test_structure_is_mixed_alternative_text_html_then_calendar() -> None:
    """multipart/mixed holds [alternative [text/plain, text/html], text/calendar], text first."""
    message = reparse(build(make_prompt()))
    assert [part.get_content_type() for part in message.walk()] == [
        "multipart/mixed",
        "multipart/alternative",
        "text/plain",
        "text/html",
        "text/calendar",
    ]
    alternative = next(iter(message.iter_parts()))
    assert [p.get_content_type() for p in alternative.iter_parts()] == ["text/plain", "text/html"]
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["From"] == "council@kommun.example"
    assert message["To"] == "Amir Hassan <amir.hassan@kommun.example>"
    assert message["Date"] == "Mon, 09 Jan 2023 09:00:00 +0000"


def test_english_prompt_uses_english_templates_and_dates() -> None:
    """An English reader gets English subject, bodies, html lang, date format and file name."""
    message = reparse(build(make_prompt(language=Language.EN)))
    text, html = bodies(message)
    assert message["Subject"] == "Task: Map and evaluate reporting routes (kf-2022-hedersvald/4)"
    assert message["Content-Language"] == "en"
    assert text.startswith("Hello Amir Hassan,")
    assert "Due:       6 March 2023" in text
    assert '<html lang="en">' in html
    assert "6 March 2023" in html
    assert "mars" not in text + html
    assert calendar_part(message).get_filename() == "task.ics"


def test_swedish_prompt_uses_swedish_templates_and_dates() -> None:
    """A Swedish reader gets Swedish subject, bodies, html lang, date format and file name."""
    prompt = make_prompt(
        language=Language.SV, step_title="Kartlägg rapporteringsvägar", reassigned=True
    )
    message = reparse(build(prompt))
    text, html = bodies(message)
    assert message["Subject"] == (
        "Ny ansvarig för uppgift: Kartlägg rapporteringsvägar (kf-2022-hedersvald/4)"
    )
    assert message["Content-Language"] == "sv"
    assert text.startswith("Hej Amir Hassan,")
    assert "Du är nu ansvarig för en uppgift" in text
    assert "Klart senast: 6 mars 2023" in text
    assert '<html lang="sv">' in html
    assert "March" not in text + html
    assert calendar_part(message).get_filename() == "uppgift.ics"


@pytest.mark.parametrize(
    ("language", "reassigned", "verb"),
    [
        (Language.SV, False, "Uppgift"),
        (Language.SV, True, "Ny ansvarig för uppgift"),
        (Language.EN, False, "Task"),
        (Language.EN, True, "Task reassigned to you"),
    ],
)
def test_subject_per_language_and_reassignment(
    language: Language, reassigned: bool, verb: str
) -> None:
    """The subject names the step and point, with a verb for new tasks and reassignments."""
    prompt = make_prompt(language=language, reassigned=reassigned, step_title="Granska")
    assert subject(prompt) == f"{verb}: Granska (kf-2022-hedersvald/4)"


@pytest.mark.parametrize(
    ("day", "language", "expected"),
    [
        (dt.date(2023, 3, 6), Language.SV, "6 mars 2023"),
        (dt.date(2023, 3, 6), Language.EN, "6 March 2023"),
        (dt.date(2024, 12, 24), Language.SV, "24 december 2024"),
        (dt.date(2024, 1, 1), Language.EN, "1 January 2024"),
        (dt.date(2024, 5, 31), Language.SV, "31 maj 2024"),
        (None, Language.SV, "–"),
        (None, Language.EN, "–"),
    ],
)
def test_format_date(day: dt.date | None, language: Language, expected: str) -> None:
    """Dates are written day, month name in the reader's language, year; no date is a dash."""
    assert format_date(day, language) == expected


def test_no_due_date_shows_a_dash() -> None:
    """A step without a due date says so with a dash instead of failing to render."""
    text, html = render(make_prompt(due=None))
    assert "Due:       –" in text
    assert "<td>–</td>" in html


# --- Message-ID --------------------------------------------------------------------


def test_message_id_is_deterministic_per_key() -> None:
    """The same effect key always yields the same Message-ID, also across composed messages."""
    first = message_id("prompt:7:amir.hassan", DOMAIN)
    assert first == message_id("prompt:7:amir.hassan", DOMAIN)
    assert re.fullmatch(r"<[0-9a-f]{40}@kommun\.example>", first)
    again = build(make_prompt(), key="prompt:7:amir.hassan")
    assert again["Message-ID"] == first
    assert reparse(again)["Message-ID"] == first


def test_message_id_differs_per_key() -> None:
    """Different effect keys give different Message-IDs."""
    keys = [f"prompt:{i}:{who}" for i in range(50) for who in ("amir.hassan", "maria.lind")]
    assert len({message_id(key, DOMAIN) for key in keys}) == len(keys)
    assert (
        build(make_prompt(), key="a")["Message-ID"] != build(make_prompt(), key="b")["Message-ID"]
    )


def test_message_id_domain_cannot_carry_a_line_break() -> None:
    """Control characters in the domain are neutralised, so the id stays one header line."""
    value = message_id("k", "kommun.example" + INJECTION)
    assert "\r" not in value
    assert "\n" not in value


# --- header injection --------------------------------------------------------------


@pytest.mark.parametrize("field", ["to_name", "step_title", "point", "to_email"])
def test_header_injection_is_impossible(field: str) -> None:
    """CR/LF in a name, title, point or address yields no Bcc header; To and Subject stay single."""
    prompt = make_prompt(**{field: getattr(make_prompt(), field) + INJECTION})
    raw = build(prompt).as_bytes()
    parsed = email.message_from_bytes(raw, policy=policy.default)
    assert parsed["Bcc"] is None
    assert "Bcc" not in parsed
    headers = re.split(rb"\r?\n\r?\n", raw, maxsplit=1)[0]
    assert not re.search(rb"(?im)^bcc:", headers)
    for part in parsed.walk():  # nor in the header block of any MIME part
        assert "Bcc" not in part
    for header in ("To", "Subject", "From", "Message-ID"):
        values = parsed.get_all(header)
        assert values is not None
        assert len(values) == 1
        assert "\r" not in str(values[0])
        assert "\n" not in str(values[0])


def test_header_text_turns_control_characters_into_spaces() -> None:
    """header_text collapses CR, LF, tabs and other control characters into single spaces."""
    assert header_text("a\r\nBcc: x@y") == "a Bcc: x@y"
    assert header_text("  a\t\x00b\x7f  c ") == "a b c"


# --- HTML safety and privacy -------------------------------------------------------


def test_html_is_autoescaped_and_text_is_literal() -> None:
    """Markup in a note is escaped in HTML and kept literally in the plain text."""
    script = "<script>alert(1)</script>"
    note = NoteView(at=dt.date(2023, 1, 10), author="Maria <b>Lind</b>", text=script)
    prompt = make_prompt(notes=(note,), description="Use <em>care</em> & speed")
    text, html = render(prompt)
    assert script not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Maria &lt;b&gt;Lind&lt;/b&gt;" in html
    assert "Use &lt;em&gt;care&lt;/em&gt; &amp; speed" in html
    assert f"- 2023-01-10 Maria <b>Lind</b>: {script}" in text
    assert "Use <em>care</em> & speed" in text
    # and the same after the trip through MIME
    mime_text, mime_html = bodies(reparse(build(prompt)))
    assert script in mime_text
    assert script not in mime_html


@pytest.mark.parametrize("language", list(Language))
def test_html_has_no_tracking(language: Language) -> None:
    """No images (tracking pixels) and no http(s) links in the HTML part."""
    note = NoteView(at=dt.date(2023, 1, 10), author="Maria Lind", text="Klart.")
    _, html = render(make_prompt(language=language, notes=(note,)))
    assert "<img" not in html.lower()
    assert not re.search(r"https?://", html, re.IGNORECASE)
    assert "href" not in html.lower()


# --- VTODO -------------------------------------------------------------------------


def _unfold(ics: str) -> list[str]:
    """Content lines with RFC 5545 folding undone."""
    return ics.replace("\r\n ", "").split("\r\n")


def test_vtodo_has_due_date_only_when_the_step_has_one() -> None:
    """DUE;VALUE=DATE is present for a dated step and absent without a due date."""
    stamp = CREATED
    dated = vtodo(make_prompt(due=dt.date(2023, 3, 6)), uid="u@x", stamp=stamp)
    undated = vtodo(make_prompt(due=None), uid="u@x", stamp=stamp)
    assert "DUE;VALUE=DATE:20230306" in _unfold(dated)
    assert not any(line.startswith("DUE") for line in _unfold(undated))
    for ics in (dated, undated):
        lines = _unfold(ics)
        assert lines[:5] == [
            "BEGIN:VCALENDAR",
            "VERSION:2.0",
            "PRODID:-//council//council-workflow//EN",
            "METHOD:PUBLISH",
            "BEGIN:VTODO",
        ]
        assert "UID:u@x" in lines
        assert "DTSTAMP:20230109T090000Z" in lines
        assert lines[-3:] == ["END:VTODO", "END:VCALENDAR", ""]


def test_vtodo_stamp_is_utc() -> None:
    """DTSTAMP is written in UTC whatever zone the creation time has."""
    stockholm = dt.timezone(dt.timedelta(hours=1))
    ics = vtodo(make_prompt(), uid="u@x", stamp=dt.datetime(2023, 1, 9, 10, 0, tzinfo=stockholm))
    assert "DTSTAMP:20230109T090000Z" in _unfold(ics)


def test_vtodo_lines_are_folded_at_75_octets() -> None:
    """Every line is at most 75 octets (UTF-8), also with multi-byte Swedish characters."""
    title = "Kartlägg och utvärdera rapporteringsvägar för hedersrelaterat våld, åäö ÅÄÖ " * 4
    prompt = make_prompt(step_title=title, point_title="Öppna jämförelser " * 10)
    ics = vtodo(prompt, uid="u@x", stamp=CREATED)
    physical = ics.split("\r\n")
    assert max(len(line.encode()) for line in physical) <= 75
    assert any(line.startswith(" ") for line in physical), "long lines must be folded"
    # folding never splits a character, and unfolding restores the value
    escaped = title.replace(",", "\\,")
    assert f"SUMMARY:{escaped}" in _unfold(ics)


def test_vtodo_in_the_message_keeps_its_folding() -> None:
    """The attached .ics, as received, still has no line longer than 75 octets."""
    prompt = make_prompt(step_title="Åtgärda övergripande ärenden " * 8, language=Language.SV)
    part = calendar_part(reparse(build(prompt)))
    content = part.get_content()
    assert isinstance(content, str)
    assert "BEGIN:VTODO" in content
    lines = content.replace("\r\n", "\n").split("\n")
    assert max(len(line.encode()) for line in lines) <= 75
    assert "SUMMARY:" + "Åtgärda övergripande ärenden " * 8 in content.replace(
        "\r\n", "\n"
    ).replace("\n ", "")


def test_vtodo_escapes_text_values() -> None:
    """Semicolons, commas, backslashes and newlines in text are escaped per RFC 5545."""
    prompt = make_prompt(step_title="a;b,c\\d\ne\r\nf", point="kf/4", point_title="x;y")
    lines = _unfold(vtodo(prompt, uid="u@x", stamp=CREATED))
    assert "SUMMARY:a\\;b\\,c\\\\d\\ne\\nf" in lines
    assert "DESCRIPTION:kf/4: x\\;y" in lines
    # the escaped newline did not start a content line of its own
    assert not any(line.startswith(("e", "f")) for line in lines)


# --- sandbox -----------------------------------------------------------------------


def test_templates_render_in_a_sandbox() -> None:
    """The Jinja environment is sandboxed: private attributes are out of reach."""
    env = environment()
    assert isinstance(env, SandboxedEnvironment)
    template = env.from_string("{{ p.__class__.__mro__ }}")
    with pytest.raises(SecurityError):
        template.render(p=make_prompt())


def test_template_syntax_in_data_is_not_evaluated() -> None:
    """Data that looks like a template expression is shown as text, never evaluated."""
    text, html = render(make_prompt(step_title="{{ p.__class__ }}", to_name="{% raw %}x"))
    assert "{{ p.__class__ }}" in text
    assert "{{ p.__class__ }}" in html
    assert "Prompt" not in text
    assert "Hello {% raw %}x," in text
