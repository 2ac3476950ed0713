"""every version of an assignment's definition, with when it took effect

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 18:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "definition_versions",
        sa.Column("assignment", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("plan", sa.JSON(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=500), nullable=False),
        sa.Column("effective_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accepted_by", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["assignment"],
            ["assignments.id"],
            name=op.f("fk_definition_versions_assignment_assignments"),
        ),
        sa.PrimaryKeyConstraint("assignment", "version", name=op.f("pk_definition_versions")),
    )


def downgrade() -> None:
    op.drop_table("definition_versions")
