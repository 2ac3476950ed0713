"""The deadline sweep with time travel, on a real SQLite file and a real PostgreSQL database.

Every sweep is given its ``now`` (Europe/Stockholm): reminders before the due
date, the first overdue notice, each escalation rung to the right person, each
firing exactly once (also when sweeps race in threads and in processes), the
sweep's cost following ``next_check_at``, held and extended steps, absences,
one digest per person per sweep; and the CLI's ``check-deadlines``,
``simulate``, ``calendar`` and ``status`` marks.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import subprocess
import sys
import threading
import traceback
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from cli import main
from tests.integration.conftest import STOCKHOLM
from tests.support import DEFINITIONS, ROOT, copy_definitions
from workflow import handlers, store, sweep
from workflow.core import simulate
from workflow.core.actions import ExtendStep, HoldStep, ReassignStep, ResumeStep
from workflow.core.calendar import Calendar
from workflow.core.events import EventType
from workflow.core.plan import Definitions
from workflow.definitions.loader import load
from workflow.engine import Engine
from workflow.handlers import HandlerContext, notify_deadline
from workflow.settings import Settings
from workflow.store import firings, tables

HEDER = "kf-2022-hedersvald"  # points 1 (analyse) and 2 (needs) start on 2022-12-01
LOKAL = "kf-2024-lokalforsorjning"  # point 1 (forecast, inventory) starts on 2024-04-02
DEADLINE_EVENTS = [
    EventType.STEP_REMINDER_DUE.value,
    EventType.STEP_OVERDUE.value,
    EventType.STEP_ESCALATED.value,
]


def at(day: str, time: str = "07:00") -> dt.datetime:
    """An aware time in Stockholm."""
    return dt.datetime.fromisoformat(f"{day}T{time}").replace(tzinfo=STOCKHOLM)


def days(first: str, last: str) -> list[dt.date]:
    start, end = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
    return [start + dt.timedelta(days=n) for n in range((end - start).days + 1)]


@dataclass
class Swept:
    """A sweep's result, and what the workers' handlers recorded for its events."""

    result: sweep.SweepResult
    digests: list[int]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.result, name)


def run_sweep(engine: Engine, now: dt.datetime, **kwargs: Any) -> Swept:
    """Sweep, then run each event's handlers as a worker would (effects recorded, none sent)."""
    result = sweep.sweep(engine, now=now, **kwargs)
    recorded = handle(engine, result.event_ids, now)
    return Swept(result, [i for i in recorded if i in digest_ids(engine.db)])


def handle(engine: Engine, event_ids: list[int], now: dt.datetime) -> list[int]:
    """What a worker does with events: run their handlers once; the effects they record."""
    return [
        effect_id
        for event_id in event_ids
        for effect_id in handlers.dispatch(
            engine.db, engine.definitions, settings(), event_id, now=now, tz=STOCKHOLM
        ).recorded
    ]


@functools.cache
def settings() -> Settings:
    """An installation without replies by e-mail: what the handlers read."""
    return Settings(reply_secret=None)


def digest_ids(db: sa.Engine) -> set[int]:
    return {row.id for row in effect_rows(db, "digest")}


def sweeps_at_once(engine: Engine, now: dt.datetime, count: int = 2) -> list[Swept]:
    """``count`` sweeps at the same moment in threads (a beat firing twice): each result;
    any error in a thread fails the test."""
    barrier = threading.Barrier(count)
    results: list[Swept] = []
    errors: list[BaseException] = []

    def race() -> None:
        try:
            barrier.wait(timeout=10)
            results.append(run_sweep(engine, now))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=race) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert len(results) == count
    return results


def fired(result: Swept | sweep.SweepResult) -> list[tuple[str, str, int, str, str | None]]:
    """What a sweep fired, as (step, kind, level, to, via), in a stable order."""
    return sorted(
        (f.firing.step, f.firing.kind.value, f.firing.level, f.to, f.via) for f in result.fired
    )


def start_heder(engine: Engine) -> None:
    """Points 1 and 2, by number: the others are not planned, so no sweep starts them
    (tests/integration/test_planned_starts.py is about planned starts)."""
    for number in (1, 2):
        engine.start(HEDER, actor="sara.nilsson", now=at("2022-12-01", "09:00"), only=number)


def start_lokal(engine: Engine, *, planned: bool = False) -> None:
    """Point 1; with ``planned``, the whole assignment, so the sweep starts point 2 on its
    planned day (2024-05-06)."""
    only = None if planned else 1
    engine.start(LOKAL, actor="erik.sjoberg", now=at("2024-04-02", "09:00"), only=only)


def command(engine: Engine, assignment: str, number: int, cmd: Any, now: dt.datetime) -> None:
    engine.act(engine.definitions.assignment(assignment).point(number), cmd, now=now)


def count(db: sa.Engine, table: sa.Table, *where: Any) -> int:
    with db.connect() as conn:
        query = sa.select(sa.func.count()).select_from(table).where(*where)
        return int(conn.execute(query).scalar_one())


def next_checks(db: sa.Engine) -> dict[tuple[str, int, str], dt.date | None]:
    with db.connect() as conn:
        rows = conn.execute(sa.select(tables.steps)).all()
    return {(r.assignment, r.number, r.step): r.next_check_at for r in rows}


def deadline_events(db: sa.Engine) -> list[dict[str, Any]]:
    """The sweep's events, oldest first, as their payload plus type and id."""
    with db.connect() as conn:
        rows = conn.execute(
            sa.select(tables.events)
            .where(tables.events.c.type.in_(DEADLINE_EVENTS))
            .order_by(tables.events.c.id)
        ).all()
    return [{"id": r.id, "type": r.type, **r.payload} for r in rows]


def effect_rows(db: sa.Engine, kind: str) -> list[Any]:
    with db.connect() as conn:
        return list(conn.execute(sa.select(tables.effects).where(tables.effects.c.kind == kind)))


def firing_rows(db: sa.Engine) -> list[Any]:
    with db.connect() as conn:
        return list(conn.execute(sa.select(tables.firings).order_by(tables.firings.c.key)))


