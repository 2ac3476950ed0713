"""Durable state: SQLAlchemy 2 tables and the queries the engine needs.

The ``events`` table is the truth and the audit trail (append-only, ids
increase monotonically). ``points`` and ``steps`` are projections kept in the
same transaction for fast queries, and ``points.version`` is the optimistic
lock. ``outbox`` lists events still to publish; ``effects`` records each side
effect once, by a unique key, for the workers.

Every function takes the caller's :class:`~sqlalchemy.engine.Connection`, so
it joins the caller's transaction; nothing here commits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.engine import Connection, Engine

from workflow.events import Event, EventType
from workflow.state import Category, PointState

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)
#: Event ids: BIGINT on PostgreSQL, INTEGER (the rowid alias) on SQLite.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Stamp = sa.DateTime(timezone=True)

assignments = sa.Table(
    "assignments",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("structure", sa.JSON, nullable=False),
    sa.Column("source", sa.String(500), nullable=False),
    sa.Column("started_at", Stamp, nullable=False),
)

points = sa.Table(
    "points",
    metadata,
    sa.Column("assignment", sa.String(64), sa.ForeignKey("assignments.id"), primary_key=True),
    sa.Column("number", sa.Integer, primary_key=True),
    sa.Column("category", sa.String(16), nullable=False),
    sa.Column("started_at", Stamp),
    sa.Column("completed_at", Stamp),
    sa.Column("written_off_at", Stamp),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("updated_at", Stamp, nullable=False),
)

steps = sa.Table(
    "steps",
    metadata,
    sa.Column("assignment", sa.String(64), primary_key=True),
    sa.Column("number", sa.Integer, primary_key=True),
    sa.Column("step", sa.String(64), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("owner", sa.String(64), nullable=False),
    sa.Column("due", sa.Date),
    sa.Column("activated_at", Stamp),
    sa.Column("begun_at", Stamp),
    sa.Column("finished_at", Stamp),
    sa.Column("held_since", Stamp),
    # The first day the deadline sweep must look at this step; indexed, so a
    # sweep reads only what is due, however many steps are open.
    sa.Column("next_check_at", sa.Date),
    sa.ForeignKeyConstraint(["assignment", "number"], ["points.assignment", "points.number"]),
    sa.Index("ix_steps_owner_status", "owner", "status"),
    sa.Index("ix_steps_next_check_at", "next_check_at"),
)

firings = sa.Table(
    "firings",
    metadata,
    # (step, due date, kind, level): each reminder or escalation of a due date, once.
    sa.Column("key", sa.String(300), primary_key=True),
    sa.Column("assignment", sa.String(64), nullable=False),
    sa.Column("point", sa.Integer, nullable=False),
    sa.Column("step", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("level", sa.Integer, nullable=False),
    sa.Column("fired_at", Stamp, nullable=False),
    sa.Column("event_id", BigId, sa.ForeignKey("events.id")),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("type", sa.String(40), nullable=False),
    sa.Column("assignment", sa.String(64), nullable=False),
    sa.Column("point", sa.Integer, nullable=False),
    sa.Column("step", sa.String(64)),
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("occurred_at", Stamp, nullable=False),
    sa.Column("recorded_at", Stamp, nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("schema_version", sa.Integer, nullable=False),
    sa.Index("ix_events_assignment_point_id", "assignment", "point", "id"),
)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("event_id", BigId, sa.ForeignKey("events.id"), nullable=False, unique=True),
    sa.Column("created_at", Stamp, nullable=False),
    sa.Column("published_at", Stamp),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text),
    # A relay holds a row until then while it publishes; a crashed relay's
    # claim simply expires.
    sa.Column("claimed_until", Stamp),
    # Set when every handler subscribed to the event has processed it.
    sa.Column("handled_at", Stamp),
    sa.Index("ix_outbox_unpublished", "published_at", "id"),
    sa.Index("ix_outbox_unhandled", "handled_at", "published_at"),
)

processed = sa.Table(
    "processed",
    metadata,
    sa.Column("event_id", BigId, sa.ForeignKey("events.id"), primary_key=True),
    sa.Column("handler", sa.String(80), primary_key=True),
    sa.Column("processed_at", Stamp, nullable=False),
)

effects = sa.Table(
    "effects",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(200), nullable=False, unique=True),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("event_id", BigId, sa.ForeignKey("events.id")),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", Stamp, nullable=False),
    sa.Column("done_at", Stamp),
    sa.Column("detail", sa.Text),
    sa.Column("payload", sa.JSON),
    sa.Column("claimed_until", Stamp),
    sa.Column("next_attempt_at", Stamp),
    sa.Index("ix_effects_state_next", "state", "next_attempt_at"),
)

replies = sa.Table(
    "replies",
    metadata,
    # The reply's Message-ID (or a digest of its bytes when it has none): a
    # message is processed once, whichever way it arrives and however often.
    sa.Column("message_key", sa.String(200), primary_key=True),
    sa.Column("received_at", Stamp, nullable=False),
    sa.Column("sender", sa.String(320)),
    sa.Column("person", sa.String(64)),
    sa.Column("step", sa.String(200)),
    # done (commands ran), refused (nothing changed), ignored (automatic mail).
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("reason", sa.String(40)),
    sa.Column("event_ids", sa.JSON),
)


# --- connections -----------------------------------------------------------------


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers work while one writer commits; the busy timeout makes a
    # second writer wait for the lock instead of failing at once.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def connect(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and foreign keys."""
    # hide_parameters: an error message never carries a note or an e-mail address.
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, hide_parameters=True)
        sa_event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return sa.create_engine(url, pool_pre_ping=True, hide_parameters=True)


