"""Receiving owners' replies: one message in, its commands through the engine, one answer out.

:meth:`Inbox.receive` takes the raw bytes of one message (from a maildir, an
mbox, IMAP or the SMTP listener) and decides, in this order:

1. too large, or not a readable message: refused unread;
2. seen before (its Message-ID, or a digest of its bytes): nothing, again;
3. sent automatically (Auto-Submitted, Precedence, mailer-daemon): ignored, no answer;
4. the sender is not one person of the directory: refused, no answer (no backscatter);
5. no reply address of ours with a valid signature: refused;
6. the step is done, skipped, reassigned or reopened since: refused (the token expired);
7. the sender is neither the step's owner nor the owner's substitute today: refused;
8. the fresh text holds no commands, or one is wrong: refused, commands listed;
9. otherwise every command runs in one transaction with the record of the
   message and its answer: all of them or none.

Every outcome is recorded once under the message's key and logged (ids and
reason codes only, never the text). Known senders always get an answer mail,
in their language, saying what was done or why nothing was.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from email import errors, policy
from email.message import EmailMessage
from email.parser import BytesHeaderParser, BytesParser
from email.utils import getaddresses
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from workflow import effects, replies, store
from workflow.deadlines import away_substitute
from workflow.definitions import Language, Person
from workflow.engine import Engine, Outcome
from workflow.errors import CouncilError, InvalidInput, NotFound, TransitionNotAllowed
from workflow.logs import get_logger
from workflow.machine import (
    AddNote,
    BeginStep,
    Command,
    CompleteStep,
    ReassignStep,
    RequestExtension,
)
from workflow.mail import MESSAGE_ID, Rendered, header_text
from workflow.plan import PointPlan, StepPlan
from workflow.reply_text import KEYWORDS, ReplyCommand, Verb, body_text, fresh_lines, read_commands
from workflow.settings import Settings
from workflow.state import StepStatus, replay
from workflow.templating import environment

log = get_logger(__name__)

#: Headers that may carry our reply address, besides the envelope's recipients.
_RECIPIENT_HEADERS = ("To", "Cc", "Delivered-To", "X-Original-To", "Envelope-To")


@dataclass(frozen=True)
class Receipt:
    """What became of one message."""

    message_key: str
    #: done, refused, ignored or duplicate.
    outcome: str
    reason: str | None = None
    person: str | None = None
    step: str | None = None
    event_ids: tuple[int, ...] = ()
    #: E-mails recorded: the answer (to deliver right away).
    effect_ids: tuple[int, ...] = ()


@dataclass
class _Reply:
    """A message as it is being judged."""

    key: str
    message: EmailMessage | None = None
    sender: str | None = None
    person: Person | None = None
    point: PointPlan | None = None
    step: StepPlan | None = None
    owner_event: int | None = None
    commands: list[ReplyCommand] = field(default_factory=list)
    reason: str | None = None
    detail: str | None = None
    #: What each command did, for the answer mail.
    done: list[str] = field(default_factory=list)


class Refused(Exception):
    """Nothing was done with a message, for ``reason`` (a stable code)."""

    def __init__(self, reason: str, detail: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


class Inbox:
    """Turns received replies into commands, once each."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        if settings.reply_secret is None:
            raise InvalidInput(
                "replies by e-mail are off: set COUNCIL_REPLY_SECRET (32 characters or more)"
            )
        self.engine = engine
        self.settings = settings
        self.secret = settings.reply_secret
        self._emails: dict[str, list[str]] = {}
        for person in engine.definitions.directory.people.values():
            self._emails.setdefault(str(person.email).lower(), []).append(person.id)

    # --- the whole path ------------------------------------------------------------

    def receive(self, raw: bytes, *, now: dt.datetime, recipients: Sequence[str] = ()) -> Receipt:
        """Judge one message and act on it; never raises for what the message contains."""
        reply = _Reply(key=_key_of(raw))
        try:
            self._read(reply, raw)
            if self._seen(reply.key):
                return Receipt(reply.key, "duplicate")
            self._judge(reply, recipients, now)
        except Refused as refused:
            if self._seen(reply.key):  # refused before: say nothing twice
                return Receipt(reply.key, "duplicate")
            reply.reason, reply.detail = refused.reason, refused.detail
            return self._record_refusal(reply, now)
        return self._run(reply, now)

    def _read(self, reply: _Reply, raw: bytes) -> None:
        if len(raw) > self.settings.inbox_max_bytes:
            reply.message = _headers_only(raw)
            reply.key = _key_of(raw, reply.message)
            if reply.message is not None and _automatic(reply.message, self.settings):
                raise Refused("automatic")
            self._identify(reply, quiet=True)
            raise Refused("too-large")
        try:
            message = BytesParser(policy=policy.default).parsebytes(raw)
            assert isinstance(message, EmailMessage)
            str(message.get("From", ""))  # decoding errors surface here, not later
        except Exception:  # any parse failure: the message is unreadable
            raise Refused("malformed") from None
        reply.message = message
        reply.key = _key_of(raw, message)

    def _judge(self, reply: _Reply, recipients: Sequence[str], now: dt.datetime) -> None:
        message = reply.message
        assert message is not None
        if _automatic(message, self.settings):
            raise Refused("automatic")
        self._identify(reply)
        self._find_step(reply, recipients)
        self._check_sender(reply, now)
        try:
            text = body_text(message)
        except Exception:  # a body no codec can read
            raise Refused("malformed") from None
        if any(isinstance(d, _DECODING_DEFECTS) for part in message.walk() for d in part.defects):
            raise Refused("malformed")  # broken base64: what it decodes to is a guess
        reading = read_commands(fresh_lines(text or ""))
        if reading.problem:
            raise Refused(reading.problem, reading.detail)
        reply.commands = reading.commands

    # --- the checks ----------------------------------------------------------------

    def _identify(self, reply: _Reply, *, quiet: bool = False) -> None:
        """The one sender of the message, as a person of the directory."""
        try:
            addresses = _addresses(reply.message, ("From",)) if reply.message else []
        except Refused:
            addresses = []
        if len(addresses) != 1:
            if quiet:
                return
            raise Refused("unknown-sender")
        reply.sender = addresses[0].lower()
        ids = self._emails.get(reply.sender, [])
        if len(ids) == 1:
            reply.person = self.engine.definitions.directory.people[ids[0]]
        elif not quiet:
            raise Refused("unknown-sender")

    def _find_step(self, reply: _Reply, recipients: Sequence[str]) -> None:
        """The step the signed reply address names."""
        message = reply.message
        assert message is not None
        candidates = [*recipients, *_addresses(message, _RECIPIENT_HEADERS)]
        tokens = replies.tokens_in(self.settings.effective_reply_address, candidates)
        if not tokens:
            raise Refused("no-token")
        event_ids = {replies.verify(self.secret, t) for t in tokens}
        event_ids.discard(None)
        if len(event_ids) != 1:
            raise Refused("bad-token")
        (event_id,) = event_ids
        assert event_id is not None
        with self.engine.db.connect() as conn:
            event = store.get_event(conn, event_id)
            if event is None or event.type.value not in store.OWNER_EVENTS:
                raise Refused("bad-token")
            current = store.owner_event(conn, event.assignment, event.point, event.step or "")
        plan = self.engine.definitions.assignments.get(event.assignment)
        try:
            if plan is None or event.step is None:
                raise KeyError(event.assignment)
            reply.point = plan.point(event.point)
            reply.step = reply.point.step(event.step)
        except KeyError:  # the definition no longer has the step
            raise Refused("expired") from None
        reply.owner_event = event_id
        if current != event_id:
            raise Refused("expired", "reassigned")

    def _state(self, reply: _Reply) -> Any:
        assert reply.point is not None
        with self.engine.db.connect() as conn:
            history = store.point_events(conn, reply.point.assignment, reply.point.number)
        return replay(reply.point, history)

    def _check_sender(self, reply: _Reply, now: dt.datetime) -> None:
        """The step must still be open, and the sender its owner or the owner's substitute."""
        assert reply.step is not None
        assert reply.person is not None
        step = self._state(reply).step(reply.step.id)
        if step.status in (StepStatus.DONE, StepStatus.SKIPPED):
            raise Refused("expired", step.status.value)
        day = now.astimezone(self.engine.timezone).date()
        substitute = away_substitute(self.engine.definitions.directory, step.owner, day)
        if reply.person.id not in (step.owner, substitute):
            raise Refused("not-owner")

    # --- acting --------------------------------------------------------------------

    def _commands(self, reply: _Reply) -> list[Command]:
        """The engine's commands for what the reply asks, checked against the definition."""
        assert reply.step is not None
        assert reply.person is not None
        actor, step = reply.person.id, reply.step.id
        status = self._state(reply).step(step).status
        made: list[Command] = []
        for command in reply.commands:
            match command.verb:
                case Verb.DONE:
                    made.append(CompleteStep(actor=actor, step=step, note=command.text))
                case Verb.STARTED:
                    if status is StepStatus.ACTIVE:
                        made.append(BeginStep(actor=actor, step=step))
                        status = StepStatus.IN_PROGRESS
                    if command.text:
                        made.append(AddNote(actor=actor, step=step, text=command.text))
                case Verb.NOTE:
                    if not command.text:
                        raise Refused("note-needs-text", command.line)
                    made.append(AddNote(actor=actor, step=step, text=command.text))
                case Verb.DELAY:
                    assert command.days is not None
                    made.append(RequestExtension(actor=actor, step=step, days=command.days,
                                                 reason=command.text))  # fmt: skip
                case Verb.DELEGATE:
                    made.append(self._delegation(reply, command))
        return made

    def _delegation(self, reply: _Reply, command: ReplyCommand) -> Command:
        assert reply.step is not None
        assert reply.person is not None
        assert command.person
        if not reply.step.delegable:
            raise Refused("not-delegable", command.line)
        directory = self.engine.definitions.directory
        name = command.person.lower()
        by_email = self._emails.get(name, [])
        try:
            to = by_email[0] if len(by_email) == 1 else directory.resolve(command.person)
        except KeyError:
            try:
                to = directory.resolve(name)  # ids are lower case; people type them as they like
            except KeyError:
                raise Refused("unknown-person", command.line) from None
        return ReassignStep(actor=reply.person.id, step=reply.step.id, to=to)

    def _run(self, reply: _Reply, now: dt.datetime) -> Receipt:
        assert reply.point is not None
        try:
            commands = self._commands(reply)
        except Refused as refused:
            reply.reason, reply.detail = refused.reason, refused.detail
            return self._record_refusal(reply, now)
        answer: list[int] = []

        def record(conn: Connection, outcomes: list[Outcome]) -> None:
            reply.done = [_describe(o) for o in outcomes]
            ids = [i for o in outcomes for i in o.event_ids]
            _insert(conn, reply, "done", ids, now)
            answer.extend(self._answer(conn, reply, "done", now))

        try:
            outcomes = self.engine.commands(reply.point, commands, now=now, also=record)
        except (TransitionNotAllowed, InvalidInput, NotFound) as exc:
            reply.reason, reply.detail = "not-allowed", str(exc)
            return self._record_refusal(reply, now)
        except CouncilError as exc:  # a conflict, or the definition changed: try again later
            if self._seen(reply.key):
                return Receipt(reply.key, "duplicate")
            raise exc
        ids = tuple(i for o in outcomes for i in o.event_ids)
        log.info("reply.done", message=reply.key, person=reply.person.id if reply.person else None,
                 step=_address(reply), events=list(ids))  # fmt: skip
        return Receipt(reply.key, "done", None, reply.person.id if reply.person else None,
                       _address(reply), ids, tuple(answer))  # fmt: skip

    def _record_refusal(self, reply: _Reply, now: dt.datetime) -> Receipt:
        outcome = "ignored" if reply.reason == "automatic" else "refused"
        log.warning("reply.refused" if outcome == "refused" else "reply.ignored",
                    message=reply.key, reason=reply.reason, sender_known=reply.person is not None,
                    step=_address(reply))  # fmt: skip
        answer: list[int] = []
        try:
            with self.engine.db.begin() as conn:
                _insert(conn, reply, outcome, [], now)
                if outcome == "refused":
                    answer = self._answer(conn, reply, outcome, now)
        except sa.exc.IntegrityError:
            return Receipt(reply.key, "duplicate")
        return Receipt(reply.key, outcome, reply.reason,
                       reply.person.id if reply.person else None, _address(reply),
                       (), tuple(answer))  # fmt: skip

    def _seen(self, key: str) -> bool:
        with self.engine.db.connect() as conn:
            return (
                conn.execute(
                    sa.select(store.replies.c.message_key).where(store.replies.c.message_key == key)
                ).first()
                is not None
            )

    # --- the answer ----------------------------------------------------------------

    def _answer(self, conn: Connection, reply: _Reply, outcome: str, now: dt.datetime) -> list[int]:
        """Record the answer mail, to a known sender only."""
        if reply.person is None:
            return []
        rendered = answer(self.engine.definitions, reply, outcome,
                          reply_event=self._open_owner_event(conn, reply, outcome))  # fmt: skip
        effect_id = effects.record(
            conn, key=f"answer:{hashlib.sha256(reply.key.encode()).hexdigest()}", kind="answer",
            event_id=None,
            payload={"message": rendered.model_dump(mode="json"), "created": now.isoformat()},
            now=now,
        )  # fmt: skip
        return [effect_id] if effect_id is not None else []

    def _open_owner_event(self, conn: Connection, reply: _Reply, outcome: str) -> int | None:
        """The answer can be answered too, while the step is open and still theirs."""
        if reply.point is None or reply.step is None or reply.owner_event is None:
            return None
        if outcome == "refused" and reply.reason in ("expired", "not-owner", "bad-token"):
            return None
        current = store.owner_event(conn, reply.point.assignment, reply.point.number,
                                    reply.step.id)  # fmt: skip
        history = store.point_events(conn, reply.point.assignment, reply.point.number)
        status = replay(reply.point, history).step(reply.step.id).status
        if current != reply.owner_event or status in (StepStatus.DONE, StepStatus.SKIPPED):
            return None
        return current


