"""Assignments, points and steps: the projections the engine keeps beside the event log.

Every function takes the caller's :class:`~sqlalchemy.engine.Connection`, so
it joins the caller's transaction; nothing here commits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from workflow.core.events import EventType
from workflow.core.state import Category, PointState, StepState, StepStatus
from workflow.store.tables import assignments, aware, events, points, steps, utc

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


def step_state(row: Any) -> StepState:
    """A step's state as its projection row holds it (the one place a row becomes a state)."""
    return StepState(
        id=row.step,
        owner=row.owner,
        status=StepStatus(row.status),
        due=row.due,
        activated_at=aware(row.activated_at),
        begun_at=aware(row.begun_at),
        finished_at=aware(row.finished_at),
        held_since=aware(row.held_since),
    )


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
