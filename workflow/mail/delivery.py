"""Performing recorded e-mail effects: claim, compose, send, mark.

Called by the worker right after a handler records effects, and by the
reconciler for retries and forgotten ones. One transport session serves a
batch. Each effect ends ``done``, back to ``pending`` with a backoff
(transient failure, attempts left), or ``failed`` (permanent, or out of tries).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from sqlalchemy.engine import Engine

from workflow import effects, replies
from workflow.errors import DeliveryError
from workflow.logs import get_logger
from workflow.mail import Prompt, Rendered, compose, compose_rendered
from workflow.settings import Settings
from workflow.transport import Transport, transport_for

log = get_logger(__name__)


@dataclass
class DeliveryReport:
    done: list[int] = field(default_factory=list)
    retrying: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)


def _claim_all(db: Engine, ids: Sequence[int], now: dt.datetime, lease: dt.timedelta) -> list[Any]:
    claimed = []
    for effect_id in ids:
        with db.begin() as conn:
            row = effects.claim(conn, effect_id, now=now, lease=lease)
        if row is not None:
            claimed.append(row)
    return claimed


def deliver(
    db: Engine,
    settings: Settings,
    effect_ids: Sequence[int],
    *,
    now: dt.datetime,
    transport: Transport | None = None,
) -> DeliveryReport:
    """Deliver the given effects (those still pending, or whose claim expired)."""
    report = DeliveryReport()
    claimed = _claim_all(db, effect_ids, now, settings.lease)
    report.skipped = [i for i in effect_ids if i not in {row.id for row in claimed}]
    if not claimed:
        return report
    try:
        with transport or transport_for(settings) as session:
            for row in claimed:
                _deliver_one(db, settings, session, row, now, report)
    except DeliveryError as exc:  # the transport could not even open
        for row in claimed:
            if row.id not in report.done and row.id not in report.failed:
                _after_failure(db, settings, row, exc, now, report)
    return report


def _deliver_one(
    db: Engine,
    settings: Settings,
    session: Transport,
    row: Any,
    now: dt.datetime,
    report: DeliveryReport,
) -> None:
    try:
        message = build_message(row, settings)
    except Exception as exc:  # a payload no composer can read: retrying cannot help
        log.exception("effect.unreadable", effect=row.id, kind=row.kind)
        _after_failure(
            db, settings, row, DeliveryError(f"cannot compose: {exc!r}", transient=False), now,
            report,
        )  # fmt: skip
        return
    try:
        session.send(message)
    except DeliveryError as exc:
        if not exc.transient:
            _after_failure(db, settings, row, exc, now, report)
            return
        raise
    with db.begin() as conn:
        effects.finish(conn, row.id, now=now)
    report.done.append(row.id)
    log.info("effect.done", effect=row.id, kind=row.kind, message_id=message["Message-ID"])


def build_message(row: Any, settings: Settings) -> EmailMessage:
    """The message an effect row stands for, composed the same way on every attempt."""
    created = dt.datetime.fromisoformat(row.payload["created"])
    common = {"key": row.key, "sender": settings.mail_from, "domain": settings.message_id_domain,
              "created": created}  # fmt: skip
    if row.kind == "prompt":
        prompt = Prompt.model_validate(row.payload["prompt"])
        return compose(prompt, reply_to=_reply_to(settings, prompt.reply_event), **common)
    rendered = Rendered.model_validate(row.payload["message"])
    return compose_rendered(rendered, reply_to=_reply_to(settings, rendered.reply_event), **common)


def _reply_to(settings: Settings, event_id: int | None) -> str | None:
    """The signed reply address for a step's owner; none while replies are off."""
    if event_id is None or settings.reply_secret is None:
        return None
    return replies.address(settings.effective_reply_address, settings.reply_secret, event_id)


def _after_failure(
    db: Engine,
    settings: Settings,
    row: Any,
    exc: DeliveryError,
    now: dt.datetime,
    report: DeliveryReport,
) -> None:
    attempts = int(row.attempts)
    with db.begin() as conn:
        if exc.transient and attempts <= settings.max_retries:
            when = effects.retry_later(
                conn,
                row.id,
                attempts=attempts,
                error=str(exc),
                now=now,
                base=dt.timedelta(seconds=settings.retry_backoff),
            )
            report.retrying.append(row.id)
            log.warning(
                "effect.retry",
                effect=row.id,
                attempts=attempts,
                at=when.isoformat(),
                error=str(exc),
            )
        else:
            effects.fail(conn, row.id, error=str(exc), now=now)
            report.failed.append(row.id)
            log.error("effect.failed", effect=row.id, attempts=attempts, error=str(exc))
