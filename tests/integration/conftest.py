"""Real databases: every integration test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from tests.support import DEFINITIONS, copy_definitions, missing_server
from workflow.core.calendar import Calendar
from workflow.core.plan import Definitions
from workflow.definitions.loader import load
from workflow.engine import Engine
from workflow.store import connect, migrate

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
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def definitions() -> Definitions:
    return load([DEFINITIONS])


@pytest.fixture
def engine(db: sa.Engine, definitions: Definitions) -> Engine:
    """The engine on the bundled definitions without their reporting occasions: a sweep
    test counts what fires, and an occasion fires by the calendar (tests of occasions use
    :func:`occasion_engine`)."""
    return Engine(db=db, definitions=dataclasses.replace(definitions, occasions={}),
                  calendar=Calendar(), timezone=STOCKHOLM)  # fmt: skip


@pytest.fixture
def occasion_engine(db: sa.Engine, definitions: Definitions) -> Engine:
    """The engine on the bundled definitions, occasions and all."""
    return Engine(db=db, definitions=definitions, calendar=Calendar(), timezone=STOCKHOLM)


# --- servers for the event-driven tests ----------------------------------------------

from collections.abc import Callable  # noqa: E402

from celery import Celery  # noqa: E402

from tests.integration.servers import RedisServer, SmtpCatcher, WorkerProcess  # noqa: E402
from workflow.errors import Unreachable  # noqa: E402
from workflow.mail.transport import close_idle_connections  # noqa: E402
from workflow.ops.embedded import find_redis_server  # noqa: E402


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, on a unix socket under tmp_path."""
    try:
        binary = find_redis_server()
    except Unreachable:
        missing_server("a redis-server binary")
    server = RedisServer(binary=binary, directory=tmp_path / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def smtp() -> Iterator[SmtpCatcher]:
    """A real SMTP server (aiosmtpd) on loopback that keeps every message it accepts."""
    catcher = SmtpCatcher()
    catcher.start()
    yield catcher
    close_idle_connections()  # delivery in this process keeps its connection for the next batch
    catcher.stop()


@pytest.fixture(scope="session")
def worker_definitions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled definitions without their reporting occasions (see
    :func:`tests.support.copy_definitions`): what workers and the CLI run with in tests."""
    return copy_definitions(tmp_path_factory.mktemp("definitions") / "definitions")


@pytest.fixture
def worker_env(
    database_url: str,
    db: sa.Engine,
    redis_server: RedisServer,
    smtp: SmtpCatcher,
    tmp_path: Path,
    worker_definitions: Path,
) -> dict[str, str]:
    """The environment a worker (or the CLI) runs with: this test's servers, short clocks."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("COUNCIL_") and key != "CI"
    }
    env.update(
        COUNCIL_DATABASE_URL=database_url,
        COUNCIL_BROKER_URL=redis_server.url,
        COUNCIL_DEFINITIONS=str(worker_definitions),
        COUNCIL_VAR_DIR=str(tmp_path / "var"),
        COUNCIL_SMTP_HOST="127.0.0.1",
        COUNCIL_SMTP_PORT=str(smtp.port),
        COUNCIL_SMTP_SECURITY="none",
        COUNCIL_SMTP_TIMEOUT="5",
        COUNCIL_MAIL_FROM="council@kommun.example",
        COUNCIL_RELAY_INTERVAL="1",
        COUNCIL_RECONCILE_INTERVAL="1",
        COUNCIL_RECONCILE_AFTER="4",
        COUNCIL_RETRY_BACKOFF="0.5",
        COUNCIL_TASK_SOFT_TIME_LIMIT="8",
        COUNCIL_TASK_TIME_LIMIT="10",
        COUNCIL_VISIBILITY_TIMEOUT="30",
    )
    return env


@pytest.fixture
def start_worker(
    worker_env: dict[str, str], tmp_path: Path
) -> Iterator[Callable[..., WorkerProcess]]:
    """Start Celery workers (subprocesses); all are stopped at the end of the test."""
    started: list[WorkerProcess] = []

    def start(env: dict[str, str] | None = None, concurrency: int = 2) -> WorkerProcess:
        process = WorkerProcess(env or worker_env, tmp_path / "worker.log", concurrency=concurrency)
        process.start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def publisher(redis_server: RedisServer) -> Iterator[Callable[[int], None]]:
    """Publishes a dispatch message the way council does, from this test process."""
    app = Celery("council-test", broker=redis_server.url)
    app.conf.update(task_serializer="json", accept_content=["json"], task_default_queue="council")

    def publish(event_id: int) -> None:
        app.send_task("council.dispatch", args=(event_id,), queue="council")

    yield publish
    app.close()


# --- a browser for the web pages' tests: one Chromium for the whole session ------------
# Defined here, not imported into each module: a session fixture imported into two
# modules is two fixtures, and Playwright's sync API cannot run twice at once.
from tests.browser import browser, page, serve_directory  # noqa: E402, F401
