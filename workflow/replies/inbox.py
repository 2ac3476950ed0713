"""Receiving owners' replies: one message in, its commands through the engine, one answer out.

:meth:`Inbox.receive` takes the raw bytes of one message (from a maildir, an
mbox, IMAP or the SMTP listener) and decides, in this order:

1. too large, or not a readable message: refused unread;
2. seen before (its Message-ID, or a digest of its bytes): nothing, again;
3. sent automatically (Auto-Submitted, Precedence, mailer-daemon): ignored, no answer;
4. the sender is not one person of the directory (or the address holds what the
   privacy guard refuses): refused, no answer (no backscatter);
5. no reply address of ours with a valid signature: refused;
6. the step no longer waits on its owner (done, skipped, reassigned, reopened, pending
   again, written off: :func:`workflow.core.machine.step_closed`): refused, expired;
7. the sender is neither the step's owner nor the owner's substitute today: refused;
8. the fresh text holds no commands, or one is wrong: refused, commands listed;
9. otherwise every command runs in one transaction with the record of the
   message and its answer: all of them or none.

Every outcome is recorded once under the message's key and logged (ids and
reason codes only, never the text). Known senders get an answer mail in their
language saying what was done or why nothing was, within limits: at most
``reply_answers_per_hour`` answers a person an hour, and one per reply address and
reason of refusal (see docs/replies.md, *Answers*).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from workflow import store
from workflow.core.machine import step_closed
from workflow.core.plan import PointPlan, StepPlan
from workflow.core.specs import Person
from workflow.core.state import PointState, StepStatus, replay
from workflow.engine import Engine, Outcome
from workflow.errors import (
    CouncilError,
    InvalidInput,
    NotFound,
    RefusalReason,
    ReplyRefused,
    TransitionNotAllowed,
)
from workflow.ops.logs import get_logger
from workflow.replies import mime, tokens
from workflow.replies.actions import actions_for
from workflow.replies.answer import answer, answer_key, record_answer, subject_of
from workflow.replies.text import ReplyCommand, body_text, fresh_lines, read_commands
from workflow.settings import Settings
from workflow.store import effects
from workflow.store import replies as received
from workflow.store.replies import ReplyOutcome

log = get_logger(__name__)

#: Headers that may carry our reply address, besides the envelope's recipients.
_RECIPIENT_HEADERS = ("To", "Cc", "Delivered-To", "X-Original-To", "Envelope-To")


@dataclass(frozen=True)
class Receipt:
    """What became of one message."""

    message_key: str
    outcome: ReplyOutcome
    reason: RefusalReason | None = None
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
    reason: RefusalReason | None = None
    detail: str | None = None
    #: What each command did, for the answer mail.
    done: list[str] = field(default_factory=list)


class Inbox:
    """Turns received replies into commands, once each."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        secret = settings.reply_key()
        if secret is None:
            raise InvalidInput(
                "replies by e-mail are off: set COUNCIL_REPLY_SECRET (32 characters or more)"
            )
        self.engine = engine
        self.settings = settings
        self.secret = secret
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
                return Receipt(reply.key, ReplyOutcome.DUPLICATE)
            self._judge(reply, recipients, now)
        except ReplyRefused as refused:
            if self._seen(reply.key):  # refused before: say nothing twice
                return Receipt(reply.key, ReplyOutcome.DUPLICATE)
            reply.reason, reply.detail = refused.reason, refused.detail
            return self._record_refusal(reply, now)
        return self._run(reply, now)

    def _read(self, reply: _Reply, raw: bytes) -> None:
        if len(raw) > self.settings.inbox_max_bytes:
            reply.message = mime.headers_only(raw)
            reply.key = mime.key_of(raw, reply.message)
            if reply.message is not None and mime.automatic(reply.message, self.settings):
                raise ReplyRefused(RefusalReason.AUTOMATIC)
            self._identify(reply, quiet=True)
            raise ReplyRefused(RefusalReason.TOO_LARGE)
        try:
            message = BytesParser(policy=policy.default).parsebytes(raw)
            assert isinstance(message, EmailMessage)
            str(message.get("From", ""))  # decoding errors surface here, not later
        except Exception:  # any parse failure: the message is unreadable
            raise ReplyRefused(RefusalReason.MALFORMED) from None
        reply.message = message
        reply.key = mime.key_of(raw, message)

    def _judge(self, reply: _Reply, recipients: Sequence[str], now: dt.datetime) -> None:
        message = reply.message
        assert message is not None
        if mime.automatic(message, self.settings):
            raise ReplyRefused(RefusalReason.AUTOMATIC)
        self._identify(reply)
        self._find_step(reply, recipients)
        self._check_sender(reply, now)
        try:
            text = body_text(message)
        except Exception:  # a body no codec can read
            raise ReplyRefused(RefusalReason.MALFORMED) from None
        if mime.decoded_badly(message):
            raise ReplyRefused(
                RefusalReason.MALFORMED
            )  # broken base64: what it decodes to is a guess
        reading = read_commands(fresh_lines(text or ""))
        if reading.problem:
            raise ReplyRefused(reading.problem, reading.detail)
        reply.commands = reading.commands

    # --- the checks ----------------------------------------------------------------

    def _identify(self, reply: _Reply, *, quiet: bool = False) -> None:
        """The one sender of the message, as a person of the directory."""
        try:
            addresses = mime.addresses(reply.message, ("From",)) if reply.message else []
        except ReplyRefused:
            addresses = []
        if len(addresses) != 1:
            if quiet:
                return
            raise ReplyRefused(RefusalReason.UNKNOWN_SENDER)
        if mime.refused_text(addresses[0]):  # never stored, logged or answered
            if quiet:
                return
            raise ReplyRefused(RefusalReason.UNKNOWN_SENDER)
        reply.sender = addresses[0].lower()
        ids = self._emails.get(reply.sender, [])
        if len(ids) == 1:
            reply.person = self.engine.definitions.directory.people[ids[0]]
        elif not quiet:
            raise ReplyRefused(RefusalReason.UNKNOWN_SENDER)

    def _find_step(self, reply: _Reply, recipients: Sequence[str]) -> None:
        """The step the signed reply address names."""
        message = reply.message
        assert message is not None
        candidates = [*recipients, *mime.addresses(message, _RECIPIENT_HEADERS)]
        found = tokens.tokens_in(self.settings.effective_reply_address, candidates)
        if not found:
            raise ReplyRefused(RefusalReason.NO_TOKEN)
        event_ids = {tokens.verify(self.secret, t) for t in found}
        event_ids.discard(None)
        if len(event_ids) != 1:
            raise ReplyRefused(RefusalReason.BAD_TOKEN)
        (event_id,) = event_ids
        assert event_id is not None
        with self.engine.db.connect() as conn:
            event = store.get_event(conn, event_id)
            if event is None or event.type.value not in store.OWNER_EVENTS:
                raise ReplyRefused(RefusalReason.BAD_TOKEN)
            if event.point is None:
                raise ReplyRefused(RefusalReason.BAD_TOKEN)
            current = store.owner_event(conn, event.assignment, event.point, event.step or "")
        plan = self.engine.definitions.assignments.get(event.assignment)
        try:
            if plan is None or event.step is None:
                raise KeyError(event.assignment)
            reply.point = plan.point(event.point)
            reply.step = reply.point.step(event.step)
        except KeyError:  # the definition no longer has the step
            raise ReplyRefused(RefusalReason.EXPIRED) from None
        reply.owner_event = event_id
        if current != event_id:
            raise ReplyRefused(RefusalReason.EXPIRED, "reassigned")

    def _state(self, reply: _Reply) -> PointState:
        assert reply.point is not None
        with self.engine.db.connect() as conn:
            history = store.point_events(conn, reply.point.assignment, reply.point.number)
        return replay(reply.point, history)

    def _check_sender(self, reply: _Reply, now: dt.datetime) -> None:
        """The step must still take replies, and the sender be its owner or their substitute."""
        assert reply.point is not None
        assert reply.step is not None
        assert reply.person is not None
        state = self._state(reply)
        step = state.step(reply.step.id)
        reply.status = step.status
        why = step_closed(reply.point, state, reply.step.id)
        if why is not None:
            raise ReplyRefused(RefusalReason.EXPIRED, why)
        day = now.astimezone(self.engine.timezone).date()
        substitute = self.engine.definitions.directory.substitute_on(step.owner, day)
        if reply.person.id not in (step.owner, substitute):
            raise ReplyRefused(RefusalReason.NOT_OWNER)

    # --- acting --------------------------------------------------------------------

    def _run(self, reply: _Reply, now: dt.datetime) -> Receipt:
        assert reply.point is not None
        assert reply.step is not None
        assert reply.person is not None
        try:
            commands = actions_for(
                reply.commands, person=reply.person.id, step=reply.step, status=reply.status,
                directory=self.engine.definitions.directory, emails=self._emails,
            )  # fmt: skip
        except ReplyRefused as refused:
            reply.reason, reply.detail = refused.reason, refused.detail
            return self._record_refusal(reply, now)
        answer: list[int] = []

        def record(conn: Connection, outcomes: list[Outcome]) -> None:
            reply.done = [_describe(o) for o in outcomes]
            ids = [i for o in outcomes for i in o.event_ids]
            answer.extend(self._answer(conn, reply, ReplyOutcome.DONE, now))
            _record(conn, reply, ReplyOutcome.DONE, ids, now, answered=bool(answer))

        try:
            outcomes = self.engine.run(reply.point, commands, now=now, also=record)
        except (TransitionNotAllowed, InvalidInput, NotFound) as exc:
            reply.reason, reply.detail = RefusalReason.NOT_ALLOWED, str(exc)
            return self._record_refusal(reply, now)
        except CouncilError as exc:  # a conflict, or the definition changed: try again later
            if self._seen(reply.key):
                return Receipt(reply.key, ReplyOutcome.DUPLICATE)
            raise exc
        ids = tuple(i for o in outcomes for i in o.event_ids)
        person = reply.person.id if reply.person else None
        log.info("reply.done", message=reply.key, person=person, step=_address(reply),
                 events=list(ids))  # fmt: skip
        return Receipt(reply.key, ReplyOutcome.DONE, None, person, _address(reply), ids,
                       tuple(answer))  # fmt: skip

    def _record_refusal(self, reply: _Reply, now: dt.datetime) -> Receipt:
        ignored = reply.reason is RefusalReason.AUTOMATIC
        outcome = ReplyOutcome.IGNORED if ignored else ReplyOutcome.REFUSED
        log.warning(f"reply.{outcome.value}", message=reply.key, reason=reply.reason,
                    sender_known=reply.person is not None, step=_address(reply))  # fmt: skip
        answer: list[int] = []
        try:
            with self.engine.db.begin() as conn:
                if not ignored:
                    answer = self._answer(conn, reply, outcome, now)
                _record(conn, reply, outcome, [], now, answered=bool(answer))
        except sa.exc.IntegrityError:
            return Receipt(reply.key, ReplyOutcome.DUPLICATE)
        return Receipt(reply.key, outcome, reply.reason,
                       reply.person.id if reply.person else None, _address(reply),
                       (), tuple(answer))  # fmt: skip

    def waiting_answer(self, message_key: str) -> list[int]:
        """The answer to a message seen before, if it still waits to be handed to the
        workers (its hand-off failed): a sending server's retry hands it over again."""
        with self.engine.db.connect() as conn:
            found = effects.pending_id(conn, answer_key(message_key))
        return [found] if found is not None else []

    def _seen(self, key: str) -> bool:
        with self.engine.db.connect() as conn:
            return received.seen(conn, key)

    # --- the answer ----------------------------------------------------------------

    def _answer(
        self, conn: Connection, reply: _Reply, outcome: ReplyOutcome, now: dt.datetime
    ) -> list[int]:
        """Record the answer mail, to a known sender only, and not too often.

        A person gets at most ``reply_answers_per_hour`` answers an hour, and one answer per
        token and reason of refusal: past that the reply is recorded, unanswered. Only a
        reply with a valid token has its subject repeated (else anyone could choose it).
        """
        person = reply.person
        if person is None:
            return []
        since = now - dt.timedelta(hours=1)
        if received.answers_since(conn, person.id, since) >= self.settings.reply_answers_per_hour:
            log.warning("reply.answer_limited", message=reply.key, person=person.id)
            return []
        if (
            outcome is ReplyOutcome.REFUSED
            and reply.owner_event is not None
            and received.refusal_answered(conn, person.id, reply.owner_event, reply.reason)
        ):
            return []  # told once already why this token's replies change nothing
        signed = reply.owner_event is not None
        rendered = answer(
            person=person, outcome=outcome, done=reply.done, reason=reply.reason,
            detail=reply.detail, step=reply.step, address=_address(reply),
            subject=subject_of(reply.message) if signed else "",
            in_reply_to=reply.key if reply.key.startswith("<") else None,
            reply_event=self._open_owner_event(conn, reply, outcome),
        )  # fmt: skip
        effect_id = record_answer(conn, message_key=reply.key, rendered=rendered, now=now)
        return [effect_id] if effect_id is not None else []

    def _open_owner_event(
        self, conn: Connection, reply: _Reply, outcome: ReplyOutcome
    ) -> int | None:
        """The answer can be answered too, while the step is open and still theirs."""
        if reply.point is None or reply.step is None or reply.owner_event is None:
            return None
        if outcome is ReplyOutcome.REFUSED and reply.reason in _NO_REPLY_ADDRESS:
            return None
        current = store.owner_event(conn, reply.point.assignment, reply.point.number,
                                    reply.step.id)  # fmt: skip
        history = store.point_events(conn, reply.point.assignment, reply.point.number)
        state = replay(reply.point, history)
        if current != reply.owner_event or step_closed(reply.point, state, reply.step.id):
            return None
        return current


#: Refusals whose answer carries no reply address: the step is not (or no longer) theirs.
_NO_REPLY_ADDRESS = (RefusalReason.EXPIRED, RefusalReason.NOT_OWNER, RefusalReason.BAD_TOKEN)


# --- helpers -----------------------------------------------------------------------


def _address(reply: _Reply) -> str | None:
    if reply.point is None or reply.step is None:
        return None
    return f"{reply.point.address}/{reply.step.id}"


def _record(
    conn: Connection, reply: _Reply, outcome: ReplyOutcome, ids: list[int], now: dt.datetime,
    *, answered: bool,
) -> None:  # fmt: skip
    received.record(
        conn, message_key=reply.key, outcome=outcome, now=now, sender=reply.sender,
        person=reply.person.id if reply.person else None, step=_address(reply),
        reason=reply.reason, event_ids=ids, owner_event=reply.owner_event, answered=answered,
    )  # fmt: skip


def _describe(outcome: Outcome) -> str:
    """What one command did, as an event type (the answer mail names it in words)."""
    return outcome.events[0].type.value if outcome.events else ""
