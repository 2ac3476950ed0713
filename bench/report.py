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
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from zoneinfo import ZoneInfo

from bench.progress import Step, progress
from workflow.core.actions import Action, AddNote, CompleteStep, WriteOff
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


def write_people_and_workflow(root: Path) -> None:
    """20 people (p0 coordinates) and the three-step workflow ``work``; no assignments yet."""
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


def assignment_id(a: int) -> str:
    return f"a{a:03d}"


def point_yaml(a: int, n: int, *, due: str = "2024-12-13", extra: str = "") -> str:
    """Point ``n`` of assignment ``a`` on the ``work`` workflow (``extra``: more fields)."""
    return (
        f"  - {{number: {n}, title: 'Punkt {n} i uppdrag {a}: ta fram och genomför "
        f"åtgärder', workflow: work, owner: p{(a + n) % 20}, due: {due}{extra}}}"
    )


def write_assignment(
    root: Path,
    a: int,
    points: Iterable[str],
    *,
    decided_by: str = "KF",
    decided_on: str = "2024-01-15",
    assigned_to: str = "{lead: KS}",
    report_back: str = "2024-12-16",
    public: bool = False,
) -> None:
    (root / "assignments" / f"a{a}.yaml").write_text(
        f"id: {assignment_id(a)}\ntitle: Uppdrag {a}\nreference: KS 2024/{a}\n"
        + "public: true\n" * public
        + f"decided_by: {decided_by}\ndecided_on: {decided_on}\nassigned_to: {assigned_to}\n"
        f"coordinator: p0\nreport_back: {report_back}\npoints:\n" + "\n".join(points) + "\n"
    )


def write_definitions(root: Path) -> Path:
    write_people_and_workflow(root)
    for a in range(ASSIGNMENTS):
        write_assignment(root, a, (point_yaml(a, n) for n in range(1, POINTS + 1)))
    return root


#: What is done to point ``n`` of assignment ``a`` after it starts, in order.
History = Callable[[int, int], Sequence[Action]]


def report_history(a: int, n: int) -> list[Action]:
    actions: list[Action] = []
    if n % 3 != 0:
        actions.append(CompleteStep(actor="p0", step="plan"))
        actions.append(AddNote(actor="p0", text=f"Läget för punkt {n}."))
    if n % 3 == 1:
        actions.append(CompleteStep(actor="p0", step="do", note="Genomfört."))
    if n == 10:
        actions.append(WriteOff(actor="p0", reason="Avskrivs."))
    return actions


def populate(
    engine: Engine,
    assignments: Iterable[int] | None = None,
    history: History = report_history,
    step: Step | None = None,
) -> None:
    """The coordinator p0 enters the work (owners vary; the coordinator may act on all):
    each assignment starts on 1 February 2024, point n's actions come n days later;
    ``step`` advances once per assignment."""
    start = dt.datetime(2024, 2, 1, 9, tzinfo=TZ)
    if assignments is None:  # in the order the definitions were read
        assignments = [int(key.removeprefix("a")) for key in engine.definitions.assignments]
    for a in assignments:
        plan = engine.definitions.assignment(assignment_id(a))
        engine.start(plan.id, actor="p0", now=start)
        for point in plan.points:
            at = start + dt.timedelta(days=point.number)
            for action in history(a, point.number):
                engine.act(point, action, now=at)
        if step is not None:
            step.advance()


def run() -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        definitions = write_definitions(Path(tmp) / "defs")
        db = connect(f"sqlite:///{tmp}/bench.db")
        migrate.upgrade(db)
        engine = Engine(db=db, definitions=load([definitions]), calendar=Calendar(), timezone=TZ)
        with progress(f"report: writing {ASSIGNMENTS} assignments' history", ASSIGNMENTS) as step:
            populate(engine, step=step)
        events = len(engine.events())
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
