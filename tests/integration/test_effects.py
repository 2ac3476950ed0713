"""Effects on SQLite and PostgreSQL: once by key, leases, backoff, failure, what is due, reset."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest
import sqlalchemy as sa

from workflow import store
from workflow.core.events import Event, EventType
from workflow.store import effects, tables
from workflow.store.effects import BACKOFF_BASE, BACKOFF_MAX, EffectState

T0 = dt.datetime(2024, 2, 1, 9, 0, tzinfo=dt.UTC)
LEASE = dt.timedelta(seconds=120)


def source_event(db: sa.Engine) -> int:
    """A step.activated event an effect can stem from."""
    event = Event(
        type=EventType.STEP_ACTIVATED,
        assignment="kf-2022-hedersvald",
        point=4,
        step="map",
        actor="sara.nilsson",
        occurred_at=T0,
        data={"owner": "amir.hassan", "due": "2023-03-06"},
    )
    with db.begin() as conn:
        (event_id,) = store.append_events(conn, [event], now=T0)
    return event_id


def record(
    db: sa.Engine, key: str, *, event_id: int | None = None, now: dt.datetime = T0
) -> int | None:
    with db.begin() as conn:
        return effects.record(
            conn, key=key, kind="prompt", event_id=event_id, payload={"k": key}, now=now
        )


def new(db: sa.Engine, key: str, **kwargs: Any) -> int:
    effect_id = record(db, key, **kwargs)
    assert effect_id is not None
    return effect_id


def claim(
    db: sa.Engine, effect_id: int, now: dt.datetime, lease: dt.timedelta = LEASE
) -> Any | None:
    with db.begin() as conn:
        return effects.claim(conn, effect_id, now=now, lease=lease)


def row(db: sa.Engine, effect_id: int) -> Any:
    with db.connect() as conn:
        return conn.execute(sa.select(tables.effects).where(tables.effects.c.id == effect_id)).one()


def test_record_is_idempotent_by_key(db: sa.Engine) -> None:
    """Recording the same key twice keeps one row; the second call returns None."""
    event_id = source_event(db)
    first = record(db, "prompt:1:amir.hassan", event_id=event_id)
    assert first is not None
    assert record(db, "prompt:1:amir.hassan", event_id=event_id, now=T0 + LEASE) is None
    other = record(db, "prompt:1:maria.lind", event_id=event_id)
    assert other is not None
    assert other != first
    with db.connect() as conn:
        keys = conn.execute(sa.select(tables.effects.c.key).order_by(tables.effects.c.id)).scalars()
        assert list(keys) == ["prompt:1:amir.hassan", "prompt:1:maria.lind"]
    stored = row(db, first)
    assert stored.state == EffectState.PENDING.value
    assert stored.attempts == 0
    assert stored.kind == "prompt"
    assert stored.event_id == event_id
    assert stored.payload == {"k": "prompt:1:amir.hassan"}
    assert store.aware(stored.created_at) == T0  # the first record is kept, not overwritten


def test_claim_succeeds_once_until_the_lease_expires(db: sa.Engine) -> None:
    """A claim takes the effect; nobody else gets it until the lease has strictly passed."""
    effect_id = new(db, "k")
    first = claim(db, effect_id, T0)
    assert first is not None
    assert first.state == EffectState.SENDING.value
    assert first.attempts == 1
    assert store.aware(first.claimed_until) == T0 + LEASE
    assert claim(db, effect_id, T0) is None
    assert claim(db, effect_id, T0 + LEASE - dt.timedelta(seconds=1)) is None
    assert claim(db, effect_id, T0 + LEASE) is None
    later = claim(db, effect_id, T0 + LEASE + dt.timedelta(seconds=1))
    assert later is not None
    assert later.attempts == 2
    assert store.aware(later.claimed_until) == T0 + 2 * LEASE + dt.timedelta(seconds=1)


def test_claim_of_an_unknown_effect_is_none(db: sa.Engine) -> None:
    """Claiming an id that does not exist takes nothing."""
    assert claim(db, 12345, T0) is None


def test_finish_marks_done_and_ends_claims(db: sa.Engine) -> None:
    """A finished effect is done, holds no claim and can never be claimed again."""
    effect_id = new(db, "k")
    assert claim(db, effect_id, T0) is not None
    with db.begin() as conn:
        effects.finish(conn, effect_id, now=T0 + dt.timedelta(seconds=3))
    done = row(db, effect_id)
    assert done.state == EffectState.DONE.value
    assert store.aware(done.done_at) == T0 + dt.timedelta(seconds=3)
    assert done.claimed_until is None
    assert done.detail is None
    assert claim(db, effect_id, T0 + dt.timedelta(days=365)) is None


def test_retry_later_schedules_the_next_attempt(db: sa.Engine) -> None:
    """retry_later puts the effect back as pending, due after a backoff, with the error kept."""
    effect_id = new(db, "k")
    claimed = claim(db, effect_id, T0)
    assert claimed is not None
    base = dt.timedelta(seconds=10)
    with db.begin() as conn:
        when = effects.retry_later(
            conn, effect_id, attempts=claimed.attempts, error="SMTP down", now=T0, base=base
        )
    assert T0 + base / 2 <= when <= T0 + base
    waiting = row(db, effect_id)
    assert waiting.state == EffectState.PENDING.value
    assert waiting.claimed_until is None
    assert waiting.detail == "SMTP down"
    stored = store.aware(waiting.next_attempt_at)
    assert stored is not None
    assert abs(stored - when) < dt.timedelta(milliseconds=1)
    # not claimable before it is due, claimable from then on
    assert claim(db, effect_id, when - dt.timedelta(seconds=1)) is None
    again = claim(db, effect_id, when + dt.timedelta(milliseconds=1))
    assert again is not None
    assert again.attempts == 2


def test_retry_later_backoff_grows_with_attempts(db: sa.Engine) -> None:
    """A later attempt is scheduled further ahead (doubling, within the jitter band)."""
    effect_id = new(db, "k")
    base = dt.timedelta(seconds=8)
    delays = []
    for attempts in (1, 3, 5):
        with db.begin() as conn:
            when = effects.retry_later(
                conn, effect_id, attempts=attempts, error="x", now=T0, base=base
            )
        delays.append(when - T0)
    assert base / 2 <= delays[0] <= base
    assert 4 * base / 2 <= delays[1] <= 4 * base
    assert 16 * base / 2 <= delays[2] <= 16 * base


class Fixed(random.Random):
    """A random source whose uniform() always returns one end of the range."""

    def __init__(self, end: str) -> None:
        super().__init__(0)
        self.end = end

    def uniform(self, a: float, b: float) -> float:
        return b if self.end == "high" else a


@pytest.mark.parametrize(
    ("attempts", "seconds"),
    [(0, 15), (1, 15), (2, 30), (3, 60), (4, 120), (7, 960), (8, 1800), (9, 1800), (10**6, 1800)],
)
def test_backoff_doubles_and_is_capped(attempts: int, seconds: int) -> None:
    """The ceiling doubles per attempt from 15 s and stops at BACKOFF_MAX (30 min)."""
    assert effects.backoff(attempts, rng=Fixed("high")) == dt.timedelta(seconds=seconds)
    assert effects.backoff(attempts, rng=Fixed("low")) == dt.timedelta(seconds=seconds) / 2


def test_backoff_is_jittered_within_half_to_whole() -> None:
    """Backoff lies between half and all of the ceiling, and varies between calls."""
    rng = random.Random(42)
    for attempts in range(1, 15):
        ceiling = min(BACKOFF_BASE * 2 ** (attempts - 1), BACKOFF_MAX)
        samples = [effects.backoff(attempts, rng=rng) for _ in range(20)]
        assert all(ceiling / 2 <= s <= ceiling for s in samples)
        assert len(set(samples)) > 1
    base = dt.timedelta(seconds=1)
    assert effects.backoff(3, base=base, rng=Fixed("high")) == dt.timedelta(seconds=4)
    assert effects.backoff(100, base=base, rng=Fixed("high")) == BACKOFF_MAX


def test_fail_marks_failed_and_names_the_source_event(db: sa.Engine) -> None:
    """fail() sets failed with the reason and says which event the effect stems from; the
    store writes no event itself (delivery records effect.failed through the engine)."""
    event_id = source_event(db)
    effect_id = new(db, "prompt:1:amir.hassan", event_id=event_id)
    assert claim(db, effect_id, T0) is not None
    with db.begin() as conn:
        failed = effects.fail(conn, effect_id, error="recipient refused ([550])")
        assert store.list_events(conn, since=event_id) == []
    assert failed == effects.Failed(effect_id, "prompt:1:amir.hassan", "prompt", event_id)
    stored = row(db, effect_id)
    assert stored.state == EffectState.FAILED.value
    assert stored.claimed_until is None
    assert stored.detail == "recipient refused ([550])"
    # a failed effect is not claimed again by itself
    assert claim(db, effect_id, T0 + dt.timedelta(days=1)) is None


def test_fail_without_a_source_event_names_none(db: sa.Engine) -> None:
    """An effect recorded without an event (an answer mail) fails with no event to name."""
    effect_id = new(db, "k")
    with db.begin() as conn:
        assert effects.fail(conn, effect_id, error="x" * 1000).event_id is None
    assert row(db, effect_id).state == EffectState.FAILED.value
    assert len(row(db, effect_id).detail) == 500


def test_due_finds_retries_forgotten_and_expired_but_not_fresh(db: sa.Engine) -> None:
    """due() lists due retries, stale pending effects and expired claims, and nothing else."""
    now = T0 + dt.timedelta(minutes=10)
    stale_before = T0 + dt.timedelta(minutes=5)
    soon = dt.timedelta(seconds=1)

    forgotten = new(db, "forgotten")  # pending since T0, never tried
    fresh = new(db, "fresh", now=now - dt.timedelta(minutes=1))  # just recorded
    retry_due = new(db, "retry-due")
    assert claim(db, retry_due, T0) is not None
    with db.begin() as conn:
        effects.retry_later(conn, retry_due, attempts=1, error="x", now=T0, base=soon)
    retry_later = new(db, "retry-later")
    assert claim(db, retry_later, T0) is not None
    with db.begin() as conn:
        effects.retry_later(
            conn, retry_later, attempts=1, error="x", now=now, base=dt.timedelta(hours=1)
        )
    expired = new(db, "expired")
    assert claim(db, expired, T0, lease=dt.timedelta(seconds=60)) is not None
    held = new(db, "held")
    assert claim(db, held, now - dt.timedelta(seconds=5), lease=LEASE) is not None
    done = new(db, "done")
    with db.begin() as conn:
        effects.finish(conn, done, now=T0)
    failed = new(db, "failed")
    with db.begin() as conn:
        effects.fail(conn, failed, error="x")

    with db.connect() as conn:
        found = effects.due(conn, now=now, stale_before=stale_before, limit=100)
        assert found == sorted([forgotten, retry_due, expired])
        assert fresh not in found
        assert retry_later not in found
        assert held not in found
        assert effects.due(conn, now=now, stale_before=stale_before, limit=2) == found[:2]
        # the fresh one is picked up once it is older than the cutoff
        assert fresh in effects.due(conn, now=now, stale_before=now, limit=100)


def test_reset_only_touches_failed_effects(db: sa.Engine) -> None:
    """reset() makes failed effects pending with a clean slate and leaves the rest alone."""
    failed = new(db, "failed")
    assert claim(db, failed, T0) is not None
    with db.begin() as conn:
        effects.retry_later(conn, failed, attempts=1, error="x", now=T0)
    assert claim(db, failed, T0 + dt.timedelta(hours=1)) is not None
    with db.begin() as conn:
        effects.fail(conn, failed, error="gave up")
    done = new(db, "done")
    assert claim(db, done, T0) is not None
    with db.begin() as conn:
        effects.finish(conn, done, now=T0)
    pending = new(db, "pending")
    sending = new(db, "sending")
    assert claim(db, sending, T0) is not None

    before = {i: row(db, i) for i in (done, pending, sending)}
    with db.begin() as conn:
        assert effects.reset(conn, [failed, done, pending, sending, 9999]) == 1

    again = row(db, failed)
    assert again.state == EffectState.PENDING.value
    assert again.attempts == 0
    assert again.next_attempt_at is None
    assert again.detail is None
    for effect_id, previous in before.items():
        assert row(db, effect_id) == previous
    assert claim(db, failed, T0) is not None  # deliverable right away


def test_listing_filters_by_state(db: sa.Engine) -> None:
    """listing() shows every effect, or those in one state, oldest first, with aware times."""
    first = new(db, "a")
    second = new(db, "b")
    with db.begin() as conn:
        effects.fail(conn, second, error="nope")
        everything = effects.listing(conn)
        only_failed = effects.listing(conn, state=EffectState.FAILED)
    assert [e["id"] for e in everything] == [first, second]
    assert [e["id"] for e in only_failed] == [second]
    assert only_failed[0]["detail"] == "nope"
    assert everything[0]["created_at"] == T0