# --- helpers -----------------------------------------------------------------------


def _key_of(raw: bytes, message: EmailMessage | None = None) -> str:
    """The message's Message-ID when it has a sane one, else a digest of its bytes."""
    if message is not None:
        try:
            value = str(message.get("Message-ID", "")).strip()
        except Exception:
            value = ""
        if MESSAGE_ID.fullmatch(value):
            # Long ones by digest: the key column holds 200 characters.
            return (
                value if len(value) <= 200 else "mid:" + hashlib.sha256(value.encode()).hexdigest()
            )
    return "sha256:" + _digest(raw)


#: Headers each server on the way adds: not part of what the sender wrote.
_TRACE = frozenset({b"received", b"return-path", b"delivered-to", b"x-original-to",
                    b"envelope-to", b"dkim-signature", b"arc-seal", b"arc-message-signature",
                    b"arc-authentication-results", b"authentication-results"})  # fmt: skip


def _digest(raw: bytes) -> str:
    """A digest of what the sender wrote: the same message by two routes gives the same one."""
    head, _, body = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
    kept = [
        field
        for field in re.split(rb"\n(?![ \t])", head)
        if (name := field.split(b":", 1)[0].strip().lower()) not in _TRACE
        and not name.startswith(b"x-")
    ]
    return hashlib.sha256(b"\n".join(kept) + b"\n\n" + body).hexdigest()


