"""Opening a database: one SQLAlchemy engine per URL, SQLite tuned for concurrent use."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.engine import Connection, Engine

from workflow.errors import InvalidInput, NotInitialised

_URL_EXAMPLES = "postgresql+psycopg://user@host:5432/council or sqlite:///var/council.db"

#: Seconds after which a connection to PostgreSQL whose other end is gone (a host that
#: died, a cable pulled) is given up: idle this long, then three probes five seconds
#: apart. Both ends probe: the server ends a dead worker's session, so the rows it held
#: locked mid-transaction are free again (without it, for the kernel's two hours), and a
#: worker notices a server that is gone instead of waiting on it.
DEAD_PEER_SECONDS = 25
_KEEPALIVES = {"idle": 10, "interval": 5, "count": 3}


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers work while one writer commits; the busy timeout makes a
    # second writer wait for the lock instead of failing at once.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_query_only(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA query_only=ON")  # any write fails: "attempt to write a readonly"
    cursor.close()


def connect(url: str, *, create: bool = True, read_only: bool = False) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and foreign keys.

    A URL that is no database URL is :class:`InvalidInput` (never echoed: it may hold a
    password). Unless ``create``, a SQLite file that does not exist is
    :class:`NotInitialised` and is not created (only ``council db upgrade`` creates it).
    ``read_only`` (the web view) makes every connection refuse writes: SQLite's
    ``query_only``, PostgreSQL's ``default_transaction_read_only``.
    """
    try:
        parsed = sa.engine.make_url(url)
        sqlite = parsed.get_backend_name() == "sqlite"
        if sqlite and (read_only or not create):
            _require_file(parsed.database)
        # hide_parameters: an error message never carries a note or an e-mail address.
        if sqlite:
            engine = sa.create_engine(parsed, hide_parameters=True)
            sa_event.listen(engine, "connect", _sqlite_pragmas)
            if read_only:
                sa_event.listen(engine, "connect", _sqlite_query_only)
            return engine
        return sa.create_engine(
            parsed, pool_pre_ping=True, hide_parameters=True,
            connect_args=_postgres_args(dict(parsed.query), read_only=read_only),
        )  # fmt: skip
    except (sa.exc.ArgumentError, ValueError):
        raise InvalidInput(
            f"the database URL is not one council can use (for example {_URL_EXAMPLES})"
        ) from None


def _postgres_args(query: dict[str, Any], *, read_only: bool) -> dict[str, Any]:
    """libpq's keepalives for this end, the server's for the other (see
    :data:`DEAD_PEER_SECONDS`); a parameter the URL sets itself is left as it says."""
    args: dict[str, Any] = {"keepalives": 1, "tcp_user_timeout": DEAD_PEER_SECONDS * 1000}
    args |= {f"keepalives_{name}": value for name, value in _KEEPALIVES.items()}
    server = [f"-c tcp_keepalives_{name}={value}" for name, value in _KEEPALIVES.items()]
    server.append(f"-c tcp_user_timeout={DEAD_PEER_SECONDS * 1000}")
    if read_only:
        server.append("-c default_transaction_read_only=on")
    args["options"] = " ".join(server)
    if "options" in query:  # the URL's own server options come after (they win)
        args["options"] += f" {query['options']}"
    return {key: value for key, value in args.items() if key == "options" or key not in query}


def _require_file(database: str | None) -> None:
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    if not Path(database).exists():
        raise NotInitialised(
            f"the database is not initialised (no file {database}): run `council db upgrade`"
        )


@contextmanager
def begin_advisory(db: Engine) -> Iterator[Connection]:
    """A transaction whose commit does not wait for the disk: for writes whose loss in a
    crash of the machine or of the database server (not of council's process) is
    harmless, because nothing relies on them for correctness (a dispatch's hold on its
    events: lost, the event is only published again later, and its handlers run once
    whatever happens).

    PostgreSQL: ``SET LOCAL synchronous_commit = off`` (asynchronous commit: the commit
    returns before its WAL is flushed; a server crash can lose it, never corrupt).
    SQLite in WAL mode: ``synchronous=NORMAL`` for this transaction, then the
    connection's own level again (the commit is not fsynced; a power loss can roll it
    back). Both stay atomic and durable against a killed process.
    """
    with db.connect() as conn:
        if db.dialect.name == "postgresql":
            with conn.begin():
                conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
                yield conn
            return
        raw = conn.connection.driver_connection
        if db.dialect.name != "sqlite" or raw is None:
            with conn.begin():
                yield conn
            return
        (level,) = raw.execute("PRAGMA synchronous").fetchone()
        (mode,) = raw.execute("PRAGMA journal_mode").fetchone()
        relax = level > 1 and str(mode).lower() == "wal"  # NORMAL is only safe in WAL
        if relax:
            raw.execute("PRAGMA synchronous=NORMAL")
        try:
            with conn.begin():
                yield conn
        finally:
            if relax:
                _restore_synchronous(conn, raw, int(level))


def _restore_synchronous(conn: Connection, raw: Any, level: int) -> None:
    """Put the connection back at its level; a COMMIT that failed can leave the driver's
    transaction open (the level cannot change inside one): roll it back first, and drop
    the connection from the pool if the level still cannot be restored."""
    try:
        if raw.in_transaction:
            raw.rollback()
        raw.execute(f"PRAGMA synchronous={level}")
    except Exception:
        conn.invalidate()
        raise
