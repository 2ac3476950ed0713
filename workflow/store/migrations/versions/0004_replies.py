"""replies by e-mail: each received message, once

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 10:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "replies",
        sa.Column("message_key", sa.String(length=200), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sender", sa.String(length=320), nullable=True),
        sa.Column("person", sa.String(length=64), nullable=True),
        sa.Column("step", sa.String(length=200), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=True),
        sa.Column("event_ids", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("message_key", name=op.f("pk_replies")),
    )


def downgrade() -> None:
    op.drop_table("replies")
