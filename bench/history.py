"""History benchmark: one command costs the same after 10 prior events as after 5,000.

One point of a 7-step workflow (bench/spiff.py's definitions), started through the engine,
then given its prior events as notes: each note decided by the machine
(``execute(AddNote)``) on the point's state and written through the event log, exactly
the rows ``Engine.act`` writes for a note (a note changes no projection), 500 to a
transaction so that building 5,000 does not take the quadratic time the release before
would need through ``act``. Then the measured command, ``Engine.act(AddNote)`` on the
point, is run RUNS times after WARM unmeasured ones (the first rebuilds the point's
snapshot when the notes were written around it), alternating between the two points (so
that whatever else the machine does falls on both alike); the medians are compared.
SQLite in WAL with ``synchronous=NORMAL``, a commit per command. Target: after 5,000
within 1.5x of after 10 (``failed`` when it misses).
"""

from __future__ import annotations

import datetime as dt
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.progress import progress
from bench.spiff import BASE, TZ, normal_sync, write_definitions
from workflow import store
from workflow.core.actions import AddNote
from workflow.core.calendar import Calendar
from workflow.core.machine import execute
from workflow.core.plan import PointPlan
from workflow.definitions.loader import load
from workflow.engine import Engine
from workflow.store import migrate

SIZES = (10, 5_000)
WARM = 5
RUNS = 101
TARGET = 1.5
BATCH = 500


def build_history(engine: Engine, plan: PointPlan, events: int) -> dt.datetime:
    """Start the point and give it ``events`` prior events in all; returns the last's time."""
    engine.start(plan.assignment, actor="boss", now=BASE, only=plan.number)
    state, history = engine.point_state(plan)
    now = BASE
    written = len(history)
    while written < events:
        with engine.db.begin() as conn:
            for _ in range(min(BATCH, events - written)):
                now += dt.timedelta(seconds=1)
                note = AddNote(actor="boss", text=f"Anteckning {written}.")
                transition = execute(plan, state, note, now=now, calendar=engine.calendar)
                engine.log.append(conn, transition.events, now=now)
                state = transition.state
                written += len(transition.events)
    return now


def prepared(tmp: Path, definitions: Path, events: int) -> tuple[Engine, PointPlan, dt.datetime]:
    db = store.connect(f"sqlite:///{tmp}/history-{events}.db")
    normal_sync(db)
    migrate.upgrade(db)
    engine = Engine(db=db, definitions=load([definitions]), calendar=Calendar(), timezone=TZ)
    plan = engine.definitions.assignment("a000").point(1)
    return engine, plan, build_history(engine, plan, events)


def measure(sizes: tuple[int, ...], tmp: Path, definitions: Path) -> dict[int, list[float]]:
    """The command after each size's history, the sizes alternating run by run (so that
    whatever else the machine does falls on both alike)."""
    points = {n: prepared(tmp, definitions, n) for n in sizes}
    times: dict[int, list[float]] = {n: [] for n in sizes}
    try:
        for i in range(WARM + RUNS):
            for n, (engine, plan, now) in points.items():
                now += dt.timedelta(seconds=1)
                points[n] = (engine, plan, now)
                started = time.perf_counter()
                engine.act(plan, AddNote(actor="boss", text=f"Mätning {i}."), now=now)
                if i >= WARM:
                    times[n].append(time.perf_counter() - started)
        for n, (engine, plan, _) in points.items():
            _, history = engine.point_state(plan)
            assert len(history) == n + WARM + RUNS, len(history)
    finally:
        for engine, _, _ in points.values():
            engine.db.dispose()
    return times


def run() -> dict[str, Any]:
    results: dict[str, Any] = {"runs": RUNS}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        definitions = write_definitions(tmp / "defs", 10)
        with progress("history: warm-up"):
            measure((20,), tmp, definitions)
        with progress(f"history: after {SIZES[0]:,} and {SIZES[1]:,} events"):
            times = measure(SIZES, tmp, definitions)
        for events in SIZES:
            results[f"after_{events}_ms"] = round(statistics.median(times[events]) * 1000, 3)
            results[f"after_{events}_p90_ms"] = round(
                statistics.quantiles(times[events], n=10)[-1] * 1000, 3
            )
    small, large = (results[f"after_{n}_ms"] for n in SIZES)
    results["ratio"] = round(large / small, 2)
    if results["ratio"] > TARGET:
        results["failed"] = f"after {SIZES[1]:,} events {results['ratio']}x (target {TARGET}x)"
    return results


def main() -> dict[str, Any]:
    results = run()
    print(f"history: one command (a note) after {SIZES[0]} vs {SIZES[1]:,} prior events, median")
    print(f"  of {RUNS} (SQLite WAL + synchronous=NORMAL)")
    for n in SIZES:
        print(f"  after {n:>5,}: {results[f'after_{n}_ms']:>8} ms "
              f"(p90 {results[f'after_{n}_p90_ms']} ms)")  # fmt: skip
    print(f"  ratio: {results['ratio']} (target <= {TARGET})")
    return results
