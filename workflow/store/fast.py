"""Fast statements: a command's hot statements sent straight to the driver.

An engine command runs the same few statements every time: the point's head (with its
assignment's digest), the events and their outbox rows, the point's row, its changed step
rows; a start, the point's and its steps' INSERTs. Through SQLAlchemy Core each costs
about 0.1 ms of Python on top of the database's own work (the compiled cache's lookup,
the parameters' and the result's processing); here each is a precomputed SQL string with
a tuple of parameters, executed on the driver's connection under the caller's
:class:`~sqlalchemy.engine.Connection`, so in the same transaction, committed or rolled
back with it. Nothing else changes: the same rows,
the same values in them as Core writes (``tests/integration/test_fast.py`` checks both
paths write the same rows on SQLite and PostgreSQL):

- times in UTC; on SQLite as Core's ``DATETIME`` text (``YYYY-MM-DD HH:MM:SS.ffffff``,
  no zone), on PostgreSQL as aware datetimes (``timestamptz``); dates as ISO text on SQLite;
- JSON as ``json.dumps`` text, what Core's JSON type writes (``::json`` on PostgreSQL;
  None as JSON ``null``, as Core's ``JSON`` does);
- read back as Core reads: naive times from SQLite (:func:`~workflow.store.tables.aware`
  makes them UTC); a snapshot as its JSON text (:mod:`workflow.store.points` decodes it,
  or takes the snapshot it wrote as that text).

:func:`usable` says whether a connection may take this path: SQLite (``sqlite3``) or
PostgreSQL (psycopg 3), and nobody listening to the engine's statements (the console's
"waiting for the database" notice does; such a connection keeps the Core path). A
driver's error is raised as SQLAlchemy's (``sa.exc.IntegrityError``, ...), as Core
raises it, its parameters hidden.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

#: A row of ``events``: type, assignment, point, step, actor, occurred_at, recorded_at,
#: payload, schema_version, recorded_by, login (times aware, the payload a dict).
EventRow = tuple[Any, ...]
#: Of a step row: status, owner, due, activated_at, begun_at, finished_at, held_since,
#: next_check_at, then its key: assignment, number, step.
StepRow = tuple[Any, ...]

#: Only placeholders and these constants are formatted into the SQL (hence ``noqa: S608``).
_EVENT_COLUMNS = (
    "type, assignment, point, step, actor, occurred_at, recorded_at, payload, "
    "schema_version, recorded_by, login"
)
#: Which of an event row's values are times, and which JSON.
_EVENT_STAMPS = (5, 6)
_EVENT_JSON = 7


def _sqlite_stamp(value: dt.datetime | None) -> str | None:
    """What Core's SQLite ``DATETIME`` writes for an aware time: its UTC, no zone."""
    if value is None:
        return None
    # "YYYY-MM-DD HH:MM:SS.ffffff+00:00" without its offset
    return value.astimezone(dt.UTC).isoformat(" ", "microseconds")[:26]


