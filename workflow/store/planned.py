"""Points planned to start on a later day: recorded by ``start``, started by the sweep.

``council start`` records each point whose planned start is still ahead; the
deadline sweep reads only the rows whose day has come (indexed on ``start_on``),
starts each point and deletes its row in the same transaction. Every function
takes the caller's connection.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from workflow.store import fast
from workflow.store.tables import planned_starts, utc


@dataclass(frozen=True)
class PlannedStart:
    """A point the sweep will start on ``start_on``."""

    assignment: str
    number: int
    start_on: dt.date

    @property
    def address(self) -> str:
        return f"{self.assignment}/{self.number}"


def plan_starts(
    conn: Connection, assignment: str, start_on: Mapping[int, dt.date], *, now: dt.datetime
) -> None:
    """Record (or move) the day each point starts; points not named are left as they are."""
    table = planned_starts
    for number, day in start_on.items():
        key = (table.c.assignment == assignment) & (table.c.number == number)
        moved = conn.execute(
            table.update().where(key & (table.c.start_on != day)).values(start_on=day)
        )
        if moved.rowcount:
            continue
        exists = conn.execute(sa.select(table.c.number).where(key)).first()
        if exists is None:
            conn.execute(
                table.insert().values(
                    assignment=assignment, number=number, start_on=day, planned_at=utc(now)
                )
            )


_UNPLAN = planned_starts.delete().where(
    (planned_starts.c.assignment == sa.bindparam("a"))
    & (planned_starts.c.number == sa.bindparam("n"))
)


def unplan(conn: Connection, assignment: str, number: int) -> None:
    """The point started (or is no longer planned): the sweep stops looking at it."""
    if fast.usable(conn):
        fast.unplan(conn, assignment, number)
        return
    conn.execute(_UNPLAN, {"a": assignment, "n": number})


def due_starts(conn: Connection, today: dt.date, limit: int | None) -> list[PlannedStart]:
    """Planned starts whose day has come, oldest first; PostgreSQL skips rows other sweeps hold."""
    table = planned_starts
    query = (
        sa.select(table)
        .where(table.c.start_on <= today)
        .order_by(table.c.start_on, table.c.assignment, table.c.number)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [PlannedStart(r.assignment, r.number, r.start_on) for r in conn.execute(query)]


def due_starts_held_elsewhere(conn: Connection, today: dt.date) -> int:
    """PostgreSQL: how many due planned starts another transaction holds now."""
    due = sa.select(planned_starts.c.number).where(planned_starts.c.start_on <= today)
    lockable = due.with_for_update(skip_locked=True).subquery()
    return due_start_count(conn, today) - int(
        conn.execute(sa.select(sa.func.count()).select_from(lockable)).scalar_one()
    )


def due_start_count(conn: Connection, today: dt.date) -> int:
    """How many points a sweep ``today`` would start (a snapshot, for a progress bar)."""
    query = sa.select(sa.func.count()).where(planned_starts.c.start_on <= today)
    return int(conn.execute(query).scalar_one())


def planned(conn: Connection, assignment: str | None = None) -> dict[tuple[str, int], dt.date]:
    """Each planned point's start day, by (assignment, number)."""
    query = sa.select(planned_starts)
    if assignment is not None:
        query = query.where(planned_starts.c.assignment == assignment)
    return {(r.assignment, r.number): r.start_on for r in conn.execute(query)}
