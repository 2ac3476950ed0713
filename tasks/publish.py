"""Publishing events to the workers: one Celery message per batch of event ids."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa

from workflow.store import outbox


def publish_events(event_ids: Sequence[int]) -> None:
    """Send one ``dispatch`` message naming these events; raise if the broker cannot take it.

    Sent through council's app by name, never through the thread's "current" app: Celery
    keeps that per thread, and in a thread of its own (the SMTP listener's) it is a
    default app whose broker is amqp://localhost, where the message would be lost.
    """
    from worker import app

    app.send_task(
        "council.dispatch",
        args=([int(e) for e in event_ids],),
        retry=True,
        retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5},
    )


def publish_committed(
    db: sa.Engine, event_ids: Sequence[int], *, batch: int = outbox.PUBLISH_BATCH
) -> outbox.RelayResult:
    """Right after a command commits: publish its events, mark them published.

    The :class:`~workflow.eventlog.EventLog` wrote their outbox rows claimed for this
    publisher, so the relay does not publish them too. A broker that is down leaves them
    in the outbox (released) for the relay; the command has committed either way. A
    transaction's events go out ``batch`` to a message (``dispatch_batch``), so the pool's
    processes share a big one (an assignment of a hundred points started).
    """
    return outbox.publish_claimed(
        db, list(event_ids), publish_events, now=dt.datetime.now(dt.UTC), batch=batch
    )
