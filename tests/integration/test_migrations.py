"""Migrations on a database with history: what 0005 changes, and that nothing runs twice.

Release 0.2 gave handlers fixed names; before it, ``processed`` held each handler's
``module.qualname``. An event handled before the upgrade must stay handled after it,
whatever the code's layout: a redelivered message of it runs no handler again.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.integration.conftest import STOCKHOLM
from workflow import handlers, store
from workflow.core.events import Event, EventType, ReportRequested
from workflow.core.plan import Definitions
from workflow.core.specs import Language
from workflow.settings import Settings
from workflow.store import connect, migrate, tables

T0 = dt.datetime(2023, 1, 9, 9, tzinfo=STOCKHOLM)
OLD_NAMES = ["tasks.handlers.mail_report", "tasks.handlers.prompt_owner"]


def _activated_and_handled_before_0005(db: sa.Engine) -> int:
    """A step.activated event that release 0.1 handled (its rows as 0.1 wrote them)."""
    with db.begin() as conn:
        event_id = conn.execute(
            sa.text(
                "INSERT INTO events (type, assignment, point, step, actor, occurred_at, "
                "recorded_at, payload, schema_version) VALUES ('step.activated', "
                "'kf-2022-hedersvald', 1, 'analyse', 'sara.nilsson', :at, :at, "
                """'{"owner": "anders.berg", "due": "2023-02-06"}', 1) RETURNING id"""
            ),
            {"at": T0},
        ).scalar_one()
        conn.execute(
            sa.text("INSERT INTO outbox (event_id, created_at, attempts) VALUES (:e, :at, 1)"),
            {"e": event_id, "at": T0},
        )
        for name in OLD_NAMES:
            conn.execute(
                sa.text("INSERT INTO processed VALUES (:e, :h, :at)"),
                {"e": event_id, "h": name, "at": T0},
            )
    return int(event_id)


def _handler_names(db: sa.Engine) -> list[str]:
    with db.connect() as conn:
        return sorted(conn.execute(sa.text("SELECT handler FROM processed")).scalars())


def test_0005_keeps_handled_events_handled_and_allows_events_of_an_assignment(
    database_url: str, definitions: Definitions
) -> None:
    """After 0005 an event handled by 0.1 reads its handlers as done under their fixed names:
    dispatching it again (a redelivery) records nothing; an event of a whole assignment can
    be stored; downgrading restores 0.1's names and drops what 0.1 could not store."""
    db = connect(database_url)
    try:
        migrate.upgrade(db, "0004")
        event_id = _activated_and_handled_before_0005(db)
        assert migrate.upgrade(db) == ("0004", migrate.head())
        assert _handler_names(db) == ["mail-report", "prompt-owner"]
        if db.dialect.name == "sqlite":  # switched off to rebuild `events`, and on again
            with db.connect() as conn:
                assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1

        again = handlers.dispatch(
            db, definitions, Settings(reply_secret=None), event_id, now=T0, tz=STOCKHOLM
        )
        assert again.skipped == ["prompt-owner", "mail-report"]
        assert again.recorded == []
        with db.connect() as conn:
            effects = conn.execute(sa.select(sa.func.count()).select_from(tables.effects))
            assert effects.scalar_one() == 0

        asked = Event(
            type=EventType.REPORT_REQUESTED, assignment="kf-2022-hedersvald", point=None,
            actor="sara.nilsson", occurred_at=T0,
            payload=ReportRequested(as_of=dt.date(2023, 6, 12), language=Language.SV),
        )  # fmt: skip
        with db.begin() as conn:
            (asked_id,) = store.append_events(conn, [asked], now=T0)
        with db.connect() as conn:
            assert store.get_event(conn, asked_id) == asked

        migrate.downgrade(db, "0004")
        assert _handler_names(db) == OLD_NAMES
        with db.connect() as conn:  # 0.1's columns only: read them as 0.1 did
            ids = conn.execute(sa.text("SELECT id FROM events ORDER BY id")).scalars().all()
        assert ids == [event_id]
    finally:
        db.dispose()


def test_the_migrated_schema_is_the_tables_council_declares(database_url: str) -> None:
    """Upgraded from empty, the database has exactly the tables, columns, indexes and keys
    of workflow/store/tables.py (Alembic finds nothing to autogenerate)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    db = connect(database_url)
    try:
        migrate.upgrade(db)
        with db.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, tables.metadata) == []
    finally:
        db.dispose()


def test_a_migration_that_fails_on_sqlite_changes_nothing(tmp_path: Path) -> None:
    """SQLite runs DDL outside a transaction unless one is begun: a migration that fails
    half-way (here right after 0007's downgrade rebuilt the events table without its new
    columns) leaves the schema and the data as they were, and can be run again."""
    from alembic import command

    db = connect(f"sqlite:///{tmp_path / 'council.db'}")
    try:
        migrate.upgrade(db)
        with db.begin() as conn:
            (kept,) = store.append_events(conn, [_note()], now=T0)
        with db.connect() as conn:
            schema_before = sorted(
                conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL")
                .scalars()
                .all()
            )

        def half_then_fail(config: Any) -> None:
            command.downgrade(config, "0006")  # drops events.recorded_by and events.login
            raise RuntimeError("the disk filled up")

        with pytest.raises(RuntimeError, match="the disk filled up"):
            migrate._migrate(db, half_then_fail)
        assert migrate.current(db) == migrate.head()
        with db.connect() as conn:
            assert sorted(
                conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL")
                .scalars()
                .all()
            ) == (schema_before)
            assert store.get_event(conn, kept) is not None
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        migrate.downgrade(db, "0006")  # and it can be run again, whole
        assert migrate.current(db) == "0006"
    finally:
        db.dispose()


def _note() -> Event:
    return Event(
        type=EventType.NOTE_ADDED, assignment="kf-2022-hedersvald", point=1, actor="sara.nilsson",
        occurred_at=T0, data={"text": "Läget"},
    )  # fmt: skip


def test_the_head_read_from_the_files_is_alembics() -> None:
    """`migrate.head()` reads the migration files without Alembic: the same answer."""
    from alembic.script import ScriptDirectory

    assert migrate.head() == ScriptDirectory(str(migrate.MIGRATIONS)).get_current_head()


def test_the_current_revision_is_read_without_alembic_as_alembic_reads_it(
    database_url: str,
) -> None:
    """Empty, upgraded and taken back, `migrate.current` agrees with Alembic's context."""
    from alembic.runtime.migration import MigrationContext

    db = connect(database_url)
    try:

        def alembic_says() -> str | None:
            with db.connect() as conn:
                return MigrationContext.configure(conn).get_current_revision()

        assert migrate.current(db) is None
        assert alembic_says() is None
        migrate.upgrade(db)
        assert migrate.current(db) == alembic_says() == migrate.head()
        migrate.downgrade(db, "0010")
        assert migrate.current(db) == alembic_says() == "0010"
        with pytest.raises(Exception, match=f"at 0010, council needs {migrate.head()}: "):
            migrate.require_current(db)
    finally:
        db.dispose()
