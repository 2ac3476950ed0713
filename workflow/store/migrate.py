"""Creating and upgrading the database schema (Alembic, run programmatically)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

from workflow.errors import NotInitialised

MIGRATIONS = Path(__file__).parent / "migrations"


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head() -> str:
    head_revision = ScriptDirectory.from_config(_config()).get_current_head()
    assert head_revision is not None
    return head_revision


def current(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _migrate(engine: Engine, step: Callable[[Config], None]) -> None:
    """Run migrations in one transaction: all of them, or nothing.

    On SQLite the transaction is begun explicitly (the driver would otherwise run DDL
    outside one), and its foreign keys are switched off for the migration (outside the
    transaction, where the pragma takes effect): SQLite changes a column by rebuilding
    its table (copy, drop, rename), which they refuse while other tables refer to it.
    ``PRAGMA foreign_key_check`` must find no violation the migration made (earlier ones
    are left alone) before the commit; then they are switched on again.
    """
    config = _config()
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            conn.commit()
        try:
            with conn.begin():
                if sqlite:
                    conn.exec_driver_sql("BEGIN")
                    before = _violations(conn)
                config.attributes["connection"] = conn
                step(config)
                if sqlite and _violations(conn) - before:
                    raise NotInitialised("the migration would break foreign keys; nothing changed")
        finally:
            if sqlite:
                conn.exec_driver_sql("PRAGMA foreign_keys=ON")
                conn.commit()


def _violations(conn: Connection) -> set[tuple[object, ...]]:
    """SQLite's foreign-key violations now: (table, rowid, parent, constraint)."""
    return {tuple(row) for row in conn.exec_driver_sql("PRAGMA foreign_key_check")}


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str | None]:
    """Bring the schema to ``revision`` (the newest by default); return (before, after)."""
    before = current(engine)
    _migrate(engine, lambda config: command.upgrade(config, revision))
    return before, current(engine)


def downgrade(engine: Engine, revision: str) -> None:
    """Take the schema back to ``revision`` (for developers and tests; `council` never does)."""
    _migrate(engine, lambda config: command.downgrade(config, revision))


def require_current(engine: Engine) -> None:
    """Raise :class:`NotInitialised` unless the schema is at the newest revision."""
    revision = current(engine)
    if revision is None:
        raise NotInitialised("the database is not initialised: run `council db upgrade`")
    if revision != head():
        raise NotInitialised(
            f"the database schema is at {revision}, council needs {head()}: "
            "run `council db upgrade`"
        )


def revision(engine: Engine, message: str) -> None:  # pragma: no cover - a developer tool
    """Autogenerate a new migration from the models (for developers)."""
    config = _config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.revision(config, message=message, autogenerate=True)
