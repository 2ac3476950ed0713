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
from collections.abc import Sequence
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from workflow import effects, replies, store
from workflow import reply_mime as mime
from workflow.deadlines import away_substitute
from workflow.definitions import Person
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
from workflow.mail import header_text
from workflow.plan import PointPlan, StepPlan
from workflow.reply_answer import answer
from workflow.reply_mime import Refused
from workflow.reply_text import ReplyCommand, Verb, body_text, fresh_lines, read_commands
from workflow.settings import Settings
from workflow.state import PointState, StepStatus, replay

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
    #: The step's status when the sender was checked (read once, not again per command).
    status: StepStatus | None = None
    commands: list[ReplyCommand] = field(default_factory=list)
    reason: str | None = None
    detail: str | None = None
    #: What each command did, for the answer mail.
    done: list[str] = field(default_factory=list)


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
        reply = _Reply(key=mime.key_of(raw))
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
            reply.message = mime.headers_only(raw)
            reply.key = mime.key_of(raw, reply.message)
            if reply.message is not None and mime.automatic(reply.message, self.settings):
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
        reply.key = mime.key_of(raw, message)

    def _judge(self, reply: _Reply, recipients: Sequence[str], now: dt.datetime) -> None:
        message = reply.message
        assert message is not None
        if mime.automatic(message, self.settings):
            raise Refused("automatic")
        self._identify(reply)
        self._find_step(reply, recipients)
        self._check_sender(reply, now)
        try:
            text = body_text(message)
        except Exception:  # a body no codec can read
            raise Refused("malformed") from None
        if mime.decoded_badly(message):
            raise Refused("malformed")  # broken base64: what it decodes to is a guess
        reading = read_commands(fresh_lines(text or ""))
        if reading.problem:
            raise Refused(reading.problem, reading.detail)
        reply.commands = reading.commands

    # --- the checks ----------------------------------------------------------------

    def _identify(self, reply: _Reply, *, quiet: bool = False) -> None:
        """The one sender of the message, as a person of the directory."""
        try:
            addresses = mime.addresses(reply.message, ("From",)) if reply.message else []
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
        candidates = [*recipients, *mime.addresses(message, _RECIPIENT_HEADERS)]
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

    def _state(self, reply: _Reply) -> PointState:
        assert reply.point is not None
        with self.engine.db.connect() as conn:
            history = store.point_events(conn, reply.point.assignment, reply.point.number)
        return replay(reply.point, history)

    def _check_sender(self, reply: _Reply, now: dt.datetime) -> None:
        """The step must still be open, and the sender its owner or the owner's substitute."""
        assert reply.step is not None
        assert reply.person is not None
        step = self._state(reply).step(reply.step.id)
        reply.status = step.status
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
        status = reply.status
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
        subject = ""
        if reply.message is not None:
            try:
                subject = header_text(mime.header_str(str(reply.message.get("Subject", ""))))[:150]
            except Exception:  # an unreadable Subject: answer without it
                subject = ""
        rendered = answer(
            person=reply.person, outcome=outcome, done=reply.done, reason=reply.reason,
            detail=reply.detail, step=reply.step, address=_address(reply), subject=subject,
            in_reply_to=reply.key if reply.key.startswith("<") else None,
            reply_event=self._open_owner_event(conn, reply, outcome),
        )  # fmt: skip
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
