"""dispatch(event_ids): run every subscribed handler once per event; then deliver what they
recorded, a batch over one connection."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from celery import shared_task
from structlog.contextvars import bound_contextvars

from tasks.context import context
from workflow import handlers
from workflow.errors import StaleDefinitions
from workflow.mail import delivery
from workflow.ops.logs import get_logger

log = get_logger(__name__)

#: Faults worth retrying with backoff: the database went away for a moment.
TRANSIENT = handlers.DATABASE_AWAY


@shared_task(
    name="council.dispatch",
    autoretry_for=(*TRANSIENT, StaleDefinitions),
    retry_backoff=True,  # 1 s, 2 s, 4 s ... between tries,
    retry_backoff_max=300,  # capped at five minutes,
    retry_jitter=True,  # randomised, so a recovering database is not stampeded
    max_retries=None,  # the reconciler is the backstop; a dispatch never gives up alone
)
def dispatch(event_ids: int | list[int]) -> None:
    """Run each handler subscribed to each event at most once, then deliver the effects.

    A message names a batch of events (one id: a message published before 0.6). Their
    prompts go out over one SMTP connection. When an event's handler raised, the others
    are handled and delivered first, then the task raises for a retry of the batch (its
    handled events are then a counted no-op).
    """
    ids = [event_ids] if isinstance(event_ids, int) else [int(e) for e in event_ids]
    ctx = context()
    now = dt.datetime.now(dt.UTC)
    batch = handlers.dispatch_batch(ctx.db, ctx.definitions(), ctx.settings, ids, now=now,
                                    tz=ctx.tz, claim=True)  # fmt: skip
    if batch.unknown:
        log.warning("dispatch.unknown_event", events=batch.unknown)
    if batch.redundant:
        # A copy of a message whose work was done: Redis's `unacked` entry of a killed
        # worker coming back, or the reconciler's copy of an event that was only slow.
        log.info("dispatch.redundant", reason="the event was handled already",
                 events=len(batch.redundant))  # fmt: skip
    if batch.recorded:
        about = {event_id: batch.log_context(event_id) for event_id in batch.recorded_by}
        report = delivery.deliver(ctx.db, ctx.settings, batch.recorded, now=now,
                                  events=ctx.event_log(), context=about,
                                  claimed=batch.claimed)  # fmt: skip
        done, retrying = set(report.done), set(report.retrying)
        for event_id, effects in batch.recorded_by.items():  # a line per event, as before
            with bound_contextvars(**about[event_id]):
                log.info("dispatch.done", delivered=len(done.intersection(effects)),
                         retrying=len(retrying.intersection(effects)))  # fmt: skip
    if batch.failed:
        failures = list(batch.failed.values())
        if any(isinstance(exc, StaleDefinitions) for exc in failures):
            log.info("dispatch.definitions_stale", action="reloading, then trying again")
            ctx.forget_definitions()  # an amendment was accepted: read the files again
        # One Celery retries with backoff, if any: a stale definition beside a bug is retried.
        retried = [e for e in failures if isinstance(e, (*TRANSIENT, StaleDefinitions))]
        raise (retried or failures)[0]


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
