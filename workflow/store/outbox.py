"""The outbox: events waiting to be published, and their progress to handled.

A row is created with its event, in the command's transaction. Publishing
(the engine right after commit, or the periodic relay) hands the event id to
the dispatcher and stamps ``published_at``; the dispatcher stamps
``handled_at`` once every subscribed handler has processed the event. Rows
published long ago but never handled are what the reconciler re-dispatches:
Redis can lose a message, the database cannot.

No Celery here: publishing is a callable the caller passes in.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from workflow.store.tables import outbox, processed, utc

#: How long a relay holds the rows it claimed before another may take them.
CLAIM_LEASE = dt.timedelta(seconds=60)
#: Rows one relay run claims at most.
BATCH = 500


@dataclass(frozen=True)
class RelayResult:
    published: int
    failed: int
    error: str | None = None


def claim_unpublished(
    conn: Connection,
    *,
    now: dt.datetime,
    limit: int = BATCH,
    lease: dt.timedelta = CLAIM_LEASE,
) -> list[int]:
    """Claim unpublished rows for one relay; return their event ids, oldest first.

    PostgreSQL: ``FOR UPDATE SKIP LOCKED`` lets relays on many machines share
    the work. SQLite: the claiming UPDATE takes the database's write lock, so
    one relay claims at a time. Either way the lease keeps a second relay off
    the same rows.
    """
    free = sa.or_(outbox.c.claimed_until.is_(None), outbox.c.claimed_until < utc(now))
    candidates = (
        sa.select(outbox.c.id)
        .where(outbox.c.published_at.is_(None), free)
        .order_by(outbox.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows = conn.execute(
        outbox.update()
        .where(outbox.c.id.in_(candidates.scalar_subquery()))
        .values(claimed_until=utc(now + lease), attempts=outbox.c.attempts + 1)
        .returning(outbox.c.event_id)
    ).all()
    return sorted(row.event_id for row in rows)


def mark_published(conn: Connection, event_ids: Sequence[int], *, now: dt.datetime) -> None:
    if event_ids:
        conn.execute(
            outbox.update()
            .where(outbox.c.event_id.in_(event_ids), outbox.c.published_at.is_(None))
            .values(published_at=utc(now), claimed_until=None, last_error=None)
        )


def release(conn: Connection, event_ids: Sequence[int], *, error: str) -> None:
    """Give claimed rows back after a failed publish, keeping the reason."""
    if event_ids:
        conn.execute(
            outbox.update()
            .where(outbox.c.event_id.in_(event_ids), outbox.c.published_at.is_(None))
            .values(claimed_until=None, last_error=error[:500])
        )


def publish_claimed(
    db: Engine, event_ids: Sequence[int], publish: Callable[[int], None], *, now: dt.datetime
) -> RelayResult:
    """Publish claimed events in order; stop at the first failure (the broker is down)."""
    done: list[int] = []
    error: str | None = None
    for event_id in event_ids:
        try:
            publish(event_id)
        except Exception as exc:  # any broker failure leaves the row for later
            error = f"{type(exc).__name__}: {str(exc)[:200]}"
            break
        done.append(event_id)
    with db.begin() as conn:
        mark_published(conn, done, now=now)
        release(conn, [e for e in event_ids if e not in set(done)], error=error or "")
    return RelayResult(published=len(done), failed=len(event_ids) - len(done), error=error)


def relay(
    db: Engine,
    publish: Callable[[int], None],
    *,
    now: dt.datetime,
    limit: int = BATCH,
    lease: dt.timedelta = CLAIM_LEASE,
) -> RelayResult:
    """One relay run: claim what is unpublished and publish it."""
    with db.begin() as conn:
        claimed = claim_unpublished(conn, now=now, limit=limit, lease=lease)
    if not claimed:
        return RelayResult(0, 0)
    return publish_claimed(db, claimed, publish, now=now)


def mark_processed(conn: Connection, event_id: int, handler: str, *, now: dt.datetime) -> bool:
    """Record that ``handler`` processed ``event_id``; False if it already had.

    Runs in the handler's own transaction, so the record and the handler's
    writes commit together or not at all.
    """
    # INSERT .. ON CONFLICT DO NOTHING: no savepoint, which on SQLite would start
    # (and, released, commit) a transaction of its own outside the handler's.
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    inserted = conn.execute(
        dialect.insert(processed)
        .values(event_id=event_id, handler=handler, processed_at=utc(now))
        .on_conflict_do_nothing(index_elements=["event_id", "handler"])
        .returning(processed.c.event_id)
    ).scalar_one_or_none()
    return inserted is not None


def mark_handled(conn: Connection, event_id: int, *, now: dt.datetime) -> None:
    conn.execute(
        outbox.update()
        .where(outbox.c.event_id == event_id, outbox.c.handled_at.is_(None))
        .values(handled_at=utc(now))
    )


def unhandled(conn: Connection, *, published_before: dt.datetime, limit: int = BATCH) -> list[int]:
    """Events published before the given time that no dispatch has finished."""
    rows = conn.execute(
        sa.select(outbox.c.event_id)
        .where(outbox.c.handled_at.is_(None), outbox.c.published_at < utc(published_before))
        .order_by(outbox.c.id)
        .limit(limit)
    )
    return [row.event_id for row in rows]


def pending_count(conn: Connection) -> tuple[int, int]:
    """(unpublished, published but not yet handled) rows."""
    unpublished = conn.execute(
        sa.select(sa.func.count()).where(outbox.c.published_at.is_(None))
    ).scalar_one()
    open_ = conn.execute(
        sa.select(sa.func.count()).where(
            outbox.c.published_at.is_not(None), outbox.c.handled_at.is_(None)
        )
    ).scalar_one()
    return int(unpublished), int(open_)
