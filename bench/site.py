"""Site benchmark: the public progress site at three sizes, built whole and rebuilt after
one event.

75, 150 and 300 public assignments of 8 points each (300 x 8 is the target size), with
the register benchmark's definitions and history (:mod:`bench.register`), every note in
it public, a public note on point 2 of each ongoing assignment, and a report back
requested (the site offers it as delivered, HTML and DOCX) in every tenth assignment.
The site is published as of :data:`AS_OF` into a ``site_dir`` link, as a worker does
(``workflow.site.publish.publish``: a new build beside it, the link switched, old builds
pruned).

For each size, with the site under the temporary directory (``TMPDIR``; on disk here):

- **full build**: ``publish`` without ``only`` (a build from an empty directory), the
  median of :data:`ROUNDS`, in the steady state of a ``site_dir`` that holds as many
  builds as it keeps (so each publish also removes the oldest, as every publish after the
  third does). Memory: the tracemalloc peak (Python allocations only, not what C code
  allocates: lxml's for the DOCX reports) of the size's first build, a run of its own.
  The output on disk: files, bytes, allocated blocks, HTML pages.
- **rebuild after one event**: one step completed on one assignment (committed through
  the engine, not timed), then ``publish(..., only={that id})``; the median of
  :data:`REBUILD_ROUNDS`, each round on another assignment, before the full builds are
  timed. Its ratio to the full build at the target size (300): target
  :data:`REBUILD_TARGET`; over :data:`REBUILD_LIMIT` the benchmark fails (the smaller
  sizes' ratios are reported, not judged: their absolute times are small and the disk's
  noise weighs more). The last rebuild is compared byte for byte with the first of the
  timed full builds (the same events): any difference fails the benchmark. Its
  tracemalloc peak: the same rebuild once more.
- the parts of each timed publish (:data:`PARTS`), timed in place by wrapping
  ``workflow.site.publish``'s functions while it runs: the definitions' fingerprint, the
  hard-link copy of the previous build, the build itself, removing the oldest build
  (after the link is switched: the new site is already served).

Each timed round starts after ``gc.collect()`` and ``os.sync()`` (no writeback of an
earlier round pending). At the largest size the rebuild and the full build are timed
again with the site in memory (tmpfs, :data:`MEMORY`, when there is one), starting from
a copy of the build on disk: council's own cost without the disk's.

Linearity: the 300 case against 4x the 75 case (time and tracemalloc peak of the full
build, output bytes); target :data:`TARGET`, over :data:`LIMIT` it fails, as in the
register benchmark.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import gc
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from unittest import mock

import sqlalchemy as sa

from bench import register, report
from bench.progress import progress
from workflow.core.actions import Action, AddNote, CompleteStep
from workflow.core.calendar import Calendar
from workflow.core.plan import Definitions
from workflow.core.specs import Language
from workflow.definitions.loader import load
from workflow.engine import Engine
from workflow.site import publish as site_publish
from workflow.site.publish import Published, build, publish
from workflow.store import connect, migrate

T = TypeVar("T")
TZ = report.TZ
SIZES = register.SIZES
POINTS = register.POINTS
AS_OF = register.AS_OF
#: Each publish's clock: the afternoon of the site's day (each round a minute later).
NOW = dt.datetime.combine(AS_OF, dt.time(14), tzinfo=TZ)
SITE_URL = "https://uppfoljning.kommun.example/"
CONTACT = "tillganglighet@kommun.example"
#: The report back requested in every tenth assignment (on its day, as of that day).
REPORT_DAY = dt.date(2024, 3, 1)
ROUNDS = 3
#: Rebuilds after one event timed, each on another assignment.
REBUILD_ROUNDS = 3
#: Where the control run keeps its site: in memory.
MEMORY = Path("/dev/shm")
TARGET = register.TARGET
LIMIT = register.LIMIT
#: A rebuild after one event within this share of a full build at the same size.
REBUILD_TARGET = 0.2
#: Above this the rebuild is not worth its name: the benchmark fails.
REBUILD_LIMIT = 0.5
#: Builds a ``site_dir`` holds in the steady state: the one in force and KEEP_BUILDS more.
HELD = 3


def site_history(a: int, n: int) -> list[Action]:
    """The register benchmark's history with its notes public, and a public note on point
    2 where it is ongoing (its plan step done, nothing more)."""
    actions: list[Action] = [
        dataclasses.replace(x, public=True) if isinstance(x, AddNote) else x
        for x in register.register_history(a, n)
    ]
    if n == 2 and len(actions) == 1 and isinstance(actions[0], CompleteStep):
        text = f"Punkt 2 i uppdrag {a}: en enkät till berörda verksamheter är utskickad."
        actions.append(AddNote(actor="p0", text=text, public=True))
    return actions


def reported(a: int) -> bool:
    """Every tenth assignment (ongoing ones) has its report back requested."""
    return a % 10 == 3


def changing(a: int) -> bool:
    """The ongoing assignments whose point 2 the rebuild rounds complete a step on."""
    return a % 10 in (2, 4, 6)


def request_reports(engine: Engine, assignments: range) -> None:
    at = dt.datetime.combine(REPORT_DAY, dt.time(15), tzinfo=TZ)
    for a in assignments:
        if reported(a):
            engine.request_report(report.assignment_id(a), as_of=REPORT_DAY,
                                  language=Language.SV, actor="p0", now=at)  # fmt: skip


class Site:
    """One size's ``site_dir`` and the clock of its publishes."""

    def __init__(self, db: sa.Engine, definitions: Definitions, root: Path) -> None:
        self.db, self.definitions, self.root = db, definitions, root
        self.round = 0

    def publish(self, only: set[str] | None = None) -> Published:
        self.round += 1
        return publish(
            self.db, self.definitions, self.root, now=NOW + dt.timedelta(minutes=self.round),
            tz=TZ, site_url=SITE_URL, contact=CONTACT, as_of=AS_OF, only=only,
            calendar=Calendar(),
        )  # fmt: skip

    def remove(self) -> None:
        shutil.rmtree(self.root.with_name(f"{self.root.name}.builds"))
        self.root.unlink()

    def fill(self, build_: Path) -> None:
        """Hard-link copies of ``build_`` as the oldest builds, until ``site_dir`` holds
        :data:`HELD`: each publish from now on removes one, as in a site long running."""
        builds = build_.parent
        for i in range(HELD - len(list(builds.iterdir()))):
            copy = builds / f"00000000-filler-{i}"
            shutil.copytree(build_, copy, copy_function=os.link, symlinks=True)


