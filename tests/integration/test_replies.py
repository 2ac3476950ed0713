"""Owners' replies by e-mail end to end: real prompt -> real reply -> events -> answer mail.

A real worker mails the prompts to the SMTP catcher. Each reply is built from
the prompt the owner actually received, the way a mail client builds it (To:
the Reply-To, "Re:" subject, In-Reply-To/References, quoted history that itself
holds command words), and arrives through a maildir (``council inbox
--maildir``) or through the SMTP listener (``council inbox --serve``). The
tests then read the events table and the mails the catcher got: the next
prompts, the coordinator's extension request, and the answer to every reply.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from pathlib import Path
from typing import Any, Protocol

import pytest
import sqlalchemy as sa
from pydantic import SecretStr

from tests.integration.servers import SmtpCatcher, WorkerProcess, council, wait_for
from tests.support import ROOT
from workflow.mail.compose import message_id
from workflow.replies import tokens as replies
from workflow.store import tables

A = "kf-2022-hedersvald"
POINT = f"{A}/4"
DOMAIN = "kommun.example"
MAILBOX = f"council@{DOMAIN}"
SECRET = "integration-tests-reply-secret-0123456789abcdef"
START = "2023-01-09T09:00"
#: When the replies are judged (both routes: the listener takes one --now).
NOW = "2023-01-12T10:00"
REPLY_TO = re.compile(r"^council\+([0-9a-z]{1,13}\.[a-z2-7]{24})@kommun\.example$")
MAIL_TIMEOUT = 30


@dataclass(frozen=True)
class Person:
    id: str
    name: str

    @property
    def email(self) -> str:
        return f"{self.id}@{DOMAIN}"


AMIR = Person("amir.hassan", "Amir Hassan")  # reads English; owns map (delegable)
MARIA = Person("maria.lind", "Maria Lind")  # Swedish
ANDERS = Person("anders.berg", "Anders Berg")  # Swedish; owns indicators
JOHAN = Person("johan.ek", "Johan Ek")  # Swedish; owns nothing in point 4

EN_HELP = ("DONE [note]", "STARTED", "NOTE text", "DELAY 10 days", "DELEGATE person")
SV_HELP = ("KLAR [anteckning]", "PÅBÖRJAD", "NOTERING text", "FÖRSENAD 10 dagar",
           "DELEGERA person")  # fmt: skip


# --- reading the database and the catcher --------------------------------------------


@dataclass(frozen=True)
class Ev:
    type: str
    step: str | None
    actor: str
    data: dict[str, Any]


def _last_event(db: sa.Engine) -> int:
    with db.connect() as conn:
        return int(conn.execute(sa.select(sa.func.max(tables.events.c.id))).scalar_one() or 0)


def _events_after(db: sa.Engine, after: int) -> list[Ev]:
    with db.connect() as conn:
        rows = conn.execute(
            sa.select(
                tables.events.c.type, tables.events.c.step, tables.events.c.actor,
                tables.events.c.payload,
            ).where(tables.events.c.id > after).order_by(tables.events.c.id)
        ).all()  # fmt: skip
    return [Ev(r.type, r.step, r.actor, dict(r.payload)) for r in rows]


def _event_id(db: sa.Engine, step: str, kind: str) -> int:
    with db.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.max(tables.events.c.id)).where(
                    tables.events.c.step == step, tables.events.c.type == kind
                )
            ).scalar_one()
        )


def _reply_row(db: sa.Engine, key: str) -> Any:
    with db.connect() as conn:
        return conn.execute(
            sa.select(tables.replies).where(tables.replies.c.message_key == key)
        ).one()


def _count(db: sa.Engine, table: sa.Table) -> int:
    with db.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def _answers_recorded(db: sa.Engine) -> int:
    with db.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count()).where(tables.effects.c.kind == "answer")
            ).scalar_one()
        )


def _unsent(db: sa.Engine) -> list[Any]:
    with db.connect() as conn:
        return list(
            conn.execute(
                sa.select(tables.effects.c.id, tables.effects.c.kind, tables.effects.c.state).where(
                    tables.effects.c.state != "done"
                )
            ).all()
        )


def _wait_mail(smtp: SmtpCatcher, what: str, match: Callable[[EmailMessage], bool]) -> EmailMessage:
    found: list[EmailMessage] = []

    def arrived() -> bool:
        found[:] = [r.message for r in smtp.received if match(r.message)]
        return bool(found)

    try:
        wait_for(arrived, timeout=MAIL_TIMEOUT, what=what)
    except AssertionError as exc:  # say what did arrive
        subjects = [_subject(r.message) for r in smtp.received]
        raise AssertionError(f"{exc}; arrived: {subjects}") from None
    assert len(found) == 1, f"{len(found)} mails for {what}"
    return found[0]


def _prompt(smtp: SmtpCatcher, person: Person, subject: str) -> EmailMessage:
    return _wait_mail(
        smtp,
        f"the prompt to {person.id}: {subject}",
        lambda m: str(m["To"]).endswith(f"<{person.email}>") and _subject(m) == subject,
    )


def _answers_to(smtp: SmtpCatcher, reply: EmailMessage) -> list[EmailMessage]:
    return [r.message for r in smtp.received if r.message["In-Reply-To"] == reply["Message-ID"]]


def _answer(smtp: SmtpCatcher, reply: EmailMessage, person: Person) -> EmailMessage:
    answer = _wait_mail(
        smtp,
        f"the answer to {person.id}'s reply {reply['Message-ID']}",
        lambda m: m["In-Reply-To"] == reply["Message-ID"],
    )
    assert str(answer["To"]) == formataddr((person.name, person.email))
    assert reply["Message-ID"] in str(answer["References"])
    assert answer["Auto-Submitted"] == "auto-generated"
    return answer


def _subject(message: EmailMessage) -> str:
    """The Subject as a client shows it: CPython folds a long one right after "Subject:",
    and its own parser then keeps the fold's leading space."""
    return " ".join(str(message["Subject"]).split())


