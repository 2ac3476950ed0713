"""Occurrences benchmark: opening today's occurrences costs what is due, not how many duties.

50 weekly duties (one per point) open their next occurrence in one sweep, among 100 and
among 10,000 recurring duties in the steps table, on SQLite and on PostgreSQL. The duties
not due are written straight into the steps table with a far ``next_check_at`` (as the
sweep benchmark's filler); the due ones are started through the engine a week before.
Target: the 10,000 sweep within 2x the 100 one.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from bench.progress import progress
from bench.sweep import drop, fill, postgres_database
from workflow import store
from workflow.core.calendar import Calendar
from workflow.definitions.loader import load
from workflow.engine import Engine
from workflow.store import migrate
from workflow.sweep import sweep

TZ = ZoneInfo("Europe/Stockholm")
STARTED = dt.datetime(2024, 3, 4, 8, tzinfo=TZ)  # a Monday: each duty's first week opens
SWEEP_AT = dt.datetime(2024, 3, 11, 7, tzinfo=TZ)  # the next Monday: each opens week 11
DUE = 50
SIZES = (100, 10_000)


def write_definitions(root: Path) -> Path:
    (root / "workflows").mkdir(parents=True)
    (root / "assignments").mkdir()
    (root / "people.yaml").write_text(
        "people:\n"
        "  - {id: boss, name: Chef, email: boss@kommun.example}\n"
        "  - {id: owner, name: Ägare, email: owner@kommun.example, manager: boss}\n"
    )
    (root / "workflows" / "weekly.yaml").write_text(
        "id: weekly\ntitle: Veckovis\nsteps:\n"
        "  - id: bild\n    title: Lägesbild\n    repeat: {every: week, on: thursday}\n"
    )
    points = "\n".join(
        f"  - {{number: {n}, title: Punkt {n}, workflow: weekly, owner: owner}}"
        for n in range(1, DUE + 1)
    )
    (root / "assignments" / "due.yaml").write_text(
        "id: due\ntitle: Veckovis\nreference: KS 1\ndecided_by: KF\ndecided_on: 2024-01-15\n"
        "assigned_to: {lead: KS}\ncoordinator: boss\nreport_back: 2024-12-16\n"
        f"points:\n{points}\n"
    )
    return root


def one_run(url: str, definitions: Path, duties: int) -> float:
    db = store.connect(url)
    try:
        migrate.upgrade(db)
        fill(db, duties - DUE)
        engine = Engine(db=db, definitions=load([definitions]), calendar=Calendar(), timezone=TZ)
        engine.start("due", actor="boss", now=STARTED)
        started = time.perf_counter()
        result = sweep(engine, now=SWEEP_AT)
        elapsed = time.perf_counter() - started
        assert [o.step for o in result.opened] == ["bild@2024-W11"] * DUE, result.opened
        return elapsed
    finally:
        db.dispose()


def run() -> dict[str, object]:
    results: dict[str, object] = {"due": DUE}
    with tempfile.TemporaryDirectory() as tmp:
        definitions = write_definitions(Path(tmp) / "defs")
        with progress("occurrences: warm-up"):
            one_run(f"sqlite:///{tmp}/warm-up.db", definitions, SIZES[0])
        for size in SIZES:
            with progress(f"occurrences: SQLite, {size:,} duties"):
                elapsed = one_run(f"sqlite:///{tmp}/occ-{size}.db", definitions, size)
            results[f"sqlite_{size}_s"] = round(elapsed, 4)
            found = postgres_database()
            if found is None:
                results[f"postgres_{size}_s"] = None
                continue
            url, admin = found
            try:
                with progress(f"occurrences: PostgreSQL, {size:,} duties"):
                    results[f"postgres_{size}_s"] = round(one_run(url, definitions, size), 4)
            finally:
                drop(admin, url)
                admin.dispose()
    for backend in ("sqlite", "postgres"):
        small, large = results[f"{backend}_{SIZES[0]}_s"], results[f"{backend}_{SIZES[1]}_s"]
        if isinstance(small, float) and isinstance(large, float):
            results[f"{backend}_ratio"] = round(large / small, 2)
    return results


def main() -> dict[str, object]:
    results = run()
    print(f"occurrences: {DUE} due to open among 100 vs 10,000 recurring duties (target under 2)")
    print(f"  {'backend':<9} {'100':>9} {'10,000':>9} {'ratio':>6}")
    for backend in ("sqlite", "postgres"):
        small, large = results[f"{backend}_{SIZES[0]}_s"], results[f"{backend}_{SIZES[1]}_s"]
        ratio = results.get(f"{backend}_ratio", "-")
        print(f"  {backend:<9} {small!s:>9} {large!s:>9} {ratio!s:>6}")
    return results