def written(db: sa.Engine) -> dict[str, Any]:
    """Everything a sweep may write, to compare before and after."""
    return {
        "events": count(db, tables.events),
        "outbox": count(db, tables.outbox),
        "firings": count(db, tables.firings),
        "effects": count(db, tables.effects),
        "next_checks": next_checks(db),
    }


def assert_each_escalation_in_one_digest(db: sa.Engine) -> None:
    """Every escalation is listed in exactly one digest, the one to the person it went to.

    (Sweeps racing on PostgreSQL may split one person's escalations between their two
    digests; none may be listed twice or left out.)
    """
    with db.connect() as conn:
        payloads = conn.execute(
            sa.select(tables.effects.c.payload).where(tables.effects.c.kind == "digest")
        ).scalars()
        listed = Counter(
            (payload["message"]["to_email"], line[2:].split(":")[0])
            for payload in payloads
            for line in payload["message"]["text"].splitlines()
            if line.startswith("- ")
        )
    expected = Counter(
        (f"{e['to']}@kommun.example", f"{e['point']}/{e['step']}")
        for e in deadline_events(db)
        if e["kind"] == "escalation"
    )
    assert expected
    assert listed == expected


def assert_each_firing_once(db: sa.Engine) -> None:
    """Each (step, due date, kind, level) has at most one event and one firings row."""
    events = deadline_events(db)
    per_key = Counter((e["point"], e["step"], e["due"], e["kind"], e["level"]) for e in events)
    assert per_key
    assert set(per_key.values()) == {1}, per_key
    linked = [row.event_id for row in firing_rows(db) if row.event_id is not None]
    assert sorted(linked) == sorted(e["id"] for e in events)


# --- every rule, day by day ------------------------------------------------------------

#: Sweeping once a day (07:00) from the start of kf-2024-lokalforsorjning/1:
#: (day, step, kind, level, to). forecast is ulla.wik's (due 2024-05-16: remind
#: -10bd/-3bd, escalate +3bd to her manager, +10bd to the kommundirektor);
#: inventory is per.lund's (due 2024-05-30: default reminders -10bd/-2bd for a
#: long step, escalate +5bd to his manager). 2024-06-06 is the national day.
LOKAL_LADDER = [
    ("2024-04-30", "forecast", "reminder", 1, "ulla.wik"),
    ("2024-05-13", "forecast", "reminder", 2, "ulla.wik"),
    ("2024-05-16", "inventory", "reminder", 1, "per.lund"),
    ("2024-05-17", "forecast", "overdue", 0, "ulla.wik"),
    ("2024-05-21", "forecast", "escalation", 1, "per.lund"),
    ("2024-05-28", "inventory", "reminder", 2, "per.lund"),
    ("2024-05-30", "forecast", "escalation", 2, "karin.holm"),
    ("2024-05-31", "inventory", "overdue", 0, "per.lund"),
    ("2024-06-07", "inventory", "escalation", 1, "karin.holm"),
]


def test_each_rule_fires_on_its_day_to_the_right_person(engine: Engine) -> None:
    """Swept daily: reminders before due, overdue on the first working day after, each rung
    with its level to the owner's manager or the named role, on its day and not before."""
    start_lokal(engine)
    seen = []
    for day in days("2024-04-02", "2024-06-14"):
        result = run_sweep(engine, at(day.isoformat()))
        seen += [(day.isoformat(), *item[:4]) for item in fired(result)]
        assert all(item[4] is None for item in fired(result))  # nobody is away in May
    assert seen == LOKAL_LADDER
    events = {(e["step"], e["kind"], e["level"]): e for e in deadline_events(engine.db)}
    assert events[("forecast", "reminder", 1)]["type"] == "step.reminder_due"
    assert events[("forecast", "reminder", 1)]["due"] == "2024-05-16"
    assert events[("forecast", "reminder", 1)]["days_overdue"] == 0
    assert events[("forecast", "overdue", 0)]["type"] == "step.overdue"
    assert events[("forecast", "overdue", 0)]["days_overdue"] == 1
    assert events[("forecast", "escalation", 1)]["type"] == "step.escalated"
    assert events[("forecast", "escalation", 1)]["owner"] == "ulla.wik"
    assert events[("forecast", "escalation", 1)]["days_overdue"] == 3
    assert events[("forecast", "escalation", 2)]["days_overdue"] == 10
    assert events[("inventory", "escalation", 1)]["days_overdue"] == 5
    assert_each_firing_once(engine.db)


def test_reminder_day_is_the_stockholm_day(engine: Engine) -> None:
    """A reminder due on 2024-04-30 fires at 00:30 Stockholm time (still the 29th in UTC),
    and not at 23:30 the evening before."""
    start_lokal(engine)
    assert run_sweep(engine, at("2024-04-29", "23:30")).fired == []
    result = run_sweep(engine, at("2024-04-30", "00:30"))
    assert fired(result) == [("forecast", "reminder", 1, "ulla.wik", None)]
    assert result.fired[0].firing.fires_on == dt.date(2024, 4, 30)


#: Point 2 (study, per.lund's) is planned to start on 2024-05-06: the sweep starts it.
LOKAL_START = ("2024-05-06", None, "start", 0, "per.lund")


def test_simulation_matches_what_daily_sweeps_fire(engine: Engine) -> None:
    """simulate.timeline, computed before any sweep, lists exactly what sweeping each day
    then does (the planned start of point 2 among the firings), on the same days, to the
    same people."""
    start_lokal(engine, planned=True)
    plan = engine.definitions.assignment(LOKAL)
    rows = simulate.timeline(
        engine.definitions.directory, plan, engine.snapshot(LOKAL), start=dt.date(2024, 4, 2),
        until=dt.date(2024, 6, 14), calendar=engine.calendar, fired=set(),
    )  # fmt: skip
    predicted = [(r["fires_on"], r["step"], r["kind"], r["level"], r["to"]) for r in rows]
    swept = []
    for day in days("2024-04-02", "2024-06-14"):
        items = run_sweep(engine, at(day.isoformat())).result.items()
        swept += [(day.isoformat(), i["step"], i["kind"], i["level"], i["to"]) for i in items]
    assert (
        predicted
        == sorted(swept, key=lambda r: (r[0], r[1] or ""))
        == sorted([*LOKAL_LADDER, LOKAL_START], key=lambda r: (r[0], r[1] or ""))
    )