def _text(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def _token_event(message: EmailMessage) -> int:
    """The event the signed Reply-To of a mail names (it must be a valid one)."""
    found = REPLY_TO.match(str(message["Reply-To"]))
    assert found, f"no signed reply address: {message['Reply-To']!r}"
    event_id = replies.verify(SecretStr(SECRET), found[1])
    assert event_id is not None
    assert str(message["Reply-To"]) == replies.address(MAILBOX, SecretStr(SECRET), event_id)
    return event_id


def _check_prompt(prompt: EmailMessage, event_id: int, person: Person, lang: str) -> None:
    """A prompt with a reply address for its event that tells how to answer by e-mail."""
    assert prompt["Message-ID"] == message_id(f"prompt:{event_id}:{person.id}", DOMAIN)
    assert _token_event(prompt) == event_id
    assert prompt["Content-Language"] == lang
    text = _text(prompt)
    if lang == "en":
        assert "Reply to this message to report progress." in text
        assert "You always get an answer saying what was done." in text
    else:
        assert "Svara på det här meddelandet för att rapportera." in text
        assert "Du får alltid ett svar om vad som gjordes." in text
    for command in EN_HELP if lang == "en" else SV_HELP:
        assert re.search(rf"^    {re.escape(command)}\s", text, re.M), command


def _check_done(answer: EmailMessage, lang: str, reply: EmailMessage, *lines: str) -> None:
    text = _text(answer)
    recorded = "Recorded" if lang == "en" else "Registrerat"
    assert _subject(answer) == f"{recorded}: {reply['Subject']}"
    assert answer["Content-Language"] == lang
    assert ("Thank you! Your reply was recorded like this:" if lang == "en"
            else "Tack! Så här registrerades ditt svar:") in text  # fmt: skip
    for line in lines:
        assert f"- {line}" in text
    assert "DONE [note]" not in text
    assert "KLAR [anteckning]" not in text


def _check_refused(answer: EmailMessage, lang: str, reply: EmailMessage, why: str) -> None:
    """A refusal says that nothing changed, why, and lists the commands."""
    text = _text(answer)
    nothing = "Nothing done" if lang == "en" else "Inget gjordes"
    assert _subject(answer) == f"{nothing}: {reply['Subject']}"
    assert answer["Content-Language"] == lang
    if lang == "en":
        assert "Your reply could not be recorded, so nothing changed." in text
        assert f"Reason: {why}" in text
        assert "Write one command per line at the top of your reply:" in text
    else:
        assert "Ditt svar kunde inte registreras, så ingenting ändrades." in text
        assert f"Orsak: {why}" in text
        assert "Skriv ett kommando per rad överst i ditt svar:" in text
    for command in EN_HELP if lang == "en" else SV_HELP:
        assert re.search(rf"^    {re.escape(command)}\s", text, re.M), command


# --- mail clients ----------------------------------------------------------------------


def _headers(
    prompt: EmailMessage, sender: Person, mailer: tuple[str, str], host: str
) -> EmailMessage:
    """What every client writes when its user presses Reply on the prompt."""
    reply = EmailMessage()
    reply["From"] = formataddr((sender.name, sender.email))
    reply["To"] = str(prompt["Reply-To"])
    reply["Subject"] = f"Re: {prompt['Subject']}"
    reply["Date"] = "Thu, 12 Jan 2023 10:00:00 +0100"
    reply["Message-ID"] = make_msgid(domain=host)
    reply["In-Reply-To"] = prompt["Message-ID"]
    reply["References"] = prompt["Message-ID"]
    reply["MIME-Version"] = "1.0"
    reply[mailer[0]] = mailer[1]
    return reply


def _quoted(text: str) -> str:
    return "\n".join(f"> {line}" if line else ">" for line in text.splitlines())


def _html_body(prompt: EmailMessage) -> str:
    part = prompt.get_body(("html",))
    assert part is not None
    found = re.search(r"<body[^>]*>(.*)</body>", str(part.get_content()), re.S)
    assert found
    return found[1]


def thunderbird(prompt: EmailMessage, sender: Person, fresh: str, *, lang: str) -> EmailMessage:
    """Plain text, the fresh text on top and the prompt quoted with "> " below."""
    reply = _headers(prompt, sender, ("User-Agent", "Mozilla Thunderbird"), DOMAIN)
    header = ("On 2023-01-09 09:00, council@kommun.example wrote:" if lang == "en"
              else "Den 2023-01-09 kl. 09:00, skrev council@kommun.example:")  # fmt: skip
    body = f"{fresh}\n\n{header}\n{_quoted(_text(prompt))}\n"
    assert "\n>     DONE [note]" in body or "\n>     KLAR [anteckning]" in body
    reply.set_content(body, cte="8bit", params={"format": "flowed"})
    return reply


def iphone(prompt: EmailMessage, sender: Person, fresh: str) -> EmailMessage:
    """Plain text from a phone: a footer, then the quoted prompt (attribution quoted too)."""
    reply = _headers(prompt, sender, ("X-Mailer", "iPhone Mail (20C65)"), DOMAIN)
    body = (
        f"{fresh}\n\nSkickat från min iPhone\n\n"
        f"> 12 jan. 2023 kl. 10:05 skrev council@kommun.example:\n>\n{_quoted(_text(prompt))}\n"
    )
    reply.set_content(body, cte="quoted-printable")
    return reply


def gmail_plain(prompt: EmailMessage, sender: Person, fresh: str) -> EmailMessage:
    """Gmail's plain-text reply in Swedish: "Den ... skrev <address>:" above the quote."""
    reply = _headers(prompt, sender, ("X-Mailer", "Gmail"), "mail.gmail.com")
    body = (
        f"{fresh}\n\nDen mån 9 jan. 2023 kl 09:00 skrev <{prompt['Reply-To']}>:\n\n"
        f"{_quoted(_text(prompt))}\n"
    )
    reply.set_content(body, cte="quoted-printable")
    return reply


def outlook_plain(prompt: EmailMessage, sender: Person, fresh: str) -> EmailMessage:
    """Outlook for iOS: a footer, a rule, From/Sent/To/Subject, the prompt *unquoted*."""
    reply = _headers(prompt, sender, ("X-Mailer", "Outlook for iOS"), "outlook.com")
    body = (
        f"{fresh}\n\nGet Outlook for iOS\n________________________________\n"
        f"From: council@kommun.example <{prompt['Reply-To']}>\n"
        "Sent: Monday, January 9, 2023 9:00:00 AM\n"
        f"To: {sender.name} <{sender.email}>\nSubject: {prompt['Subject']}\n\n{_text(prompt)}\n"
    )
    reply.set_content(body, cte="quoted-printable")
    return reply


def outlook_html(
    prompt: EmailMessage, sender: Person, lines: list[str], *, lang: str
) -> EmailMessage:
    """HTML only, as Outlook writes it: one <div> per line, divRplyFwdMsg, the prompt's HTML."""
    reply = _headers(prompt, sender, ("X-Mailer", "Microsoft Outlook 16.0"), "outlook.com")
    fresh = "".join(
        f'<div class="elementToProof" style="font-family: Aptos, sans-serif;">{line or "<br>"}'
        "</div>"
        for line in lines
    )
    labels = ("From", "Sent", "To", "Subject") if lang == "en" else (
        "Från", "Skickat", "Till", "Ämne")  # fmt: skip
    html = (
        '<html><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8">'
        '<style type="text/css" style="display:none;">P {margin-top:0;margin-bottom:0;}</style>'
        f'</head><body dir="ltr">{fresh}<div id="appendonsend"></div>'
        '<hr style="display:inline-block;width:98%" tabindex="-1">'
        '<div id="divRplyFwdMsg" dir="ltr"><font face="Calibri, sans-serif" color="#000000">'
        f"<b>{labels[0]}:</b> council@kommun.example<br><b>{labels[1]}:</b> 9 januari 2023 09:00"
        f"<br><b>{labels[2]}:</b> {sender.name}<br><b>{labels[3]}:</b> {prompt['Subject']}"
        f"</font><div>&nbsp;</div></div>{_html_body(prompt)}</body></html>"
    )
    reply.set_content(html, subtype="html", cte="base64" if lang == "sv" else "quoted-printable")
    return reply


def gmail_html(prompt: EmailMessage, sender: Person, fresh: str) -> EmailMessage:
    """HTML only, as Gmail writes it: the prompt in a gmail_quote blockquote."""
    reply = _headers(prompt, sender, ("X-Mailer", "Gmail"), "mail.gmail.com")
    html = (
        f'<div dir="ltr">{fresh}</div><br><div class="gmail_quote"><div dir="ltr" '
        'class="gmail_attr">On Mon, Jan 9, 2023 at 9:00 AM &lt;<a href="mailto:'
        f'{prompt["Reply-To"]}">{prompt["Reply-To"]}</a>&gt; wrote:<br></div>'
        '<blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex;border-left:1px solid '
        f'rgb(204,204,204);padding-left:1ex">{_html_body(prompt)}</blockquote></div>'
    )
    reply.set_content(html, subtype="html", cte="quoted-printable")
    return reply


# --- the two routes -------------------------------------------------------------------


class Route(Protocol):
    def send(self, reply: EmailMessage) -> None: ...


class MaildirRoute:
    """An MTA delivers into a maildir; `council inbox --maildir` reads it."""

    def __init__(self, env: dict[str, str], directory: Path) -> None:
        self.env = env
        self.directory = directory
        for sub in ("tmp", "new", "cur"):
            (directory / sub).mkdir(parents=True, exist_ok=True)
        self.receipts: list[dict[str, Any]] = []

    def send(self, reply: EmailMessage) -> None:
        name = f"{time.time_ns()}.P{os.getpid()}.mx.kommun.example"
        staged = self.directory / "tmp" / name
        staged.write_bytes(reply.as_bytes(policy=policy.default))
        staged.rename(self.directory / "new" / name)  # as an MTA delivers: tmp/ then new/
        out = council(self.env, "inbox", "--maildir", str(self.directory), "--now", NOW, "--json")
        receipts = json.loads(out)
        assert len(receipts) == 1, receipts
        assert receipts[0]["message_key"] == reply["Message-ID"]
        self.receipts.append(receipts[0])
        assert list((self.directory / "new").iterdir()) == []
        assert (self.directory / "cur" / f"{name}:2,S").is_file()


class SmtpRoute:
    """The sending server talks SMTP to `council inbox --serve`; like a mail server, it
    tries again after a 4xx (the listener says 451 when another reply won a race)."""

    def __init__(self, port: int) -> None:
        self.port = port

    def send(self, reply: EmailMessage, *, tries: int = 20) -> None:
        for attempt in range(tries):
            try:
                with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as client:
                    refused = client.send_message(
                        reply, from_addr=_address_of(reply["From"]), to_addrs=[str(reply["To"])]
                    )
            except smtplib.SMTPDataError as exc:
                if exc.smtp_code // 100 != 4 or attempt == tries - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))
                continue
            assert refused == {}
            return


def _address_of(header: Any) -> str:
    return str(header.addresses[0].addr_spec)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


Listen = Callable[[dict[str, str]], tuple[subprocess.Popen[bytes], int, Path]]


@pytest.fixture
def listeners(tmp_path: Path) -> Iterator[Listen]:
    """Start `council inbox --serve` subprocesses; any still running at the end are killed."""
    started: list[subprocess.Popen[bytes]] = []

    def start(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], int, Path]:
        port = _free_port()
        log = tmp_path / f"listener-{port}.log"
        with log.open("wb") as err:
            process = subprocess.Popen(
                [sys.executable, "-c", "import cli; cli.main()", "inbox", "--serve",
                 "--host", "127.0.0.1", "--port", str(port), "--now", NOW],
                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err,
            )  # fmt: skip
        started.append(process)
        wait_for(
            lambda: "listening for replies" in log.read_text() or process.poll() is not None,
            timeout=30,
            what="the reply listener to listen",
        )
        assert process.poll() is None, log.read_text()
        assert f"listening for replies on 127.0.0.1:{port}" in log.read_text()
        return process, port, log

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture
def reply_env(worker_env: dict[str, str]) -> dict[str, str]:
    # The scenarios answer more replies of one owner in an hour than the default allows
    # (the limit itself is tested in test_reply_corpus.py).
    return {**worker_env, "COUNCIL_REPLY_SECRET": SECRET, "COUNCIL_REPLY_ANSWERS_PER_HOUR": "500"}


