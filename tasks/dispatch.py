"""dispatch(event_id): run every subscribed handler once; then deliver what they recorded."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
import structlog
from celery import shared_task

from tasks.context import context
from tasks.handlers import HANDLERS, HandlerContext, handler_name
from workflow import delivery, outbox, store
from workflow.logs import get_logger

log = get_logger(__name__)

#: Faults worth retrying with backoff: the database went away for a moment.
TRANSIENT = (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.DisconnectionError)


@shared_task(
    name="council.dispatch",
    autoretry_for=TRANSIENT,
    retry_backoff=True,  # 1 s, 2 s, 4 s ... between tries,
    retry_backoff_max=300,  # capped at five minutes,
    retry_jitter=True,  # randomised, so a recovering database is not stampeded
    max_retries=None,  # the reconciler is the backstop; a dispatch never gives up alone
)
def dispatch(event_id: int) -> None:
    """Run each handler subscribed to the event at most once, then deliver its effects."""
    ctx = context()
    now = dt.datetime.now(dt.UTC)
    structlog.contextvars.bind_contextvars(event_id=event_id)
    with ctx.db.connect() as conn:
        found = store.get_event(conn, event_id)
    if found is None:
        log.warning("dispatch.unknown_event")
        return
    structlog.contextvars.bind_contextvars(
        assignment=found.assignment,
        point=found.point,
        step=found.step,
        event_type=found.type.value,
    )
    definitions = ctx.definitions()
    recorded: list[int] = []
    for handler in HANDLERS.get(found.type, ()):
        with ctx.db.begin() as conn:
            if not outbox.mark_processed(conn, event_id, handler_name(handler), now=now):
                continue  # done before: a redelivered message
            hctx = HandlerContext(
                conn, definitions, event_id, now, ctx.tz,
                replies=ctx.settings.reply_secret is not None,
            )  # fmt: skip
            recorded.extend(handler(hctx, found))
    with ctx.db.begin() as conn:
        outbox.mark_handled(conn, event_id, now=now)
    if recorded:
        report = delivery.deliver(ctx.db, ctx.settings, recorded, now=now)
        log.info("dispatch.done", delivered=len(report.done), retrying=len(report.retrying))


@shared_task(name="council.deliver", autoretry_for=TRANSIENT, retry_backoff=True, retry_jitter=True)
def deliver(effect_ids: Sequence[int]) -> None:
    """Deliver recorded effects (retries, and those a crash left behind)."""
    ctx = context()
    report = delivery.deliver(ctx.db, ctx.settings, list(effect_ids), now=dt.datetime.now(dt.UTC))
    log.info(
        "deliver.done",
        delivered=len(report.done),
        retrying=len(report.retrying),
        failed=len(report.failed),
        skipped=len(report.skipped),
    )
