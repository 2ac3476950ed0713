"""Real databases: every integration test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from tests.support import DEFINITIONS, missing_server
from workflow import schema
from workflow.calendar import Calendar
from workflow.engine import Engine
from workflow.loader import Definitions, load
from workflow.store import connect

#: The PostgreSQL server tests use; a fresh database is made on it per session.
POSTGRES_URL = os.environ.get(
    "COUNCIL_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
STOCKHOLM = ZoneInfo("Europe/Stockholm")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A database of its own on the PostgreSQL server, dropped at the end."""
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    name = f"council_test_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError:
        admin.dispose()
        missing_server(f"PostgreSQL at {POSTGRES_URL}")
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    yield url
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database URL, once for SQLite and once for PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'council.db'}"
        return
    url: str = request.getfixturevalue("postgres_server")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()
    yield url


@pytest.fixture
def db(database_url: str) -> Iterator[sa.Engine]:
    """A migrated database."""
    engine = connect(database_url)
    schema.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def definitions() -> Definitions:
    return load([DEFINITIONS])


@pytest.fixture
def engine(db: sa.Engine, definitions: Definitions) -> Engine:
    return Engine(db=db, definitions=definitions, calendar=Calendar(), timezone=STOCKHOLM)