# --- the scenario both routes go through ------------------------------------------------


def _send(
    route: Route, db: sa.Engine, reply: EmailMessage, sent: list[EmailMessage]
) -> tuple[list[Ev], Any]:
    """Send one reply; return the events it added and its record."""
    before = _last_event(db)
    route.send(reply)
    sent.append(reply)
    return _events_after(db, before), _reply_row(db, str(reply["Message-ID"]))


def _refused(
    route: Route, db: sa.Engine, reply: EmailMessage, sent: list[EmailMessage], reason: str
) -> None:
    answers = _answers_recorded(db)
    events, row = _send(route, db, reply, sent)
    assert events == []
    assert (row.outcome, row.reason) == ("refused", reason)
    assert row.event_ids is None
    assert _answers_recorded(db) == answers + 1


def _scenario(
    route: Route, db: sa.Engine, smtp: SmtpCatcher, env: dict[str, str], replay: list[Route]
) -> None:
    sent: list[EmailMessage] = []
    council(env, "start", A, "--point", "4", "--now", START)
    activated = _event_id(db, "map", "step.activated")
    to_amir = _prompt(smtp, AMIR, f"Task: Map and evaluate reporting routes ({POINT})")
    _check_prompt(to_amir, activated, AMIR, "en")

    # 1. English, plain text with the prompt quoted below (its "> DONE" lines are ignored).
    reply = thunderbird(to_amir, AMIR, "STARTED\nNOTE Spoke with the social services about\n"
                        "their reporting routes.", lang="en")  # fmt: skip
    events, row = _send(route, db, reply, sent)
    assert events == [
        Ev("step.begun", "map", AMIR.id, {}),
        Ev("note.added", "map", AMIR.id,
           {"text": "Spoke with the social services about their reporting routes."}),
    ]  # fmt: skip
    assert (row.outcome, row.person, row.step, row.sender) == (
        "done", AMIR.id, f"{POINT}/map", AMIR.email)  # fmt: skip
    answer = _answer(smtp, reply, AMIR)
    _check_done(answer, "en", reply, "The step is marked started.", "The note is saved.")
    assert "Hello Amir Hassan," in _text(answer)
    assert answer["Reply-To"] == to_amir["Reply-To"]  # the step is still his: answerable too

    # 2. English, no command, from Outlook for iOS with the prompt unquoted below its rule.
    reply = outlook_plain(to_amir, AMIR, "I will look at this next week.")
    _refused(route, db, reply, sent, "not-understood")
    answer = _answer(smtp, reply, AMIR)
    _check_refused(answer, "en", reply, "A line could not be understood.")
    assert "The line: I will look at this next week." in _text(answer)
    assert answer["Reply-To"] == to_amir["Reply-To"]

    # 3. English, HTML only from Outlook: DELAY; the coordinator gets `council extend`.
    reply = outlook_html(to_amir, AMIR, ["DELAY 10 days: waiting for the police statistics", "",
                                         "Amir"], lang="en")  # fmt: skip
    assert reply.get_body(("plain",)) is None
    events, row = _send(route, db, reply, sent)
    assert events == [
        Ev("step.extension_requested", "map", AMIR.id,
           {"days": 10, "due": "2023-03-06", "proposed": "2023-03-16",
            "reason": "waiting for the police statistics"}),
    ]  # fmt: skip
    answer = _answer(smtp, reply, AMIR)
    _check_done(answer, "en", reply, "Your request for more time went to the coordinator.")
    request = _wait_mail(
        smtp, "the extension request to the coordinator",
        lambda m: _subject(m) == "Begäran om mer tid: Kartlägg och utvärdera "
        f"rapporteringsvägar ({POINT})",
    )  # fmt: skip
    assert str(request["To"]) == "Sara Nilsson <sara.nilsson@kommun.example>"
    text = _text(request)
    assert "Amir Hassan ber om 10 dagar mer för ett moment." in text
    assert f"    council extend {POINT}/map --to 2023-03-16 --reason" in text
    assert "Skäl: waiting for the police statistics" in text
    assert request["Message-ID"] == message_id(
        f"extension-request:{_event_id(db, 'map', 'step.extension_requested')}", DOMAIN
    )

    # 4. Swedish, someone in the directory who does not own the step: refused, in Swedish.
    reply = gmail_plain(to_amir, JOHAN, "KLAR")
    _refused(route, db, reply, sent, "not-owner")
    answer = _answer(smtp, reply, JOHAN)
    _check_refused(answer, "sv", reply, "Bara den som är ansvarig för momentet (eller dennes "
                   "ersättare) kan svara på det.")  # fmt: skip
    assert "Hej Johan Ek," in _text(answer)
    assert answer["Reply-To"] is None  # nothing of his to answer

    # 5. English, HTML only from Gmail: DELEGATE; the delegate gets a prompt of her own.
    reply = gmail_html(to_amir, AMIR, "DELEGATE <a href=\"mailto:maria.lind@kommun.example\">"
                       "maria.lind@kommun.example</a>")  # fmt: skip
    assert reply.get_body(("plain",)) is None
    events, row = _send(route, db, reply, sent)
    assert events == [Ev("step.reassigned", "map", AMIR.id, {"from": AMIR.id, "to": MARIA.id})]
    answer = _answer(smtp, reply, AMIR)
    _check_done(answer, "en", reply, "The step is handed over; its new owner has been told.")
    assert answer["Reply-To"] is None  # no longer his step
    reassigned = _event_id(db, "map", "step.reassigned")
    to_maria = _prompt(
        smtp, MARIA, f"Ny ansvarig för uppgift: Kartlägg och utvärdera rapporteringsvägar ({POINT})"
    )
    _check_prompt(to_maria, reassigned, MARIA, "sv")
    assert "Du är nu ansvarig för en uppgift" in _text(to_maria)

    # 6. English, the old owner answers the old prompt: its token expired with the handover.
    reply = thunderbird(to_amir, AMIR, "DONE", lang="en")
    _refused(route, db, reply, sent, "expired")
    answer = _answer(smtp, reply, AMIR)
    _check_refused(answer, "en", reply, "The step is already done, handed over or reopened; the "
                   "reply address no longer works.")  # fmt: skip

    # 7. Swedish, plain text from an iPhone: DELEGERA hands it on again, to a colleague.
    reply = iphone(to_maria, MARIA, "DELEGERA anders.berg")
    events, row = _send(route, db, reply, sent)
    assert events == [Ev("step.reassigned", "map", MARIA.id, {"from": MARIA.id, "to": ANDERS.id})]
    assert (row.outcome, row.person) == ("done", MARIA.id)
    answer = _answer(smtp, reply, MARIA)
    _check_done(
        answer, "sv", reply, "Momentet är överlämnat; den nya ansvariga har fått ett meddelande."
    )
    assert "Hej Maria Lind," in _text(answer)
    assert answer["Reply-To"] is None
    map_to_anders = _prompt(
        smtp,
        ANDERS,
        f"Ny ansvarig för uppgift: Kartlägg och utvärdera rapporteringsvägar ({POINT})",
    )
    _check_prompt(map_to_anders, _event_id(db, "map", "step.reassigned"), ANDERS, "sv")

    # 8. Swedish, plain text with "Den ... skrev:" history: KLAR; the next steps are prompted.
    reply = thunderbird(map_to_anders, ANDERS, "KLAR Rapporteringsvägarna är kartlagda.",
                        lang="sv")  # fmt: skip
    done_reply = reply
    events, row = _send(route, db, reply, sent)
    assert [(e.type, e.step, e.actor) for e in events] == [
        ("step.completed", "map", ANDERS.id),
        ("step.activated", "indicators", ANDERS.id),
        ("step.activated", "survey", ANDERS.id),
    ]
    assert events[0].data == {"note": "Rapporteringsvägarna är kartlagda."}
    assert (row.outcome, row.person) == ("done", ANDERS.id)
    assert row.event_ids == [_event_id(db, k[1], k[0]) for k in (
        ("step.completed", "map"), ("step.activated", "indicators"),
        ("step.activated", "survey"))]  # fmt: skip
    answer = _answer(smtp, reply, ANDERS)
    _check_done(answer, "sv", reply, "Momentet är markerat som klart.")
    assert "Hej Anders Berg," in _text(answer)
    assert answer["Reply-To"] is None  # the step is done
    to_anders = _prompt(smtp, ANDERS, f"Uppgift: Bestäm indikatorer och statistik ({POINT})")
    _check_prompt(to_anders, _event_id(db, "indicators", "step.activated"), ANDERS, "sv")
    survey = _prompt(smtp, MARIA, f"Uppgift: Lägg in frågor i årliga hälsoenkäter ({POINT})")
    _check_prompt(survey, _event_id(db, "survey", "step.activated"), MARIA, "sv")

    # 9. Swedish, HTML only from Outlook (base64, non-ASCII words), a signature below.
    reply = outlook_html(to_anders, ANDERS, [
        "PÅBÖRJAD", "NOTERING Första utkastet är skickat till statistikenheten.",
        "FÖRSENAD 2 veckor", "", "Med vänlig hälsning", "Anders Berg"], lang="sv")  # fmt: skip
    events, row = _send(route, db, reply, sent)
    assert events[:2] == [
        Ev("step.begun", "indicators", ANDERS.id, {}),
        Ev("note.added", "indicators", ANDERS.id,
           {"text": "Första utkastet är skickat till statistikenheten."}),
    ]  # fmt: skip
    assert [(e.type, e.step, e.actor) for e in events[2:]] == [
        ("step.extension_requested", "indicators", ANDERS.id)
    ]
    asked = events[2].data
    assert asked["days"] == 14
    assert "reason" not in asked
    due, proposed = dt.date.fromisoformat(asked["due"]), dt.date.fromisoformat(asked["proposed"])
    assert proposed - due == dt.timedelta(days=14)  # from the due date, two weeks on a weekday
    answer = _answer(smtp, reply, ANDERS)
    _check_done(answer, "sv", reply, "Momentet är markerat som påbörjat.",
                "Anteckningen är sparad.",
                "Din begäran om mer tid har skickats till samordnaren.")  # fmt: skip
    assert answer["Reply-To"] == to_anders["Reply-To"]
    request = _wait_mail(
        smtp, "the second extension request",
        lambda m: _subject(m) == f"Begäran om mer tid: Bestäm indikatorer och statistik ({POINT})",
    )  # fmt: skip
    text = _text(request)
    assert "Anders Berg ber om 14 dagar mer för ett moment." in text
    assert f"    council extend {POINT}/indicators --to {proposed.isoformat()} --reason" in text

    # 10. Swedish, a reply with no command at all, only thanks: refused, commands listed.
    reply = gmail_plain(to_anders, ANDERS, "Tack!")
    _refused(route, db, reply, sent, "empty")
    answer = _answer(smtp, reply, ANDERS)
    _check_refused(answer, "sv", reply, "Svaret innehöll inga kommandon.")
    assert answer["Reply-To"] == to_anders["Reply-To"]

    # 11. Swedish, the completed step's prompt answered again: the token expired with it.
    reply = iphone(map_to_anders, ANDERS, "KLAR")
    _refused(route, db, reply, sent, "expired")
    answer = _answer(smtp, reply, ANDERS)
    _check_refused(answer, "sv", reply, "Momentet är redan klart, överlämnat eller öppnat igen; "
                   "svarsadressen gäller inte längre.")  # fmt: skip
    assert answer["Reply-To"] is None

    # 12. The KLAR message again, byte for byte, through each route: nothing, no answer.
    state = (_last_event(db), _count(db, tables.effects), _count(db, tables.replies))
    for again in replay:
        again.send(done_reply)
        assert (_last_event(db), _count(db, tables.effects), _count(db, tables.replies)) == state
    assert _reply_row(db, str(done_reply["Message-ID"])).outcome == "done"

    # Every mail went out; each reply got exactly one answer.
    wait_for(lambda: not _unsent(db), timeout=MAIL_TIMEOUT, what="every e-mail to be sent")
    for each in sent:
        assert len(_answers_to(smtp, each)) == 1, each["Message-ID"]
    answers = [r for r in smtp.received if r.message["In-Reply-To"] is not None]
    assert len(answers) == len(sent) == 11


