"""fixed handler names, events of a whole assignment, a sweep's firings together

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 22:00:00

- ``processed.handler`` held ``module.qualname`` of each handler, so moving code
  would have made every handled event look unhandled; handlers now have fixed names.
- ``events.point`` may be NULL: an event of the whole assignment (a report asked for).
- ``firings.sweep`` names the sweep transaction, so a worker can gather its
  escalations into one digest per person.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

#: Stored name before this revision -> fixed name.
RENAMED = {
    "tasks.handlers.prompt_owner": "prompt-owner",
    "tasks.handlers.mail_report": "mail-report",
    "tasks.handlers.notify_deadline": "notify-deadline",
    "tasks.handlers.ask_coordinator": "ask-coordinator",
}

_processed = sa.table("processed", sa.column("handler", sa.String))


def upgrade() -> None:
    for old, new in RENAMED.items():
        op.execute(_processed.update().where(_processed.c.handler == old).values(handler=new))
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.alter_column("point", existing_type=sa.Integer(), nullable=True)
    with op.batch_alter_table("firings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sweep", sa.String(length=32), nullable=True))
        batch_op.create_index("ix_firings_sweep", ["sweep"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("firings", schema=None) as batch_op:
        batch_op.drop_index("ix_firings_sweep")
        batch_op.drop_column("sweep")
    # Events of a whole assignment cannot be kept: they go, with what refers to them.
    whole = "SELECT id FROM events WHERE point IS NULL"
    for table in ("outbox", "processed", "firings", "effects"):
        op.execute(sa.text(f"DELETE FROM {table} WHERE event_id IN ({whole})"))  # noqa: S608
    op.execute(sa.text("DELETE FROM events WHERE point IS NULL"))
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.alter_column("point", existing_type=sa.Integer(), nullable=False)
    for old, new in RENAMED.items():
        op.execute(_processed.update().where(_processed.c.handler == new).values(handler=old))