def test_superseded_reminders_never_fire(engine: Engine) -> None:
    """A first sweep after both reminders came due fires only the latest; after the due date
    only the overdue notice: the passed-over reminders are claimed and never fire later."""
    start_lokal(engine)
    assert fired(run_sweep(engine, at("2024-05-14"))) == [
        ("forecast", "reminder", 2, "ulla.wik", None)
    ]
    # inventory: both reminders (05-16, 05-28) and the due date passed unswept
    assert fired(run_sweep(engine, at("2024-05-31"))) == [
        ("forecast", "escalation", 1, "per.lund", None),
        ("forecast", "escalation", 2, "karin.holm", None),
        ("forecast", "overdue", 0, "ulla.wik", None),
        ("inventory", "overdue", 0, "per.lund", None),
    ]
    silent = {row.key: row.event_id for row in firing_rows(engine.db) if row.event_id is None}
    assert sorted(silent) == [
        f"{LOKAL}/1/forecast:2024-05-16:reminder:1",
        f"{LOKAL}/1/inventory:2024-05-30:reminder:1",
        f"{LOKAL}/1/inventory:2024-05-30:reminder:2",
    ]
    assert fired(run_sweep(engine, at("2024-06-07"))) == [
        ("inventory", "escalation", 1, "karin.holm", None)
    ]


def test_owner_without_manager_escalates_to_the_coordinator(engine: Engine) -> None:
    """A `to: manager` rung for an owner with no manager (karin.holm) goes to the
    assignment's coordinator, and says why."""
    start_heder(engine)
    command(engine, HEDER, 1, ReassignStep(actor="sara.nilsson", step="analyse",
                                           to="karin.holm"), at("2022-12-02"))  # fmt: skip
    result = run_sweep(engine, at("2023-01-04"))
    escalations = [f for f in result.fired if f.firing.kind.value == "escalation"]
    assert [(f.firing.step, f.firing.level, f.owner, f.to, f.via) for f in escalations] == [
        ("analyse", 1, "karin.holm", "sara.nilsson", "karin.holm has no manager at that level")
    ]


@pytest.fixture
def ladder_definitions(tmp_path: Path) -> Definitions:
    """The definitions with forecast's ladder made of three manager rungs and a role."""
    root = tmp_path / "definitions"
    copy_definitions(root)
    path = root / "assignments" / "lokalforsorjning-2024.yaml"
    before = "escalate: [{after: 3bd, to: manager}, {after: 10bd, to: kommundirektor}]"
    after = (
        "escalate: [{after: 3bd, to: manager}, {after: 5bd, to: manager}, "
        "{after: 7bd, to: manager}, {after: 10bd, to: kommundirektor}]"
    )
    text = path.read_text(encoding="utf-8")
    assert before in text
    path.write_text(text.replace(before, after), encoding="utf-8")
    return load([root])


def test_manager_rungs_climb_the_chain_then_reach_the_coordinator(
    db: sa.Engine, ladder_definitions: Definitions
) -> None:
    """Each `to: manager` rung climbs one level (ulla.wik -> per.lund -> karin.holm); the
    rung past the top goes to the coordinator; a role rung goes to the role's holder."""
    engine = Engine(db=db, definitions=ladder_definitions, calendar=Calendar(), timezone=STOCKHOLM)
    start_lokal(engine)
    ladder = []
    for day in days("2024-05-17", "2024-05-31"):
        result = run_sweep(engine, at(day.isoformat()))
        ladder += [
            (day.isoformat(), f.firing.level, f.to, f.via)
            for f in result.fired
            if f.firing.step == "forecast" and f.firing.kind.value == "escalation"
        ]
    assert ladder == [
        ("2024-05-21", 1, "per.lund", None),
        ("2024-05-23", 2, "karin.holm", None),
        ("2024-05-27", 3, "erik.sjoberg", "ulla.wik has no manager at that level"),
        ("2024-05-30", 4, "karin.holm", None),
    ]


# --- exactly once ----------------------------------------------------------------------


def test_sweeping_again_fires_nothing_twice(engine: Engine) -> None:
    """A second sweep at the same time, later that day or days later fires nothing again;
    a later sweep fires only what newly fell due. Events and firings hold each key once."""
    start_lokal(engine)
    first = run_sweep(engine, at("2024-05-21"))
    assert len(first.fired) == 3  # forecast overdue + escalation 1, inventory reminder 1
    after_first = written(engine.db)
    for now in (at("2024-05-21"), at("2024-05-21", "16:45"), at("2024-05-27")):
        again = run_sweep(engine, now)
        assert again.fired == []
        assert again.event_ids == []
        assert again.digests == []
    assert written(engine.db) == after_first
    later = run_sweep(engine, at("2024-06-07"))
    assert fired(later) == [
        ("forecast", "escalation", 2, "karin.holm", None),
        ("inventory", "escalation", 1, "karin.holm", None),
        ("inventory", "overdue", 0, "per.lund", None),
    ]
    assert run_sweep(engine, at("2024-06-07")).fired == []
    assert_each_firing_once(engine.db)
    assert count(engine.db, tables.effects, tables.effects.c.kind == "digest") == 2


def test_two_sweeps_at_once_in_threads_fire_each_firing_once(engine: Engine) -> None:
    """A beat firing twice: two sweeps in two threads at the same moment fire each key once
    between them."""
    start_heder(engine)
    start_lokal(engine)
    now = at("2024-06-07")
    expected = sorted(f.firing.key for f in run_sweep(engine, now, dry_run=True).fired)
    assert len(expected) == 9
    results = sweeps_at_once(engine, now)
    keys = [f.firing.key for result in results for f in result.fired]
    assert sorted(keys) == expected  # each once, none lost
    assert_each_firing_once(engine.db)
    assert_each_escalation_in_one_digest(engine.db)


