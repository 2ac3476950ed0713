"""The fast statements (store/fast.py) write what SQLAlchemy Core writes.

The same commands through the real engine, once on the Core path (an engine with a
statement listener, which keeps it) and once on the fast path, on SQLite and on
PostgreSQL: every row of the events, their outbox rows, the points (with their
snapshots) and the steps is the same, compared as the database stores it (SQLite's text,
PostgreSQL's JSON as text). A driver's error on the fast path is SQLAlchemy's, as Core's.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.integration.conftest import STOCKHOLM
from tests.support import write_flow_definitions
from workflow import store
from workflow.core.actions import (
    Action,
    AddNote,
    BeginStep,
    CompleteStep,
    ExtendStep,
    HoldStep,
    ReassignStep,
    ReopenStep,
    ResumeStep,
    SkipStep,
    WriteOff,
)
from workflow.core.calendar import Calendar
from workflow.definitions.loader import load
from workflow.engine import Engine
from workflow.store import connect, fast, migrate, tables
from workflow.store import versions as store_versions

T0 = dt.datetime(2024, 3, 4, 8, 0, 0, 123456, tzinfo=STOCKHOLM)  # a Monday
#: The tables a command writes, by their key.
TABLES = {
    "assignments": "id",
    "events": "id",
    "outbox": "id",
    "points": "assignment, number",
    "steps": "assignment, number, step",
    "planned_starts": "assignment, number",
}


def _write_definitions(root: Path) -> Path:
    write_flow_definitions(root)
    (root / "assignments" / "fast.yaml").write_text(
        "id: fast\ntitle: Snabbt\nreference: KS 1\ndecided_by: KF\ndecided_on: 2024-01-15\n"
        "assigned_to: {lead: KS}\ncoordinator: boss\nreport_back: 2024-12-16\npoints:\n"
        "  - {number: 1, title: Ett, workflow: flow, owner: owner}\n"
        "  - {number: 2, title: Två, workflow: flow, owner: owner}\n"
        "  - {number: 3, title: Tre, workflow: flow, owner: owner, start: 2024-05-02}\n"
    )
    return root


#: Point 1's commands, one transaction each but the last two (one batch).
COMMANDS: list[list[Action]] = [
    [BeginStep(actor="owner", step="a")],
    [HoldStep(actor="boss", step="a", reason="Väntar på svar – åäö.")],
    [ResumeStep(actor="boss", step="a")],
    [ExtendStep(actor="boss", step="a", to=dt.date(2024, 4, 2), reason="Mer tid.")],
    [CompleteStep(actor="owner", step="a", note="Klart.")],
    [ReassignStep(actor="boss", step="b", to="other")],
    [AddNote(actor="boss", text='En not "citerad".', step="b")],
    [SkipStep(actor="boss", step="c", reason="Behövs inte.")],
    [CompleteStep(actor="other", step="b")],
    [ReopenStep(actor="boss", step="b", reason="Igen.")],
    [CompleteStep(actor="other", step="b"), CompleteStep(actor="owner", step="d")],
]


def _run_commands(engine: Engine) -> None:
    """Start points 1 and 2 (3 is planned), run point 1's commands an hour apart, write
    point 2 off, start point 3 before its day (no longer planned)."""
    engine.start("fast", actor="boss", now=T0)
    assert list(engine.planned_starts()) == [("fast", 3)]
    point1 = engine.definitions.assignment("fast").point(1)
    point2 = engine.definitions.assignment("fast").point(2)
    for hour, actions in enumerate(COMMANDS, start=1):
        engine.run(point1, actions, now=T0 + dt.timedelta(hours=hour, microseconds=hour))
    engine.act(point2, WriteOff(actor="boss", reason="Inaktuell."), now=T0 + dt.timedelta(days=1))
    engine.start("fast", actor="boss", now=T0 + dt.timedelta(days=2), only=3)
    assert engine.planned_starts() == {}


def _shape(value: Any) -> str:
    """A wall-clock time as its form alone (its digits zeroed): the outbox's claim."""
    return re.sub(r"\d", "0", str(value))


