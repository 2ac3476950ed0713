"""The event log: appending events with their outbox rows, reading them back.

Every function takes the caller's :class:`~sqlalchemy.engine.Connection`, so
it joins the caller's transaction; nothing here commits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from workflow.core.events import Event, EventType, payload_of
from workflow.store import fast
from workflow.store.tables import aware, events, outbox, utc

#: Built once: SQLAlchemy caches their compiled form, and their cache key with them.
_INSERT_EVENTS = events.insert().returning(events.c.id, sort_by_parameter_order=True)
_INSERT_OUTBOX = outbox.insert()


def append_events(
    conn: Connection,
    new: Iterable[Event],
    *,
    now: dt.datetime,
    claimed_until: dt.datetime | None = None,
    login: str | None = None,
) -> list[int]:
    """Insert events and their outbox rows; return the new event ids in order.

    An event without a login is stored with ``login`` (the writing process's).

    With ``claimed_until``, the rows are born claimed by the writer, which publishes them
    right after its commit: a relay leaves them alone until then, so each is published
    once (a writer that dies before publishing leaves them to the relay after the lease).
    """
    recorded = utc(now)
    assert recorded is not None
    if fast.usable(conn):
        rows = [
            (item.type.value, item.assignment, item.point, item.step, item.actor,
             item.occurred_at, recorded, item.data, item.schema_version, item.recorded_by,
             (item.login or login or "")[:64] or None)
            for item in new
        ]  # fmt: skip
        if not rows:
            return []
        claim = (1, claimed_until) if claimed_until else (0, None)
        return fast.append_events(conn, rows, (recorded, *claim))
    return _append_events(conn, new, recorded, claimed_until, login)


def _append_events(
    conn: Connection,
    new: Iterable[Event],
    recorded: dt.datetime,
    claimed_until: dt.datetime | None,
    login: str | None,
) -> list[int]:
    rows = [
        {
            "type": item.type.value,
            "assignment": item.assignment,
            "point": item.point,
            "step": item.step,
            "actor": item.actor,
            "occurred_at": utc(item.occurred_at),
            "recorded_at": recorded,
            "payload": item.data,
            "schema_version": item.schema_version,
            "recorded_by": item.recorded_by,
            "login": (item.login or login or "")[:64] or None,
        }
        for item in new
    ]
    if not rows:
        return []
    # One statement for all of them (insertmanyvalues), the ids in the rows' order.
    ids = [int(i) for i in conn.execute(_INSERT_EVENTS, rows).scalars()]
    claim = {"claimed_until": utc(claimed_until), "attempts": 1} if claimed_until else {}
    outboxed = {"created_at": recorded, "attempts": 0, "claimed_until": None} | claim
    conn.execute(_INSERT_OUTBOX, [{"event_id": i, **outboxed} for i in ids])
    return ids


def to_event(row: sa.Row[Any]) -> Event:
    occurred = aware(row.occurred_at)
    assert occurred is not None
    type_ = EventType(row.type)
    return Event(
        type=type_,
        assignment=row.assignment,
        point=row.point,
        step=row.step,
        actor=row.actor,
        occurred_at=occurred,
        payload=payload_of(type_, row.payload),
        schema_version=row.schema_version,
        recorded_by=row.recorded_by,
        login=row.login,
    )


def point_events(
    conn: Connection, assignment: str, number: int, *, until: dt.datetime | None = None
) -> list[Event]:
    """A point's events in the order they happened (optionally up to ``until``)."""
    query = (
        sa.select(events)
        .where(events.c.assignment == assignment, events.c.point == number)
        .order_by(events.c.id)
    )
    if until is not None:
        query = query.where(events.c.occurred_at <= utc(until))
    return [to_event(row) for row in conn.execute(query)]


_FROM = (
    sa.select(events)
    .where(
        events.c.assignment == sa.bindparam("a"),
        events.c.point == sa.bindparam("n"),
        events.c.id >= sa.bindparam("since"),
    )
    .order_by(events.c.id)
)


_POINT_HISTORY = (
    sa.select(events)
    .where(events.c.assignment == sa.bindparam("a"), events.c.point == sa.bindparam("n"))
    .order_by(events.c.id)
)


def point_events_after(
    conn: Connection, assignment: str, number: int, last_id: int
) -> list[tuple[int, Event]] | None:
    """The point's events after its event ``last_id``, with their ids, in order; None when
    ``last_id`` is not an event of this point (what claims to follow it cannot be trusted).

    One indexed range read: a snapshot as of ``last_id`` plus these is the point's state.
    """
    rows = conn.execute(_FROM, {"a": assignment, "n": number, "since": last_id}).all()
    if not rows or rows[0].id != last_id:
        return None
    return [(row.id, to_event(row)) for row in rows[1:]]


def get_event(conn: Connection, event_id: int) -> Event | None:
    row = conn.execute(sa.select(events).where(events.c.id == event_id)).first()
    return to_event(row) if row is not None else None


def get_events(conn: Connection, event_ids: Iterable[int]) -> dict[int, Event]:
    """The events with these ids that exist, by id (one query)."""
    ids = sorted(set(event_ids))
    if not ids:
        return {}
    rows = conn.execute(sa.select(events).where(events.c.id.in_(ids)).order_by(events.c.id))
    return {row.id: to_event(row) for row in rows}


def list_events(
    conn: Connection,
    *,
    assignment: str | None = None,
    point: int | None = None,
    since: int = 0,
    limit: int | None = None,
    probe: bool = False,
) -> list[tuple[int, Event]]:
    """Events with their ids, oldest first, filtered. With ``probe``, a point's history is
    first probed for being empty (one indexed step: the engine's start of a new point);
    the handlers read points that have events, and skip the probe."""
    if assignment is not None and point is not None and not since and limit is None:
        if probe and fast.usable(conn) and not fast.has_events(conn, assignment, point):
            return []  # a point starting: one indexed probe
        rows = conn.execute(_POINT_HISTORY, {"a": assignment, "n": point})  # built once
        return [(row.id, to_event(row)) for row in rows]
    query = sa.select(events).where(events.c.id > since).order_by(events.c.id)
    if assignment is not None:
        query = query.where(events.c.assignment == assignment)
    if point is not None:
        query = query.where(events.c.point == point)
    if limit is not None:
        query = query.limit(limit)
    return [(row.id, to_event(row)) for row in conn.execute(query)]