RACER = """
import datetime as dt, json, sys, time
from pathlib import Path
from zoneinfo import ZoneInfo
from workflow import store
from workflow.store import tables
from workflow import sweep
from workflow.core.calendar import Calendar
from workflow.definitions.loader import load
from workflow.engine import Engine

url, definitions, go, ready, now = sys.argv[1:]
db = store.connect(url)
tz = ZoneInfo("Europe/Stockholm")
engine = Engine(db=db, definitions=load([Path(definitions)]), calendar=Calendar(), timezone=tz)
with db.connect() as conn:  # connected and warm before the start signal
    conn.exec_driver_sql("SELECT 1")
Path(ready).touch()
while not Path(go).exists():
    time.sleep(0.002)
result = sweep.sweep(engine, now=dt.datetime.fromisoformat(now))
db.dispose()
print(json.dumps({"fired": [f.firing.key for f in result.fired], "events": result.event_ids}))
"""


def test_two_sweeps_racing_in_two_processes_fire_each_firing_once(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    """Two processes sweep the same database at the same moment: every due firing fires
    exactly once between them (PostgreSQL: SKIP LOCKED; SQLite: the write lock)."""
    start_heder(engine)
    start_lokal(engine)
    now = at("2024-06-07")
    expected = sorted(f.firing.key for f in run_sweep(engine, now, dry_run=True).fired)
    go = tmp_path / "go"
    racers = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                RACER,
                database_url,
                str(DEFINITIONS),
                str(go),
                str(tmp_path / f"ready-{n}"),
                now.isoformat(),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(2)
    ]
    try:
        deadline = dt.datetime.now() + dt.timedelta(seconds=30)
        while not all((tmp_path / f"ready-{n}").exists() for n in range(2)):
            assert dt.datetime.now() < deadline, "the racers did not get ready"
            assert all(r.poll() is None for r in racers), [r.communicate() for r in racers]
            threading.Event().wait(0.01)
        go.touch()
        outputs = [r.communicate(timeout=60) for r in racers]
    finally:
        for racer in racers:
            if racer.poll() is None:
                racer.kill()
                racer.wait()
    assert [r.returncode for r in racers] == [0, 0], outputs
    results = [json.loads(out) for out, _ in outputs]
    keys = [key for result in results for key in result["fired"]]
    assert sorted(keys) == expected
    assert len(set(keys)) == len(keys)
    assert_each_firing_once(engine.db)
    handle(engine, [i for r in results for i in r["events"]], now)  # the workers' part
    assert_each_escalation_in_one_digest(engine.db)


def test_an_extension_committed_while_a_sweep_runs_is_not_lost(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A coordinator extends a step just as a sweep has read it (the sweep fires the step's
    last rung of the old date): the new date's cycle is still swept afterwards.

    The extension commits from another thread right after the sweep's read of due steps.
    On PostgreSQL it waits for the sweep's row locks and commits after it; either way
    the step must end up with the new cycle's first firing as its next check.
    """
    start_lokal(engine)
    run_sweep(engine, at("2024-05-29"))  # reminders, overdue and escalation 1 have fired
    read_due_steps = firings.due_steps
    extension: list[BaseException | None] = []

    def extend() -> None:
        try:
            command(engine, LOKAL, 1, ExtendStep(actor="erik.sjoberg", step="forecast",
                                                 to=dt.date(2024, 6, 20), reason="KS beslut"),
                    at("2024-05-30", "06:55"))  # fmt: skip
            extension.append(None)
        except BaseException as exc:
            extension.append(exc)

    worker = threading.Thread(target=extend)

    def read_then_extend(conn: sa.Connection, today: dt.date, limit: int) -> list[Any]:
        rows = read_due_steps(conn, today, limit)
        worker.start()
        worker.join(timeout=2)  # SQLite: commits now; PostgreSQL: waits for the row lock
        return rows

    monkeypatch.setattr(firings, "due_steps", read_then_extend)
    run_sweep(engine, at("2024-05-30"))
    worker.join(timeout=30)
    monkeypatch.setattr(firings, "due_steps", read_due_steps)
    assert extension == [None]
    assert engine.snapshot(LOKAL)[(LOKAL, 1)].step("forecast").due == dt.date(2024, 6, 20)
    assert next_checks(engine.db)[(LOKAL, 1, "forecast")] == dt.date(2024, 6, 5)
    new_cycle = [f for f in fired(run_sweep(engine, at("2024-06-05"))) if f[0] == "forecast"]
    assert new_cycle == [("forecast", "reminder", 1, "ulla.wik", None)]


def test_a_hold_committed_while_a_sweep_runs_stops_its_firings(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A step held just as a sweep has read it fires nothing if the hold committed before the
    sweep wrote anything; if the hold had to wait for the sweep (PostgreSQL's row lock), the
    reminder the sweep fired came first. Either way the held step is left unchecked."""
    start_lokal(engine)
    read_due_steps = firings.due_steps
    outcome: list[BaseException | None] = []

    def hold() -> None:
        try:
            held = HoldStep(actor="erik.sjoberg", step="forecast", reason="Väntar på SCB")
            command(engine, LOKAL, 1, held, at("2024-04-30", "06:55"))
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=hold)
    hold_first: list[bool] = []

    def read_then_hold(conn: sa.Connection, today: dt.date, limit: int) -> list[Any]:
        rows = read_due_steps(conn, today, limit)
        worker.start()
        worker.join(timeout=2)  # SQLite: commits now; PostgreSQL: waits for the row lock
        hold_first.append(not worker.is_alive())
        return rows

    monkeypatch.setattr(firings, "due_steps", read_then_hold)
    result = run_sweep(engine, at("2024-04-30"))
    worker.join(timeout=30)
    monkeypatch.setattr(firings, "due_steps", read_due_steps)
    assert outcome == [None]
    if hold_first == [True]:  # the hold committed before the sweep wrote anything
        assert fired(result) == []
    else:
        assert fired(result) == [("forecast", "reminder", 1, "ulla.wik", None)]
    assert engine.snapshot(LOKAL)[(LOKAL, 1)].step("forecast").held_since is not None
    assert next_checks(engine.db)[(LOKAL, 1, "forecast")] is None


