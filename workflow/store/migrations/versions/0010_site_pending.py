"""the public assignments whose site pages are behind their events

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 07:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "site_pending",
        sa.Column("assignment", sa.String(length=64), nullable=False),
        sa.Column("marked_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("assignment", name=op.f("pk_site_pending")),
    )


def downgrade() -> None:
    op.drop_table("site_pending")
