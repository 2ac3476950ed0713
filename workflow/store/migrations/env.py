"""Alembic environment: runs migrations on the connection council hands it."""

from __future__ import annotations

from alembic import context

from workflow.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - council always passes a connection
    raise RuntimeError("run migrations through `council db upgrade`")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