# --- cost follows what is due ----------------------------------------------------------


def test_a_sweep_touches_only_due_steps_and_moves_them_to_their_next_firing(
    engine: Engine,
) -> None:
    """Only steps whose next_check_at has come are read; each swept step's next_check_at
    moves strictly later, to its next firing; others keep theirs; no firing left -> NULL."""
    start_lokal(engine)
    forecast, inventory = (LOKAL, 1, "forecast"), (LOKAL, 1, "inventory")
    before = next_checks(engine.db)
    assert before[forecast] == dt.date(2024, 4, 30)
    assert before[inventory] == dt.date(2024, 5, 16)
    assert before[(LOKAL, 1, "plan")] is None  # pending: nothing to check

    nothing = run_sweep(engine, at("2024-04-29"))
    assert (nothing.steps_checked, nothing.fired) == (0, [])
    assert next_checks(engine.db) == before

    swept = run_sweep(engine, at("2024-04-30"))
    assert swept.steps_checked == 1
    after = next_checks(engine.db)
    assert after[forecast] == dt.date(2024, 5, 13)  # reminder 2, strictly later
    assert {k: v for k, v in after.items() if k != forecast} == {
        k: v for k, v in before.items() if k != forecast
    }

    for day, step, _kind, _level, _to in LOKAL_LADDER[1:]:
        checks_before = next_checks(engine.db)
        result = run_sweep(engine, at(day))
        due_today = {k for k, v in checks_before.items() if v and v <= dt.date.fromisoformat(day)}
        assert result.steps_checked == len(due_today)
        assert (LOKAL, 1, step) in due_today
        for key, value in next_checks(engine.db).items():
            if key in due_today:
                assert value is None or value > dt.date.fromisoformat(day), (key, value)
            else:
                assert value == checks_before[key], key
    final = next_checks(engine.db)
    assert final[forecast] is None
    assert final[inventory] is None


# --- holding the clock, extensions, absences -------------------------------------------


def test_a_held_step_fires_nothing_and_resuming_moves_its_schedule(engine: Engine) -> None:
    """Held from 2022-12-15 to 2023-01-05 (14 working days), analyse fires nothing; on resume
    its due date 2022-12-30 moves to 2023-01-20 and reminder, overdue and escalation follow."""
    start_heder(engine)
    hold = HoldStep(actor="sara.nilsson", step="analyse", reason="Väntar på polisens lägesbild")
    command(engine, HEDER, 1, hold, at("2022-12-15"))
    assert next_checks(engine.db)[(HEDER, 1, "analyse")] is None
    held = [
        item
        for day in days("2022-12-15", "2023-01-05")
        for item in fired(run_sweep(engine, at(day.isoformat())))
    ]
    assert [item[0] for item in held] == ["needs", "needs"]  # its two reminders; analyse none

    command(engine, HEDER, 1, ResumeStep(actor="sara.nilsson", step="analyse"),
            at("2023-01-05", "09:00"))  # fmt: skip
    resumed = engine.snapshot(HEDER)[(HEDER, 1)].step("analyse")
    assert resumed.held_since is None
    assert resumed.due == dt.date(2023, 1, 20)
    assert resumed.due == engine.calendar.add_business_days(dt.date(2022, 12, 30), 14)
    assert next_checks(engine.db)[(HEDER, 1, "analyse")] == dt.date(2023, 1, 13)

    after = []
    for day in days("2023-01-05", "2023-01-31"):
        result = run_sweep(engine, at(day.isoformat()))
        after += [
            (day.isoformat(), f.firing.kind.value, f.firing.level, f.firing.step_due.isoformat())
            for f in result.fired
            if f.firing.step == "analyse"
        ]
    assert after == [
        ("2023-01-13", "reminder", 1, "2023-01-20"),
        ("2023-01-23", "overdue", 0, "2023-01-20"),
        ("2023-01-25", "escalation", 1, "2023-01-20"),
    ]
    assert not any(
        e["step"] == "analyse" and e["due"] == "2022-12-30" for e in deadline_events(engine.db)
    )


def test_an_absent_owners_firing_goes_to_the_substitute(
    engine: Engine, definitions: Definitions
) -> None:
    """ulla.wik is away 2024-07-01..08-02: her reminder and overdue notice go to per.lund with
    `via` saying so; the handler queues her a copy for the day she is back."""
    start_lokal(engine)
    command(engine, LOKAL, 1, ExtendStep(actor="erik.sjoberg", step="forecast",
                                         to=dt.date(2024, 7, 15), reason="KS beslut"),
            at("2024-04-03"))  # fmt: skip
    via = "substitute for ulla.wik, who is away"
    reminder = [f for f in run_sweep(engine, at("2024-07-01")).fired if f.firing.step == "forecast"]
    assert [(f.firing.kind.value, f.owner, f.to, f.via) for f in reminder] == [
        ("reminder", "ulla.wik", "per.lund", via)
    ]
    overdue = [f for f in run_sweep(engine, at("2024-07-16")).fired if f.firing.step == "forecast"]
    assert [(f.firing.kind.value, f.owner, f.to, f.via) for f in overdue] == [
        ("overdue", "ulla.wik", "per.lund", via)
    ]
    event = next(e for e in deadline_events(engine.db) if e["kind"] == "reminder")
    assert (event["to"], event["owner"], event["via"]) == ("per.lund", "ulla.wik", via)

    with engine.db.begin() as conn:
        stored = store.get_event(conn, event["id"])
        assert stored is not None
        ctx = HandlerContext(
            conn, definitions, settings(), event["id"], at("2024-07-01"), STOCKHOLM
        )
        notify_deadline(ctx, stored)
        rows = conn.execute(
            sa.select(tables.effects).where(tables.effects.c.event_id == event["id"])
        ).all()
    by_key = {r.key: r for r in rows}
    assert set(by_key) == {
        f"reminder:{event['id']}:per.lund",
        f"reminder:{event['id']}:ulla.wik:copy",
    }
    copy = by_key[f"reminder:{event['id']}:ulla.wik:copy"]
    assert store.aware(copy.next_attempt_at) == at("2024-08-03")
    assert copy.payload["message"]["to_email"] == "ulla.wik@kommun.example"
    assert by_key[f"reminder:{event['id']}:per.lund"].payload["message"]["to_email"] == (
        "per.lund@kommun.example"
    )


