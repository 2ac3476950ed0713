"""replies remember their token and whether they were answered

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 23:30:00

An owner gets at most a few answer mails an hour, and one per token and refusal: the
inbox counts what it answered.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("replies", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("owner_event", sa.BigInteger().with_variant(sa.Integer(), "sqlite"))
        )
        batch_op.add_column(
            sa.Column("answered", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.create_index("ix_replies_person_received_at", ["person", "received_at"])


def downgrade() -> None:
    with op.batch_alter_table("replies", schema=None) as batch_op:
        batch_op.drop_index("ix_replies_person_received_at")
        batch_op.drop_column("answered")
        batch_op.drop_column("owner_event")
