"""Side effects, each recorded once by a unique key, so nothing happens twice.

A handler records an effect (an e-mail to send) in its transaction; delivery
then *claims* it for a short lease, performs it, and marks it done. A crash
during delivery leaves the claim to expire and the reconciler to try again;
transient failures are retried with exponential backoff and jitter, scheduled
in the database (``next_attempt_at``), not in the broker. After the last
attempt an effect is ``failed``, with an ``effect.failed`` event in the log.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from workflow.store import dialect
from workflow.store.tables import aware, effects, utc

#: How long a delivery may hold an effect before another may take it over; the
#: worker passes its task time limit (plus a margin): a claim older than that
#: belongs to a task that was killed.
DELIVERY_LEASE = dt.timedelta(seconds=120)
#: First retry delay; it doubles with each attempt, up to BACKOFF_MAX.
BACKOFF_BASE = dt.timedelta(seconds=15)
BACKOFF_MAX = dt.timedelta(minutes=30)


class EffectKind(StrEnum):
    """What an effect is: every one is an e-mail today, told apart by what it says."""

    PROMPT = "prompt"  # a task prompt to a step's owner
    REMINDER = "reminder"  # a step is due soon
    OVERDUE = "overdue"  # a step is overdue
    DIGEST = "digest"  # escalations, one mail per recipient and sweep
    BODY_DIGEST = "body-digest"  # a body's overdue steps, to its chief, one mail per sweep
    REPORT = "report"  # the report back, to the coordinator
    ANSWER = "answer"  # the answer to an owner's reply
    EXTENSION_REQUEST = "extension-request"  # an owner asks the coordinator for more time


class EffectState(StrEnum):
    PENDING = "pending"  # recorded, not yet performed (or waiting for a retry)
    SENDING = "sending"  # claimed by one delivery
    DONE = "done"
    FAILED = "failed"  # gave up; `council effects retry ID` tries again


def record(
    conn: Connection,
    *,
    key: str,
    kind: EffectKind,
    event_id: int | None,
    payload: dict[str, Any],
    now: dt.datetime,
    not_before: dt.datetime | None = None,
) -> int | None:
    """Record an effect unless its key exists; return the new id, or None if it did.

    ``not_before`` holds delivery until then (a copy for someone back from leave).
    """
    values = {
        "key": key,
        "kind": EffectKind(kind).value,
        "event_id": event_id,
        "state": EffectState.PENDING.value,
        "attempts": 0,
        "payload": payload,
        "created_at": utc(now),
        "next_attempt_at": utc(not_before),
    }
    statement = dialect.built(conn, "record_effect", lambda c: (
        dialect.insert(c, effects).on_conflict_do_nothing(index_elements=["key"])
        .returning(effects.c.id)
    ))  # fmt: skip
    found: int | None = conn.execute(statement, values).scalar_one_or_none()
    return found


def pending_id(conn: Connection, key: str) -> int | None:
    """The id of the effect with this key while it waits for delivery, else None."""
    found = conn.execute(
        sa.select(effects.c.id).where(
            effects.c.key == key, effects.c.state == EffectState.PENDING.value
        )
    ).scalar_one_or_none()
    return int(found) if found is not None else None


def exists(conn: Connection, key: str) -> bool:
    """Whether an effect with this key was recorded (to skip rendering it again)."""
    return conn.execute(sa.select(effects.c.id).where(effects.c.key == key)).first() is not None


def _claimable(now: dt.datetime) -> sa.ColumnElement[bool]:
    """Pending (and due), or sending with a claim that ran out (a dead delivery's)."""
    return sa.or_(
        sa.and_(
            effects.c.state == EffectState.PENDING.value,
            sa.or_(effects.c.next_attempt_at.is_(None), effects.c.next_attempt_at <= utc(now)),
        ),
        sa.and_(effects.c.state == EffectState.SENDING.value, effects.c.claimed_until < utc(now)),
    )


def claim(
    conn: Connection,
    effect_id: int,
    *,
    now: dt.datetime,
    lease: dt.timedelta = DELIVERY_LEASE,
    until: dt.datetime | None = None,
) -> sa.Row[Any] | None:
    """Take an effect for delivery if it is pending (and due) or its claim expired; the
    claim lasts until ``until`` (default ``now + lease``)."""
    claimed = claim_many(conn, [effect_id], now=now, lease=lease, until=until)
    return claimed[0] if claimed else None


def claim_many(
    conn: Connection,
    effect_ids: Sequence[int],
    *,
    now: dt.datetime,
    lease: dt.timedelta = DELIVERY_LEASE,
    until: dt.datetime | None = None,
) -> list[sa.Row[Any]]:
    """:func:`claim` for a batch in one statement: the rows claimed, in the order of
    ``effect_ids`` (those missing were done, failed, waiting, or claimed by another)."""
    if not effect_ids:
        return []
    rows = conn.execute(
        effects.update()
        .where(effects.c.id.in_(list(effect_ids)), _claimable(now))
        .values(
            state=EffectState.SENDING.value,
            claimed_until=utc(until or now + lease),
            attempts=effects.c.attempts + 1,
        )
        .returning(effects)
    ).all()
    by_id = {row.id: row for row in rows}
    return [by_id[i] for i in dict.fromkeys(effect_ids) if i in by_id]


def renew(conn: Connection, effect_ids: int | Sequence[int], *, until: dt.datetime) -> None:
    """A live delivery still holding the effects (sending them, or about to) keeps its claim."""
    ids = [effect_ids] if isinstance(effect_ids, int) else list(effect_ids)
    if ids:
        conn.execute(
            effects.update()
            .where(effects.c.id.in_(ids), effects.c.state == EffectState.SENDING.value)
            .values(claimed_until=utc(until))
        )


_FINISH = (
    effects.update()
    .where(effects.c.id == sa.bindparam("effect"))
    .values(
        state=EffectState.DONE.value,
        done_at=sa.bindparam("done_at", type_=effects.c.done_at.type),
        claimed_until=None,
        detail=None,
    )
)


def finish(conn: Connection, effect_id: int, *, now: dt.datetime) -> None:
    conn.execute(_FINISH, {"effect": effect_id, "done_at": utc(now)})


def backoff(
    attempts: int, *, base: dt.timedelta = BACKOFF_BASE, rng: random.Random | None = None
) -> dt.timedelta:
    """Exponential backoff with jitter: between half and all of base * 2**(attempts-1)."""
    ceiling = min(base * (1 << min(max(attempts - 1, 0), 20)), BACKOFF_MAX)
    fraction = (rng or random.SystemRandom()).uniform(0.5, 1.0)
    return ceiling * fraction


def retry_later(
    conn: Connection,
    effect_id: int,
    *,
    attempts: int,
    error: str,
    now: dt.datetime,
    base: dt.timedelta = BACKOFF_BASE,
) -> dt.datetime:
    """Put a claimed effect back, to be tried again after a backoff; return when."""
    when = now + backoff(attempts, base=base)
    conn.execute(
        effects.update()
        .where(effects.c.id == effect_id)
        .values(
            state=EffectState.PENDING.value,
            claimed_until=None,
            next_attempt_at=utc(when),
            detail=error[:500],
        )
    )
    return when


@dataclass(frozen=True)
class Failed:
    """An effect that gave up, and the event it was recorded for (None for an answer mail)."""

    effect_id: int
    key: str
    kind: str
    event_id: int | None


def fail(conn: Connection, effect_id: int, *, error: str) -> Failed:
    """Give up on an effect: state failed; the caller records the ``effect.failed`` event."""
    row = conn.execute(
        effects.update()
        .where(effects.c.id == effect_id)
        .values(state=EffectState.FAILED.value, claimed_until=None, detail=error[:500])
        .returning(effects.c.key, effects.c.kind, effects.c.event_id)
    ).one()
    return Failed(effect_id, row.key, row.kind, row.event_id)


def undelivered(conn: Connection, event_id: int, *, now: dt.datetime) -> list[int]:
    """The event's effects never attempted, or whose claim ran out (a dead delivery)."""
    rows = conn.execute(
        sa.select(effects.c.id)
        .where(
            effects.c.event_id == event_id,
            sa.or_(
                sa.and_(
                    effects.c.state == EffectState.PENDING.value,
                    effects.c.attempts == 0,
                    effects.c.next_attempt_at.is_(None),
                ),
                sa.and_(
                    effects.c.state == EffectState.SENDING.value,
                    effects.c.claimed_until < utc(now),
                ),
            ),
        )
        .order_by(effects.c.id)
    )
    return [row.id for row in rows]


def due(conn: Connection, *, now: dt.datetime, stale_before: dt.datetime, limit: int) -> list[int]:
    """Effects to deliver now: retries that are due, forgotten ones, expired claims."""
    rows = conn.execute(
        sa.select(effects.c.id)
        .where(
            sa.or_(
                sa.and_(
                    effects.c.state == EffectState.PENDING.value,
                    sa.or_(
                        effects.c.next_attempt_at <= utc(now),
                        sa.and_(
                            effects.c.next_attempt_at.is_(None),
                            effects.c.created_at < utc(stale_before),
                        ),
                    ),
                ),
                sa.and_(
                    effects.c.state == EffectState.SENDING.value,
                    effects.c.claimed_until < utc(now),
                ),
            )
        )
        .order_by(effects.c.id)
        .limit(limit)
    )
    return [row.id for row in rows]


def listing(conn: Connection, *, state: EffectState | None = None) -> list[dict[str, Any]]:
    query = sa.select(effects).order_by(effects.c.id)
    if state is not None:
        query = query.where(effects.c.state == state.value)
    return [
        {
            "id": row.id,
            "key": row.key,
            "kind": row.kind,
            "event_id": row.event_id,
            "state": row.state,
            "attempts": row.attempts,
            "created_at": aware(row.created_at),
            "done_at": aware(row.done_at),
            "detail": row.detail,
        }
        for row in conn.execute(query)
    ]


def reset(conn: Connection, effect_ids: Sequence[int]) -> int:
    """Make failed effects pending again (``council effects retry``)."""
    result = conn.execute(
        effects.update()
        .where(effects.c.id.in_(effect_ids), effects.c.state == EffectState.FAILED.value)
        .values(state=EffectState.PENDING.value, attempts=0, next_attempt_at=None, detail=None)
    )
    return int(result.rowcount)
