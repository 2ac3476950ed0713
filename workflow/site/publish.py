"""Building the public site: into a directory, or into ``site_dir`` with an atomic switch.

:func:`build` writes a complete site into an empty directory (``council publish -o DIR``,
``--as-of`` for the site as it stood on a day). :func:`publish` keeps ``site_dir`` current:
each build goes into a new directory beside it (``<site_dir>.builds/<n>``) and the
``site_dir`` symbolic link is switched to it with one ``rename``, so a web server never
serves a half-written site. Given the assignments that changed (``only``), it copies the
previous build (hard links, so unchanged files cost nothing), rewrites those assignments'
pages and open data, and renders the register's pages from the open data of every
assignment, the unchanged read back from the previous build; it builds everything again
when there is no previous build, the definitions changed, or the day did.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from workflow import store
from workflow.core.calendar import Calendar
from workflow.core.events import Event
from workflow.core.plan import AssignmentPlan, Definitions
from workflow.core.specs import Language
from workflow.errors import InvalidInput
from workflow.report.model import build_report, end_of_day
from workflow.report.render import to_docx, to_html
from workflow.site import pages
from workflow.site.content import assignment_data, assignment_path, public_notes, public_report
from workflow.store import site as site_marks
from workflow.store import versions as store_versions

#: The build's own record, at its root: what it was built from.
MANIFEST = ".council-site.json"
#: Builds kept besides the one in force (a web server may still be reading one).
KEEP_BUILDS = 2
#: Raised when the site's layout or the templates change, so an upgrade rebuilds fully.
LAYOUT = 1
STYLESHEET = Path(__file__).parent / "templates" / "style.css"


@dataclass(frozen=True)
class Published:
    """What a build did."""

    path: Path
    #: Files written (pages, feeds, data, reports); not those carried over unchanged.
    pages: int
    #: Assignments whose pages were rendered.
    assignments: int
    full: bool


@dataclass(frozen=True)
class _Inputs:
    definitions: Definitions
    as_of: dt.date
    tz: ZoneInfo
    site: pages.Site
    calendar: Calendar | None


def public_plans(definitions: Definitions, as_of: dt.date) -> list[AssignmentPlan]:
    """The public assignments decided by ``as_of``."""
    return [p for p in definitions.assignments.values() if p.public and p.decided_on <= as_of]


def fingerprint(definitions: Definitions, as_of: dt.date, site_url: str | None) -> str:
    """What a build depends on besides events: the public assignments' definitions, the
    bodies' names, the day, the address and the layout."""
    data = {
        "layout": LAYOUT,
        "as_of": as_of.isoformat(),
        "site_url": site_url,
        "assignments": sorted((p.id, p.digest, p.public) for p in definitions.assignments.values()),
        "bodies": sorted(
            (b, definitions.body_name(b, Language.SV), definitions.body_name(b, Language.EN))
            for b in definitions.bodies
        ),
        "stylesheet": hashlib.sha256(STYLESHEET.read_bytes()).hexdigest(),
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def _write(root: Path, files: dict[str, bytes]) -> int:
    """Write each file anew (a fresh inode: the previous build may share the old one)."""
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        path.write_bytes(data)
    return len(files)


def _events(
    conn: sa.Connection, assignment: str | None = None
) -> dict[str, list[tuple[int, Event]]]:
    grouped: dict[str, list[tuple[int, Event]]] = {}
    for event_id, event in store.list_events(conn, assignment=assignment):
        grouped.setdefault(event.assignment, []).append((event_id, event))
    return grouped


def _report_files(
    inputs: _Inputs, plan: AssignmentPlan, events: list[tuple[int, Event]], doc: dict[str, Any]
) -> dict[str, bytes]:
    """Each requested report back as of its day, public facts only, as HTML and DOCX."""
    files: dict[str, bytes] = {}
    plain = [e for _, e in events]
    for entry in doc["reports"]:
        as_of, language = dt.date.fromisoformat(entry["as_of"]), Language(entry["language"])
        if pages.report_file(plan.id, entry["as_of"], language.value, "html") in files:
            continue
        report = public_report(
            build_report(
                inputs.definitions, plan, plain, as_of=as_of, tz=inputs.tz, lang=language,
                calendar=inputs.calendar,
            ),
            public_notes(plain, as_of, inputs.tz),
        )  # fmt: skip
        files[pages.report_file(plan.id, entry["as_of"], language.value, "html")] = to_html(
            report
        ).encode()
        files[pages.report_file(plan.id, entry["as_of"], language.value, "docx")] = to_docx(report)
    return files


def _assignment_files(
    inputs: _Inputs, conn: sa.Connection, plan: AssignmentPlan, events: list[tuple[int, Event]]
) -> tuple[dict[str, Any], dict[str, bytes]]:
    in_force = store_versions.plan_in_force(conn, plan, end_of_day(inputs.as_of, inputs.tz))
    doc = assignment_data(
        inputs.definitions, in_force, events, as_of=inputs.as_of, tz=inputs.tz,
        calendar=inputs.calendar,
    )  # fmt: skip
    files = inputs.site.assignment_pages(doc)
    files |= pages.assignment_data_files(doc, inputs.as_of)
    files |= _report_files(inputs, in_force, events, doc)
    return doc, files


def _finish(
    inputs: _Inputs, root: Path, docs: Iterable[dict[str, Any]], manifest: dict[str, Any]
) -> int:
    """The register's pages and data, the stylesheet, the sitemap and the manifest."""
    chosen = sorted(docs, key=lambda d: d["id"])
    files = inputs.site.register_pages(chosen)
    files |= pages.data_files(chosen, inputs.as_of)
    files["style.css"] = STYLESHEET.read_bytes()
    written = _write(root, files)
    if inputs.site.site_url:
        index = [str(p.relative_to(root)) for p in root.rglob("index.html")]
        written += _write(root, {"sitemap.xml": pages.sitemap_xml(inputs.site.site_url, index)})
    _write(root, {MANIFEST: pages.dumps(manifest)})
    return written


def _remove_assignment(root: Path, assignment: str) -> None:
    for lang in (Language.SV, Language.EN):
        shutil.rmtree(root / assignment_path(lang, assignment), ignore_errors=True)
    for suffix in ("json", "csv"):
        (root / f"data/uppdrag/{assignment}.{suffix}").unlink(missing_ok=True)


def _build_into(
    inputs: _Inputs,
    db: sa.Engine,
    root: Path,
    *,
    fingerprint_: str,
    previous: Path | None = None,
    only: Collection[str] | None = None,
) -> Published:
    plans = public_plans(inputs.definitions, inputs.as_of)
    docs: dict[str, dict[str, Any]] = {}
    written, rendered = 0, 0
    with db.connect() as conn:
        if previous is None or only is None:
            events = _events(conn)
            for plan in plans:
                doc, files = _assignment_files(inputs, conn, plan, events.get(plan.id, []))
                docs[plan.id] = doc
                written += _write(root, files)
                rendered += 1
        else:
            changed = set(only)
            for plan in plans:
                if plan.id in changed:
                    continue
                data = json.loads((previous / f"data/uppdrag/{plan.id}.json").read_bytes())
                docs[plan.id] = data["assignment"]
            for assignment in sorted(changed - {""}):
                _remove_assignment(root, assignment)
                found = next((p for p in plans if p.id == assignment), None)
                if found is None:
                    continue  # no longer public, or gone: its pages are removed
                events = _events(conn, assignment)
                doc, files = _assignment_files(inputs, conn, found, events.get(found.id, []))
                docs[found.id] = doc
                written += _write(root, files)
                rendered += 1
    manifest = {
        "fingerprint": fingerprint_,
        "as_of": inputs.as_of.isoformat(),
        "assignments": sorted(docs),
    }
    written += _finish(inputs, root, docs.values(), manifest)
    return Published(
        path=root, pages=written, assignments=rendered, full=only is None or previous is None
    )


def build(
    db: sa.Engine,
    definitions: Definitions,
    out: Path,
    *,
    as_of: dt.date,
    tz: ZoneInfo,
    site_url: str | None = None,
    contact: str | None = None,
    calendar: Calendar | None = None,
) -> Published:
    """The whole site as it stood at the end of ``as_of``, into ``out`` (new or empty)."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InvalidInput(f"{out} exists and is not an empty directory")
    out.mkdir(parents=True, exist_ok=True)
    inputs = _Inputs(
        definitions,
        as_of,
        tz,
        pages.Site(as_of=as_of, site_url=site_url, contact=contact),
        calendar,
    )
    return _build_into(inputs, db, out, fingerprint_=fingerprint(definitions, as_of, site_url))


def _builds(root: Path) -> Path:
    return root.with_name(f"{root.name}.builds")


def current_build(root: Path) -> Path | None:
    """The build ``root`` points at, if it is a link to one."""
    if not root.is_symlink():
        return None
    target = root.resolve()
    return target if (target / MANIFEST).exists() else None


def is_current(
    root: Path, definitions: Definitions, *, now: dt.datetime, tz: ZoneInfo, site_url: str | None
) -> bool:
    """Whether the build in force was made today from these definitions (events aside)."""
    previous = current_build(root)
    if previous is None:
        return False
    manifest = json.loads((previous / MANIFEST).read_bytes())
    day = now.astimezone(tz).date()
    return bool(manifest.get("fingerprint") == fingerprint(definitions, day, site_url))


@contextlib.contextmanager
def locked(root: Path, *, wait: bool) -> Iterator[bool]:
    """Hold ``<site_dir>.lock`` while building (one publisher at a time on this host):
    yields False at once when another holds it and ``wait`` is false. The lock goes with
    the process, so a killed publisher never leaves it held."""
    path = root.with_name(f"{root.name}.lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def publish(
    db: sa.Engine,
    definitions: Definitions,
    root: Path,
    *,
    now: dt.datetime,
    tz: ZoneInfo,
    site_url: str | None = None,
    contact: str | None = None,
    as_of: dt.date | None = None,
    only: Collection[str] | None = None,
    calendar: Calendar | None = None,
) -> Published:
    """Build the site into a new directory beside ``root`` and switch ``root`` to it.

    With ``only`` (the assignments whose events changed; ``""`` for the register's own),
    the build starts from the previous one and renders only those assignments, unless the
    previous build was made from other definitions or on another day.
    """
    if root.exists() and not root.is_symlink():
        raise InvalidInput(
            f"{root} is a directory, not the link council switches between builds; "
            "move it away or choose another site_dir"
        )
    day = as_of or now.astimezone(tz).date()
    print_ = fingerprint(definitions, day, site_url)
    previous = current_build(root)
    if previous is not None and only is not None:
        manifest = json.loads((previous / MANIFEST).read_bytes())
        if manifest.get("fingerprint") != print_:
            previous = None
    else:
        previous = None
    builds = _builds(root)
    builds.mkdir(parents=True, exist_ok=True)
    stamp = now.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    # Named by time, so the newest sort last; unique whatever the clock says.
    target = Path(tempfile.mkdtemp(prefix=f"{stamp}-", dir=builds))
    if previous is not None:
        _link_tree(previous, target)
    inputs = _Inputs(
        definitions, day, tz, pages.Site(as_of=day, site_url=site_url, contact=contact), calendar
    )
    try:
        result = _build_into(
            inputs, db, target, fingerprint_=print_, previous=previous,
            only=only if previous is not None else None,
        )  # fmt: skip
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    link = root.with_name(f".{root.name}.{os.getpid()}.link")
    link.unlink(missing_ok=True)
    link.symlink_to(os.path.relpath(target, root.parent))
    os.replace(link, root)
    _prune(builds, keep={target})
    return result


@dataclass(frozen=True)
class Refreshed:
    """What :func:`refresh` did."""

    #: The build switched to; None when the site was current or another publisher held it.
    published: Published | None
    #: Another publisher on this host was building: nothing was done.
    busy: bool = False
    #: Assignments marked as changed that the build took in.
    marked: int = 0


def refresh(
    db: sa.Engine,
    definitions: Definitions,
    root: Path,
    *,
    now: dt.datetime,
    tz: ZoneInfo,
    site_url: str | None = None,
    contact: str | None = None,
    calendar: Calendar | None = None,
    full: bool = False,
    wait: bool = False,
) -> Refreshed:
    """Bring ``site_dir`` up to date with the events the workers have handled.

    Reads the assignments dispatch marked, rebuilds only those (everything when ``full``,
    or when the build in force is from other definitions or another day), switches the
    site, and then clears the marks it read, except those marked again meanwhile: their
    new events may have come after the build read them, so they are rebuilt next time.
    """
    with locked(root, wait=wait) as held:
        if not held:
            return Refreshed(None, busy=True)
        with db.connect() as conn:
            seen = site_marks.pending(conn)
        if not full and not seen and is_current(root, definitions, now=now, tz=tz,
                                                site_url=site_url):  # fmt: skip
            return Refreshed(None)
        done = publish(
            db, definitions, root, now=now, tz=tz, site_url=site_url, contact=contact,
            only=None if full else set(seen), calendar=calendar,
        )  # fmt: skip
        with db.begin() as conn:
            site_marks.clear(conn, seen)
        return Refreshed(done, marked=len(seen))


def _link_tree(source: Path, target: Path) -> None:
    """``target`` (an empty directory) as a copy of ``source`` whose files are hard links:
    a rebuild's start, costing a directory entry per file (faster than shutil.copytree,
    which also copies every directory's metadata)."""
    with os.scandir(source) as entries:
        for entry in entries:
            made = os.path.join(target, entry.name)
            if entry.is_dir(follow_symlinks=False):
                os.mkdir(made)
                _link_tree(Path(entry.path), Path(made))
            else:
                os.link(entry.path, made, follow_symlinks=False)


def _prune(builds: Path, *, keep: set[Path]) -> None:
    """Remove all but the newest builds (and never the one in force)."""
    found = sorted((p for p in builds.iterdir() if p.is_dir()), key=lambda p: p.name)
    for old in found[: -(KEEP_BUILDS + 1)]:
        if old not in keep:
            shutil.rmtree(old, ignore_errors=True)