# --- digests ---------------------------------------------------------------------------


def test_one_digest_per_person_per_sweep(engine: Engine) -> None:
    """Two escalations to karin.holm in one sweep make one digest listing both; per.lund's
    one escalation makes his own; sweeping again makes no more digests."""
    start_lokal(engine)
    result = run_sweep(engine, at("2024-06-07"))
    escalated = sorted((f.to, f.firing.step) for f in result.fired if f.firing.level > 0
                       and f.firing.kind.value == "escalation")  # fmt: skip
    assert escalated == [
        ("karin.holm", "forecast"), ("karin.holm", "inventory"), ("per.lund", "forecast")
    ]  # fmt: skip
    with engine.db.connect() as conn:
        digests = conn.execute(
            sa.select(tables.effects).where(tables.effects.c.kind == "digest")
        ).all()
    assert sorted(r.id for r in digests) == sorted(result.digests)
    by_person = {r.key.rsplit(":", 1)[1]: r for r in digests}
    assert sorted(by_person) == ["karin.holm", "per.lund"]
    (sweep_id,) = {e["sweep"] for e in deadline_events(engine.db) if e["kind"] == "escalation"}
    assert by_person["karin.holm"].key == f"digest:{sweep_id}:karin.holm"
    karin = by_person["karin.holm"].payload["message"]
    assert karin["to_email"] == "karin.holm@kommun.example"
    assert karin["subject"] == "Eskalering: 2 försenade moment"
    assert "Följande moment är försenade och har eskalerats till dig." in karin["text"]
    assert f"- {LOKAL}/1/forecast: Ta fram befolkningsprognos per område" in karin["text"]
    assert f"- {LOKAL}/1/inventory: Inventera befintliga lokaler" in karin["text"]
    assert "Arbetsdagar försenat: 15" in karin["text"]  # forecast, due 2024-05-16
    assert "Arbetsdagar försenat: 5" in karin["text"]  # inventory, due 2024-05-30
    per = by_person["per.lund"].payload["message"]
    assert per["subject"] == "Eskalering: 1 försenade moment"
    assert "Ansvarig: Ulla Wik" in per["text"]
    assert "inventory" not in per["text"]

    assert run_sweep(engine, at("2024-06-07")).digests == []
    assert run_sweep(engine, at("2024-06-10")).digests == []
    assert count(engine.db, tables.effects, tables.effects.c.kind == "digest") == 2


# --- the CLI -------------------------------------------------------------------------


class Council:
    """Runs ``council ARGS`` in-process (CliRunner) with this test's settings."""

    def __init__(self, database_url: str, definitions: Path, var_dir: Path) -> None:
        self.runner = CliRunner()
        self.env: dict[str, str | None] = {
            "COUNCIL_DATABASE_URL": database_url,
            "COUNCIL_DEFINITIONS": str(definitions),
            "COUNCIL_VAR_DIR": str(var_dir),
            "COUNCIL_ACTOR": "erik.sjoberg",
            "COUNCIL_TIMEZONE": "Europe/Stockholm",
            "COUNCIL_BROKER_URL": None,
            "COUNCIL_EXTRA_DAYS_OFF": None,
            "COUNCIL_DUE_POLICY": None,
            "COUNCIL_AT_RISK_DAYS": None,
        }

    def __call__(self, *args: str) -> Result:
        result = self.runner.invoke(main, list(args), env=self.env)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            crash = "".join(traceback.format_exception(*result.exc_info))
            pytest.fail(f"`council {' '.join(args)}` crashed:\n{crash}")
        return result

    def ok(self, *args: str) -> str:
        result = self(*args)
        assert result.exit_code == 0, (args, result.output)
        return result.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json"))

    def sweep(self, now: str) -> list[dict[str, Any]]:
        """``check-deadlines --json --now NOW``."""
        rows: list[dict[str, Any]] = self.json("check-deadlines", "--now", now)
        return rows


@pytest.fixture
def council(
    database_url: str,
    db: sa.Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    worker_definitions: Path,
) -> Council:
    """The CLI on a migrated database, run from an empty directory (no council.toml), with
    the bundled definitions but their occasions (which fire by the calendar)."""
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    return Council(database_url, worker_definitions, tmp_path / "var")


def brief(rows: list[dict[str, Any]], step: str | None = None) -> list[tuple[Any, ...]]:
    """(step, kind, level, to, due) of each firing, a planned start as ("", "start", ...)."""
    return sorted(
        (r["step"] or "", r["kind"], r["level"], r["to"], r["due"] or r["fires_on"])
        for r in rows
        if step is None or r["step"] == step
    )


def test_check_deadlines_dry_run_writes_nothing(council: Council, db: sa.Engine) -> None:
    """`check-deadlines --dry-run --json` lists what would fire and writes nothing; the real
    sweep then fires exactly that list, and a dry run after it lists nothing."""
    council.ok("start", LOKAL, "--now", "2024-04-02T09:00")
    before = written(db)
    would = council.json("check-deadlines", "--dry-run", "--now", "2024-06-07T08:00")
    assert brief(would) == [
        ("", "start", 0, "per.lund", "2024-05-06"),  # point 2, planned and not swept since
        ("forecast", "escalation", 1, "per.lund", "2024-05-16"),
        ("forecast", "escalation", 2, "karin.holm", "2024-05-16"),
        ("forecast", "overdue", 0, "ulla.wik", "2024-05-16"),
        ("inventory", "escalation", 1, "karin.holm", "2024-05-30"),
        ("inventory", "overdue", 0, "per.lund", "2024-05-30"),
    ]
    assert written(db) == before
    table = council.ok("check-deadlines", "--dry-run", "--now", "2024-06-07T08:00")
    assert "6 would fire as of 2024-06-07 08:00" in table
    assert any(line.split()[:3] == [f"{LOKAL}/2", "start", "starts"] for line in table.splitlines())
    assert written(db) == before

    assert council.sweep("2024-06-07T08:00") == would
    assert written(db)["firings"] == before["firings"] + 9  # 5 fired, 4 reminders passed over
    assert council.json("check-deadlines", "--dry-run", "--now", "2024-06-07T08:00") == []
    assert "nothing fired as of 2024-06-07 09:30" in council.ok(
        "check-deadlines", "--now", "2024-06-07T09:30"
    )