#: Defects that mean a body part decoded to a guess.
_DECODING_DEFECTS = (
    errors.InvalidBase64CharactersDefect,
    errors.InvalidBase64PaddingDefect,
    errors.InvalidBase64LengthDefect,
)


def _addresses(message: EmailMessage, names: Sequence[str]) -> list[str]:
    """The addresses in these headers, as parsed (an encoded word is never an address)."""
    found: list[str] = []
    try:
        for name in names:
            for value in message.get_all(name) or []:
                parsed = getattr(value, "addresses", None)
                if parsed is None:  # an unstructured header (Delivered-To, X-Original-To)
                    found.extend(a for _, a in getaddresses([str(value)]) if "@" in a)
                    continue
                found.extend(a.addr_spec for a in parsed if a.username and a.domain)
    except Exception:  # a header the parser refuses (CR/LF in an address, say)
        raise Refused("malformed") from None
    return [_text(a).lower() for a in found]


def _text(value: str) -> str:
    """Text from a header: raw 8-bit bytes (kept as surrogates) read as UTF-8, or replaced."""
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _headers_only(raw: bytes) -> EmailMessage | None:
    try:
        parsed = BytesHeaderParser(policy=policy.default).parsebytes(raw[:65536])
    except Exception:
        return None
    return parsed if isinstance(parsed, EmailMessage) else None


