"""Periodic tasks fired by beat: the outbox relay, the reconciler and the deadline sweep."""

from __future__ import annotations

import datetime as dt
from typing import Any

from celery import current_app, shared_task
from kombu.exceptions import ChannelError

from tasks.context import context
from tasks.dispatch import TRANSIENT, deliver
from tasks.publish import publish_events
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
        ctx.db, publish_events, now=dt.datetime.now(dt.UTC), lease=ctx.settings.lease,
        batch=ctx.settings.dispatch_batch,
    )  # fmt: skip
    if result.published or result.failed:
        log.info("relay.done", published=result.published, failed=result.failed, error=result.error)
    return result.published


@shared_task(name="council.reconcile", autoretry_for=TRANSIENT, max_retries=0)
def reconcile() -> dict[str, int]:
    """Redo what a lost message or a crashed worker left undone; the database is the truth.

    Events whose dispatch died (its hold ran out) are published again at once. An event
    never picked up is published again only while the queue is empty (a backlog still in
    it holds its message): ``claim_lease`` after it was published (with nothing queued, a
    live worker would have taken it by then: its message went down with a dead worker),
    or ``reconcile_after`` when the broker cannot say how much is queued; a further copy
    of the same event waits twice ``reconcile_after``, then twice that, and a run takes
    at most ``reconcile_batch``: never a flood of copies. E-mails recorded and not tried
    within ``claim_lease``, due retries and claims that ran out are delivered.
    """
    ctx = context()
    settings = ctx.settings
    now = dt.datetime.now(dt.UTC)
    lease = dt.timedelta(seconds=settings.claim_lease)
    wait = dt.timedelta(seconds=settings.reconcile_after)
    queued = queue_depth()
    with ctx.db.begin() as conn:
        taken = outbox.take_for_republish(
            conn, now=now, stale_before=now - (wait if queued is None else lease), wait=wait,
            limit=settings.reconcile_batch, lost=not queued,
        )  # fmt: skip
    with ctx.db.connect() as conn:
        due = effects.due(conn, now=now, stale_before=now - lease, limit=outbox.BATCH)
    sent: list[int] = []
    batch = settings.dispatch_batch
    try:
        for start in range(0, len(taken.event_ids), batch):
            chunk = taken.event_ids[start : start + batch]
            publish_events(chunk)
            sent.extend(chunk)
    finally:  # the broker went away: what was not sent may be taken again next run
        if unsent := [e for e in taken.event_ids if e not in set(sent)]:
            with ctx.db.begin() as conn:
                outbox.give_back_republish(conn, unsent, now=now)
    for start in range(0, len(due), DELIVER_CHUNK):
        deliver.delay(due[start : start + DELIVER_CHUNK])
    if taken.event_ids or due:
        log.info("reconcile.done", abandoned=len(taken.abandoned), lost=len(taken.lost),
                 redelivering=len(due), queued=queued)  # fmt: skip
    return {
        "redispatched": len(taken.event_ids), "abandoned": len(taken.abandoned),
        "lost": len(taken.lost), "redelivering": len(due),
    }  # fmt: skip


def queue_depth() -> int | None:
    """Messages waiting in the events' queue; None when the broker cannot say."""
    from worker import QUEUE

    try:
        with current_app.connection_for_write() as conn:
            channel: Any = conn.default_channel  # kombu's virtual and AMQP channels have it
            return int(channel.queue_declare(QUEUE, passive=True).message_count)
    except ChannelError as exc:
        if "NOT_FOUND" in str(exc):  # Redis keeps no empty list: no key, nothing queued
            return 0
        log.info("reconcile.queue_unknown", error=repr(exc)[:200])
        return None
    except Exception as exc:  # the broker cannot tell: judge by the database alone
        log.info("reconcile.queue_unknown", error=repr(exc)[:200])
        return None


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
