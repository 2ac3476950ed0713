"""The workers keep the public site current: dispatch marks an assignment whose events the
site shows, beat's `council.publish_site` rebuilds the marked ones and switches the site.

The marks and :func:`refresh` on SQLite and PostgreSQL; then end to end, a real Celery
worker (beat embedded) on the test's own Redis: a step completed with the CLI shows on
the point's page after the worker's rebuild.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from scripts.seed_history import TZ, A, at
from tests.integration.bundled_history import LOKAL
from tests.integration.servers import SmtpCatcher, WorkerProcess, council, wait_for
from workflow import handlers
from workflow.core.actions import CompleteStep
from workflow.core.calendar import Calendar
from workflow.core.events import REGISTER
from workflow.core.specs import Language
from workflow.engine import Engine
from workflow.settings import Settings
from workflow.site.publish import MANIFEST, Published, locked, refresh
from workflow.store import site as site_marks
from workflow.store import tables

T0 = at("2025-03-31T12:00")
STEP_TITLE = "Analysera underlaget"


def marks(db: sa.Engine) -> dict[str, dt.datetime]:
    with db.connect() as conn:
        return site_marks.pending(conn)


def dispatch_all(engine: Engine) -> None:
    """What a worker does with each committed event (no mail is sent here)."""
    with engine.db.connect() as conn:
        ids = conn.execute(
            sa.select(tables.outbox.c.event_id).where(tables.outbox.c.handled_at.is_(None))
        ).scalars().all()  # fmt: skip
    for event_id in ids:
        handlers.dispatch(engine.db, engine.definitions, Settings(reply_secret=None), event_id,
                          now=T0, tz=TZ)  # fmt: skip


def _refresh(engine: Engine, root: Path, now: dt.datetime = T0) -> Published:
    """A refresh that built; its build."""
    done = refresh(engine.db, engine.definitions, root, now=now, tz=TZ, calendar=Calendar())
    assert done.published is not None
    return done.published


def test_a_later_mark_survives_clearing_what_a_build_read(db: sa.Engine) -> None:
    """A mark never moves back; clearing what a build read leaves a mark made since."""
    with db.begin() as conn:
        site_marks.mark(conn, A, now=T0)
        site_marks.mark(conn, A, now=T0 - dt.timedelta(minutes=5))  # an older, redelivered one
        site_marks.mark(conn, LOKAL, now=T0)
    seen = marks(db)
    assert seen == {A: T0, LOKAL: T0}
    with db.begin() as conn:
        site_marks.mark(conn, A, now=T0 + dt.timedelta(seconds=1))  # while the build ran
        assert site_marks.clear(conn, seen) == 1
    assert marks(db) == {A: T0 + dt.timedelta(seconds=1)}


def test_dispatch_marks_only_what_the_site_shows(occasion_engine: Engine) -> None:
    """Events of a public assignment mark it; a non-public one's and the register's don't."""
    engine = occasion_engine
    engine.start(A, actor="sara.nilsson", now=at("2022-12-01T09:00"))
    engine.start(LOKAL, actor="erik.sjoberg", now=at("2024-04-02T09:00"))
    occasion = engine.definitions.occasions["tertial-1"]
    engine.request_occasion_report(occasion.id, year=2025, as_of=T0.date(),
                                   language=Language.SV, actor=occasion.coordinator,
                                   now=T0)  # fmt: skip
    with engine.db.connect() as conn:
        kinds = set(conn.execute(sa.select(tables.events.c.assignment)).scalars())
    assert kinds == {A, LOKAL, REGISTER}
    dispatch_all(engine)
    assert set(marks(engine.db)) == {A}


def test_refresh_rebuilds_the_marked_and_clears_the_marks(engine: Engine, tmp_path: Path) -> None:
    """The first refresh builds everything; one after a handled event rebuilds only its
    assignment and clears its mark; with nothing marked and the same day nothing is built;
    a publisher holding the lock makes another skip its run."""
    engine.start(A, actor="sara.nilsson", now=at("2022-12-01T09:00"))
    dispatch_all(engine)
    root = tmp_path / "site"
    assert _refresh(engine, root).full
    assert marks(engine.db) == {}
    current = refresh(engine.db, engine.definitions, root, now=T0, tz=TZ, calendar=Calendar())
    assert current.published is None
    assert not current.busy

    point = engine.definitions.assignment(A).point(1)
    engine.act(point, CompleteStep(actor="anders.berg", step="analyse"),
               now=at("2022-12-20T10:00"))  # fmt: skip
    dispatch_all(engine)
    assert set(marks(engine.db)) == {A}
    with locked(root, wait=False) as held:  # another publisher is building
        assert held
        busy = refresh(engine.db, engine.definitions, root, now=T0, tz=TZ)
        assert busy.busy
        assert busy.published is None
    assert set(marks(engine.db)) == {A}  # still to do
    done = _refresh(engine, root)
    assert not done.full
    assert done.assignments == 1
    assert f"Klart: {STEP_TITLE}." in (root / "uppdrag" / A / "1" / "index.html").read_text()
    assert marks(engine.db) == {}
    # A new day rebuilds everything (overdue marks move with the day), marked or not.
    assert _refresh(engine, root, now=T0 + dt.timedelta(days=1)).full


def test_a_worker_shows_a_completed_step_on_the_site(
    worker_env: dict[str, str],
    start_worker: Callable[..., WorkerProcess],
    smtp: SmtpCatcher,
    db: sa.Engine,
    tmp_path: Path,
) -> None:
    """`council start`, then `council complete`: after the worker's rebuild (beat fires
    `council.publish_site` every second here) the point's page has the step done, the
    rebuild took in only that assignment, and no mark is left."""
    root = tmp_path / "public" / "site"
    env = {**worker_env, "COUNCIL_SITE_DIR": str(root), "COUNCIL_SITE_INTERVAL": "1",
           "COUNCIL_SWEEP_INTERVAL": "3600"}  # fmt: skip
    start_worker(env)
    council(env, "start", A, "--point", "1", "--now", "2022-12-01T09:00")
    page = root / "uppdrag" / A / "1" / "index.html"
    started = "Punkten påbörjades."
    wait_for(lambda: page.exists() and started in page.read_text(), timeout=60,
             what="the started point on the site", progress=lambda: len(smtp.received))  # fmt: skip
    assert f"Klart: {STEP_TITLE}." not in page.read_text()
    first = root.resolve()

    council(env, "complete", f"{A}/1/analyse", "--as", "anders.berg", "--now",
            "2022-12-20T10:00")  # fmt: skip
    wait_for(lambda: f"Klart: {STEP_TITLE}." in page.read_text(), timeout=60,
             what="the step done on the point's page", progress=root.resolve)  # fmt: skip
    assert root.resolve() != first  # a new build, switched to
    manifest = json.loads((root / MANIFEST).read_bytes())
    assert LOKAL not in manifest["assignments"]
    wait_for(lambda: marks(db) == {}, timeout=60, what="the marks to be cleared",
             progress=root.resolve)  # fmt: skip
    runs = [
        json.loads(line) for line in (tmp_path / "worker.log").read_text().splitlines()
        if line.startswith("{") and '"site.published"' in line
    ]  # fmt: skip
    assert runs[0]["full"] is True
    assert len(runs) >= 2
    assert all(not r["full"] and r["assignments"] == 1 for r in runs[1:])
