"""points planned to start on a later day, for the sweep to start them

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 17:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "planned_starts",
        sa.Column("assignment", sa.String(length=64), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("start_on", sa.Date(), nullable=False),
        sa.Column("planned_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["assignment"],
            ["assignments.id"],
            name=op.f("fk_planned_starts_assignment_assignments"),
        ),
        sa.PrimaryKeyConstraint("assignment", "number", name=op.f("pk_planned_starts")),
    )
    op.create_index(
        op.f("ix_planned_starts_start_on"), "planned_starts", ["start_on"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_planned_starts_start_on"), table_name="planned_starts")
    op.drop_table("planned_starts")
