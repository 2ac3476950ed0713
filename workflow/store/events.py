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
from workflow.store.tables import aware, events, outbox, utc


def append_events(
    conn: Connection,
    new: Iterable[Event],
    *,
    now: dt.datetime,
    claimed_until: dt.datetime | None = None,
) -> list[int]:
    """Insert events and their outbox rows; return the new event ids in order.

    With ``claimed_until``, the rows are born claimed by the writer, which publishes them
    right after its commit: a relay leaves them alone until then, so each is published
    once (a writer that dies before publishing leaves them to the relay after the lease).
    """
    ids: list[int] = []
    claim = {"claimed_until": utc(claimed_until), "attempts": 1} if claimed_until else {}
    for item in new:
        event_id = conn.execute(
            events.insert()
            .values(
                type=item.type.value,
                assignment=item.assignment,
                point=item.point,
                step=item.step,
                actor=item.actor,
                occurred_at=utc(item.occurred_at),
                recorded_at=utc(now),
                payload=item.data,
                schema_version=item.schema_version,
                recorded_by=item.recorded_by,
                login=item.login[:64] if item.login else None,
            )
            .returning(events.c.id)
        ).scalar_one()
        conn.execute(
            outbox.insert().values(
                event_id=event_id, created_at=utc(now), **({"attempts": 0} | claim)
            )
        )
        ids.append(event_id)
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


def get_event(conn: Connection, event_id: int) -> Event | None:
    row = conn.execute(sa.select(events).where(events.c.id == event_id)).first()
    return to_event(row) if row is not None else None


def list_events(
    conn: Connection,
    *,
    assignment: str | None = None,
    point: int | None = None,
    since: int = 0,
    limit: int | None = None,
) -> list[tuple[int, Event]]:
    """Events with their ids, oldest first, filtered."""
    query = sa.select(events).where(events.c.id > since).order_by(events.c.id)
    if assignment is not None:
        query = query.where(events.c.assignment == assignment)
    if point is not None:
        query = query.where(events.c.point == point)
    if limit is not None:
        query = query.limit(limit)
    return [(row.id, to_event(row)) for row in conn.execute(query)]
