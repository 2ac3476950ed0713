"""Versions of assignments' definitions: recorded when started and when amended.

Every function takes the caller's connection. The plan is stored as the data of
:func:`workflow.core.versions.to_data`; callers turn it back into a plan.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from workflow.core.plan import AssignmentPlan
from workflow.core.versions import from_data
from workflow.store import fast
from workflow.store.tables import aware, definition_versions, utc


@dataclass(frozen=True)
class Version:
    """One recorded version of an assignment's definition."""

    number: int
    digest: str
    plan: dict[str, Any]
    text: str
    source: str
    effective_at: dt.datetime
    accepted_by: str


def record(
    conn: Connection,
    assignment: str,
    *,
    digest: str,
    plan: dict[str, Any],
    text: str,
    source: str,
    now: dt.datetime,
    accepted_by: str,
) -> int:
    """Record a new version taking effect at ``now``; returns its number (1 for the first)."""
    table = definition_versions
    latest = conn.execute(
        sa.select(sa.func.max(table.c.version)).where(table.c.assignment == assignment)
    ).scalar_one()
    number = int(latest or 0) + 1
    conn.execute(
        table.insert().values(
            assignment=assignment, version=number, digest=digest, plan=plan, text=text,
            source=source, effective_at=utc(now), accepted_by=accepted_by,
        )
    )  # fmt: skip
    return number


_ANY = (
    sa.select(definition_versions.c.version)
    .where(definition_versions.c.assignment == sa.bindparam("a"))
    .limit(1)
)


def has_versions(conn: Connection, assignment: str) -> bool:
    """Whether any version of the assignment is recorded (one indexed read, no plans)."""
    if fast.usable(conn):
        return fast.has_versions(conn, assignment)
    return conn.execute(_ANY, {"a": assignment}).first() is not None


def versions(conn: Connection, assignment: str) -> list[Version]:
    """Every version of the assignment, oldest first."""
    table = definition_versions
    rows = conn.execute(
        sa.select(table).where(table.c.assignment == assignment).order_by(table.c.version)
    )
    return [
        Version(
            r.version,
            r.digest,
            r.plan,
            r.text,
            r.source,
            aware(r.effective_at) or r.effective_at,
            r.accepted_by,
        )
        for r in rows
    ]


def in_force(conn: Connection, assignment: str, before: dt.datetime) -> Version | None:
    """The version in force just before ``before``: the latest that took effect earlier,
    else the first (the definition the assignment was started with); None if none."""
    found = versions(conn, assignment)
    earlier = [v for v in found if v.effective_at < before]
    if earlier:
        return earlier[-1]
    return found[0] if found else None


def plan_in_force(conn: Connection, current: AssignmentPlan, before: dt.datetime) -> AssignmentPlan:
    """``current``, or the recorded version of its assignment in force just before
    ``before`` (what a report as of a date renders with)."""
    version = in_force(conn, current.id, before)
    if version is None or version.digest == current.digest:
        return current
    return from_data(version.plan)
