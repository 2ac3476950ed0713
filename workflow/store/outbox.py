"""The outbox: events waiting to be published, and their progress to handled.

A row is created with its event, in the command's transaction. Publishing
(the engine right after commit, or the periodic relay) hands the event ids to
the dispatcher, a batch of them per message, and stamps ``published_at``; the
dispatcher stamps ``handled_at`` once every subscribed handler has processed the event. Rows
published long ago but never handled are what the reconciler re-dispatches:
Redis can lose a message, the database cannot.

No Celery here: publishing is a callable the caller passes in.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from workflow.store import dialect
from workflow.store.tables import outbox, processed, utc

#: How long a relay holds the rows it claimed before another may take them.
CLAIM_LEASE = dt.timedelta(seconds=60)
#: Rows one relay run claims at most.
BATCH = 500
#: Event ids one published message names at most, unless the caller says otherwise (the
#: workers' callers pass the ``dispatch_batch`` setting, whose default this is).
PUBLISH_BATCH = 50


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
    db: Engine,
    event_ids: Sequence[int],
    publish: Callable[[Sequence[int]], None],
    *,
    now: dt.datetime,
    batch: int = PUBLISH_BATCH,
) -> RelayResult:
    """Publish claimed events in order, ``batch`` ids per message; stop at the first
    failure (the broker is down): the batches sent are marked published, the rest released."""
    done: list[int] = []
    error: str | None = None
    for start in range(0, len(event_ids), batch):
        chunk = list(event_ids[start : start + batch])
        try:
            publish(chunk)
        except Exception as exc:  # any broker failure leaves the rows for later
            error = f"{type(exc).__name__}: {str(exc)[:200]}"
            break
        done.extend(chunk)
    with db.begin() as conn:
        mark_published(conn, done, now=now)
        release(conn, event_ids[len(done) :], error=error or "")
    return RelayResult(published=len(done), failed=len(event_ids) - len(done), error=error)


def relay(
    db: Engine,
    publish: Callable[[Sequence[int]], None],
    *,
    now: dt.datetime,
    limit: int = BATCH,
    lease: dt.timedelta = CLAIM_LEASE,
    batch: int = PUBLISH_BATCH,
) -> RelayResult:
    """One relay run: claim what is unpublished and publish it, ``batch`` ids a message."""
    with db.begin() as conn:
        claimed = claim_unpublished(conn, now=now, limit=limit, lease=lease)
    if not claimed:
        return RelayResult(0, 0)
    return publish_claimed(db, claimed, publish, now=now, batch=batch)


def mark_processed(conn: Connection, event_id: int, handler: str, *, now: dt.datetime) -> bool:
    """Record that ``handler`` processed ``event_id``; False if it already had.

    Runs in the handler's own transaction, so the record and the handler's
    writes commit together or not at all.
    """
    # INSERT .. ON CONFLICT DO NOTHING: no savepoint, which on SQLite would start
    # (and, released, commit) a transaction of its own outside the handler's.
    statement = dialect.built(conn, "mark_processed", lambda c: (
        dialect.insert(c, processed)
        .on_conflict_do_nothing(index_elements=["event_id", "handler"])
        .returning(processed.c.event_id)
    ))  # fmt: skip
    inserted = conn.execute(
        statement, {"event_id": event_id, "handler": handler, "processed_at": utc(now)}
    ).scalar_one_or_none()
    return inserted is not None


def mark_handled(conn: Connection, event_ids: int | Sequence[int], *, now: dt.datetime) -> None:
    """The events' every handler ran: stamp them handled (and no longer held)."""
    ids = [event_ids] if isinstance(event_ids, int) else list(event_ids)
    if ids:
        conn.execute(
            outbox.update()
            .where(outbox.c.event_id.in_(ids), outbox.c.handled_at.is_(None))
            .values(handled_at=utc(now), dispatch_until=None)
        )


def hold_many(conn: Connection, event_ids: Sequence[int], *, until: dt.datetime) -> list[int]:
    """A dispatch holds (or renews its hold on) a batch of events until ``until``, in one
    statement: the ids now held, in order. Those missing were handled already: their
    message came back after the work was done (a Redis ``unacked`` entry restored after a
    kill, or a copy the reconciler sent)."""
    if not event_ids:
        return []
    held = conn.execute(
        outbox.update()
        .where(outbox.c.event_id.in_(list(event_ids)), outbox.c.handled_at.is_(None))
        .values(dispatch_until=utc(until))
        .returning(outbox.c.event_id)
    )
    return sorted(int(row.event_id) for row in held)


