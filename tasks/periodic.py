"""Periodic tasks fired by beat: the outbox relay, the reconciler and the deadline sweep."""

from __future__ import annotations

import datetime as dt

from celery import shared_task

from tasks.context import context
from tasks.dispatch import TRANSIENT, deliver
from tasks.publish import publish_event
from workflow import sweep
from workflow.ops.logs import get_logger
from workflow.store import effects, outbox

log = get_logger(__name__)
#: Effects one reconciler run hands to one deliver task.
DELIVER_CHUNK = 50


@shared_task(name="council.relay_outbox", autoretry_for=TRANSIENT, max_retries=0)
def relay_outbox() -> int:
    """Publish events a crash left in the outbox between commit and publish."""
    ctx = context()
    result = outbox.relay(
        ctx.db, publish_event, now=dt.datetime.now(dt.UTC), lease=ctx.settings.lease
    )
    if result.published or result.failed:
        log.info("relay.done", published=result.published, failed=result.failed, error=result.error)
    return result.published


@shared_task(name="council.reconcile", autoretry_for=TRANSIENT, max_retries=0)
def reconcile() -> dict[str, int]:
    """Redo what a lost message or a crashed worker left undone; the database is the truth."""
    ctx = context()
    now = dt.datetime.now(dt.UTC)
    stale = now - dt.timedelta(seconds=ctx.settings.reconcile_after)
    with ctx.db.connect() as conn:
        events = outbox.unhandled(conn, published_before=stale)
        due = effects.due(conn, now=now, stale_before=stale, limit=outbox.BATCH)
    for event_id in events:
        publish_event(event_id)
    for start in range(0, len(due), DELIVER_CHUNK):
        deliver.delay(due[start : start + DELIVER_CHUNK])
    if events or due:
        log.info("reconcile.done", redispatched=len(events), redelivering=len(due))
    return {"redispatched": len(events), "redelivering": len(due)}


@shared_task(name="council.sweep_deadlines", autoretry_for=TRANSIENT, max_retries=0)
def sweep_deadlines() -> int:
    """Start the points planned for today; fire the reminders, overdue notices and
    escalations that fall due now."""
    engine = context().engine()
    now = dt.datetime.now(dt.UTC)
    fired = started = 0
    while True:  # batches until nothing is due; each publishes its events as it commits
        result = sweep.sweep(engine, now=now)
        fired += len(result.fired)
        started += len(result.started)
        for due in result.held_back:
            log.warning("sweep.start_held_back", point=due.address, reason="definition changed")
        if not result.full():
            break
    if fired or started:
        log.info("sweep.done", fired=fired, started=started)
    return fired + started
