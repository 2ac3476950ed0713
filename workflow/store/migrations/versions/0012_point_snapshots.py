"""each point's state as a snapshot in its row, with the last event it folds in

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 13:10:00

The columns start empty: a point without a snapshot gets one from a replay of its events
on the first command that touches it (the engine writes it in that command's
transaction). A migration cannot build them itself: a replay needs the assignment's plan,
which comes from the definition files, not from the database.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("points", schema=None) as batch_op:
        batch_op.add_column(sa.Column("snapshot", sa.JSON(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "last_event_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
            )
        )
        batch_op.add_column(sa.Column("last_event_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("points", schema=None) as batch_op:
        batch_op.drop_column("last_event_at")
        batch_op.drop_column("last_event_id")
        batch_op.drop_column("snapshot")
