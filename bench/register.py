"""Register benchmark: the register of every assignment, in every format, at three sizes.

75, 150 and 300 assignments of 8 points each (300 x 8 = 2,400 points is the target
size), with a mixed history: whole assignments completed, written off or not begun, and
in the others completed points, ongoing ones with progress notes, points to be started,
points written off, a point the council decided against, and points past their due date
as of the register's day. Bodies are declared (bodies.yaml), so each assignment has a lead body and
co-owners. The definitions and history come from :mod:`bench.report`'s helpers.

For each size: reading the stored events (SQLite, and PostgreSQL when
``COUNCIL_BENCH_POSTGRES_URL`` answers), building the register model
(``build_register`` with ``Selection(everything=True)``) and rendering it in each format
are timed (median of :data:`ROUNDS`), and their memory measured: the tracemalloc peak
(Python allocations) in a run of their own, and the growth of the peak resident set in a
forked child (Linux; it also sees what C libraries allocate: SQLite, lxml).

Linearity: the 300 case against 4x the 75 case, per step, in time and in tracemalloc
peak; target :data:`TARGET`. A ratio over :data:`LIMIT` is clearly superlinear and fails
the benchmark (``python -m bench`` exits 1). If the time of the 300 case has a quadratic
part q, the ratio is 1 / (1 - 0.75 q): 1.3 allows q up to about 30 %, 1.6 means half.

PostgreSQL gets the SQLite database's event rows copied in bulk after each size's
history is written (only the read is timed there; the rest does not touch the database).
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import functools
import gc
import os
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa

from bench import report
from bench.progress import progress
from bench.sweep import drop, postgres_database
from workflow.core.actions import Action, AddNote, CompleteStep, WriteOff
from workflow.core.calendar import Calendar
from workflow.core.events import Event
from workflow.core.specs import Language
from workflow.definitions.loader import load
from workflow.engine import Engine
from workflow.report.register import Register, Selection, build_register
from workflow.report.render import Format, render
from workflow.store import connect, migrate, tables

T = TypeVar("T")
TZ = report.TZ
SIZES = (75, 150, 300)
POINTS = 8
#: The register's day: six weeks after the work started, so some of it is past due.
AS_OF = dt.date(2024, 3, 15)
ROUNDS = 3
#: Fast steps run more rounds, until they took this long (seconds).
MIN_TIME = 0.5
#: The 300 case within this many times 4x the 75 case: linear.
TARGET = 1.3
#: Above this, clearly superlinear (half the time quadratic): the benchmark fails.
LIMIT = 1.6
BODIES = {
    "kf": "Kommunfullmäktige",
    "ks": "Kommunstyrelsen",
    "socialnamnden": "Socialnämnden",
    "utbildningsnamnden": "Utbildningsnämnden",
    "kultur-och-fritidsnamnden": "Kultur- och fritidsnämnden",
    "tekniska-namnden": "Tekniska nämnden",
}
LEADS = list(BODIES)[1:]
STEPS = ("build", *(fmt.value for fmt in Format))
NAMES = {"build": "build the model", **{fmt.value: fmt.name.lower() for fmt in Format}}


def write_bodies(root: Path) -> None:
    lines = [
        f"  - {{id: {key}, name: {{sv: {name}, en: {name}}}, chief: p{i + 1}}}"
        for i, (key, name) in enumerate(BODIES.items())
    ]
    (root / "bodies.yaml").write_text("bodies:\n" + "\n".join(lines) + "\n")


def write_assignments(root: Path, assignments: range, *, public: bool = False) -> None:
    """Decided by the council (every fifth by the executive board) on days through 2023,
    led by one of five bodies with none, one or two co-owners; point 6 is decided against
    in every fourth, point 7 was due on 1 March 2024 in every other, point 8 is the
    report back. ``public``: each on the public site (``public: true``)."""
    for a in assignments:
        lead = LEADS[a // 3 % len(LEADS)]  # not in step with the history's kinds
        others = [b for b in LEADS if b != lead]
        co_owners = others[a % 3 : a % 3 + a % 3]
        points = []
        for n in range(1, POINTS + 1):
            if rejected(a, n):
                points.append(
                    f"  - {{number: 6, title: 'Punkt 6 i uppdrag {a}: utred en avgift', "
                    "decision: rejected}"
                )
            elif n == 7 and a % 2:
                points.append(report.point_yaml(a, n, due="2024-03-01"))
            else:
                points.append(report.point_yaml(a, n, extra=", report_back: true" * (n == 8)))
        report.write_assignment(
            root,
            a,
            points,
            decided_by="ks" if a % 5 == 4 else "kf",
            decided_on=(dt.date(2023, 1, 16) + dt.timedelta(days=a * 7 % 350)).isoformat(),
            assigned_to=f"{{lead: {lead}, co_owners: [{', '.join(co_owners)}]}}",
            public=public,
        )


def rejected(a: int, n: int) -> bool:
    return n == 6 and a % 4 == 2


def _note(a: int, n: int) -> str:
    return (
        f"Punkt {n} i uppdrag {a}: arbetet pågår enligt plan. Förvaltningen har samrått "
        "med berörda nämnder och återkommer med ett förslag till nästa sammanträde."
    )


def register_history(a: int, n: int) -> list[Action]:
    """Every tenth assignment completed, every tenth not begun, every tenth written off
    whole; in the others point 1 is completed, 2 and 3 ongoing with notes, 4 and 7 to be
    started, 5 written off in every third (else ongoing), 6 ongoing with two notes (where
    not rejected), 8 (the report back) to be started."""
    plan = CompleteStep(actor="p0", step="plan", note=_note(a, n))
    done: list[Action] = [
        plan,
        CompleteStep(actor="p0", step="do"),
        CompleteStep(actor="p0", step="check", note=f"Punkt {n} är genomförd."),
    ]
    if rejected(a, n):
        return []
    if a % 10 == 0:
        return done
    if a % 10 == 5:
        return [WriteOff(actor="p0", reason="Uppdraget avskrivs: inaktuellt efter omorganisation.")]
    if a % 10 == 1 or n in (4, 7, 8):
        return []
    if n == 1:
        return done
    if n == 3:
        return [plan, CompleteStep(actor="p0", step="do", note=f"Genomfört; {_note(a, n)}")]
    if n == 5 and a % 3 == 0:
        return [WriteOff(actor="p0", reason="Avskrivs: uppdraget ryms inte i budgeten.")]
    if n == 6:
        return [plan, AddNote(actor="p0", text=f"Tillägg: {_note(a, n)}")]
    return [plan]


def copy_events(source: sa.Engine, target: sa.Engine, since: int) -> int:
    """The events after ``since`` copied row for row; returns the last id copied."""
    with source.connect() as conn:
        rows = [
            dict(row._mapping)
            for row in conn.execute(
                sa.select(tables.events).where(tables.events.c.id > since).order_by("id")
            )
        ]
    with target.begin() as conn:
        conn.execute(tables.events.insert(), rows)
    return int(rows[-1]["id"]) if rows else since


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise KeyError(field)


def _trim() -> None:
    """Give the heap's free memory back to the kernel (glibc), so that what a step
    allocates shows as growth instead of reusing what earlier work freed."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def rss_growth(fn: Callable[[], object], db: sa.Engine | None = None) -> int | None:
    """How far ``fn`` raises the peak resident set above the resident set it started from,
    in bytes, run in a forked child (so each step starts from the same process); None
    where the kernel cannot reset the peak (not Linux)."""
    if not Path("/proc/self/clear_refs").exists():
        return None
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.close(read)
            if db is not None:
                db.dispose(close=False)  # the parent's connections stay the parent's
            gc.collect()
            _trim()
            Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to VmRSS
            before = _status_kb("VmRSS")
            fn()
            os.write(write, str((_status_kb("VmHWM") - before) * 1024).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        answer = pipe.read()
    os.waitpid(pid, 0)
    return int(answer) if answer else None


def traced_peak(fn: Callable[[], object]) -> int:
    """The tracemalloc peak of ``fn`` above what was allocated when it began, in bytes."""
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        fn()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def median_time(fn: Callable[[], T]) -> tuple[float, T]:
    """The median time of at least :data:`ROUNDS` calls, more (up to 15) until they took
    :data:`MIN_TIME` in all, and what the last call returned."""
    times: list[float] = []
    while len(times) < ROUNDS or (sum(times) < MIN_TIME and len(times) < 15):
        gc.collect()  # each round starts with the collector's counts at zero
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def reader(engine: Engine) -> Callable[[], list[Event]]:
    return lambda: [e for _, e in engine.events()]


def builder(engine: Engine, events: list[Event]) -> Callable[[], Register]:
    definitions = engine.definitions
    return lambda: build_register(
        definitions, definitions.assignments, events, Selection(everything=True),
        as_of=AS_OF, tz=TZ, lang=Language.SV,
    )  # fmt: skip


def measure(engine: Engine, backends: dict[str, Engine]) -> dict[str, Any]:
    """One size: every step timed, its memory measured, each output's size."""
    out: dict[str, Any] = {}
    events = reader(engine)()
    out["events"] = len(events)
    for backend, eng in backends.items():
        read = reader(eng)
        elapsed, got = median_time(read)
        assert len(got) == len(events), backend
        out[f"read_{backend}_s"] = round(elapsed, 4)
        out[f"read_{backend}_peak_bytes"] = traced_peak(read)
        out[f"read_{backend}_rss_bytes"] = rss_growth(read, eng.db)
    build = builder(engine, events)
    elapsed, register = median_time(build)
    out["build_s"] = round(elapsed, 4)
    steps: dict[str, Callable[[], object]] = {"build": build}
    for fmt in Format:
        steps[fmt.value] = render_step = functools.partial(render, register, fmt)
        elapsed, data = median_time(render_step)
        out[f"{fmt.value}_s"] = round(elapsed, 4)
        out[f"{fmt.value}_bytes"] = len(data)
    for name, fn in steps.items():
        out[f"{name}_peak_bytes"] = traced_peak(fn)
        out[f"{name}_rss_bytes"] = rss_growth(fn)
    out["assignments_by_category"] = {c.value: n for c, n in register.assignments.items()}
    out["points_by_category"] = register.summary.model_dump()
    return out


def warm_up(engine: Engine) -> None:
    """One assignment's register in every format: templates, imports, python-docx's
    package template."""
    first = (report.assignment_id(0),)
    register = build_register(engine.definitions, engine.definitions.assignments,
                              reader(engine)(), Selection(assignments=first), as_of=AS_OF,
                              tz=TZ, lang=Language.SV)  # fmt: skip
    for fmt in Format:
        render(register, fmt)


def linearity(results: dict[str, Any], keys: list[str]) -> dict[str, float]:
    small, large = results[str(SIZES[0])], results[str(SIZES[-1])]
    scale = SIZES[-1] / SIZES[0]
    return {
        key: round(large[key] / (scale * small[key]), 2)
        for key in keys
        if isinstance(small.get(key), int | float) and small[key]
    }


def run() -> dict[str, Any]:
    results: dict[str, Any] = {"points_per_assignment": POINTS, "as_of": AS_OF.isoformat(),
                               "rounds": ROUNDS, "target": TARGET, "limit": LIMIT}  # fmt: skip
    found = postgres_database()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "defs"
        report.write_people_and_workflow(root)
        write_bodies(root)
        db = connect(f"sqlite:///{tmp}/register.db")
        migrate.upgrade(db)
        pg = connect(found[0]) if found else None
        if pg is not None:
            migrate.upgrade(pg)
        copied = 0
        done = 0
        try:
            for size in SIZES:
                write_assignments(root, range(done, size))
                engine = Engine(db=db, definitions=load([root]), calendar=Calendar(), timezone=TZ)
                with progress(f"register: history of assignments {done}-{size - 1}",
                              size - done) as step:  # fmt: skip
                    report.populate(engine, range(done, size), register_history, step)
                done = size
                backends = {"sqlite": engine}
                if pg is not None:
                    copied = copy_events(db, pg, copied)
                    backends["postgres"] = Engine(
                        db=pg, definitions=engine.definitions, calendar=Calendar(), timezone=TZ
                    )
                if size == SIZES[0]:
                    with progress("register: warm-up"):
                        warm_up(engine)
                with progress(f"register: measuring {size} assignments"):
                    results[str(size)] = measure(engine, backends)
        finally:
            db.dispose()
            if pg is not None and found is not None:
                pg.dispose()
                drop(found[1], found[0])
                found[1].dispose()
    keys = [f"read_{b}_s" for b in ("sqlite", "postgres")] + [f"{s}_s" for s in STEPS]
    results["time_ratio"] = linearity(results, keys)
    peaks = [f"read_{b}_peak_bytes" for b in ("sqlite", "postgres")]
    results["peak_ratio"] = linearity(results, peaks + [f"{s}_peak_bytes" for s in STEPS])
    ratios = {**results["time_ratio"], **results["peak_ratio"]}
    results["superlinear"] = [k for k, r in ratios.items() if r > LIMIT]
    if results["superlinear"]:
        results["failed"] = f"superlinear (over {LIMIT}): {', '.join(results['superlinear'])}"
    return results


def _mb(value: object, digits: int = 1) -> str:
    return f"{value / 1e6:.{digits}f}" if isinstance(value, int) else "-"


def main() -> dict[str, Any]:
    results = run()
    large = results[str(SIZES[-1])]
    print(f"register: {', '.join(map(str, SIZES))} assignments x {POINTS} points, as of "
          f"{AS_OF}; {large['events']} events at {SIZES[-1]}")  # fmt: skip
    print(f"  assignments at {SIZES[-1]}: {large['assignments_by_category']}")
    print(f"  points at {SIZES[-1]}: {large['points_by_category']}")
    rows = [(f"read ({b})", f"read_{b}") for b in ("sqlite", "postgres")]
    rows += [(NAMES[s], s) for s in STEPS]
    head = "".join(f"{f'{n} s':>9}" for n in SIZES) + "".join(f"{f'ms/a {n}':>10}" for n in SIZES)
    print(f"  {'step':<18}{head}  ratio (target {TARGET}, fail over {LIMIT})")
    for label, key in rows:
        if key + "_s" not in large:
            print(f"  {label:<18} (PostgreSQL not available)")
            continue
        times = [results[str(n)][f"{key}_s"] for n in SIZES]
        per = [1000 * t / n for t, n in zip(times, SIZES, strict=True)]
        ratio = results["time_ratio"].get(f"{key}_s", "-")
        print(f"  {label:<18}" + "".join(f"{t:>9.3f}" for t in times)
              + "".join(f"{p:>10.2f}" for p in per) + f"  {ratio}")  # fmt: skip
    head = "".join(f"{f'peak {n}':>9}" for n in SIZES) + f"{'ratio':>7}"
    head += "".join(f"{f'RSS+ {n}':>9}" for n in SIZES) + f"{f'output {SIZES[-1]}':>12}"
    print(f"  {'memory (MB)':<18}{head}")
    for label, key in rows:
        if key + "_s" not in large:
            continue
        peaks = [_mb(results[str(n)][f"{key}_peak_bytes"]) for n in SIZES]
        rss = [_mb(results[str(n)][f"{key}_rss_bytes"]) for n in SIZES]
        ratio = results["peak_ratio"].get(f"{key}_peak_bytes", "-")
        size = _mb(large.get(f"{key}_bytes"), 2)
        print(f"  {label:<18}" + "".join(f"{p:>9}" for p in peaks) + f"{ratio!s:>7}"
              + "".join(f"{r:>9}" for r in rss) + f"{size:>12}")  # fmt: skip
    if results["superlinear"]:
        print(f"  SUPERLINEAR (ratio over {LIMIT}): {', '.join(results['superlinear'])}")
    return results
