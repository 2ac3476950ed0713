"""a dispatch's lease on its event; how often and when next the reconciler publishes an event again

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 07:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dispatch_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("republished", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("republish_after", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("republish_after")
        batch_op.drop_column("republished")
        batch_op.drop_column("dispatch_until")