def _automatic(message: EmailMessage, settings: Settings) -> bool:
    """Sent by a machine (RFC 3834, bounces, lists, our own mail): never answered."""

    def header(name: str) -> str:
        return str(message.get(name, "")).strip().lower()

    if header("Auto-Submitted") not in ("", "no"):
        return True
    if header("Precedence") in ("bulk", "junk", "list", "auto_reply"):
        return True
    if any(message.get(h) for h in ("X-Autoreply", "X-Autorespond", "List-Id", "List-Unsubscribe")):
        return True
    if header("Return-Path") == "<>":
        return True
    sender = header("From")
    ours = settings.mail_from.lower()
    return "mailer-daemon" in sender or "postmaster@" in sender or ours in sender


def _address(reply: _Reply) -> str | None:
    if reply.point is None or reply.step is None:
        return None
    return f"{reply.point.address}/{reply.step.id}"


def _insert(conn: Connection, reply: _Reply, outcome: str, ids: list[int],
            now: dt.datetime) -> None:  # fmt: skip
    conn.execute(
        store.replies.insert().values(
            message_key=reply.key,
            received_at=store.utc(now),
            sender=reply.sender[:320] if reply.sender else None,
            person=reply.person.id if reply.person else None,
            step=_address(reply),
            outcome=outcome,
            reason=reply.reason,
            event_ids=ids or None,
        )
    )


