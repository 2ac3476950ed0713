"""Report benchmark: 200 assignments x 10 points, the report of each in every format.

Builds a SQLite database with a realistic history (every point started, some
steps completed with notes, some points written off), then times building the
report model from the event log and rendering it, per format.
"""

from __future__ import annotations

import datetime as dt
import statistics
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from bench.progress import progress
from workflow.core.actions import AddNote, CompleteStep, WriteOff
from workflow.core.calendar import Calendar
from workflow.core.specs import Language
from workflow.definitions.loader import load
from workflow.engine import Engine
from workflow.report.model import build_report
from workflow.report.render import Format, render
from workflow.store import connect, migrate

TZ = ZoneInfo("Europe/Stockholm")
ASSIGNMENTS = 200
POINTS = 10


def write_definitions(root: Path) -> Path:
    (root / "workflows").mkdir(parents=True)
    (root / "assignments").mkdir()
    people = "\n".join(
        f"  - {{id: p{i}, name: Person {i}, email: p{i}@kommun.example}}" for i in range(20)
    )
    (root / "people.yaml").write_text(f"people:\n{people}\n")
    (root / "workflows" / "work.yaml").write_text(
        "id: work\ntitle: Arbete\nsteps:\n"
        "  - {id: plan, title: Planera, due: 20bd}\n"
        "  - {id: do, title: Genomföra, after: [plan], due: 40bd}\n"
        "  - {id: check, title: Följa upp, after: [do], due: 10bd}\n"
    )
    for a in range(ASSIGNMENTS):
        points = "\n".join(
            f"  - {{number: {n}, title: 'Punkt {n} i uppdrag {a}: ta fram och genomför "
            f"åtgärder', workflow: work, owner: p{(a + n) % 20}, due: 2024-12-13}}"
            for n in range(1, POINTS + 1)
        )
        (root / "assignments" / f"a{a}.yaml").write_text(
            f"id: a{a:03d}\ntitle: Uppdrag {a}\nreference: KS 2024/{a}\ndecided_by: KF\n"
            f"decided_on: 2024-01-15\nassigned_to: {{lead: KS}}\ncoordinator: p0\n"
            f"report_back: 2024-12-16\npoints:\n{points}\n"
        )
    return root


def populate(engine: Engine) -> int:
    """The coordinator p0 enters the work (owners vary; the coordinator may act on all)."""
    start = dt.datetime(2024, 2, 1, 9, tzinfo=TZ)
    for plan in engine.definitions.assignments.values():
        engine.start(plan.id, actor="p0", now=start)
        for point in plan.points:
            n = point.number
            at = start + dt.timedelta(days=n)
            if n % 3 != 0:
                engine.act(point, CompleteStep(actor="p0", step="plan"), now=at)
                engine.act(point, AddNote(actor="p0", text=f"Läget för punkt {n}."), now=at)
            if n % 3 == 1:
                engine.act(point, CompleteStep(actor="p0", step="do", note="Genomfört."), now=at)
            if n == 10:
                engine.act(point, WriteOff(actor="p0", reason="Avskrivs."), now=at)
    return len(engine.events())


def run() -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        definitions = write_definitions(Path(tmp) / "defs")
        db = connect(f"sqlite:///{tmp}/bench.db")
        migrate.upgrade(db)
        engine = Engine(db=db, definitions=load([definitions]), calendar=Calendar(), timezone=TZ)
        with progress(f"report: writing {ASSIGNMENTS} assignments' history"):
            events = populate(engine)
        plans = list(engine.definitions.assignments.values())
        results: dict[str, object] = {"assignments": len(plans), "points": len(plans) * POINTS,
                                      "events": events}  # fmt: skip
        started = time.perf_counter()
        reports = []
        with db.connect() as conn:
            from workflow import store

            for plan in plans:
                history = [e for _, e in store.list_events(conn, assignment=plan.id)]
                reports.append(
                    build_report(
                        engine.definitions,
                        plan,
                        history,
                        as_of=dt.date(2024, 6, 1),
                        tz=TZ,
                        lang=Language.SV,
                    )
                )
        results["build_s"] = round(time.perf_counter() - started, 3)
        with progress("report: rendering", len(Format) * len(reports)) as step:
            for fmt in Format:
                times = []
                size = 0
                for report in reports:
                    t0 = time.perf_counter()
                    size += len(render(report, fmt))
                    times.append(time.perf_counter() - t0)
                    step.advance()
                results[f"{fmt.value}_total_s"] = round(sum(times), 3)
                results[f"{fmt.value}_median_ms"] = round(statistics.median(times) * 1000, 2)
                results[f"{fmt.value}_bytes"] = size
        db.dispose()
    return results


def main() -> dict[str, object]:
    results = run()
    print(f"report: {results['assignments']} assignments, {results['points']} points, "
          f"{results['events']} events")  # fmt: skip
    print(f"  build the models from the event log: {results['build_s']} s")
    print(f"  {'format':<6} {'total s':>8} {'median ms':>10} {'bytes':>10}")
    for fmt in Format:
        total, median, size = (
            results[f"{fmt.value}_{k}"] for k in ("total_s", "median_ms", "bytes")
        )
        print(f"  {fmt.value:<6} {total:>8} {median:>10} {size:>10}")
    return results