# --- time ------------------------------------------------------------------------


def utc(value: dt.datetime | None) -> dt.datetime | None:
    """Stored times are UTC: SQLite keeps no zone, so the zone must be implied."""
    return value.astimezone(dt.UTC) if value is not None else None


def aware(value: dt.datetime | None) -> dt.datetime | None:
    """A time read back: naive values (SQLite) are UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)


# --- events ----------------------------------------------------------------------


def append_events(conn: Connection, new: Iterable[Event], *, now: dt.datetime) -> list[int]:
    """Insert events and their outbox rows; return the new event ids in order."""
    ids: list[int] = []
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
            )
            .returning(events.c.id)
        ).scalar_one()
        conn.execute(outbox.insert().values(event_id=event_id, created_at=utc(now), attempts=0))
        ids.append(event_id)
    return ids


def _to_event(row: sa.Row[Any]) -> Event:
    occurred = aware(row.occurred_at)
    assert occurred is not None
    return Event(
        type=EventType(row.type),
        assignment=row.assignment,
        point=row.point,
        step=row.step,
        actor=row.actor,
        occurred_at=occurred,
        data=row.payload,
        schema_version=row.schema_version,
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
    return [_to_event(row) for row in conn.execute(query)]


def get_event(conn: Connection, event_id: int) -> Event | None:
    row = conn.execute(sa.select(events).where(events.c.id == event_id)).first()
    return _to_event(row) if row is not None else None


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
    return [(row.id, _to_event(row)) for row in conn.execute(query)]


# --- assignments and points ------------------------------------------------------


#: The events after which a step's reply addresses are new.
OWNER_EVENTS = (
    EventType.STEP_ACTIVATED.value,
    EventType.STEP_REASSIGNED.value,
    EventType.STEP_REOPENED.value,
)


def owner_event(conn: Connection, assignment: str, point: int, step: str) -> int | None:
    """The id of the event that last gave a step its owner: activation, reassignment, reopening.

    Reply addresses are signed over it, so each of these expires the ones sent before.
    """
    found = conn.execute(
        sa.select(sa.func.max(events.c.id)).where(
            events.c.assignment == assignment,
            events.c.point == point,
            events.c.step == step,
            events.c.type.in_(OWNER_EVENTS),
        )
    ).scalar_one_or_none()
    return int(found) if found is not None else None


def get_assignment(conn: Connection, assignment_id: str) -> sa.Row[Any] | None:
    return conn.execute(
        sa.select(assignments).where(assignments.c.id == assignment_id)
    ).one_or_none()


def all_assignments(conn: Connection) -> list[sa.Row[Any]]:
    return list(conn.execute(sa.select(assignments).order_by(assignments.c.id)))


def insert_assignment(
    conn: Connection,
    *,
    assignment_id: str,
    digest: str,
    structure: dict[str, Any],
    source: str,
    now: dt.datetime,
) -> None:
    conn.execute(
        assignments.insert().values(
            id=assignment_id,
            digest=digest,
            structure=structure,
            source=source,
            started_at=utc(now),
        )
    )


def update_assignment_definition(
    conn: Connection, assignment_id: str, *, digest: str, structure: dict[str, Any], source: str
) -> None:
    conn.execute(
        assignments.update()
        .where(assignments.c.id == assignment_id)
        .values(digest=digest, structure=structure, source=source)
    )


def point_version(conn: Connection, assignment: str, number: int) -> int | None:
    """The point's version, or None when it has no row yet (never started)."""
    return conn.execute(
        sa.select(points.c.version).where(
            points.c.assignment == assignment, points.c.number == number
        )
    ).scalar_one_or_none()