#: The reconciler publishes a never-held event again ``reconcile_after`` after it was
#: published, then twice that after the copy, and so on, up to this many doublings
#: (reconcile_after x 64: about five hours by default).
REPUBLISH_DOUBLINGS = 6
#: A dispatch that keeps dying (its lease runs out) is published again at once this many
#: times; after that it waits like an event whose message was lost.
QUICK_REDOS = 3


@dataclass(frozen=True)
class Republished:
    """Events the reconciler took to publish again, by why."""

    #: Their dispatch's lease ran out with the event not handled: a worker died with it.
    abandoned: list[int]
    #: Published long ago, never picked up (a lost message), and not re-sent lately.
    lost: list[int]

    @property
    def event_ids(self) -> list[int]:
        return sorted(self.abandoned + self.lost)


def take_for_republish(
    conn: Connection,
    *,
    now: dt.datetime,
    stale_before: dt.datetime,
    wait: dt.timedelta,
    limit: int,
    lost: bool = True,
) -> Republished:
    """Take the unhandled events to publish again, at most ``limit``, oldest first.

    An event whose dispatch lease ran out is taken at once (a dead worker, redone within
    a lease and a reconciler interval); one published before ``stale_before`` and never
    held is taken when its wait has passed, and its next wait doubles: so an old backlog
    still in the queue gets one copy per wait, never one per reconciler run. Taking an
    event records it (count and next wait) and clears its lease, in this transaction;
    PostgreSQL reconcilers on several machines skip each other's rows. With ``lost``
    false (the queue still holds messages), only abandoned events are taken.
    """
    abandoned = sa.and_(
        outbox.c.dispatch_until.is_not(None),
        outbox.c.dispatch_until < utc(now),
        outbox.c.republished < QUICK_REDOS,
    )
    waited = sa.or_(
        sa.and_(outbox.c.republish_after.is_(None), outbox.c.published_at < utc(stale_before)),
        outbox.c.republish_after < utc(now),
    )
    never_picked = sa.and_(
        sa.or_(outbox.c.dispatch_until.is_(None), outbox.c.dispatch_until < utc(now)), waited
    )
    candidates = (
        sa.select(outbox.c.id, outbox.c.event_id, outbox.c.republished, abandoned.label("dead"))
        .where(outbox.c.handled_at.is_(None), outbox.c.published_at.is_not(None),
               sa.or_(abandoned, never_picked) if lost else abandoned)
        .order_by(outbox.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )  # fmt: skip
    taken = conn.execute(candidates).all()
    dead: list[int] = []
    old: list[int] = []
    for row in taken:
        doublings = min(int(row.republished) + 1, REPUBLISH_DOUBLINGS)
        conn.execute(
            outbox.update()
            .where(outbox.c.id == row.id)
            .values(
                republished=outbox.c.republished + 1,
                republish_after=utc(now + wait * (2**doublings)),
                dispatch_until=None,
            )
        )
        (dead if row.dead else old).append(row.event_id)
    return Republished(abandoned=dead, lost=old)


def give_back_republish(conn: Connection, event_ids: Sequence[int], *, now: dt.datetime) -> None:
    """The broker refused the copies: the next reconciler run may take them again."""
    if event_ids:
        conn.execute(
            outbox.update()
            .where(outbox.c.event_id.in_(event_ids))
            .values(republished=outbox.c.republished - 1, republish_after=utc(now))
        )


@dataclass(frozen=True)
class OutboxCounts:
    """What the doctor and the logs show of the outbox."""

    unpublished: int
    unhandled: int
    #: Unhandled events held by a running dispatch now.
    in_flight: int
    #: Events ever published again by the reconciler, and copies sent in all.
    republished_events: int
    republished_copies: int


def counts(conn: Connection, *, now: dt.datetime) -> OutboxCounts:
    unpublished, unhandled = pending_count(conn)
    in_flight = conn.execute(
        sa.select(sa.func.count()).where(
            outbox.c.handled_at.is_(None), outbox.c.dispatch_until >= utc(now)
        )
    ).scalar_one()
    events, copies = conn.execute(
        sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(outbox.c.republished), 0)).where(
            outbox.c.republished > 0
        )
    ).one()
    return OutboxCounts(unpublished, unhandled, int(in_flight), int(events), int(copies))


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
