"""deadline sweep: next_check_at, holds, firings

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 08:30:24.782231
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "firings",
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("assignment", sa.String(length=64), nullable=False),
        sa.Column("point", sa.Integer(), nullable=False),
        sa.Column("step", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("fired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_firings_event_id_events")
        ),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_firings")),
    )
    with op.batch_alter_table("steps", schema=None) as batch_op:
        batch_op.add_column(sa.Column("held_since", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("next_check_at", sa.Date(), nullable=True))
        batch_op.create_index("ix_steps_next_check_at", ["next_check_at"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("steps", schema=None) as batch_op:
        batch_op.drop_index("ix_steps_next_check_at")
        batch_op.drop_column("next_check_at")
        batch_op.drop_column("held_since")

    op.drop_table("firings")
