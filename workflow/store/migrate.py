"""Creating and upgrading the database schema (Alembic, run programmatically).

Alembic is imported only to migrate (``council db upgrade``, tests). Every other command
checks the schema with :func:`require_current`, which reads ``alembic_version`` with one
query and compares it with :func:`head`, read from the migration files' ``revision`` and
``down_revision`` lines: importing Alembic would cost a command about 0.1-0.2 s.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from workflow.errors import NotInitialised

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
#: ``revision = "0011"`` and ``down_revision = "0010"`` (or None) in a migration file.
_REVISION = re.compile(
    r"""^(down_revision|revision)\s*(?::[^=]*)?=\s*(?:["']([^"']+)["']|None)\s*$""", re.M
)


def _config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


@functools.cache
def head() -> str:
    """The newest revision: the one no migration revises (Alembic's own answer when the
    files do not make one plain chain)."""
    revisions: set[str] = set()
    revised: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        found = dict((name, value) for name, value in _REVISION.findall(path.read_text()))
        if "revision" not in found or not found["revision"]:
            return _alembic_head()
        revisions.add(found["revision"])
        if found.get("down_revision"):
            revised.add(found["down_revision"])
    heads = revisions - revised
    if len(heads) != 1 or not revised <= revisions:
        return _alembic_head()  # pragma: no cover - a branch, or a revision lists several
    return heads.pop()


def _alembic_head() -> str:
    from alembic.script import ScriptDirectory

    head_revision = ScriptDirectory.from_config(_config()).get_current_head()
    assert head_revision is not None
    return head_revision


def current(engine: Engine) -> str | None:
    """The schema's revision, or None for a database never migrated."""
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table("alembic_version"):
            return None
        rows = conn.execute(sa.text("SELECT version_num FROM alembic_version")).all()
        if len(rows) <= 1:
            return rows[0][0] if rows else None
        from alembic.runtime.migration import MigrationContext  # pragma: no cover

        return MigrationContext.configure(conn).get_current_revision()  # pragma: no cover


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
    from alembic import command

    _migrate(engine, lambda config: command.upgrade(config, revision))
    return before, current(engine)


def downgrade(engine: Engine, revision: str) -> None:
    """Take the schema back to ``revision`` (for developers and tests; `council` never does)."""
    from alembic import command

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
    from alembic import command

    config = _config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.revision(config, message=message, autogenerate=True)
