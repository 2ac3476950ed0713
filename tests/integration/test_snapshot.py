"""Each point's snapshot (its state in its row) is what a replay of its event log gives.

A command reads the snapshot instead of replaying the log (0012). For random sequences
of commands through the real engine, on SQLite and PostgreSQL (hypothesis: refused
commands write nothing and are skipped), after each one the snapshot equals the replay
of the point's events (without the notes, which only the log keeps), the step rows hold
the same steps, and the row's last event is the point's last. A snapshot that cannot be
trusted (none, as before 0012; another plan; a last event that is not the point's) is
rebuilt by a replay, and events written beside the commands are folded in.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
    RequestExtension,
    ResumeStep,
    SkipStep,
    WriteOff,
)
from workflow.core.calendar import Calendar
from workflow.core.events import EffectFailed, Event, EventType
from workflow.core.plan import PointPlan
from workflow.core.state import replay, without_notes
from workflow.definitions.loader import load
from workflow.engine import Engine
from workflow.errors import CouncilError
from workflow.store import connect, migrate, tables

T0 = dt.datetime(2024, 3, 4, 8, tzinfo=STOCKHOLM)  # a Monday
POINTS = 400
STEPS = ("a", "b", "c", "d")


def _write_definitions(root: Path) -> Path:
    write_flow_definitions(
        root,
        extra_steps="  - id: bild\n    title: Lägesbild\n    repeat: {every: week, on: thursday}\n",
    )
    points = "\n".join(
        f"  - {{number: {n}, title: Punkt {n}, workflow: flow, owner: owner}}"
        for n in range(1, POINTS + 1)
    )
    (root / "assignments" / "snap.yaml").write_text(
        "id: snap\ntitle: Snapshot\nreference: KS 1\ndecided_by: KF\ndecided_on: 2024-01-15\n"
        "assigned_to: {lead: KS}\ncoordinator: boss\nreport_back: 2024-12-16\n"
        f"points:\n{points}\n"
    )
    return root


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Engine, Iterator[int]]]:
    """One database and engine for the module's examples; each example takes a fresh point."""
    tmp = tmp_path_factory.mktemp("snapshot")
    admin = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp / 'council.db'}"
    else:  # a database of its own beside the session's (whose schema other tests reset)
        server = sa.make_url(request.getfixturevalue("postgres_server"))
        admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
        name = f"{server.database}_snapshot"
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        url = server.set(database=name).render_as_string(hide_password=False)
    db = connect(url)
    migrate.upgrade(db)
    engine = Engine(db=db, definitions=load([_write_definitions(tmp / "defs")]),
                    calendar=Calendar(), timezone=STOCKHOLM)  # fmt: skip
    yield engine, itertools.count(1)
    db.dispose()
    if admin is not None:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _check(engine: Engine, plan: PointPlan) -> None:
    """The point's row against a replay of its log."""
    with engine.db.connect() as conn:
        head = store.point_head(conn, plan.assignment, plan.number)
        history = store.list_events(conn, assignment=plan.assignment, point=plan.number)
        rows = [
            store.step_state(r)
            for r in store.step_rows(conn, plan.assignment)
            if r.number == plan.number
        ]
    assert head is not None
    assert head.snapshot is not None
    replayed = without_notes(replay(plan, [e for _, e in history]))
    assert head.snapshot.state == replayed
    assert head.last_event_id == history[-1][0]
    assert head.last_event_at == history[-1][1].occurred_at
    assert sorted(rows, key=lambda s: s.id) == sorted(replayed.steps, key=lambda s: s.id)