def test_simulate_lists_the_firings_day_by_day_and_writes_nothing(
    council: Council, db: sa.Engine
) -> None:
    """`simulate ASSIGNMENT --until DATE` lists each firing still to come on its day (leaving
    out what has fired) and writes nothing."""
    council.ok("start", LOKAL, "--now", "2024-04-02T09:00")
    before = written(db)
    rows = council.json("simulate", LOKAL, "--until", "2024-06-14", "--now", "2024-04-02T09:00")
    assert [(r["fires_on"], r["step"], r["kind"], r["level"], r["to"]) for r in rows] == sorted(
        [*LOKAL_LADDER, LOKAL_START], key=lambda r: (r[0], r[1] or "")
    )
    table = council.ok("simulate", LOKAL, "--until", "2024-05-31", "--now", "2024-04-02T09:00")
    assert f"{LOKAL}: 9 start(s) and firing(s) from 2024-04-02 to 2024-05-31 if" in table
    assert any(
        line.split()[:4] == ["2024-05-06", f"{LOKAL}/2", "start", "0"]
        for line in table.splitlines()
    )
    assert any(
        line.split()[:5] == ["2024-05-30", f"{LOKAL}/1/forecast", "escalation", "2", "karin.holm"]
        for line in table.splitlines()
    )
    assert written(db) == before

    council.sweep("2024-05-17T08:00")  # point 2 starts; forecast's reminders, overdue fire
    rest = council.json("simulate", LOKAL, "--until", "2024-06-14", "--now", "2024-05-17T09:00")
    assert [(r["fires_on"], r["step"], r["kind"]) for r in rest] == [
        ("2024-05-21", "forecast", "escalation"),
        ("2024-05-28", "inventory", "reminder"),
        ("2024-05-30", "forecast", "escalation"),
        ("2024-05-31", "inventory", "overdue"),
        ("2024-06-07", "inventory", "escalation"),
    ]


def test_calendar_lists_the_eves_and_no_plain_sunday(council: Council) -> None:
    """`calendar 2024` lists julafton (Tuesday 2024-12-24) and midsommarafton (2024-06-21)
    among the days off, and no Sunday that is only a Sunday."""
    out = council.ok("calendar", "2024")
    rows = {line.split()[0]: line.split(maxsplit=2)[1:] for line in out.splitlines()[2:]}
    assert rows["2024-12-24"] == ["Tue", "Julafton"]
    assert rows["2024-06-21"] == ["Fri", "Midsommarafton"]
    assert "2024-03-03" not in rows  # a plain Sunday
    sundays = {day: name for day, (weekday, name) in rows.items() if weekday == "Sun"}
    assert sundays
    assert "Söndag" not in sundays.values()
    assert all(dt.date.fromisoformat(day).weekday() == 6 for day in sundays)
    assert set(sundays) <= {"2024-03-31", "2024-05-19"}  # påskdagen, pingstdagen


def test_extension_moves_reminders_and_escalations_to_the_new_date(council: Council) -> None:
    """After `extend --to 2024-06-20` the old cycle's rungs stop; the new due date gets a new
    cycle: reminders, overdue (after midsommar) and escalations fire again, on new days."""
    council.ok("start", LOKAL, "--now", "2024-04-02T09:00")
    assert brief(council.sweep("2024-05-17T08:00"), "forecast") == [
        ("forecast", "overdue", 0, "ulla.wik", "2024-05-16")
    ]
    out = council.ok("extend", f"{LOKAL}/1/forecast", "--to", "2024-06-20",
                     "--reason", "KS beslut 2024-05-20", "--now", "2024-05-20T09:00")  # fmt: skip
    assert "step.extended" in out
    timeline = []
    for day in ("2024-05-21", "2024-05-30", "2024-06-04", "2024-06-05", "2024-06-14",
                "2024-06-17", "2024-06-20", "2024-06-21", "2024-06-24", "2024-06-25",
                "2024-06-26", "2024-07-04", "2024-07-05"):  # fmt: skip
        timeline += [(day, *row) for row in brief(council.sweep(f"{day}T08:00"), "forecast")]
    assert timeline == [
        ("2024-06-05", "forecast", "reminder", 1, "ulla.wik", "2024-06-20"),
        ("2024-06-17", "forecast", "reminder", 2, "ulla.wik", "2024-06-20"),
        ("2024-06-24", "forecast", "overdue", 0, "ulla.wik", "2024-06-20"),
        ("2024-06-26", "forecast", "escalation", 1, "per.lund", "2024-06-20"),
        ("2024-07-05", "forecast", "escalation", 2, "karin.holm", "2024-06-20"),
    ]