def _describe(outcome: Outcome) -> str:
    """What one command did, as an event type (the answer mail names it in words)."""
    return outcome.events[0].type.value if outcome.events else ""


# --- the answer mail ---------------------------------------------------------------

LABELS: dict[Language, dict[str, str]] = {
    Language.SV: {
        "hello": "Hej",
        "subject_done": "Registrerat",
        "subject_refused": "Inget gjordes",
        "done": "Tack! Så här registrerades ditt svar:",
        "refused": "Ditt svar kunde inte registreras, så ingenting ändrades.",
        "why": "Orsak",
        "line": "Raden",
        "details": "Närmare bestämt",
        "step": "Moment",
        "point": "Punkt",
        "commands": "Skriv ett kommando per rad överst i ditt svar",
        "footer": "Detta meddelande skickades automatiskt av council.",
        "step.completed": "Momentet är markerat som klart.",
        "step.begun": "Momentet är markerat som påbörjat.",
        "note.added": "Anteckningen är sparad.",
        "step.extension_requested": "Din begäran om mer tid har skickats till samordnaren.",
        "step.reassigned": "Momentet är överlämnat; den nya ansvariga har fått ett meddelande.",
        "too-large": "Meddelandet var för stort.",
        "malformed": "Meddelandet gick inte att läsa.",
        "no-token": "Svaret gick inte till en svarsadress från council.",
        "bad-token": "Svarsadressen är inte giltig.",
        "expired": "Momentet är redan klart, överlämnat eller öppnat igen; svarsadressen gäller "
        "inte längre.",
        "not-owner": "Bara den som är ansvarig för momentet (eller dennes ersättare) kan "
        "svara på det.",
        "empty": "Svaret innehöll inga kommandon.",
        "not-understood": "En rad gick inte att tolka.",
        "too-many": "Svaret innehöll för många kommandon.",
        "too-long": "Texten var för lång.",
        "delay-needs-days": "FÖRSENAD behöver ett antal dagar, till exempel FÖRSENAD 10 dagar.",
        "delegate-needs-person": "DELEGERA behöver en person, till exempel DELEGERA "
        "anna.berg@kommun.example.",
        "note-needs-text": "NOTERING behöver en text.",
        "not-delegable": "Det här momentet får inte delegeras.",
        "unknown-person": "Personen finns inte i council.",
        "not-allowed": "Momentet tillåter inte det just nu.",
    },
    Language.EN: {
        "hello": "Hello",
        "subject_done": "Recorded",
        "subject_refused": "Nothing done",
        "done": "Thank you! Your reply was recorded like this:",
        "refused": "Your reply could not be recorded, so nothing changed.",
        "why": "Reason",
        "line": "The line",
        "details": "In detail",
        "step": "Step",
        "point": "Point",
        "commands": "Write one command per line at the top of your reply",
        "footer": "This message was sent automatically by council.",
        "step.completed": "The step is marked done.",
        "step.begun": "The step is marked started.",
        "note.added": "The note is saved.",
        "step.extension_requested": "Your request for more time went to the coordinator.",
        "step.reassigned": "The step is handed over; its new owner has been told.",
        "too-large": "The message was too large.",
        "malformed": "The message could not be read.",
        "no-token": "The reply did not go to a reply address of council's.",
        "bad-token": "The reply address is not valid.",
        "expired": "The step is already done, handed over or reopened; the reply address no "
        "longer works.",
        "not-owner": "Only the step's owner (or their substitute) can answer it.",
        "empty": "The reply held no commands.",
        "not-understood": "A line could not be understood.",
        "too-many": "The reply held too many commands.",
        "too-long": "The text was too long.",
        "delay-needs-days": "DELAY needs a number of days, e.g. DELAY 10 days.",
        "delegate-needs-person": "DELEGATE needs a person, e.g. DELEGATE anna.berg@kommun.example.",
        "note-needs-text": "NOTE needs a text.",
        "not-delegable": "This step may not be delegated.",
        "unknown-person": "That person is not in council.",
        "not-allowed": "The step does not allow that now.",
    },
}

