"""Durable state: the tables, the queries on them, the outbox, effects and migrations.

Everything that speaks SQL lives here; the rest of council calls these functions
with a :class:`~sqlalchemy.engine.Connection` and owns the transaction. The
package itself offers the queries the application services use most; the
outbox, effects and migrations are modules of their own.

May import: :mod:`workflow.core`, :mod:`workflow.errors`, SQLAlchemy and Alembic.
Imported by: the application services (engine, sweep, handlers) and the adapters
(mail, replies, report, ops, commands, tasks).
"""

from workflow.store.connection import begin_advisory, connect
from workflow.store.events import (
    append_events,
    get_event,
    get_events,
    list_events,
    point_events,
    point_events_after,
)
from workflow.store.points import (
    OWNER_EVENTS,
    Head,
    Snapshot,
    all_assignments,
    assignment_digest,
    get_assignment,
    insert_assignment,
    owner_event,
    point_head,
    point_rows,
    point_version,
    save_point,
    step_rows,
    step_state,
    update_assignment_definition,
)
from workflow.store.tables import aware, metadata, utc

__all__ = [
    # connections and time
    "aware",
    "begin_advisory",
    "connect",
    "metadata",
    "utc",
    # the event log
    "append_events",
    "get_event",
    "get_events",
    "list_events",
    "point_events",
    "point_events_after",
    # assignments, points and steps
    "OWNER_EVENTS",
    "Head",
    "Snapshot",
    "all_assignments",
    "assignment_digest",
    "get_assignment",
    "insert_assignment",
    "owner_event",
    "point_head",
    "point_rows",
    "point_version",
    "save_point",
    "step_rows",
    "step_state",
    "update_assignment_definition",
]