def _rows(db: sa.Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the tables a command writes, as the database stores the values."""
    postgres = db.dialect.name == "postgresql"
    found = {}
    with db.connect() as conn:
        for name, key in TABLES.items():
            table = tables.metadata.tables[name]
            columns = ", ".join(
                f"{c.name}::text" if postgres and isinstance(c.type, sa.JSON) else c.name
                for c in table.c
            )
            rows = conn.exec_driver_sql(f"SELECT {columns} FROM {name} ORDER BY {key}").all()
            found[name] = [tuple(row) for row in rows]
    claim = list(tables.outbox.c.keys()).index("claimed_until")
    found["outbox"] = [
        (*row[:claim], _shape(row[claim]), *row[claim + 1 :]) for row in found["outbox"]
    ]
    return found


def _listening(engine: sa.Engine) -> None:
    """A statement listener: the engine's connections keep the Core path."""
    sa.event.listen(engine, "before_cursor_execute", lambda *_args: None)


@pytest.fixture
def fresh_db(database_url: str, tmp_path: Path) -> Iterator[Callable[[str], sa.Engine]]:
    """A migrated, empty database each call (a new file on SQLite, the schema anew on
    PostgreSQL), so that the two paths draw the same ids."""
    made: list[sa.Engine] = []

    def make(name: str) -> sa.Engine:
        for engine in made:
            engine.dispose()
        url = database_url
        if url.startswith("sqlite"):
            url = f"sqlite:///{tmp_path / f'{name}.db'}"
        else:
            admin = sa.create_engine(url)
            with admin.begin() as conn:
                conn.execute(sa.text("DROP SCHEMA public CASCADE"))
                conn.execute(sa.text("CREATE SCHEMA public"))
            admin.dispose()
        db = connect(url)
        migrate.upgrade(db)
        made.append(db)
        return db

    yield make
    for engine in made:
        engine.dispose()


def test_the_fast_path_writes_the_rows_core_writes(
    fresh_db: Callable[[str], sa.Engine], tmp_path: Path
) -> None:
    """The same commands write the same events, outbox rows (claimed for a publisher),
    points, snapshots and steps on both paths, value for value as stored."""
    definitions = load([_write_definitions(tmp_path / "defs")])
    found = {}
    for path in ("core", "fast"):
        db = fresh_db(path)
        if path == "core":
            _listening(db)
        with db.connect() as conn:
            assert fast.usable(conn) is (path == "fast")
        engine = Engine(db=db, definitions=definitions, calendar=Calendar(), timezone=STOCKHOLM,
                        on_commit=lambda ids: None, login="tester")  # fmt: skip
        _run_commands(engine)
        found[path] = _rows(db)
    assert len(found["core"]["events"]) > 20
    assert {row[1] for row in found["core"]["steps"]} == {1, 2, 3}
    for name in TABLES:
        assert found["fast"][name] == found["core"][name], name


def test_the_fast_path_reads_what_core_reads(
    fresh_db: Callable[[str], sa.Engine], tmp_path: Path
) -> None:
    """Each point's head (version, snapshot, last event, latest event), its history, and
    the assignment's digest and versions read the same on both paths, from the same rows;
    a snapshot the fast path takes from what this process wrote is the one decoding its
    text gives."""
    db = fresh_db("read")
    definitions = load([_write_definitions(tmp_path / "defs")])
    _run_commands(Engine(db=db, definitions=definitions, calendar=Calendar(), timezone=STOCKHOLM))
    core = connect(db.url.render_as_string(hide_password=False))
    _listening(core)
    try:
        with db.connect() as quick, core.connect() as slow:
            assert fast.usable(quick)
            assert not fast.usable(slow)
            for number in (1, 2, 3):
                head = store.point_head(quick, "fast", number)
                assert head is not None
                assert head.snapshot is not None
                assert head.last_event_at is not None
                assert head.last_event_at.utcoffset() == dt.timedelta(0)
                assert head == store.point_head(slow, "fast", number)
                # the snapshot this process wrote, taken for its text: as decoding reads it
                # (repr: the times' zones too, UTC as decoded, not the commands' local zone)
                assert repr(head) == repr(store.point_head(slow, "fast", number))
            assert store.point_head(quick, "fast", 4) is store.point_head(slow, "fast", 4) is None
            for number in (1, 2, 3, 4):  # 4 has no events: the fast path's probe says so
                history = store.list_events(quick, assignment="fast", point=number)
                assert history == store.list_events(slow, assignment="fast", point=number)
                assert bool(history) is (number != 4)
            assert store_versions.has_versions(quick, "fast")
            assert not store_versions.has_versions(quick, "none")
            assert store_versions.has_versions(slow, "fast")
            digest = store.assignment_digest(quick, "fast")
            assert digest == definitions.assignment("fast").digest
            assert digest == store.assignment_digest(slow, "fast")
            assert store.assignment_digest(quick, "none") is None
    finally:
        core.dispose()


def test_a_driver_error_on_the_fast_path_is_sqlalchemys(
    fresh_db: Callable[[str], sa.Engine],
) -> None:
    """A statement the database refuses raises SQLAlchemy's error class, as on the Core
    path (the engine turns an IntegrityError into a ConflictError), the parameters not in
    its message (the server's own detail may quote the row, as on the Core path)."""
    db = fresh_db("error")
    now = dt.datetime(2024, 3, 4, 7, tzinfo=dt.UTC)
    row: fast.EventRow = ("step_completed", None, 1, "a", "boss", now, now, {}, 1, None, None)
    with db.begin() as conn:
        assert fast.usable(conn)
        with pytest.raises(sa.exc.IntegrityError) as raised:
            fast.append_events(conn, [row], (now, 0, None))
    assert isinstance(raised.value.orig, db.dialect.loaded_dbapi.IntegrityError)
    assert "[parameters:" not in str(raised.value)
    with db.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM events").scalar() == 0