_STEP = st.sampled_from(STEPS)
_ACTION = st.one_of(
    st.builds(lambda s: BeginStep(actor="boss", step=s), _STEP),
    st.builds(lambda s: CompleteStep(actor="boss", step=s, note="Klart."), _STEP),
    st.builds(lambda s: CompleteStep(actor="boss", step=s), _STEP),
    st.builds(lambda s: SkipStep(actor="boss", step=s, reason="Behövs inte."), _STEP),
    st.builds(lambda s: ReopenStep(actor="boss", step=s, reason="Igen."), _STEP),
    st.builds(
        lambda s, to: ReassignStep(actor="boss", step=s, to=to),
        _STEP,
        st.sampled_from(["owner", "other"]),
    ),
    st.builds(lambda s: HoldStep(actor="boss", step=s, reason="Väntar."), _STEP),
    st.builds(lambda s: ResumeStep(actor="boss", step=s), _STEP),
    st.builds(
        lambda s, d: ExtendStep(actor="boss", step=s, to=dt.date(2024, 6, d), reason="Mer tid."),
        _STEP,
        st.integers(1, 28),
    ),
    st.builds(lambda s: RequestExtension(actor="owner", step=s, days=5), _STEP),
    st.builds(lambda t: AddNote(actor="boss", text=t), st.sampled_from(["En not.", "Två."])),
    st.just(WriteOff(actor="boss", reason="Inaktuell.")),
    st.just("open"),  # the sweep opens the weekly duty's occurrences whose day has come
    st.just("beside"),  # an event written beside the commands (a delivery that gave up)
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(actions=st.lists(st.tuples(_ACTION, st.integers(0, 3)), max_size=14))
def test_the_snapshot_is_the_replay_of_the_log(
    world: tuple[Engine, Iterator[int]], actions: list[tuple[Action | str, int]]
) -> None:
    engine, numbers = world
    plan = engine.definitions.assignment("snap").point(next(numbers))
    engine.start("snap", actor="boss", now=T0, only=plan.number)
    _check(engine, plan)
    now = T0
    lags = False  # an event was written beside: the row's snapshot lags until a command
    for action, days in actions:
        now += dt.timedelta(days=days, minutes=1)
        try:
            if action == "open":
                with engine.db.begin() as conn:
                    engine.open_occurrences(conn, plan, "bild", now=now)
            elif action == "beside":
                with engine.db.begin() as conn:
                    engine.log.append(conn, [Event(
                        type=EventType.EFFECT_FAILED, assignment=plan.assignment,
                        point=plan.number, step="a", actor="council", occurred_at=now,
                        payload=EffectFailed(effect=1, key="k", kind="prompt", error="x"),
                    )], now=now)  # fmt: skip
                lags = True
                continue
            else:
                assert not isinstance(action, str)
                engine.act(plan, action, now=now)
            lags = False  # a command folded in what was written beside it
        except CouncilError:
            pass  # refused: nothing was written
        if not lags:
            _check(engine, plan)


def _with_row(engine: Engine, plan: PointPlan, **values: object) -> None:
    with engine.db.begin() as conn:
        conn.execute(
            tables.points.update()
            .where(tables.points.c.assignment == plan.assignment,
                   tables.points.c.number == plan.number)
            .values(**values)
        )  # fmt: skip


@pytest.mark.parametrize(
    "damage",
    [
        {"snapshot": None, "last_event_id": None, "last_event_at": None},  # as before 0012
        {"last_event_id": "another"},  # the snapshot claims an event of another point
        {"last_event_id": 10**9},  # ... or one that does not exist
    ],
    ids=["none", "another-point", "missing"],
)
def test_a_snapshot_that_cannot_be_trusted_is_rebuilt_by_a_replay(
    world: tuple[Engine, Iterator[int]], damage: dict[str, object]
) -> None:
    """A snapshot missing, or whose last event is not the point's last, is not used: the
    command replays the log and writes the snapshot and every step row anew."""
    engine, numbers = world
    another = engine.definitions.assignment("snap").point(next(numbers))
    another_id = engine.start("snap", actor="boss", now=T0, only=another.number).event_ids[-1]
    plan = engine.definitions.assignment("snap").point(next(numbers))
    engine.start("snap", actor="boss", now=T0, only=plan.number)
    engine.act(plan, CompleteStep(actor="boss", step="a", note="Klart."), now=T0)
    with engine.db.begin() as conn:  # a wrong step row, which only a full rewrite repairs
        conn.execute(
            tables.steps.update()
            .where(tables.steps.c.assignment == plan.assignment,
                   tables.steps.c.number == plan.number, tables.steps.c.step == "d")
            .values(status="done")
        )  # fmt: skip
    _with_row(engine, plan, **{k: another_id if v == "another" else v for k, v in damage.items()})
    engine.act(plan, BeginStep(actor="boss", step="b"), now=T0 + dt.timedelta(hours=1))
    _check(engine, plan)
    with engine.db.connect() as conn:
        head = store.point_head(conn, plan.assignment, plan.number)
    assert head is not None
    assert head.snapshot is not None
    assert head.snapshot.state.step("d").status.value == "pending"


def test_a_command_before_the_last_event_is_refused_from_the_snapshot(
    world: tuple[Engine, Iterator[int]],
) -> None:
    """The row keeps the last event's time: a command dated before it is refused, as when
    the engine replayed the log, whether that event came from a command or beside one."""
    engine, numbers = world
    plan = engine.definitions.assignment("snap").point(next(numbers))
    engine.start("snap", actor="boss", now=T0, only=plan.number)
    later = T0 + dt.timedelta(days=1)
    engine.act(plan, AddNote(actor="boss", text="Senare."), now=later)
    with pytest.raises(CouncilError, match="already has events"):
        engine.act(plan, AddNote(actor="boss", text="Förr."), now=T0 + dt.timedelta(hours=1))
    beside = later + dt.timedelta(days=1)
    with engine.db.begin() as conn:
        engine.log.append(conn, [Event(
            type=EventType.EFFECT_FAILED, assignment=plan.assignment, point=plan.number,
            step="a", actor="council", occurred_at=beside,
            payload=EffectFailed(effect=1, key="k", kind="prompt", error="x"),
        )], now=beside)  # fmt: skip
    with pytest.raises(CouncilError, match="already has events"):
        engine.act(plan, AddNote(actor="boss", text="Förr."), now=later + dt.timedelta(hours=1))
    engine.act(plan, AddNote(actor="boss", text="Sist."), now=beside)
    _check(engine, plan)


def test_a_database_from_before_0012_gets_its_snapshots_on_first_use(
    database_url: str, tmp_path: Path
) -> None:
    """Points written before 0012 (here: downgraded to 0011 and upgraded again, so their
    rows have no snapshot) are replayed by their first command, which writes the snapshot;
    the next reads it."""
    db = connect(database_url)
    try:
        migrate.upgrade(db)
        engine = Engine(db=db, definitions=load([_write_definitions(tmp_path / "defs")]),
                        calendar=Calendar(), timezone=STOCKHOLM)  # fmt: skip
        plan = engine.definitions.assignment("snap").point(1)
        engine.start("snap", actor="boss", now=T0, only=plan.number)
        engine.act(plan, CompleteStep(actor="boss", step="a", note="Klart."), now=T0)
        migrate.downgrade(db, "0011")
        assert migrate.upgrade(db) == ("0011", migrate.head())
        with db.connect() as conn:
            head = store.point_head(conn, plan.assignment, plan.number)
        assert head is not None
        assert head.snapshot is None
        engine.act(plan, BeginStep(actor="boss", step="b"), now=T0 + dt.timedelta(hours=1))
        _check(engine, plan)
        engine.act(plan, AddNote(actor="boss", text="Sedan."), now=T0 + dt.timedelta(hours=2))
        _check(engine, plan)
    finally:
        db.dispose()
