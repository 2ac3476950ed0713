"""The transactional outbox on SQLite and PostgreSQL: relay order, failures, claims, handling."""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pytest
import sqlalchemy as sa

from workflow import store
from workflow.core.events import Event, EventType
from workflow.eventlog import EventLog
from workflow.store import effects, outbox, tables
from workflow.store.outbox import RelayResult

T0 = dt.datetime(2024, 2, 1, 9, 0, tzinfo=dt.UTC)


def append(db: sa.Engine, count: int, *, now: dt.datetime = T0) -> list[int]:
    """Append ``count`` step events in one transaction, as a command would."""
    new = [
        Event(
            type=EventType.NOTE_ADDED,
            assignment="kf-2022-hedersvald",
            point=4,
            actor="sara.nilsson",
            occurred_at=now,
            data={"text": f"note {i}"},
        )
        for i in range(count)
    ]
    with db.begin() as conn:
        return store.append_events(conn, new, now=now)


def rows(db: sa.Engine) -> dict[int, Any]:
    """Outbox rows by event id."""
    with db.connect() as conn:
        return {r.event_id: r for r in conn.execute(sa.select(tables.outbox))}


class Recorder:
    """A publish callable that records the batches of event ids it was handed (a message
    each) and can fail on its n-th call."""

    def __init__(self, fail_on: int | None = None) -> None:
        self.published: list[int] = []
        self.messages: list[list[int]] = []
        self.calls = 0
        self.fail_on = fail_on

    def __call__(self, event_ids: Sequence[int]) -> None:
        self.calls += 1
        if self.calls == self.fail_on:
            raise ConnectionError("broker down: connection refused")
        self.published.extend(event_ids)
        self.messages.append(list(event_ids))


def test_appended_events_get_outbox_rows(db: sa.Engine) -> None:
    """Each appended event gets one unpublished, unclaimed outbox row in the same commit."""
    ids = append(db, 3)
    outbox_rows = rows(db)
    assert sorted(outbox_rows) == ids
    for row in outbox_rows.values():
        assert row.published_at is None
        assert row.handled_at is None
        assert row.claimed_until is None
        assert row.attempts == 0
        assert store.aware(row.created_at) == T0


def test_rolled_back_events_leave_no_outbox_rows(db: sa.Engine) -> None:
    """Events and outbox rows commit together: a rollback leaves neither."""
    event = Event(
        type=EventType.NOTE_ADDED,
        assignment="a",
        point=1,
        actor="x",
        occurred_at=T0,
        data={"text": "x"},
    )

    def failing_command() -> None:
        with db.begin() as conn:
            store.append_events(conn, [event], now=T0)
            raise RuntimeError("the command failed after appending")

    with pytest.raises(RuntimeError):
        failing_command()
    assert rows(db) == {}
    with db.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(tables.events)).scalar_one() == 0


def test_relay_publishes_in_id_order_and_marks_published(db: sa.Engine) -> None:
    """relay() hands every unpublished event to publish, oldest first, and stamps it."""
    first = append(db, 3)
    second = append(db, 2, now=T0 + dt.timedelta(seconds=1))
    publish = Recorder()
    result = outbox.relay(db, publish, now=T0 + dt.timedelta(seconds=5))
    assert result == RelayResult(published=5, failed=0, error=None)
    assert publish.published == first + second
    assert publish.published == sorted(publish.published)
    for row in rows(db).values():
        assert store.aware(row.published_at) == T0 + dt.timedelta(seconds=5)
        assert row.claimed_until is None
        assert row.last_error is None
        assert row.attempts == 1
    # nothing left: a second run publishes nothing
    assert outbox.relay(db, publish, now=T0 + dt.timedelta(seconds=6)) == RelayResult(0, 0)
    assert len(publish.published) == 5


def test_relay_respects_its_limit(db: sa.Engine) -> None:
    """A relay run claims at most ``limit`` rows, the oldest ones; the next run takes the rest."""
    ids = append(db, 5)
    publish = Recorder()
    assert outbox.relay(db, publish, now=T0, limit=2).published == 2
    assert publish.published == ids[:2]
    assert outbox.relay(db, publish, now=T0, limit=10).published == 3
    assert publish.published == ids