def point_rows(conn: Connection, assignment: str | None = None) -> list[sa.Row[Any]]:
    query = sa.select(points).order_by(points.c.assignment, points.c.number)
    if assignment is not None:
        query = query.where(points.c.assignment == assignment)
    return list(conn.execute(query))


def step_rows(conn: Connection, assignment: str | None = None) -> list[sa.Row[Any]]:
    query = sa.select(steps).order_by(steps.c.assignment, steps.c.number)
    if assignment is not None:
        query = query.where(steps.c.assignment == assignment)
    return list(conn.execute(query))


def save_point(
    conn: Connection,
    state: PointState,
    category: Category,
    *,
    expected_version: int | None,
    now: dt.datetime,
    next_checks: dict[str, dt.date | None] | None = None,
) -> bool:
    """Write the point's projection if nobody changed it since ``expected_version``.

    Returns False when the optimistic lock fails (the caller rolls back).
    """
    values = {
        "category": category.value,
        "started_at": utc(state.started_at),
        "completed_at": utc(state.completed_at),
        "written_off_at": utc(state.written_off_at),
        "updated_at": utc(now),
    }
    key = (points.c.assignment == state.assignment) & (points.c.number == state.number)
    if expected_version is None:
        conn.execute(
            points.insert().values(
                assignment=state.assignment, number=state.number, version=1, **values
            )
        )
    else:
        result = conn.execute(
            points.update()
            .where(key & (points.c.version == expected_version))
            .values(version=expected_version + 1, **values)
        )
        if result.rowcount != 1:
            return False
    _save_steps(conn, state, next_checks or {})
    return True


def _save_steps(
    conn: Connection, state: PointState, next_checks: dict[str, dt.date | None]
) -> None:
    key = (steps.c.assignment == state.assignment) & (steps.c.number == state.number)
    conn.execute(steps.delete().where(key))
    rows: Sequence[dict[str, Any]] = [
        {
            "assignment": state.assignment,
            "number": state.number,
            "step": s.id,
            "status": s.status.value,
            "owner": s.owner,
            "due": s.due,
            "activated_at": utc(s.activated_at),
            "begun_at": utc(s.begun_at),
            "finished_at": utc(s.finished_at),
            "held_since": utc(s.held_since),
            "next_check_at": next_checks.get(s.id),
        }
        for s in state.steps
    ]
    if rows:
        conn.execute(steps.insert(), list(rows))
