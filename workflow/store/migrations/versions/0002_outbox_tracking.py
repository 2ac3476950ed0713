"""outbox tracking, processed events, effect payloads

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 07:42:19.216774
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "processed",
        sa.Column("event_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("handler", sa.String(length=80), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_processed_event_id_events")
        ),
        sa.PrimaryKeyConstraint("event_id", "handler", name=op.f("pk_processed")),
    )
    with op.batch_alter_table("effects", schema=None) as batch_op:
        batch_op.add_column(sa.Column("payload", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_effects_state_next", ["state", "next_attempt_at"], unique=False)

    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("handled_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_outbox_unhandled", ["handled_at", "published_at"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_unhandled")
        batch_op.drop_column("handled_at")
        batch_op.drop_column("claimed_until")

    with op.batch_alter_table("effects", schema=None) as batch_op:
        batch_op.drop_index("ix_effects_state_next")
        batch_op.drop_column("next_attempt_at")
        batch_op.drop_column("claimed_until")
        batch_op.drop_column("payload")

    op.drop_table("processed")