# --- the tests ---------------------------------------------------------------------------


def test_replies_through_a_maildir(
    reply_env: dict[str, str],
    start_worker: Callable[..., WorkerProcess],
    smtp: SmtpCatcher,
    db: sa.Engine,
    tmp_path: Path,
) -> None:
    """Plain, HTML-only and quoted replies in sv and en, read from a maildir by `council inbox`."""
    start_worker(reply_env)
    route = MaildirRoute(reply_env, tmp_path / "inbox")
    _scenario(route, db, smtp, reply_env, replay=[route])
    outcomes = [(r["outcome"], r["reason"]) for r in route.receipts]
    assert outcomes == [
        ("done", None), ("refused", "not-understood"), ("done", None),
        ("refused", "not-owner"), ("done", None), ("refused", "expired"), ("done", None),
        ("done", None), ("done", None), ("refused", "empty"), ("refused", "expired"),
        ("duplicate", None),
    ]  # fmt: skip
    assert len(list((tmp_path / "inbox" / "cur").iterdir())) == 12


def test_replies_through_the_smtp_listener(
    reply_env: dict[str, str],
    start_worker: Callable[..., WorkerProcess],
    smtp: SmtpCatcher,
    db: sa.Engine,
    tmp_path: Path,
    listeners: Listen,
) -> None:
    """The same replies through `council inbox --serve`; only reply addresses are accepted."""
    start_worker(reply_env)
    process, port, log = listeners(reply_env)
    route = SmtpRoute(port)

    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo()
        client.mail(AMIR.email)
        for rcpt in (MAILBOX, AMIR.email, f"postmaster@{DOMAIN}"):
            code, _ = client.rcpt(rcpt)
            assert code == 550, rcpt
    probe = EmailMessage()
    probe["From"], probe["To"], probe["Subject"] = AMIR.email, MAILBOX, "DONE"
    probe["Message-ID"] = make_msgid(domain=DOMAIN)
    probe.set_content("DONE\n")
    with (
        smtplib.SMTP("127.0.0.1", port, timeout=30) as client,
        pytest.raises(smtplib.SMTPRecipientsRefused) as refused,
    ):
        client.send_message(probe, to_addrs=[MAILBOX])
    assert refused.value.recipients[MAILBOX][0] == 550
    assert _count(db, tables.replies) == 0

    _scenario(route, db, smtp, reply_env,
              replay=[route, MaildirRoute(reply_env, tmp_path / "inbox")])  # fmt: skip

    assert process.poll() is None
    os.kill(process.pid, signal.SIGTERM)
    assert process.wait(timeout=20) == 0, log.read_text()
    assert "Traceback" not in log.read_text()


