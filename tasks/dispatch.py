"""dispatch(event_id): run every subscribed handler once; then deliver what they recorded."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from celery import shared_task

from tasks.context import context
from workflow import handlers
from workflow.errors import StaleDefinitions
from workflow.mail import delivery
from workflow.ops.logs import get_logger

log = get_logger(__name__)

#: Faults worth retrying with backoff: the database went away for a moment.
TRANSIENT = (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.DisconnectionError)


@shared_task(
    name="council.dispatch",
    autoretry_for=(*TRANSIENT, StaleDefinitions),
    retry_backoff=True,  # 1 s, 2 s, 4 s ... between tries,
    retry_backoff_max=300,  # capped at five minutes,
    retry_jitter=True,  # randomised, so a recovering database is not stampeded
    max_retries=None,  # the reconciler is the backstop; a dispatch never gives up alone
)
def dispatch(event_id: int) -> None:
    """Run each handler subscribed to the event at most once, then deliver its effects."""
    ctx = context()
    now = dt.datetime.now(dt.UTC)
    try:
        done = handlers.dispatch(
            ctx.db, ctx.definitions(), ctx.settings, event_id, now=now, tz=ctx.tz
        )
    except StaleDefinitions:
        log.info("dispatch.definitions_stale", action="reloading, then trying again")
        ctx.forget_definitions()  # an amendment was accepted: read the files again
        raise
    if done.event is None:
        log.warning("dispatch.unknown_event")
        return
    if done.redundant:
        # A copy of a message whose work was done: Redis's `unacked` entry of a killed
        # worker coming back, or the reconciler's copy of an event that was only slow.
        log.info("dispatch.redundant", reason="the event was handled already")
        return
    if done.recorded:
        report = delivery.deliver(
            ctx.db, ctx.settings, done.recorded, now=now, events=ctx.event_log()
        )
        log.info("dispatch.done", delivered=len(report.done), retrying=len(report.retrying))


@shared_task(name="council.deliver", autoretry_for=TRANSIENT, retry_backoff=True, retry_jitter=True)
def deliver(effect_ids: Sequence[int]) -> None:
    """Deliver recorded effects (retries, and those a crash left behind)."""
    ctx = context()
    report = delivery.deliver(
        ctx.db, ctx.settings, list(effect_ids), now=dt.datetime.now(dt.UTC),
        events=ctx.event_log(),
    )  # fmt: skip
    log.info(
        "deliver.done",
        delivered=len(report.done),
        retrying=len(report.retrying),
        failed=len(report.failed),
        skipped=len(report.skipped),
    )
