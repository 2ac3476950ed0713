"""Planned starts: a point with ``start:`` ahead is started by the sweep on its day, once.

On a real SQLite file and a real PostgreSQL database: `council start` plans the
points whose day is ahead, the sweep starts each on its day (or the first working
day after), as ``point.started`` by ``council``, exactly once also when two sweeps
race, a late one catches up and `status` tells planned, late and started apart. End
to end, beat's sweep in a real worker starts a point planned for today and its
owner receives the prompt at a real SMTP server.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.integration.conftest import STOCKHOLM
from tests.integration.servers import SmtpCatcher, WorkerProcess, wait_for
from tests.integration.test_sweep import Council, at, run_sweep, sweeps_at_once
from tests.support import copy_definitions
from workflow.core.calendar import Calendar
from workflow.core.values import Duration
from workflow.definitions.loader import load
from workflow.engine import Engine
from workflow.store import tables

#: Point 2 (study, per.lund's) is planned for 2024-05-06, point 4 (the report) for 2025-02-03.
LOKAL = "kf-2024-lokalforsorjning"
PLANNED = "kf-2026-planerad"

#: A one-point assignment planned to start on {start}: written beside the bundled files.
PLANNED_YAML = """\
id: kf-2026-planerad
title: {{sv: Planerad utredning, en: A planned study}}
reference: KS 2026/0101
decided_by: kf
decided_on: {decided}
assigned_to: {{lead: ks}}
coordinator: erik.sjoberg
report_back: {report}
points:
  - number: 1
    title: {{sv: Utred lokalbehovet, en: Study the need for premises}}
    owner: per.lund
    start: {start}
    steps:
      - id: study
        title: {{sv: Kartlägg lokalerna, en: Survey the premises}}
        due: start+20bd