_HELP: dict[Language, tuple[tuple[Verb, str, str], ...]] = {
    Language.SV: (
        (Verb.DONE, "[anteckning]", "momentet är klart"),
        (Verb.STARTED, "", "du har börjat"),
        (Verb.NOTE, "text", "en anteckning om läget"),
        (Verb.DELAY, "10 dagar", "be samordnaren om mer tid"),
        (Verb.DELEGATE, "person", "lämna över momentet (om det är tillåtet)"),
    ),
    Language.EN: (
        (Verb.DONE, "[note]", "the step is done"),
        (Verb.STARTED, "", "you have begun"),
        (Verb.NOTE, "text", "a note on how it is going"),
        (Verb.DELAY, "10 days", "ask the coordinator for more time"),
        (Verb.DELEGATE, "person", "hand the step over (if allowed)"),
    ),
}


#: Refusals about one line of the reply: the answer quotes it.
_LINE_REASONS = frozenset(
    {"not-understood", "delay-needs-days", "delegate-needs-person", "note-needs-text",
     "not-delegable", "unknown-person", "too-long"}
)  # fmt: skip
#: ... and the engine's own explanation when it refused a command.
_SHOWN_DETAIL = _LINE_REASONS | {"not-allowed"}


def _keyword_for(verb: Verb, lang: Language) -> str:
    words = KEYWORDS[verb]
    english = {Verb.DONE: "done", Verb.STARTED: "started", Verb.NOTE: "note",
               Verb.DELAY: "delay", Verb.DELEGATE: "delegate"}  # fmt: skip
    return (words[0] if lang is Language.SV else english[verb]).upper()


def answer(definitions: Any, reply: _Reply, outcome: str, *, reply_event: int | None) -> Rendered:
    """The answer to a reply, in the sender's language."""
    assert reply.person is not None
    lang = reply.person.language
    labels = LABELS[lang]
    original = ""
    if reply.message is not None:
        try:
            original = header_text(_text(str(reply.message.get("Subject", ""))))[:150]
        except Exception:
            original = ""
    # Someone else's step: say no more about it than that it is not theirs.
    shown = reply.step is not None and reply.reason != "not-owner"
    title = reply.step.title.get(lang) if reply.step and shown else None
    context = {
        "l": labels,
        "lang": lang,
        "name": reply.person.name,
        "outcome": outcome,
        "done": [labels.get(kind, kind) for kind in reply.done],
        "reason": labels.get(reply.reason or "", reply.reason) if reply.reason else None,
        "detail": (reply.detail or "")[:300] if reply.reason in _SHOWN_DETAIL else None,
        "detail_label": labels["line" if reply.reason in _LINE_REASONS else "details"],
        "step_title": title,
        "address": _address(reply) if shown else None,
        "help": [(_keyword_for(v, lang), arg, what) for v, arg, what in _HELP[lang]],
    }
    env = environment()
    text = env.get_template("answer.txt").render(context)
    html = env.get_template("answer.html").render(context)
    verdict = labels["subject_done" if outcome == "done" else "subject_refused"]
    subject = f"{verdict}: {original}" if original else verdict
    in_reply_to = reply.key if reply.key.startswith("<") else None
    return Rendered(language=lang, to_name=reply.person.name, to_email=str(reply.person.email),
                    subject=subject, text=text, html=html, reply_event=reply_event,
                    in_reply_to=in_reply_to)  # fmt: skip
