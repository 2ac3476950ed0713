"""Which public assignments the site is behind on: marked by dispatch, cleared by publishing.

A dispatch marks the event's assignment in the transaction that records the event as
handled, so a mark is never lost and a redelivered event only marks it again. The
publisher reads the marks, builds, switches the site, and then clears each mark it read
unless it was marked again while it built: that assignment is rebuilt next time. Every
function takes the caller's connection.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from workflow.store import dialect
from workflow.store.tables import aware, site_pending, utc


def mark(conn: Connection, assignment: str, *, now: dt.datetime) -> None:
    """The site is behind on ``assignment`` since ``now`` (or since an earlier mark)."""
    stmt = dialect.insert(conn, site_pending).values(assignment=assignment, marked_at=utc(now))
    # A later mark moves marked_at forward, so a build that read the earlier one keeps it.
    later = sa.func.greatest if conn.dialect.name == "postgresql" else sa.func.max
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["assignment"],
            set_={"marked_at": later(site_pending.c.marked_at, stmt.excluded.marked_at)},
        )
    )


def pending(conn: Connection) -> dict[str, dt.datetime]:
    """Each marked assignment and when it was last marked."""
    rows = conn.execute(sa.select(site_pending.c.assignment, site_pending.c.marked_at))
    found: dict[str, dt.datetime] = {}
    for row in rows:
        marked_at = aware(row.marked_at)
        assert marked_at is not None  # the column is NOT NULL
        found[row.assignment] = marked_at
    return found


def clear(conn: Connection, seen: Mapping[str, dt.datetime]) -> int:
    """Clear the marks a build read, except those marked again since; how many were."""
    cleared = 0
    for assignment, marked_at in seen.items():
        done = conn.execute(
            site_pending.delete().where(
                site_pending.c.assignment == assignment,
                site_pending.c.marked_at <= utc(marked_at),
            )
        )
        cleared += done.rowcount
    return cleared