def test_hold_resume_and_status_marks(council: Council, db: sa.Engine) -> None:
    """`hold` stops a step's firings and `status` marks it `held:`; a point near its due date
    is `at risk`; `resume` moves the due date out and the reminder fires for the new date."""
    council.env["COUNCIL_ACTOR"] = "sara.nilsson"
    council.ok("start", HEDER, "--now", "2022-12-01T09:00")
    council.ok("hold", f"{HEDER}/1/analyse", "--reason", "Väntar på underlag",
               "--now", "2022-12-15T09:00")  # fmt: skip
    assert brief(council.sweep("2022-12-22T08:00")) == [
        ("needs", "reminder", 1, "eva.dahl", "2023-01-09")
    ]  # analyse, held, would have had its reminder today

    status = council.ok("status", HEDER, "--now", "2023-01-02T09:00")
    lines = {line.split()[0]: line for line in status.splitlines() if line.startswith(HEDER)}
    assert lines[f"{HEDER}/1"].endswith("held: analyse")
    assert lines[f"{HEDER}/2"].endswith("at risk")  # needs: due 2023-01-09, 4 working days
    rows = {r["number"]: r for r in council.json("status", HEDER, "--now", "2023-01-02T09:00")}
    assert (rows[1]["held"], rows[1]["at_risk"]) == (["analyse"], False)
    assert (rows[2]["held"], rows[2]["at_risk"]) == ([], True)

    council.ok("resume", f"{HEDER}/1/analyse", "--now", "2023-01-05T09:00")
    status = council.ok("status", HEDER, "--now", "2023-01-05T09:00")
    assert "held:" not in status
    assert brief(council.sweep("2023-01-12T08:00"), "analyse") == []
    assert brief(council.sweep("2023-01-13T08:00"), "analyse") == [
        ("analyse", "reminder", 1, "anders.berg", "2023-01-20")
    ]
    assert next_checks(db)[(HEDER, 1, "analyse")] == dt.date(2023, 1, 23)


def test_delay_asks_for_time_and_changes_no_date(council: Council) -> None:
    """`council delay` (what a DELAY reply does) records the request with a proposed date
    (due + N days, moved off a day off); the due date and the sweep's firings stay put."""
    council.ok("start", LOKAL, "--now", "2024-04-02T09:00")
    before = council.json("show", f"{LOKAL}/1")
    out = council.ok("delay", f"{LOKAL}/1/forecast", "--days", "10", "--reason", "Väntar på SCB",
                     "--as", "ulla.wik", "--now", "2024-05-10T09:00")  # fmt: skip
    assert "step.extension_requested" in out
    requested = council.json("events", "--point", f"{LOKAL}/1")[-1]
    assert requested["type"] == "step.extension_requested"
    assert requested["actor"] == "ulla.wik"
    # due 2024-05-16 + 10 days = Sunday 2024-05-26: the previous working day
    assert requested["data"]["due"] == "2024-05-16"
    assert requested["data"]["proposed"] == "2024-05-24"
    after = council.json("show", f"{LOKAL}/1")
    assert [s["due"] for s in after["steps"]] == [s["due"] for s in before["steps"]]
    assert brief(council.sweep("2024-05-17T08:00"), "forecast") == [
        ("forecast", "overdue", 0, "ulla.wik", "2024-05-16")
    ]
    refused = council("delay", f"{LOKAL}/1/forecast", "--days", "0", "--as", "ulla.wik")
    assert refused.exit_code == 2


def test_check_deadlines_covers_every_due_step_beyond_one_batch(
    council: Council, db: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a batch of one step, the dry run still lists every firing, and the sweep fires
    them all, batch after batch, exactly once."""
    monkeypatch.setattr(sweep, "BATCH", 1)
    council.ok("start", LOKAL, "--now", "2024-04-02T09:00")
    would = council.json("check-deadlines", "--dry-run", "--now", "2024-06-07T08:00")
    assert {f["step"] for f in would} == {None, "forecast", "inventory"}  # None: point 2 starts
    assert len(would) == 6
    assert council.sweep("2024-06-07T08:00") == would
    assert council.json("check-deadlines", "--dry-run", "--now", "2024-06-07T08:00") == []


def test_an_escalation_fired_before_0_2_makes_no_second_digest(engine: Engine) -> None:
    """A step.escalated event written by 0.1 names no sweep: its digest was recorded by the
    sweep back then, so the mail-digest handler records none now."""
    start_lokal(engine)
    result = run_sweep(engine, at("2024-06-07"))
    escalation = next(
        i for i, f in zip(result.event_ids, result.fired, strict=True)
        if f.firing.kind.value == "escalation"
    )  # fmt: skip
    with engine.db.begin() as conn:
        stored = store.get_event(conn, escalation)
        assert stored is not None
        old = stored.model_copy(update={"payload": stored.payload.model_copy(
            update={"sweep": None})})  # fmt: skip
        ctx = HandlerContext(conn, engine.definitions, settings(), escalation, at("2024-06-07"),
                             STOCKHOLM)  # fmt: skip
        assert handlers.mail_digest(ctx, old) == []


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_sweep_says_how_many_due_steps_another_sweep_holds(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    """On PostgreSQL a sweep skips the rows another sweep holds: it says how many, instead
    of reporting nothing due; once the other lets go, the next sweep fires them."""
    start_heder(engine)
    start_lokal(engine)
    now = at("2024-06-07")
    expected = sorted(f.firing.key for f in run_sweep(engine, now, dry_run=True).fired)
    with engine.db.connect() as other:  # another sweep, mid-transaction, holds every due step
        other.begin()
        held = other.execute(
            sa.select(tables.steps.c.step)
            .where(tables.steps.c.next_check_at <= now.date())
            .with_for_update()
        ).all()
        assert held
        skipped = run_sweep(engine, now)
        told = CliRunner().invoke(main, ["check-deadlines", "--now", now.isoformat()], env={
            "COUNCIL_DATABASE_URL": database_url, "COUNCIL_VAR_DIR": str(tmp_path / "var"),
            "COUNCIL_DEFINITIONS": str(copy_definitions(tmp_path / "definitions")),
        })  # fmt: skip
        other.rollback()
    assert skipped.fired == []
    assert skipped.held_elsewhere == len(held)
    assert told.exit_code == 0, told.output
    assert told.output.splitlines() == [
        f"another sweep is handling {len(held)} due step(s) or start(s) right now: it fires "
        "them (this one skipped them, so nothing fires twice)",
        f"nothing fired here as of {now:%Y-%m-%d %H:%M}",
    ]
    fired = run_sweep(engine, now)
    assert sorted(f.firing.key for f in fired.fired) == expected
    assert fired.held_elsewhere == 0