def test_the_relay_publishes_a_message_per_batch_of_events(db: sa.Engine) -> None:
    """Claimed events go out ``batch`` ids to a message, oldest first; a message that fails
    leaves its batch and the later ones unpublished, the earlier ones published."""
    ids = append(db, 7)
    publish = Recorder()
    assert outbox.relay(db, publish, now=T0, batch=3).published == 7
    assert publish.messages == [ids[:3], ids[3:6], ids[6:]]

    more = append(db, 7)
    broken = Recorder(fail_on=2)
    result = outbox.relay(db, broken, now=T0 + dt.timedelta(seconds=1), batch=3)
    assert (result.published, result.failed) == (3, 4)
    assert broken.messages == [more[:3]]
    after = rows(db)
    assert all(after[i].published_at is not None for i in more[:3])
    assert all(after[i].published_at is None and after[i].last_error for i in more[3:])


def test_failing_publisher_stops_and_a_later_relay_catches_up(db: sa.Engine) -> None:
    """A broker failure on the 3rd event stops the run there; the rest wait, with the reason."""
    ids = append(db, 5)
    broken = Recorder(fail_on=3)
    result = outbox.relay(db, broken, now=T0, batch=1)
    assert result.published == 2
    assert result.failed == 3
    assert result.error == "ConnectionError: broker down: connection refused"
    assert broken.published == ids[:2]
    assert broken.calls == 3  # stopped at the failure, did not try the 4th and 5th

    after = rows(db)
    for event_id in ids[:2]:
        assert after[event_id].published_at is not None
        assert after[event_id].last_error is None
    for event_id in ids[2:]:
        assert after[event_id].published_at is None
        assert after[event_id].claimed_until is None  # released at once, not held for the lease
        assert "broker down" in after[event_id].last_error

    working = Recorder()
    later = outbox.relay(db, working, now=T0 + dt.timedelta(seconds=10))
    assert later == RelayResult(published=3, failed=0)
    assert working.published == ids[2:]
    final = rows(db)
    assert all(row.published_at is not None for row in final.values())
    assert all(row.last_error is None for row in final.values())
    assert [final[i].attempts for i in ids] == [1, 1, 2, 2, 2]


def test_claimed_rows_are_left_alone_until_the_lease_expires(db: sa.Engine) -> None:
    """Rows a relay claimed (and crashed with) are skipped by others until the lease ends."""
    ids = append(db, 3)
    lease = dt.timedelta(seconds=60)
    with db.begin() as conn:
        assert outbox.claim_unpublished(conn, now=T0, lease=lease) == ids
    with db.begin() as conn:
        assert outbox.claim_unpublished(conn, now=T0 + dt.timedelta(seconds=59)) == []
    publish = Recorder()
    assert outbox.relay(db, publish, now=T0 + lease) == RelayResult(0, 0)  # not strictly past
    result = outbox.relay(db, publish, now=T0 + lease + dt.timedelta(seconds=1))
    assert result.published == 3
    assert publish.published == ids


def test_concurrent_claims_never_share_an_event(db: sa.Engine) -> None:
    """Two relays claiming at the same moment, on two connections, get disjoint rows."""
    ids = append(db, 20)
    barrier = threading.Barrier(2)
    claims: list[list[int]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def claim() -> None:
        try:
            barrier.wait(timeout=10)
            with db.begin() as conn:
                got = outbox.claim_unpublished(conn, now=T0, limit=6)
            with lock:
                claims.append(got)
        except BaseException as exc:  # reported in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=claim) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert len(claims) == 2
    first, second = claims
    assert len(first) == 6
    assert len(second) == 6
    assert set(first).isdisjoint(second)
    assert set(first) | set(second) <= set(ids)
    # every claimed row carries a lease; the others are untouched
    claimed = set(first) | set(second)
    for event_id, row in rows(db).items():
        assert (row.claimed_until is not None) == (event_id in claimed)


def test_mark_processed_is_true_once_then_false(db: sa.Engine) -> None:
    """A handler is recorded as having processed an event once; repeats report False."""
    (event_id,) = append(db, 1)
    with db.begin() as conn:
        assert outbox.mark_processed(conn, event_id, "prompt-owner", now=T0)
    with db.begin() as conn:
        assert not outbox.mark_processed(conn, event_id, "prompt-owner", now=T0)
        # in the same transaction, too
        assert outbox.mark_processed(conn, event_id, "other-handler", now=T0)
        assert not outbox.mark_processed(conn, event_id, "other-handler", now=T0)
    with db.connect() as conn:
        recorded = conn.execute(
            sa.select(tables.processed.c.handler).order_by(tables.processed.c.handler)
        ).scalars()
        assert list(recorded) == ["other-handler", "prompt-owner"]


def test_mark_processed_rolls_back_with_the_handler(db: sa.Engine) -> None:
    """The processed record commits with the handler's writes: a failed handler leaves neither.

    This is how the dispatcher uses it: mark_processed, then the handler records
    an effect, in one transaction. If the handler fails (or the worker dies)
    before the commit, the event must still count as unprocessed, so that the
    redelivered message runs the handler again.
    """
    (event_id,) = append(db, 1)

    def failing_dispatch() -> None:
        with db.begin() as conn:
            assert outbox.mark_processed(conn, event_id, "h", now=T0)
            effects.record(conn, key="k", kind="prompt", event_id=event_id, payload={}, now=T0)
            raise RuntimeError("the handler failed")

    with pytest.raises(RuntimeError):
        failing_dispatch()
    with db.connect() as conn:
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(tables.effects)).scalar_one() == 0
        )
        processed = conn.execute(sa.select(sa.func.count()).select_from(tables.processed))
        assert processed.scalar_one() == 0
    with db.begin() as conn:
        assert outbox.mark_processed(conn, event_id, "h", now=T0)