@pytest.mark.slow
def test_replies_in_bursts_over_smtp_are_all_answered_without_the_reconciler(
    reply_env: dict[str, str],
    start_worker: Callable[..., WorkerProcess],
    smtp: SmtpCatcher,
    db: sa.Engine,
    listeners: Listen,
) -> None:
    """200 replies in bursts of 20 parallel SMTP sessions to `council inbox --serve`: every
    answer mail is handed to the workers as its reply commits (the reconciler is held off
    for an hour), so all 200 reach the SMTP server."""
    env = {**reply_env, "COUNCIL_RECONCILE_AFTER": "3600"}
    start_worker(env)
    _, port, log = listeners(env)
    council(env, "start", A, "--point", "4", "--now", START)
    to_amir = _prompt(smtp, AMIR, f"Task: Map and evaluate reporting routes ({POINT})")
    replies_ = [
        thunderbird(to_amir, AMIR, f"NOTE Progress {n}: routes mapped.", lang="en")
        for n in range(200)
    ]
    route = SmtpRoute(port)
    for burst in range(0, 200, 20):
        threads = [
            threading.Thread(target=route.send, args=(reply,))
            for reply in replies_[burst : burst + 20]
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    wanted = {str(r["Message-ID"]) for r in replies_}

    def answered() -> int:
        return len({str(r.message["In-Reply-To"]) for r in smtp.received} & wanted)

    wait_for(lambda: answered() == 200, timeout=60, what="an answer to each of 200 replies",
             progress=answered)  # fmt: skip
    assert _count(db, tables.replies) == 200
    assert "Traceback" not in log.read_text()


# --- what the scenario above does not show --------------------------------------------------


def test_an_html_reply_keeps_the_lines_of_a_note_together(
    reply_env: dict[str, str],
    start_worker: Callable[..., WorkerProcess],
    smtp: SmtpCatcher,
    db: sa.Engine,
    tmp_path: Path,
) -> None:
    """Outlook writes each line the owner typed as its own <div>: a note on two lines is one
    note, as it is in a plain-text reply, not its first line with the rest dropped."""
    start_worker(reply_env)
    route = MaildirRoute(reply_env, tmp_path / "inbox")
    sent: list[EmailMessage] = []
    council(reply_env, "start", A, "--point", "4", "--now", START)
    to_amir = _prompt(smtp, AMIR, f"Task: Map and evaluate reporting routes ({POINT})")

    plain = thunderbird(to_amir, AMIR, "NOTE Spoke with the social services.\n"
                        "They report through the case system.", lang="en")  # fmt: skip
    lines = ["NOTE Spoke with the social services.", "They report through the case system."]
    html = outlook_html(to_amir, AMIR, lines, lang="en")
    notes = []
    for reply in (plain, html):
        events, row = _send(route, db, reply, sent)
        assert row.outcome == "done"
        _check_done(_answer(smtp, reply, AMIR), "en", reply, "The note is saved.")
        notes.append([e.data.get("text") for e in events if e.type == "note.added"])
    whole = ["Spoke with the social services. They report through the case system."]
    assert notes == [whole, whole]


def test_an_answer_to_an_expired_reply_address_quotes_no_line_the_owner_did_not_write(
    reply_env: dict[str, str],
    start_worker: Callable[..., WorkerProcess],
    smtp: SmtpCatcher,
    db: sa.Engine,
    tmp_path: Path,
) -> None:
    """Replying DONE twice: the second answer says the step is already done; it does not
    show the step's status as "The line: done" (in English, even to a Swedish reader)."""
    start_worker(reply_env)
    route = MaildirRoute(reply_env, tmp_path / "inbox")
    sent: list[EmailMessage] = []
    council(reply_env, "start", A, "--point", "4", "--now", START)
    to_amir = _prompt(smtp, AMIR, f"Task: Map and evaluate reporting routes ({POINT})")
    texts = []
    for person, prompt, lang in ((AMIR, to_amir, "en"), (ANDERS, None, "sv")):
        if prompt is None:  # the next step's owner, prompted once the first step is done
            prompt = _prompt(smtp, person, f"Uppgift: Bestäm indikatorer och statistik ({POINT})")
        command = "DONE" if lang == "en" else "KLAR"
        first = thunderbird(prompt, person, command, lang=lang)
        _send(route, db, first, sent)
        _answer(smtp, first, person)
        again = iphone(prompt, person, command)
        _refused(route, db, again, sent, "expired")
        texts.append(_text(_answer(smtp, again, person)))
    assert "Reason: The step is already done" in texts[0]
    assert "Orsak: Momentet är redan klart" in texts[1]
    shown = [line for text in texts for line in text.splitlines()
             if line.startswith(("The line:", "Raden:"))]  # fmt: skip
    assert shown == []
