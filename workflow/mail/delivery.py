"""Performing recorded e-mail effects: claim, compose, send, mark.

Called by the worker right after a handler records effects, and by the
reconciler for retries and forgotten ones. A batch is claimed in one statement
and one transport session serves it. Each effect ends ``done``, back to ``pending`` with a backoff
(transient failure, attempts left), or ``failed`` (permanent, or out of tries)
with an ``effect.failed`` event in the log.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from sqlalchemy.engine import Engine
from structlog.contextvars import bound_contextvars

from workflow.core.events import EffectFailed, Event, EventType
from workflow.errors import DeliveryError
from workflow.eventlog import EventLog
from workflow.mail.compose import Prompt, Rendered, compose_rendered_wire, compose_wire
from workflow.mail.transport import Transport, transport_for
from workflow.mail.wire import Wire
from workflow.ops.logs import get_logger
from workflow.replies import tokens
from workflow.settings import Settings
from workflow.store import effects, get_event
from workflow.store.effects import EffectKind

log = get_logger(__name__)


@dataclass
class DeliveryReport:
    done: list[int] = field(default_factory=list)
    retrying: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)


def deliver(
    db: Engine,
    settings: Settings,
    effect_ids: Sequence[int],
    *,
    now: dt.datetime,
    transport: Transport | None = None,
    events: EventLog | None = None,
    context: Mapping[int, Mapping[str, Any]] | None = None,
    claimed: Sequence[Any] | None = None,
) -> DeliveryReport:
    """Deliver the given effects (those still pending, or whose claim expired).

    The batch is claimed in one statement (kept alive while this process lives), sent
    over one transport session, and each message is recorded ``done`` as soon as the
    server took it: a crash sends again at most the one message in hand, with its
    Message-ID. An effect that gives up leaves an ``effect.failed`` event, written
    through ``events`` (the worker's, which publishes it; by default one on ``db``).
    ``context`` gives, by event id, what lines logged about an effect of that event name.
    ``claimed``: the rows of those of ``effect_ids`` the caller claimed already (in the
    transaction that recorded them); the others are claimed here.
    """
    run = _Delivery(db, settings, events or EventLog(db), now)
    mine = {row.id: row for row in claimed or ()}
    rest = run.claim([e for e in effect_ids if e not in mine])
    order = {effect: index for index, effect in enumerate(effect_ids)}
    rows = sorted([*mine.values(), *rest], key=lambda row: order.get(row.id, len(order)))
    taken = {row.id for row in rows}
    run.report.skipped.extend(e for e in effect_ids if e not in taken)
    if not rows:
        return run.report
    with contextlib.ExitStack() as stack, _Renewal(db, settings.claim_lease) as renewal:
        renewal.hold(row.id for row in rows)
        session: Transport | None = None
        for index, row in enumerate(rows):
            try:
                with _about(row, context):
                    if session is None:
                        session = stack.enter_context(transport or transport_for(settings))
                    run.deliver_one(session, row)
            except DeliveryError as exc:  # the transport is down: this one and the rest retry
                for later in rows[index:]:
                    with _about(later, context):
                        run.after_failure(later, exc)
                break
            finally:
                renewal.release(row.id)
    return run.report


def _about(
    row: Any, context: Mapping[int, Mapping[str, Any]] | None
) -> contextlib.AbstractContextManager[object]:
    """Lines logged while an effect is sent name the event it was recorded for."""
    if row.event_id is None:
        return contextlib.nullcontext()
    return bound_contextvars(**(context or {}).get(row.event_id, {"event_id": row.event_id}))


class _Renewal:
    """Keeps the claims on the effects in hand alive while this process lives.

    A claim lasts ``claim_lease`` seconds; a thread renews those still in hand every third
    of that, so a batch that takes long keeps them, and a killed worker's claims run out
    within one lease: the reconciler then delivers those effects again (the same
    Message-IDs).
    """

    def __init__(self, db: Engine, lease_seconds: float) -> None:
        self.db = db
        self.lease = dt.timedelta(seconds=lease_seconds)
        self._held: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="council-claims", daemon=True)

    def until(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + self.lease

    def __enter__(self) -> _Renewal:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def hold(self, effect_ids: Iterable[int]) -> None:
        with self._lock:
            self._held.update(effect_ids)

    def release(self, effect_id: int) -> None:
        with self._lock:
            self._held.discard(effect_id)

    def _run(self) -> None:
        while not self._stop.wait(self.lease.total_seconds() / 3):
            with self._lock:
                current = sorted(self._held)
            if not current:
                continue
            try:
                with self.db.begin() as conn:
                    effects.renew(conn, current, until=self.until())
            except Exception as exc:  # the database is away: the claims may run out
                log.warning("effect.claim_not_renewed", effects=len(current),
                            error=repr(exc)[:200])  # fmt: skip


@dataclass
class _Delivery:
    db: Engine
    settings: Settings
    events: EventLog
    now: dt.datetime
    report: DeliveryReport = field(default_factory=DeliveryReport)

    def claim(self, effect_ids: Sequence[int]) -> list[Any]:
        """Claim the batch before sending it, on the wall clock (renewed while in hand)."""
        if not effect_ids:
            return []
        until = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=self.settings.claim_lease)
        with self.db.begin() as conn:
            return effects.claim_many(conn, effect_ids, now=self.now, until=until)

    def deliver_one(self, session: Transport, row: Any) -> None:
        try:
            message = build_wire(row, self.settings)
        except Exception as exc:  # a payload no composer can read: retrying cannot help
            log.exception("effect.unreadable", effect=row.id, kind=row.kind)
            self.after_failure(row, DeliveryError(f"cannot compose: {exc!r}", transient=False))
            return
        try:
            session.send(message)
        except DeliveryError as exc:
            if not exc.transient:
                self.after_failure(row, exc)
                return
            raise
        with self.db.begin() as conn:
            effects.finish(conn, row.id, now=self.now)
        self.report.done.append(row.id)
        log.info("effect.done", effect=row.id, kind=row.kind, message_id=message.message_id)

    def after_failure(self, row: Any, exc: DeliveryError) -> None:
        attempts = int(row.attempts)
        if exc.transient and attempts <= self.settings.max_retries:
            with self.db.begin() as conn:
                when = effects.retry_later(
                    conn, row.id, attempts=attempts, error=str(exc), now=self.now,
                    base=dt.timedelta(seconds=self.settings.retry_backoff),
                )  # fmt: skip
            self.report.retrying.append(row.id)
            log.warning("effect.retry", effect=row.id, attempts=attempts, at=when.isoformat(),
                        error=str(exc))  # fmt: skip
            return
        ids: list[int] = []
        with self.db.begin() as conn:
            failed = effects.fail(conn, row.id, error=str(exc))
            source = get_event(conn, failed.event_id) if failed.event_id is not None else None
            if source is not None:
                event = Event(
                    type=EventType.EFFECT_FAILED, assignment=source.assignment,
                    point=source.point, step=source.step, actor="council", occurred_at=self.now,
                    payload=EffectFailed(effect=row.id, key=failed.key, kind=failed.kind,
                                         error=str(exc)[:200]),
                )  # fmt: skip
                ids = self.events.append(conn, [event], now=self.now)
        self.events.committed(ids)
        self.report.failed.append(row.id)
        log.error("effect.failed", effect=row.id, attempts=attempts, error=str(exc))


def build_message(row: Any, settings: Settings) -> EmailMessage:
    """The message an effect row stands for, as a receiver parses it."""
    return build_wire(row, settings).parsed()


def build_wire(row: Any, settings: Settings) -> Wire:
    """The message an effect row stands for, composed the same way on every attempt."""
    created = dt.datetime.fromisoformat(row.payload["created"])
    common = {"key": row.key, "sender": settings.mail_from, "domain": settings.message_id_domain,
              "created": created}  # fmt: skip
    if row.kind == EffectKind.PROMPT:
        prompt = Prompt.model_validate(row.payload["prompt"])
        return compose_wire(prompt, reply_to=_reply_to(settings, prompt.reply_event), **common)
    rendered = Rendered.model_validate(row.payload["message"])
    return compose_rendered_wire(
        rendered, reply_to=_reply_to(settings, rendered.reply_event), **common
    )


def _reply_to(settings: Settings, event_id: int | None) -> str | None:
    """The signed reply address for a step's owner; none while replies are off."""
    secret = settings.reply_key() if event_id is not None else None
    if event_id is None or secret is None:
        return None
    return tokens.address(settings.effective_reply_address, secret, event_id)
