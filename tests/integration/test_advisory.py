"""A transaction that does not wait for the disk (store.begin_advisory): a dispatch's
hold on its events. It commits like any other, only without the flush, and the
connection goes back to the pool as durable as it came."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from workflow import store
from workflow.store import tables

T0 = dt.datetime(2024, 2, 1, 9, 0, tzinfo=dt.UTC)


def durability(conn: Connection) -> str:
    """The connection's commit durability: SQLite's synchronous level, PostgreSQL's
    synchronous_commit."""
    if conn.dialect.name == "sqlite":
        return str(conn.connection.driver_connection.execute("PRAGMA synchronous").fetchone()[0])
    return str(conn.execute(sa.text("SHOW synchronous_commit")).scalar_one())


def add_assignment(conn: Connection, name: str) -> None:
    conn.execute(
        tables.assignments.insert().values(
            id=name, digest="d", structure={}, source="s", started_at=T0
        )
    )


def assignments(db: sa.Engine) -> list[str]:
    with db.connect() as conn:
        return sorted(conn.execute(sa.select(tables.assignments.c.id)).scalars())


def test_an_advisory_transaction_commits_without_the_flush_and_gives_back_a_durable_connection(
    db: sa.Engine,
) -> None:
    with db.connect() as conn:
        before = durability(conn)
        conn.rollback()
    relaxed = "1" if db.dialect.name == "sqlite" else "off"
    assert before == ("2" if db.dialect.name == "sqlite" else "on")  # council's default: FULL
    with store.begin_advisory(db) as conn:
        assert durability(conn) == relaxed
        add_assignment(conn, "a")
    assert assignments(db) == ["a"]  # committed: another connection sees it
    with db.connect() as conn:  # the pool's connection (SQLite: the same one) as it was
        assert durability(conn) == before
        conn.rollback()


def test_a_failed_advisory_transaction_changes_nothing_and_gives_back_a_durable_connection(
    db: sa.Engine,
) -> None:
    def twice() -> None:
        with store.begin_advisory(db) as conn:
            add_assignment(conn, "b")
            add_assignment(conn, "b")  # the same key twice

    with pytest.raises(sa.exc.IntegrityError):
        twice()
    assert assignments(db) == []
    with db.connect() as conn:
        assert durability(conn) == ("2" if db.dialect.name == "sqlite" else "on")
        conn.rollback()


def test_a_commit_that_fails_gives_back_a_durable_connection_and_the_commits_error(
    db: sa.Engine,
) -> None:
    """A deferred foreign key fails at COMMIT (as a full disk would): the error raised is
    the commit's own, and the connection goes back to the pool as durable as it came
    (SQLite cannot change its level while the failed transaction is still open)."""
    with db.begin() as conn:
        conn.execute(sa.text("CREATE TABLE parent (id INTEGER PRIMARY KEY)"))
        conn.execute(sa.text("CREATE TABLE child (parent INTEGER REFERENCES parent (id) "
                             "DEFERRABLE INITIALLY DEFERRED)"))  # fmt: skip

    def orphan() -> None:
        with store.begin_advisory(db) as conn:
            conn.execute(sa.text("INSERT INTO child VALUES (42)"))  # refused at COMMIT

    with pytest.raises(sa.exc.IntegrityError):
        orphan()
    for _ in range(2):  # whichever connection the pool hands out next
        with db.connect() as conn:
            assert durability(conn) == ("2" if db.dialect.name == "sqlite" else "on")
            assert conn.execute(sa.text("SELECT count(*) FROM child")).scalar_one() == 0
            conn.rollback()
