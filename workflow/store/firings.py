"""The deadline sweep's queries: which steps are due, and each firing recorded once by key.

A sweep reads only steps whose indexed ``next_check_at`` has come; each firing
is claimed by inserting its key into ``firings`` (a second sweep finds the key
and fires nothing). Every function takes the caller's connection.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from workflow.core.deadlines import Firing
from workflow.core.events import Event, FiringKind
from workflow.core.state import StepState
from workflow.store import dialect
from workflow.store.events import to_event
from workflow.store.points import step_state
from workflow.store.tables import events, firings, steps, utc


@dataclass(frozen=True)
class DueStep:
    """A step whose first check day has come, as the sweep read it."""

    assignment: str
    number: int
    state: StepState


def lock_for_sweep(conn: Connection) -> None:
    """Take the write lock before reading, as ``FOR UPDATE`` does on PostgreSQL.

    On SQLite a command committing between the sweep's read and its first write
    (a hold, an extension) would otherwise be swept from a stale read.
    """
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def due_steps(conn: Connection, today: dt.date, limit: int | None) -> list[DueStep]:
    """Steps to look at ``today``, oldest check first; PostgreSQL skips rows other sweeps hold."""
    query = (
        sa.select(steps)
        .where(steps.c.next_check_at <= today)
        .order_by(steps.c.next_check_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [DueStep(row.assignment, row.number, step_state(row)) for row in conn.execute(query)]


def due_count(conn: Connection, today: dt.date) -> int:
    """How many steps a sweep ``today`` would look at (a snapshot, for a progress bar)."""
    query = sa.select(sa.func.count()).where(steps.c.next_check_at <= today)
    return int(conn.execute(query).scalar_one())


def due_held_elsewhere(conn: Connection, today: dt.date) -> int:
    """PostgreSQL: how many due steps another transaction holds now (a sweep's rows are
    skipped, not waited for): the due rows this one cannot lock. Rows this transaction
    holds itself, or leaves due, are not counted. Locks what it can until the commit."""
    due = sa.select(steps.c.step).where(steps.c.next_check_at <= today)
    lockable = due.with_for_update(skip_locked=True).subquery()
    return due_count(conn, today) - int(
        conn.execute(sa.select(sa.func.count()).select_from(lockable)).scalar_one()
    )


def _step_key(due: DueStep) -> Any:
    return (
        (steps.c.assignment == due.assignment)
        & (steps.c.number == due.number)
        & (steps.c.step == due.state.id)
    )


def stop_checking(conn: Connection, due: DueStep) -> None:
    """The step is no longer defined: the sweep stops looking at it."""
    conn.execute(steps.update().where(_step_key(due)).values(next_check_at=None))


def set_next_check(conn: Connection, due: DueStep, next_check: dt.date | None) -> None:
    """Move the step's next check, unless a command changed the step since it was read.

    A command that committed meanwhile (an extension, a hold) has set
    ``next_check_at`` for its new state, which must stand.
    """
    state = due.state
    unchanged = (
        (steps.c.status == state.status.value)
        & _same(steps.c.due, state.due)
        & _same(steps.c.held_since, utc(state.held_since))
    )
    conn.execute(steps.update().where(_step_key(due) & unchanged).values(next_check_at=next_check))


def _same(column: Any, value: Any) -> Any:
    return column.is_(None) if value is None else column == value


def claim(conn: Connection, firing: Firing, *, now: dt.datetime, sweep: str) -> bool:
    """Record the firing's key; False when it was recorded before (it fired already)."""
    inserted = conn.execute(
        dialect.insert(conn, firings)
        .values(
            key=firing.key, assignment=firing.assignment, point=firing.point, step=firing.step,
            kind=firing.kind.value, level=firing.level, fired_at=utc(now), sweep=sweep,
        )
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(firings.c.key)
    ).scalar_one_or_none()  # fmt: skip
    return inserted is not None


#: The ``kind`` of an occasion's firings (the register's: no assignment, point 0).
OCCASION = "occasion"
OCCASION_REMINDER = "occasion-remind"


def claim_occasion(
    conn: Connection, key: str, *, occasion: str, kind: str, now: dt.datetime, sweep: str
) -> bool:
    """Record an occasion's firing by key; False when it was recorded before."""
    inserted = conn.execute(
        dialect.insert(conn, firings)
        .values(key=key, assignment="", point=0, step=occasion, kind=kind, level=0,
                fired_at=utc(now), sweep=sweep)
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(firings.c.key)
    ).scalar_one_or_none()  # fmt: skip
    return inserted is not None


def link_events(conn: Connection, keys_and_events: Sequence[tuple[str, int]]) -> None:
    """Remember which event each firing wrote."""
    for key, event_id in keys_and_events:
        conn.execute(firings.update().where(firings.c.key == key).values(event_id=event_id))


def already_fired(conn: Connection, keys: Sequence[str]) -> set[str]:
    if not keys:
        return set()
    rows = conn.execute(sa.select(firings.c.key).where(firings.c.key.in_(keys)))
    return {row.key for row in rows}


def fired_keys_for(conn: Connection, assignment: str) -> set[str]:
    """Every firing key of an assignment (what `council simulate` must not show again)."""
    rows = conn.execute(sa.select(firings.c.key).where(firings.c.assignment == assignment))
    return {row.key for row in rows}


def escalations_of_sweep(
    conn: Connection, sweep: str, kind: FiringKind = FiringKind.ESCALATION
) -> list[tuple[int, Event]]:
    """The escalation (or overdue) events one sweep transaction wrote, in order (for its
    digests)."""
    rows = conn.execute(
        sa.select(events)
        .join(firings, firings.c.event_id == events.c.id)
        .where(firings.c.sweep == sweep, firings.c.kind == kind.value)
        .order_by(events.c.id)
    )
    return [(row.id, to_event(row)) for row in rows]