#: The parts of a publish timed in place: the definitions' fingerprint, the hard-link
#: copy of the previous build (rebuilds only), the build itself (reading the events,
#: rendering, writing), removing the oldest build; ``other`` is the rest (the new
#: directory, the manifest read, the link switched).
PARTS = ("fingerprint", "copy", "build", "prune", "other")


@contextlib.contextmanager
def parts() -> Iterator[dict[str, float]]:
    """Within the block, each part of ``publish`` adds its time to the dict yielded: the
    module's own functions wrapped while it runs."""
    took = dict.fromkeys(PARTS, 0.0)
    depth = [0]

    def timing(name: str, fn: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> T:
            depth[0] += 1  # _link_tree calls itself for each directory: time the outer one
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                depth[0] -= 1
                if not depth[0]:
                    took[name] += time.perf_counter() - t0

        return wrapper

    with contextlib.ExitStack() as stack:
        for target, attr, name in ((site_publish, "fingerprint", "fingerprint"),
                                   (site_publish, "_link_tree", "copy"),
                                   (site_publish, "_build_into", "build"),
                                   (site_publish, "_prune", "prune")):  # fmt: skip
            fn = getattr(target, attr)
            stack.enter_context(mock.patch.object(target, attr, timing(name, fn)))
        yield took


def timed(fn: Callable[[], Published]) -> tuple[float, Published, dict[str, float]]:
    """One publish, timed, and its parts, after a ``gc.collect()`` and an ``os.sync()``:
    each round starts with the collector's counts at zero and no writeback of an earlier
    round pending."""
    gc.collect()
    os.sync()
    with parts() as took:
        t0 = time.perf_counter()
        result = fn()
        total = time.perf_counter() - t0
    took["other"] = total - sum(took.values())
    return total, result, took


def medians(rounds: list[dict[str, float]]) -> dict[str, float]:
    return {k: round(statistics.median(r[k] for r in rounds), 4) for k in PARTS}


def _files(root: Path) -> Iterator[Path]:
    return (p for p in sorted(root.rglob("*")) if p.is_file())


def output(root: Path) -> dict[str, int]:
    """A build on disk: files, bytes, the blocks allocated to them, HTML pages, reports."""
    stats = [(p, p.stat()) for p in _files(root)]
    return {
        "files": len(stats),
        "bytes": sum(s.st_size for _, s in stats),
        "disk_bytes": sum(s.st_blocks * 512 for _, s in stats),
        "html_pages": sum(p.suffix == ".html" and "rapporter" not in p.parts for p, _ in stats),
        "reports": sum("rapporter" in p.parts for p, _ in stats),
    }


def written_anew(build_: Path, previous: Path) -> dict[str, int]:
    """The files of ``build_`` not shared (hard-linked) with ``previous``: what a rebuild
    adds on disk."""
    files, size = 0, 0
    for p in _files(build_):
        old = previous / p.relative_to(build_)
        if not old.exists() or old.stat().st_ino != p.stat().st_ino:
            files += 1
            size += p.stat().st_size
    return {"files": files, "bytes": size}


def differences(a: Path, b: Path) -> list[str]:
    """The files that are not byte for byte the same in ``a`` and ``b`` (or in one only)."""
    names_a = {str(p.relative_to(a)) for p in _files(a)}
    names_b = {str(p.relative_to(b)) for p in _files(b)}
    differ = sorted(names_a ^ names_b)
    differ += [n for n in sorted(names_a & names_b) if (a / n).read_bytes() != (b / n).read_bytes()]
    return differ


def filesystem(path: Path) -> str:
    """The type of the file system ``path`` is on (the longest mount point above it)."""
    found, best = "?", ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/mounts").read_text().splitlines():
            _, mount, kind, *_ = line.split()
            if (str(path) + "/").startswith(mount.rstrip("/") + "/") and len(mount) > len(best):
                found, best = kind, mount
    return found


def change(engine: Engine, a: int) -> set[str]:
    """The one event: the second step of point 2 of assignment ``a`` completed."""
    point = engine.definitions.assignment(report.assignment_id(a)).point(2)
    engine.act(point, CompleteStep(actor="p0", step="do"),
               now=NOW - dt.timedelta(hours=4, minutes=a % 60))  # fmt: skip
    return {report.assignment_id(a)}


def full_builds(
    site: Site, size: int, label: str, check: Path | None = None
) -> tuple[list[float], list[dict[str, float]], list[str]]:
    """:data:`ROUNDS` full builds timed, with their parts; the files in which ``check``
    differs from the first of them."""
    differ: list[str] = []
    times, split = [], []
    with progress(f"site: {size} assignments{label}, full builds", ROUNDS) as step:
        for i in range(ROUNDS):
            took, full, part = timed(site.publish)
            assert (full.full, full.assignments) == (True, size), full
            times.append(took)
            split.append(part)
            if i == 0 and check is not None:
                differ = differences(check, full.path)
            step.advance()
    return times, split, differ


def rebuilds(
    site: Site, engine: Engine, changes: list[int], label: str
) -> tuple[list[float], list[dict[str, float]], Published, Path]:
    """Per assignment in ``changes``: its event committed, then the rebuild of it timed,
    with its parts; the last rebuild and the build before it."""
    times, split = [], []
    with progress(f"site: {len(engine.definitions.assignments)} assignments{label}, "
                  "rebuilds after one event", len(changes)) as step:  # fmt: skip
        for a in changes:
            only = change(engine, a)
            previous = site.root.resolve()
            took, rebuilt, part = timed(lambda only=only: site.publish(only=only))
            assert (rebuilt.full, rebuilt.assignments) == (False, 1), rebuilt
            times.append(took)
            split.append(part)
            step.advance()
    return times, split, rebuilt, previous


def measure(
    engine: Engine, size: int, changes: list[int], tmp: Path
) -> tuple[dict[str, Any], Site]:
    """One size: the first build under tracemalloc, its output; the ``site_dir`` filled;
    the rebuilds after one event; the full builds, the first of them compared with the
    last rebuild. Returns the figures and the site (for the control)."""
    site = Site(engine.db, engine.definitions, tmp / f"site-{size}")
    out: dict[str, Any] = {"events": len(engine.events())}
    with progress(f"site: {size} assignments, the first build under tracemalloc"):
        first: list[Published] = []
        out["full_peak_bytes"] = register.traced_peak(lambda: first.append(site.publish()))
    out["full_files_written"] = first[0].pages
    out["output"] = output(first[0].path)
    site.fill(first[0].path)
    times, split, rebuilt, previous = rebuilds(site, engine, changes, "")
    out["rebuild_s"] = round(statistics.median(times), 4)
    out["rebuild_rounds_s"] = [round(t, 4) for t in times]
    out["rebuild_parts_s"] = medians(split)
    out["rebuild_assignments"] = [report.assignment_id(a) for a in changes]
    out["rebuild_files_written"] = rebuilt.pages
    out["rebuild_written_anew"] = written_anew(rebuilt.path, previous)
    again = {report.assignment_id(changes[-1])}  # the same rebuild again
    out["rebuild_peak_bytes"] = register.traced_peak(lambda: site.publish(only=again))
    fulls, split, differ = full_builds(site, size, "", check=rebuilt.path)
    out["full_s"] = round(statistics.median(fulls), 4)
    out["full_rounds_s"] = [round(t, 4) for t in fulls]
    out["full_parts_s"] = medians(split)
    out["rebuild_ratio"] = round(out["rebuild_s"] / out["full_s"], 3)
    out["rebuild_differs"] = differ[:20]
    out["rebuild_identical"] = not differ
    return out, site


def control(
    engine: Engine, size: int, changes: list[int], tmp: Path, source: Path
) -> dict[str, Any]:
    """The rebuild and the full build timed again with the site in memory (tmpfs), from a
    copy of ``source``: what council itself costs, without the disk's."""
    site = Site(engine.db, engine.definitions, tmp / f"site-{size}")
    first = site.root.with_name(f"{site.root.name}.builds") / "00000001-copied"
    shutil.copytree(source, first, symlinks=True)
    site.root.symlink_to(os.path.relpath(first, site.root.parent))
    site.fill(first)
    times, split, _, _ = rebuilds(site, engine, changes, " in memory")
    fulls, full_split, _ = full_builds(site, size, " in memory")
    out: dict[str, Any] = {
        "filesystem": filesystem(tmp),
        "full_s": round(statistics.median(fulls), 4),
        "full_rounds_s": [round(t, 4) for t in fulls],
        "full_parts_s": medians(full_split),
        "rebuild_s": round(statistics.median(times), 4),
        "rebuild_rounds_s": [round(t, 4) for t in times],
        "rebuild_parts_s": medians(split),
        "rebuild_assignments": [report.assignment_id(a) for a in changes],
    }
    out["rebuild_ratio"] = round(out["rebuild_s"] / out["full_s"], 3)
    site.remove()
    return out


def warm_up(engine: Engine, scratch: Path) -> None:
    """Imports, templates, python-docx's package: the site of one assignment with a report
    back, built and thrown away."""
    one = engine.definitions.assignment(report.assignment_id(3))
    definitions = dataclasses.replace(engine.definitions, assignments={one.id: one})
    build(engine.db, definitions, scratch, as_of=AS_OF, tz=TZ, site_url=SITE_URL,
          contact=CONTACT, calendar=Calendar())  # fmt: skip
    shutil.rmtree(scratch)


def linearity(results: dict[str, Any], keys: list[tuple[str, ...]]) -> dict[str, float]:
    small, large = results[str(SIZES[0])], results[str(SIZES[-1])]
    scale = SIZES[-1] / SIZES[0]
    ratios = {}
    for path in keys:
        a, b = small, large
        for key in path:
            a, b = a[key], b[key]
        if isinstance(a, int | float) and a and isinstance(b, int | float):
            ratios[".".join(path)] = round(b / (scale * a), 2)
    return ratios


def run() -> dict[str, Any]:
    results: dict[str, Any] = {
        "points_per_assignment": POINTS, "as_of": AS_OF.isoformat(), "rounds": ROUNDS,
        "rebuild_rounds": REBUILD_ROUNDS, "target": TARGET, "limit": LIMIT,
        "rebuild_target": REBUILD_TARGET, "rebuild_limit": REBUILD_LIMIT,
    }  # fmt: skip
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        results["filesystem"] = filesystem(tmp)
        root = tmp / "defs"
        report.write_people_and_workflow(root)
        register.write_bodies(root)
        db = connect(f"sqlite:///{tmp}/site.db")
        migrate.upgrade(db)
        done = 0
        try:
            for size in SIZES:
                register.write_assignments(root, range(done, size), public=True)
                engine = Engine(db=db, definitions=load([root]), calendar=Calendar(), timezone=TZ)
                with progress(f"site: history of assignments {done}-{size - 1}",
                              size - done) as step:  # fmt: skip
                    report.populate(engine, range(done, size), site_history, step)
                request_reports(engine, range(done, size))
                changes = [a for a in range(done, size) if changing(a)]
                if not done:
                    warm_up(engine, tmp / "warm-up")
                results[str(size)], site = measure(engine, size, changes[:REBUILD_ROUNDS], tmp)
                done = size
                if size == SIZES[-1] and filesystem(MEMORY) == "tmpfs":
                    with tempfile.TemporaryDirectory(dir=MEMORY) as memory:
                        later = changes[REBUILD_ROUNDS : 2 * REBUILD_ROUNDS]
                        results["in_memory"] = {
                            str(size): control(engine, size, later, Path(memory),
                                               site.root.resolve())
                        }  # fmt: skip
                site.remove()
        finally:
            db.dispose()
    results["ratio"] = linearity(
        results, [("full_s",), ("full_peak_bytes",), ("output", "bytes"), ("output", "files")]
    )
    failed = [f"{k} {r} (over {LIMIT})" for k, r in results["ratio"].items() if r > LIMIT]
    target = results[str(SIZES[-1])]["rebuild_ratio"]
    if target > REBUILD_LIMIT:
        failed.append(f"rebuild at {SIZES[-1]} {target} (over {REBUILD_LIMIT})")
    for size in SIZES:
        one = results[str(size)]
        if not one["rebuild_identical"]:
            failed.append(f"rebuild at {size} differs from a full build: {one['rebuild_differs']}")
    if failed:
        results["failed"] = "; ".join(failed)
    return results


def _mb(value: object, digits: int = 1) -> str:
    return f"{value / 1e6:.{digits}f}" if isinstance(value, int) else "-"


def main() -> dict[str, Any]:
    results = run()
    at = {n: results[str(n)] for n in SIZES}
    large = at[SIZES[-1]]
    print(f"site: {', '.join(map(str, SIZES))} public assignments x {POINTS} points, as of "
          f"{AS_OF}; {large['events']} events, {large['output']['reports']} report files "
          f"at {SIZES[-1]}; the site on {results['filesystem']}")  # fmt: skip
    head = "".join(f"{n:>10}" for n in SIZES)
    print(f"  {'':<30}{head}  ratio (target {TARGET}, fail over {LIMIT})")
    rows: list[tuple[str, Callable[[dict[str, Any]], str], str]] = [
        ("full build (s)", lambda r: f"{r['full_s']:.3f}", "full_s"),
        ("  per assignment (ms)", lambda r: "", ""),
        ("  tracemalloc peak (MB)", lambda r: _mb(r["full_peak_bytes"]), "full_peak_bytes"),
        ("output (MB)", lambda r: _mb(r["output"]["bytes"], 2), "output.bytes"),
        ("  on disk, allocated (MB)", lambda r: _mb(r["output"]["disk_bytes"], 2), ""),
        ("  files", lambda r: str(r["output"]["files"]), "output.files"),
        ("  HTML pages", lambda r: str(r["output"]["html_pages"]), ""),
        ("rebuild after one event (s)", lambda r: f"{r['rebuild_s']:.3f}", ""),
        ("  ratio to the full build", lambda r: f"{r['rebuild_ratio']:.3f}", ""),
        ("  files written", lambda r: str(r["rebuild_files_written"]), ""),
        ("  tracemalloc peak (MB)", lambda r: _mb(r["rebuild_peak_bytes"]), ""),
        ("  same bytes as a full build", lambda r: "yes" if r["rebuild_identical"] else "NO", ""),
    ]
    for label, cell, key in rows:
        if label.strip().startswith("per assignment"):
            cells = [f"{1000 * at[n]['full_s'] / n:.2f}" for n in SIZES]
        else:
            cells = [cell(at[n]) for n in SIZES]
        ratio = results["ratio"].get(key, "") if key else ""
        print(f"  {label:<30}" + "".join(f"{c:>10}" for c in cells) + f"  {ratio}")
    print(f"  rebuild at {SIZES[-1]}: target ratio {REBUILD_TARGET}, fail over {REBUILD_LIMIT}")
    columns = [(str(n), at[n]) for n in SIZES]
    columns += [(f"{n} {m['filesystem']}", m) for n, m in results.get("in_memory", {}).items()]
    print(f"  {'parts (median s)':<30}" + "".join(f"{name:>10}" for name, _ in columns))
    for what in ("full", "rebuild"):
        for part in PARTS:
            cells = [f"{r[f'{what}_parts_s'][part]:.3f}" for _, r in columns]
            print(f"  {f'{what}: {part}':<30}" + "".join(f"{c:>10}" for c in cells))
        print(f"  {f'{what}: total':<30}" + "".join(f"{r[f'{what}_s']:>10.3f}" for _, r in columns))
    for n, mem in results.get("in_memory", {}).items():
        print(f"  in memory at {n}: rebuild ratio {mem['rebuild_ratio']:.3f}")
    if results.get("failed"):
        print(f"  FAILED: {results['failed']}")
    return results
