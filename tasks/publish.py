"""Publishing events to the workers: one Celery message per event id."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa

from workflow.store import outbox


def publish_event(event_id: int) -> None:
    """Send one ``dispatch`` message; raise if the broker cannot take it.

    Sent through council's app by name, never through the thread's "current" app: Celery
    keeps that per thread, and in a thread of its own (the SMTP listener's) it is a
    default app whose broker is amqp://localhost, where the message would be lost.
    """
    from worker import app

    app.send_task(
        "council.dispatch",
        args=(event_id,),
        retry=True,
        retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5},
    )


def publish_committed(db: sa.Engine, event_ids: Sequence[int]) -> outbox.RelayResult:
    """Right after a command commits: publish its events, mark them published.

    The :class:`~workflow.eventlog.EventLog` wrote their outbox rows claimed for this
    publisher, so the relay does not publish them too. A broker that is down leaves them
    in the outbox (released) for the relay; the command has committed either way.
    """
    return outbox.publish_claimed(db, list(event_ids), publish_event, now=dt.datetime.now(dt.UTC))