def _sqlite_day(value: dt.date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _sqlite_read_stamp(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value is not None else None


def _pg_stamp(value: dt.datetime | None) -> dt.datetime | None:
    return value.astimezone(dt.UTC) if value is not None else None


def _same(value: Any) -> Any:
    return value


@dataclass(frozen=True, slots=True)
class _Dialect:
    """How one driver takes the statements: its SQL and its values."""

    head: str
    digest: str
    version: str
    unplan: str
    any_event: str
    any_version: str
    insert_point: str
    update_point: str
    insert_step: str
    #: A step UPDATE's placeholders: text (or integer), time, date.
    marks: tuple[str, str, str]
    #: The events' INSERT for n rows, and the outbox rows' (built on first use).
    events: Callable[[int], str]
    outbox: Callable[[int], str]
    stamp: Callable[[dt.datetime | None], Any]
    day: Callable[[dt.date | None], Any]
    read_stamp: Callable[[Any], dt.datetime | None]


_HEAD = (
    "SELECT p.version, {2}, p.last_event_id, p.last_event_at, "
    "(SELECT e.id FROM events e WHERE e.assignment = p.assignment AND e.point = p.number "
    "ORDER BY e.id DESC LIMIT 1), "
    "(SELECT a.digest FROM assignments a WHERE a.id = p.assignment) "
    "FROM points p WHERE p.assignment = {0} AND p.number = {1}"
)
_DIGEST = "SELECT digest FROM assignments WHERE id = {0}"
_VERSION = "SELECT version FROM points WHERE assignment = {0} AND number = {1}"
_UNPLAN = "DELETE FROM planned_starts WHERE assignment = {0} AND number = {1}"
_ANY_EVENT = "SELECT 1 FROM events WHERE assignment = {0} AND point = {1} LIMIT 1"
_ANY_VERSION = "SELECT 1 FROM definition_versions WHERE assignment = {0} LIMIT 1"
_INSERT_POINT = (
    "INSERT INTO points (version, category, started_at, completed_at, written_off_at, "
    "updated_at, snapshot, last_event_id, last_event_at, assignment, number) "
    "VALUES (1, {0}, {1}, {1}, {1}, {1}, {2}, {0}, {1}, {0}, {0})"
)
_INSERT_STEP = (
    "INSERT INTO steps (status, owner, due, activated_at, begun_at, finished_at, held_since, "
    "next_check_at, assignment, number, step) VALUES ({0}, {0}, {2}, {1}, {1}, {1}, {1}, {2}, "
    "{0}, {0}, {0})"
)
_UPDATE_POINT = (
    "UPDATE points SET version = {0}, category = {0}, started_at = {1}, "
    "completed_at = {1}, written_off_at = {1}, updated_at = {1}, snapshot = {2}, "
    "last_event_id = {0}, last_event_at = {1} "
    "WHERE assignment = {0} AND number = {0} AND version = {0}"
)
#: A step row's values in :data:`StepRow`'s order, with their kinds (0 text, 1 time, 2 date).
STEP_COLUMNS = (
    "status", "owner", "due", "activated_at", "begun_at", "finished_at", "held_since",
    "next_check_at",
)  # fmt: skip
_STEP_KINDS = (0, 0, 2, 1, 1, 1, 1, 2)


@functools.cache
def _update_step(marks: tuple[str, str, str], columns: tuple[int, ...]) -> str:
    """The step rows' UPDATE setting only these columns (indexes into
    :data:`STEP_COLUMNS`): SQLite rewrites an index entry for each column set, changed or
    not (``next_check_at`` and ``owner, status`` are indexed)."""
    sets = ", ".join(f"{STEP_COLUMNS[i]} = {marks[_STEP_KINDS[i]]}" for i in columns)
    t = marks[0]
    return f"UPDATE steps SET {sets} WHERE assignment = {t} AND number = {t} AND step = {t}"  # noqa: S608


@functools.cache
def _sqlite_events(n: int) -> str:
    rows = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"] * n)
    return f"INSERT INTO events ({_EVENT_COLUMNS}) VALUES {rows} RETURNING id"  # noqa: S608


@functools.cache
def _sqlite_outbox(n: int) -> str:
    rows = ", ".join(["(?, ?, ?, ?)"] * n)
    return f"INSERT INTO outbox (event_id, created_at, attempts, claimed_until) VALUES {rows}"  # noqa: S608


_PG_EVENT_ROW = (
    "(%s::varchar, %s::varchar, %s::integer, %s::varchar, %s::varchar, %s::timestamptz, "
    "%s::timestamptz, %s::json, %s::integer, %s::varchar, %s::varchar, {0})"
)


@functools.cache
def _pg_events(n: int) -> str:
    """The ids are drawn in the rows' order (``ORDER BY``), as Core's sorted RETURNING."""
    rows = ", ".join(_PG_EVENT_ROW.format(i) for i in range(n))
    return (
        f"INSERT INTO events ({_EVENT_COLUMNS}) SELECT {_EVENT_COLUMNS} FROM (VALUES {rows}) "  # noqa: S608
        f"AS v({_EVENT_COLUMNS}, ord) ORDER BY ord RETURNING id"
    )


@functools.cache
def _pg_outbox(n: int) -> str:
    rows = ", ".join(["(%s::bigint, %s::timestamptz, %s::integer, %s::timestamptz)"] * n)
    return f"INSERT INTO outbox (event_id, created_at, attempts, claimed_until) VALUES {rows}"  # noqa: S608


_SQLITE = _Dialect(
    head=_HEAD.format("?", "?", "p.snapshot"),
    digest=_DIGEST.format("?"),
    version=_VERSION.format("?", "?"),
    unplan=_UNPLAN.format("?", "?"),
    any_event=_ANY_EVENT.format("?", "?"),
    any_version=_ANY_VERSION.format("?"),
    insert_point=_INSERT_POINT.format("?", "?", "?"),
    update_point=_UPDATE_POINT.format("?", "?", "?"),
    insert_step=_INSERT_STEP.format("?", "?", "?"),
    marks=("?", "?", "?"),
    events=_sqlite_events,
    outbox=_sqlite_outbox,
    stamp=_sqlite_stamp,
    day=_sqlite_day,
    read_stamp=_sqlite_read_stamp,
)
_POSTGRES = _Dialect(
    head=_HEAD.format("%s::varchar", "%s::integer", "p.snapshot::text"),
    digest=_DIGEST.format("%s::varchar"),
    version=_VERSION.format("%s::varchar", "%s::integer"),
    unplan=_UNPLAN.format("%s::varchar", "%s::integer"),
    any_event=_ANY_EVENT.format("%s::varchar", "%s::integer"),
    any_version=_ANY_VERSION.format("%s::varchar"),
    insert_point=_INSERT_POINT.format("%s", "%s::timestamptz", "%s::json"),
    update_point=_UPDATE_POINT.format("%s", "%s::timestamptz", "%s::json"),
    insert_step=_INSERT_STEP.format("%s", "%s::timestamptz", "%s::date"),
    marks=("%s", "%s::timestamptz", "%s::date"),
    events=_pg_events,
    outbox=_pg_outbox,
    stamp=_pg_stamp,
    day=_same,
    read_stamp=_same,
)
_DIALECTS = {("sqlite", "pysqlite"): _SQLITE, ("postgresql", "psycopg"): _POSTGRES}


def usable(conn: Connection) -> bool:
    """Whether ``conn`` may take the fast statements: a driver they are written for, and
    no listener on the engine's statements (which they would bypass)."""
    listened = conn._has_events or conn.engine._has_events  # as Core checks before each
    return not listened and (conn.dialect.name, conn.dialect.driver) in _DIALECTS


def _dialect(conn: Connection) -> _Dialect:
    return _DIALECTS[(conn.dialect.name, conn.dialect.driver)]


def _cursor(conn: Connection) -> Any:
    """A cursor of the driver's connection ``conn`` holds (for sqlite3 and psycopg the
    DBAPI connection is the driver's own)."""
    return conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]


def _execute(conn: Connection, sql: str, params: Sequence[Any]) -> Any:
    """Run one statement on the driver's connection in ``conn``'s transaction; its cursor."""
    cursor = _cursor(conn)
    try:
        cursor.execute(sql, params)
    except conn.dialect.loaded_dbapi.Error as exc:
        _raise(conn, sql, exc)
    return cursor


def _raise(conn: Connection, sql: str, exc: Exception) -> None:
    dbapi = conn.dialect.loaded_dbapi
    raise sa.exc.DBAPIError.instance(
        sql, None, exc, dbapi.Error, hide_parameters=True, dialect=conn.dialect
    ) from exc


@dataclass(frozen=True, slots=True)
class HeadRow:
    """The point's row as :func:`point_head` reads it (times as the driver gives them)."""

    version: int
    #: Its JSON text, as stored (see :func:`~workflow.store.points.point_head`).
    snapshot: str | None
    last_event_id: int | None
    last_event_at: dt.datetime | None
    latest: int | None
    digest: str | None


def point_head(conn: Connection, assignment: str, number: int) -> HeadRow | None:
    """The point's version, snapshot (its JSON text), last event, latest event id and its
    assignment's digest."""
    d = _dialect(conn)
    row = _execute(conn, d.head, (assignment, number)).fetchone()
    if row is None:
        return None
    version, snapshot, last_id, last_at, latest, digest = row
    return HeadRow(version, snapshot, last_id, d.read_stamp(last_at), latest, digest)


def assignment_digest(conn: Connection, assignment: str) -> str | None:
    row = _execute(conn, _dialect(conn).digest, (assignment,)).fetchone()
    return row[0] if row is not None else None


def append_events(
    conn: Connection, rows: Sequence[EventRow], outboxed: tuple[dt.datetime, int, Any]
) -> list[int]:
    """Insert the events (one statement) and an outbox row each (``created_at``,
    ``attempts``, ``claimed_until``: another); their ids in the rows' order."""
    d = _dialect(conn)
    params: list[Any] = []
    for row in rows:
        values = list(row)
        for i in _EVENT_STAMPS:
            values[i] = d.stamp(values[i])
        values[_EVENT_JSON] = json.dumps(values[_EVENT_JSON])
        params.extend(values)
    # SQLite draws rowids in the rows' order, PostgreSQL in the ORDER BY's: sorted ids are
    # the rows' (what Core's RETURNING sorted by parameter order gives).
    ids = sorted(int(i) for (i,) in _execute(conn, d.events(len(rows)), params).fetchall())
    created, attempts, claimed = d.stamp(outboxed[0]), outboxed[1], d.stamp(outboxed[2])
    boxed: list[Any] = []
    for event_id in ids:
        boxed.extend((event_id, created, attempts, claimed))
    _execute(conn, d.outbox(len(ids)), boxed)
    return ids


def point_version(conn: Connection, assignment: str, number: int) -> int | None:
    row = _execute(conn, _dialect(conn).version, (assignment, number)).fetchone()
    return row[0] if row is not None else None


def has_events(conn: Connection, assignment: str, number: int) -> bool:
    """Whether the point has any event (one step into the events' index)."""
    return _execute(conn, _dialect(conn).any_event, (assignment, number)).fetchone() is not None


def has_versions(conn: Connection, assignment: str) -> bool:
    """Whether any version of the assignment's definition is recorded."""
    return _execute(conn, _dialect(conn).any_version, (assignment,)).fetchone() is not None


def unplan(conn: Connection, assignment: str, number: int) -> None:
    """Delete the point's planned start, if any."""
    _execute(conn, _dialect(conn).unplan, (assignment, number))


#: When the point's row says it started, completed, was written off, was updated.
Times = tuple[dt.datetime | None, dt.datetime | None, dt.datetime | None, dt.datetime]


def _point_values(
    d: _Dialect,
    category: str,
    times: Times,
    snapshot: str,
    last_event: tuple[int | None, dt.datetime | None],
) -> tuple[Any, ...]:
    started, completed, written_off, updated = times
    return (
        category, d.stamp(started), d.stamp(completed), d.stamp(written_off), d.stamp(updated),
        snapshot, last_event[0], d.stamp(last_event[1]),
    )  # fmt: skip


def insert_point(
    conn: Connection,
    key: tuple[str, int],
    category: str,
    times: Times,
    snapshot: str,
    last_event: tuple[int | None, dt.datetime | None],
) -> None:
    """Insert the point ``key`` (assignment, number) at version 1 (see :func:`update_point`)."""
    d = _dialect(conn)
    _execute(conn, d.insert_point, (*_point_values(d, category, times, snapshot, last_event), *key))


def update_point(
    conn: Connection,
    key: tuple[str, int, int],
    category: str,
    times: Times,
    snapshot: str,
    last_event: tuple[int | None, dt.datetime | None],
) -> bool:
    """Update the point ``key`` (assignment, number, expected version) to the next version:
    its category, times (started, completed, written off, updated), snapshot (its JSON
    text: ``json.dumps`` of the value, ``null`` for none) and last event. False when its
    version is not the expected one (the optimistic lock)."""
    d = _dialect(conn)
    values = _point_values(d, category, times, snapshot, last_event)
    cursor = _execute(conn, d.update_point, (key[2] + 1, *values, *key))
    return bool(cursor.rowcount == 1)


def insert_steps(conn: Connection, rows: Sequence[StepRow]) -> None:
    """Insert step rows (values then key, as :data:`StepRow`), in one ``executemany``."""
    d = _dialect(conn)
    _execute_many(conn, d.insert_step, [_step_params(d, row, _ALL_STEP_COLUMNS) for row in rows])


def update_steps(conn: Connection, columns: tuple[int, ...], rows: Sequence[StepRow]) -> None:
    """Update step rows, in one ``executemany``: the ``columns`` (indexes into
    :data:`STEP_COLUMNS`, in its order) of each, to its values (in that order, then its
    key: assignment, number, step)."""
    d = _dialect(conn)
    _execute_many(
        conn, _update_step(d.marks, columns), [_step_params(d, row, columns) for row in rows]
    )


_ALL_STEP_COLUMNS = tuple(range(len(STEP_COLUMNS)))


def _step_params(d: _Dialect, row: StepRow, columns: tuple[int, ...]) -> list[Any]:
    values = list(row)
    for at, column in enumerate(columns):
        kind = _STEP_KINDS[column]
        if kind == 1:
            values[at] = d.stamp(values[at])
        elif kind == 2:
            values[at] = d.day(values[at])
    return values


def _execute_many(conn: Connection, sql: str, params: Sequence[Sequence[Any]]) -> None:
    cursor = _cursor(conn)
    try:
        cursor.executemany(sql, params)
    except conn.dialect.loaded_dbapi.Error as exc:
        _raise(conn, sql, exc)