def test_unhandled_lists_published_but_unhandled_rows_older_than_the_cutoff(
    db: sa.Engine,
) -> None:
    """unhandled() returns events published before the cutoff and not handled, oldest first."""
    old = append(db, 3)
    outbox.relay(db, Recorder(), now=T0)
    recent = append(db, 1, now=T0 + dt.timedelta(minutes=10))
    outbox.relay(db, Recorder(), now=T0 + dt.timedelta(minutes=10))
    unpublished = append(db, 1, now=T0 + dt.timedelta(minutes=11))
    with db.begin() as conn:
        outbox.mark_handled(conn, old[1], now=T0 + dt.timedelta(minutes=1))

    cutoff = T0 + dt.timedelta(minutes=5)
    with db.connect() as conn:
        assert outbox.unhandled(conn, published_before=cutoff) == [old[0], old[2]]
        assert outbox.unhandled(conn, published_before=T0) == []  # strictly before
        later = outbox.unhandled(conn, published_before=T0 + dt.timedelta(hours=1))
        assert later == [old[0], old[2], *recent]
        assert outbox.unhandled(conn, published_before=T0 + dt.timedelta(hours=1), limit=1) == [
            old[0]
        ]
        assert unpublished[0] not in later


def test_mark_handled_keeps_the_first_time(db: sa.Engine) -> None:
    """Handling an event twice keeps the first handled_at."""
    (event_id,) = append(db, 1)
    outbox.relay(db, Recorder(), now=T0)
    with db.begin() as conn:
        outbox.mark_handled(conn, event_id, now=T0 + dt.timedelta(seconds=1))
        outbox.mark_handled(conn, event_id, now=T0 + dt.timedelta(seconds=2))
    assert store.aware(rows(db)[event_id].handled_at) == T0 + dt.timedelta(seconds=1)


def test_pending_count(db: sa.Engine) -> None:
    """pending_count() is (unpublished, published but not yet handled)."""
    with db.connect() as conn:
        assert outbox.pending_count(conn) == (0, 0)
    published = append(db, 3)
    outbox.relay(db, Recorder(), now=T0)
    with db.begin() as conn:
        outbox.mark_handled(conn, published[0], now=T0)
    append(db, 2, now=T0 + dt.timedelta(seconds=1))
    with db.connect() as conn:
        assert outbox.pending_count(conn) == (2, 2)


def _note(i: int) -> Event:
    return Event(type=EventType.NOTE_ADDED, assignment="kf-2022-hedersvald", point=4,
                 actor="sara.nilsson", occurred_at=T0, data={"text": f"note {i}"})  # fmt: skip


def test_a_writer_publishes_its_events_and_the_relay_does_not(db: sa.Engine) -> None:
    """An EventLog with a publisher writes its outbox rows claimed: a relay running between
    the commit and the writer's publish leaves them alone, so each event is published once,
    by the writer. Without a publisher the rows are the relay's at once."""
    writer = Recorder()

    def wall() -> dt.datetime:  # the writer's claim is on the wall clock
        return dt.datetime.now(dt.UTC)

    log = EventLog(db, lambda ids: outbox.publish_claimed(db, ids, writer, now=wall()))
    with db.begin() as conn:  # a command dated in the past: --now 2022-...
        ids = log.append(conn, [_note(i) for i in range(3)], now=T0)
    assert outbox.relay(db, Recorder(), now=wall()) == RelayResult(0, 0)  # held for the writer
    log.committed(ids)
    assert writer.published == ids  # the writer's publish, once each
    assert outbox.relay(db, Recorder(), now=wall() + outbox.CLAIM_LEASE * 2) == RelayResult(0, 0)
    assert all(r.published_at is not None for r in rows(db).values())

    plain = EventLog(db)
    with db.begin() as conn:
        more = plain.append(conn, [_note(9)], now=T0)
    late = Recorder()
    assert outbox.relay(db, late, now=wall()).published == 1
    assert late.published == more


