"""Creating and upgrading the database schema (Alembic, run programmatically)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

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


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Bring the schema to the newest revision; return (before, after)."""
    before = current(engine)
    config = _config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
    return before, head()


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
