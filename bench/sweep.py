"""Sweep benchmark: cost follows what is due, not what is open.

The same 100 due steps (each fires an overdue notice and an escalation) are
swept with 1,000 and with 1,000,000 open steps in the table, on SQLite and on
PostgreSQL. Open steps that are not due are written straight into the steps
table with a far ``next_check_at``; the due ones are started through the engine.
Target: the 1,000,000 sweep within 2x the 1,000 one.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import time
import uuid
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from bench.progress import progress
from workflow import store
from workflow.core.calendar import Calendar
from workflow.definitions.loader import load
from workflow.engine import Engine
from workflow.store import migrate, tables
from workflow.sweep import sweep

TZ = ZoneInfo("Europe/Stockholm")
T0 = dt.datetime(2024, 2, 1, 9, tzinfo=TZ)
SWEEP_AT = dt.datetime(2024, 3, 15, 8, tzinfo=TZ)
DUE = 100
POSTGRES = os.environ.get(
    "COUNCIL_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def write_definitions(root: Path) -> Path:
    (root / "workflows").mkdir(parents=True)
    (root / "assignments").mkdir()
    (root / "people.yaml").write_text(
        "people:\n"
        "  - {id: boss, name: Chef, email: boss@kommun.example}\n"
        "  - {id: owner, name: Ägare, email: owner@kommun.example, manager: boss}\n"
    )
    (root / "workflows" / "one.yaml").write_text(
        "id: one\ntitle: Ett moment\nsteps:\n"
        "  - {id: work, title: Arbeta, due: 10bd, escalate: [{after: 2bd, to: manager}]}\n"
    )
    points = "\n".join(
        f"  - {{number: {n}, title: Punkt {n}, workflow: one, owner: owner}}"
        for n in range(1, DUE + 1)
    )
    (root / "assignments" / "due.yaml").write_text(
        "id: due\ntitle: Förfallet\nreference: KS 1\ndecided_by: KF\ndecided_on: 2024-01-15\n"
        "assigned_to: {lead: KS}\ncoordinator: boss\nreport_back: 2024-12-16\n"
        f"points:\n{points}\n"
    )
    return root


def fill(db: sa.Engine, count: int) -> None:
    """``count`` open steps that are not due, in one filler point, written in bulk."""
    with db.begin() as conn:
        conn.execute(
            tables.assignments.insert().values(
                id="filler", digest="-", structure={}, source="-", started_at=T0
            )
        )
        conn.execute(
            tables.points.insert().values(
                assignment="filler", number=1, category="ongoing", version=1, updated_at=T0
            )
        )
        if conn.dialect.name == "postgresql":
            series = "SELECT g FROM generate_series(1, :n) AS g"
        else:
            series = (
                "WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s "
                "WHERE g < :n) SELECT g FROM s"
            )
        conn.execute(
            sa.text(
                "INSERT INTO steps (assignment, number, step, status, owner, due, next_check_at) "
                "SELECT 'filler', 1, 's' || g, 'active', 'owner', :due, :later "
                f"FROM ({series}) AS x"
            ),
            {"n": count, "due": dt.date(2099, 1, 1), "later": dt.date(2099, 1, 2)},
        )


def one_run(url: str, definitions: Path, open_steps: int) -> float:
    db = store.connect(url)
    try:
        migrate.upgrade(db)
        fill(db, open_steps - DUE)
        engine = Engine(db=db, definitions=load([definitions]), calendar=Calendar(), timezone=TZ)
        engine.start("due", actor="boss", now=T0)
        with db.begin() as conn:  # fresh statistics, as a production database would have
            conn.execute(sa.text("ANALYZE"))
        started = time.perf_counter()
        result = sweep(engine, now=SWEEP_AT)
        elapsed = time.perf_counter() - started
        assert len(result.fired) == 2 * DUE, len(result.fired)
        return elapsed
    finally:
        db.dispose()


def postgres_database() -> tuple[str, sa.Engine] | None:
    admin = sa.create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    name = f"council_bench_{uuid.uuid4().hex[:8]}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError:
        admin.dispose()
        return None
    return admin.url.set(database=name).render_as_string(hide_password=False), admin


def drop(admin: sa.Engine, url: str) -> None:
    name = sa.make_url(url).database
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def run() -> dict[str, object]:
    results: dict[str, object] = {"due": DUE}
    with tempfile.TemporaryDirectory() as tmp:
        definitions = write_definitions(Path(tmp) / "defs")
        # Warm up (imports, template and plan caches) so the first timed run is not penalised.
        with progress("sweep: warm-up"):
            one_run(f"sqlite:///{tmp}/warm-up.db", definitions, 1_000)
        for open_steps in (1_000, 1_000_000):
            url = f"sqlite:///{tmp}/sweep-{open_steps}.db"
            with progress(f"sweep: SQLite, {open_steps:,} open steps"):
                elapsed = one_run(url, definitions, open_steps)
            results[f"sqlite_{open_steps}_s"] = round(elapsed, 4)
            found = postgres_database()
            if found is None:
                results[f"postgres_{open_steps}_s"] = None
                continue
            url, admin = found
            try:
                with progress(f"sweep: PostgreSQL, {open_steps:,} open steps"):
                    elapsed = one_run(url, definitions, open_steps)
                results[f"postgres_{open_steps}_s"] = round(elapsed, 4)
            finally:
                drop(admin, url)
                admin.dispose()
    for backend in ("sqlite", "postgres"):
        small, large = results[f"{backend}_1000_s"], results[f"{backend}_1000000_s"]
        if isinstance(small, float) and isinstance(large, float):
            results[f"{backend}_ratio"] = round(large / small, 2)
    return results


def main() -> dict[str, object]:
    results = run()
    print(f"sweep: {DUE} due steps among 1,000 vs 1,000,000 open (target ratio under 2)")
    print(f"  {'backend':<9} {'1,000':>9} {'1,000,000':>11} {'ratio':>6}")
    for backend in ("sqlite", "postgres"):
        small, large = results[f"{backend}_1000_s"], results[f"{backend}_1000000_s"]
        ratio = results.get(f"{backend}_ratio", "-")
        print(f"  {backend:<9} {small!s:>9} {large!s:>11} {ratio!s:>6}")
    return results