def test_a_writer_that_dies_before_publishing_leaves_its_events_to_the_relay(
    db: sa.Engine,
) -> None:
    """The writer's claim is a lease: if it never publishes (killed after its commit), the
    relay publishes the events once the lease has run out, once."""
    log = EventLog(db, lambda ids: None)  # a writer that never gets to publish
    with db.begin() as conn:
        ids = log.append(conn, [_note(i) for i in range(2)], now=T0)
    wall = dt.datetime.now(dt.UTC)
    assert outbox.relay(db, Recorder(), now=wall).published == 0
    publish = Recorder()
    assert outbox.relay(db, publish, now=wall + outbox.CLAIM_LEASE * 2).published == 2
    assert publish.published == ids
    assert outbox.relay(db, Recorder(), now=wall + outbox.CLAIM_LEASE * 4).published == 0


WAIT = dt.timedelta(minutes=5)


def take(db: sa.Engine, now: dt.datetime, *, limit: int = 100, lost: bool = True) -> Any:
    with db.begin() as conn:
        return outbox.take_for_republish(conn, now=now, stale_before=now - WAIT, wait=WAIT,
                                         limit=limit, lost=lost)  # fmt: skip


def test_a_dead_dispatch_is_redone_at_once_and_a_live_one_never(db: sa.Engine) -> None:
    """An event held by a dispatch whose lease ran out is taken at once (its worker died);
    one whose lease runs is left alone; a handled event is never held again."""
    dead, live, done = append(db, 3)
    outbox.relay(db, Recorder(), now=T0)
    with db.begin() as conn:
        assert outbox.hold_many(conn, [dead], until=T0 + dt.timedelta(seconds=30)) == [dead]
        assert outbox.hold_many(conn, [live], until=T0 + dt.timedelta(minutes=10)) == [live]
        outbox.mark_handled(conn, done, now=T0)
        assert outbox.hold_many(conn, [done], until=T0 + dt.timedelta(seconds=30)) == []
    soon = T0 + dt.timedelta(seconds=31)  # long before reconcile_after
    taken = take(db, soon, lost=False)  # even with a queue still full
    assert taken.abandoned == [dead]
    assert taken.lost == []
    assert take(db, soon + dt.timedelta(seconds=1)).event_ids == []  # once: the lease is cleared
    with db.connect() as conn:
        counted = outbox.counts(conn, now=soon)
    assert (counted.unhandled, counted.in_flight) == (2, 1)
    assert (counted.republished_events, counted.republished_copies) == (1, 1)


def test_an_old_backlog_gets_one_copy_per_wait_and_the_wait_doubles(db: sa.Engine) -> None:
    """Events published and never picked up: nothing while the queue holds messages; then a
    copy each after reconcile_after, capped per run, and the next copy of the same event
    only after twice the wait: 40 reconciler runs over five minutes send each event once."""
    ids = append(db, 250)
    outbox.relay(db, Recorder(), now=T0)
    old = T0 + WAIT + dt.timedelta(seconds=1)
    assert take(db, old, lost=False).event_ids == []  # their messages are still queued
    copies: Counter[int] = Counter()
    for run in range(40):  # a run every 7.5 s for five minutes
        taken = take(db, old + run * dt.timedelta(seconds=7.5))
        assert len(taken.event_ids) <= 100
        copies.update(taken.lost)
    assert set(copies) == set(ids)
    assert set(copies.values()) == {1}
    last_copy = old + 39 * dt.timedelta(seconds=7.5)
    assert take(db, last_copy + WAIT + dt.timedelta(seconds=1), limit=500).event_ids == []
    later = last_copy + WAIT * 2 + dt.timedelta(seconds=1)  # the next wait is twice as long
    assert len(take(db, later, limit=500).lost) == 250
    with db.connect() as conn:
        counted = outbox.counts(conn, now=later)
    assert (counted.republished_events, counted.republished_copies) == (250, 500)
    with db.begin() as conn:  # the broker refused the copies: the next run may retry them
        outbox.give_back_republish(conn, ids[:10], now=later)
    assert take(db, later + dt.timedelta(seconds=1)).lost == ids[:10]