"""


def with_planned(tmp_path: Path, start: dt.date) -> Path:
    """The bundled definitions and PLANNED_YAML planned for ``start``."""
    folder = tmp_path / "definitions"
    copy_definitions(folder)
    text = PLANNED_YAML.format(
        start=start, decided=start - dt.timedelta(days=30), report=start + dt.timedelta(days=200)
    )
    (folder / "assignments" / "planerad.yaml").write_text(text, encoding="utf-8")
    return folder


def in_empty_dir(
    database_url: str, definitions: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Council:
    """The CLI on ``definitions``, run from an empty directory (no council.toml)."""
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    return Council(database_url, definitions, tmp_path / "var")


def started_events(db: sa.Engine, assignment: str, number: int) -> list[Any]:
    with db.connect() as conn:
        return list(
            conn.execute(
                sa.select(tables.events).where(
                    tables.events.c.type == "point.started",
                    tables.events.c.assignment == assignment,
                    tables.events.c.point == number,
                )
            )
        )


def test_the_sweep_starts_a_planned_point_on_its_day_and_once(engine: Engine) -> None:
    """`start` plans point 2 for 2024-05-06; the sweep the evening before starts nothing; the
    sweep that morning starts it as `council`, activating the study (due 60 working days
    later) and recording its prompt; later sweeps start nothing again."""
    report = engine.start(LOKAL, actor="erik.sjoberg", now=at("2024-04-02", "09:00"))
    assert report.started == [1]
    assert report.scheduled == {2: dt.date(2024, 5, 6), 4: dt.date(2025, 2, 3)}
    assert engine.planned_starts(LOKAL) == {
        (LOKAL, 2): dt.date(2024, 5, 6), (LOKAL, 4): dt.date(2025, 2, 3)
    }  # fmt: skip

    assert run_sweep(engine, at("2024-05-05", "23:59")).started == []
    swept = run_sweep(engine, at("2024-05-06", "06:00"))
    assert [(s.planned.address, s.owners) for s in swept.started] == [(f"{LOKAL}/2", ("per.lund",))]
    assert swept.fired == []  # nothing of it is due yet
    (event,) = started_events(engine.db, LOKAL, 2)
    assert event.actor == "council"
    assert event.payload == {"start_date": "2024-05-06"}
    study = engine.snapshot(LOKAL)[(LOKAL, 2)].step("study")
    assert (study.status.value, study.owner, study.due) == (
        "active",
        "per.lund",
        dt.date(2024, 8, 1),
    )
    assert engine.planned_starts() == {(LOKAL, 4): dt.date(2025, 2, 3)}
    with engine.db.connect() as conn:
        prompted = conn.execute(
            sa.select(tables.events.c.step)
            .join(tables.effects, tables.effects.c.event_id == tables.events.c.id)
            .where(tables.effects.c.kind == "prompt", tables.events.c.point == 2)
        ).scalars().all()  # fmt: skip
    assert prompted == ["study"]  # the worker's handler recorded its prompt

    for later in ("2024-05-06 12:00", "2024-05-07 06:00"):
        assert run_sweep(engine, at(*later.split())).started == []
    assert len(started_events(engine.db, LOKAL, 2)) == 1


def test_two_sweeps_racing_start_a_planned_point_once(engine: Engine) -> None:
    """Two sweeps in two threads at the same moment: one starts the point, the other finds
    it started (SQLite: the write lock; PostgreSQL: SKIP LOCKED and the point's key)."""
    engine.start(LOKAL, actor="erik.sjoberg", now=at("2024-04-02", "09:00"))
    results = sweeps_at_once(engine, at("2024-05-06"))
    starts = [s.planned.address for result in results for s in result.started]
    assert starts == [f"{LOKAL}/2"]
    assert len(started_events(engine.db, LOKAL, 2)) == 1


def test_a_point_started_by_hand_before_its_day_is_not_started_again(engine: Engine) -> None:
    """`council start --point 2` on 2024-04-20 starts it then; its day comes and goes."""
    engine.start(LOKAL, actor="erik.sjoberg", now=at("2024-04-02", "09:00"))
    engine.start(LOKAL, actor="erik.sjoberg", now=at("2024-04-20", "09:00"), only=2)
    assert engine.planned_starts() == {(LOKAL, 4): dt.date(2025, 2, 3)}
    assert run_sweep(engine, at("2024-05-06")).started == []
    (event,) = started_events(engine.db, LOKAL, 2)
    assert event.actor == "erik.sjoberg"


def test_a_late_sweep_catches_up_and_status_tells_planned_late_and_started(
    database_url: str,
    db: sa.Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    worker_definitions: Path,
) -> None:
    """No sweep ran on 2024-05-06: `status` says planned before the day and late to start
    after it; the next sweep starts it (its clock from the planned day) and the mark goes."""
    council = in_empty_dir(database_url, worker_definitions, tmp_path, monkeypatch)
    council.ok("start", LOKAL, "--now", "2024-04-02T09:00")
    rows = {r["number"]: r for r in council.json("status", LOKAL, "--now", "2024-05-02T09:00")}
    assert (rows[2]["started"], rows[2]["starts_on"], rows[2]["late_to_start"]) == (
        False, "2024-05-06", False,
    )  # fmt: skip
    assert (rows[1]["starts_on"], rows[3]["starts_on"]) == (None, None)  # started; rejected
    table = council.ok("status", LOKAL, "--now", "2024-05-02T09:00")
    assert "planned for 2024-05-06" in table

    late = council.ok("status", LOKAL, "--now", "2024-05-20T09:00")
    assert "LATE TO START (planned 2024-05-06)" in late
    shown = council.ok("show", f"{LOKAL}/2", "--now", "2024-05-20T09:00")
    assert "LATE TO START: planned for 2024-05-06 and not started" in shown

    swept = council.sweep("2024-05-20T09:05")
    starts = [(r["point"], r["fires_on"], r["to"]) for r in swept if r["kind"] == "start"]
    assert starts == [(f"{LOKAL}/2", "2024-05-06", "per.lund")]
    after = {r["number"]: r for r in council.json("status", LOKAL, "--now", "2024-05-20T10:00")}
    assert (after[2]["started"], after[2]["starts_on"], after[2]["late_to_start"]) == (
        True, None, False,
    )  # fmt: skip
    assert after[2]["next_due"] == "2024-08-01"  # 60 working days from the planned start
    assert "LATE TO START" not in council.ok("status", LOKAL, "--now", "2024-05-20T10:00")
    assert len(started_events(db, LOKAL, 2)) == 1


def test_a_point_planned_on_a_day_off_starts_the_next_working_day(
    db: sa.Engine, tmp_path: Path
) -> None:
    """Planned for Saturday 2026-12-05: it is planned for Monday the 7th and starts then."""
    definitions = load([with_planned(tmp_path, dt.date(2026, 12, 5))])
    engine = Engine(db=db, definitions=definitions, calendar=Calendar(), timezone=STOCKHOLM)
    report = engine.start(PLANNED, actor="erik.sjoberg", now=at("2026-11-30", "09:00"))
    assert report.scheduled == {1: dt.date(2026, 12, 7)}
    assert run_sweep(engine, at("2026-12-05", "10:00")).started == []
    assert [s.planned.start_on for s in run_sweep(engine, at("2026-12-07")).started] == [
        dt.date(2026, 12, 7)
    ]
    step = engine.snapshot(PLANNED)[(PLANNED, 1)].step("study")
    # the clock runs from the planned day, as the definition says
    assert step.due == Calendar().shift(dt.date(2026, 12, 5), Duration.parse("20bd"))


def test_a_changed_definition_holds_the_start_back_until_it_is_accepted(
    database_url: str, db: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The point's title changed after `start`: the sweep does not start it from a definition
    nobody accepted, and says so; accepting the change on the day starts it."""
    folder = with_planned(tmp_path, dt.date(2025, 12, 8))
    council = in_empty_dir(database_url, folder, tmp_path, monkeypatch)
    council.ok("start", PLANNED, "--now", "2025-12-01T09:00")
    path = folder / "assignments" / "planerad.yaml"
    path.write_text(path.read_text().replace("Utred lokalbehovet", "Utred lokalbehoven"))

    out = council.ok("check-deadlines", "--now", "2025-12-08T08:00")
    assert f"{PLANNED}/1 is planned to start, but its assignment's definition changed" in out
    assert started_events(db, PLANNED, 1) == []
    # accepting on the day starts it at once: its day has come
    accepted = council.ok("start", PLANNED, "--accept-changes", "--now", "2025-12-08T08:30")
    assert f"started {PLANNED}: point(s) 1" in accepted
    assert council.sweep("2025-12-08T08:40") == []
    (event,) = started_events(db, PLANNED, 1)
    assert event.actor == "erik.sjoberg"


def test_beat_starts_a_point_planned_for_today_and_the_owner_gets_the_prompt(
    worker_env: dict[str, str],
    start_worker: Callable[..., WorkerProcess],
    smtp: SmtpCatcher,
    db: sa.Engine,
    tmp_path: Path,
) -> None:
    """At the real clock: planned for today's working day (started yesterday), the point is
    started by beat's `council.sweep_deadlines` in a real worker, and per.lund's prompt
    arrives at the SMTP server, once, however many sweeps follow."""
    calendar = Calendar()
    today = dt.datetime.now(STOCKHOLM).date()
    day = today
    while not calendar.is_business_day(day):
        day -= dt.timedelta(days=1)
    folder = with_planned(tmp_path, day)
    engine = Engine(db=db, definitions=load([folder]), calendar=calendar, timezone=STOCKHOLM)
    before = dt.datetime.combine(day - dt.timedelta(days=1), dt.time(9), tzinfo=STOCKHOLM)
    assert engine.start(PLANNED, actor="erik.sjoberg", now=before).scheduled == {1: day}

    start_worker({**worker_env, "COUNCIL_DEFINITIONS": str(folder), "COUNCIL_SWEEP_INTERVAL": "1"})

    def prompts() -> list[Any]:
        return [r for r in smtp.received if "Kartlägg lokalerna" in str(r.message["Subject"])]

    wait_for(lambda: len(prompts()) == 1, timeout=60, what="the prompt of the planned point")
    (prompt,) = prompts()
    assert prompt.envelope_to == ["per.lund@kommun.example"]
    (event,) = started_events(db, PLANNED, 1)
    assert event.actor == "council"
    assert event.payload == {"start_date": day.isoformat()}
    log = tmp_path / "worker.log"
    runs = log.read_text().count("council.sweep_deadlines")
    wait_for(lambda: log.read_text().count("council.sweep_deadlines") >= runs + 3, timeout=60,
             what="three more sweeps")  # fmt: skip
    assert len(prompts()) == 1
    assert len(started_events(db, PLANNED, 1)) == 1
