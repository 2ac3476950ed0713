"""The doctor's look at the database: reachable, and at this release's schema."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from workflow.ops.doctor.results import Result, fail, first_line, ok, warn
from workflow.ops.redaction import mask_url

if TYPE_CHECKING:
    from workflow.settings import Settings

_UPGRADE = "run `council db upgrade`"


def check_database(settings: Settings, timeout: float) -> list[Result]:
    """The database line, then whether council's files are readable by others."""
    return [*_database(settings, timeout), check_files(settings)]


def check_files(settings: Settings) -> Result:
    """var/ and the SQLite files: readable by their owner only (council creates them so)."""
    from workflow.ops.private import council_files, readable_by_others

    url = sa.engine.make_url(settings.effective_database_url)
    database = (
        Path(url.database)
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:")
        else None
    )
    exposed = readable_by_others(council_files(settings.var_dir, database))
    if not exposed:
        return ok("files", f"{settings.var_dir} and the database file are the owner's only")
    shown = ", ".join(f"{p} ({p.stat().st_mode & 0o777:o})" for p in exposed[:4])
    more = f" and {len(exposed) - 4} more" if len(exposed) > 4 else ""
    return warn(
        "files",
        f"readable by others: {shown}{more}",
        f"chmod -R go-rwx {settings.var_dir}"
        + (f" {database}*" if database and not database.is_relative_to(settings.var_dir) else ""),
    )


def _database(settings: Settings, timeout: float) -> list[Result]:
    from sqlalchemy.pool import NullPool

    from workflow.store import migrate

    url = settings.effective_database_url
    shown = mask_url(url)
    parsed = sa.engine.make_url(url)
    connect_args: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database or ""
        if path not in ("", ":memory:") and not Path(path).exists():
            return [
                fail(
                    "database",
                    f"{shown}: no database file yet (not initialised)",
                    _UPGRADE,
                    unreachable=True,
                )
            ]
        connect_args["timeout"] = timeout
    elif parsed.get_backend_name() == "postgresql":
        connect_args["connect_timeout"] = max(2, math.ceil(timeout))
    engine = sa.create_engine(url, poolclass=NullPool, connect_args=connect_args)
    outbox_line: Result | None = None
    try:
        current = migrate.current(engine)
        if current == migrate.head():
            outbox_line = _outbox(engine)
    except sa.exc.SQLAlchemyError as exc:
        return [
            fail(
                "database",
                f"cannot reach {shown}: {first_line(exc)}",
                "check COUNCIL_DATABASE_URL, that the server runs and accepts this user",
                unreachable=True,
            )
        ]
    finally:
        engine.dispose()
    head = migrate.head()
    if current == head:
        return [
            ok("database", f"{shown}: schema at {head} (current)"),
            *filter(None, [outbox_line]),
        ]
    if current is None:
        detail, fix = f"{shown}: not initialised (no council schema)", _UPGRADE
    elif _known_revision(current):
        detail = f"{shown}: schema at {current}, this release needs {head}"
        fix = _UPGRADE
    else:
        detail = (
            f"{shown}: schema at {current}, which this release does not know "
            "(a newer council migrated it)"
        )
        fix = "run the council release that migrated it, or restore a backup"
    return [fail("database", detail, fix, unreachable=True)]


def _outbox(engine: sa.Engine) -> Result:
    """The events on their way to the workers, and the reconciler's copies."""
    import datetime as dt

    from workflow.store import outbox

    with engine.connect() as conn:
        counts = outbox.counts(conn, now=dt.datetime.now(dt.UTC))
    return ok(
        "outbox",
        f"{counts.unpublished} to publish, {counts.unhandled} published and not handled "
        f"({counts.in_flight} in a dispatch now); the reconciler has sent "
        f"{counts.republished_copies} copies of {counts.republished_events} events",
    )


def _known_revision(revision: str) -> bool:
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    from workflow.store.migrate import MIGRATIONS

    try:
        return ScriptDirectory(str(MIGRATIONS)).get_revision(revision) is not None
    except CommandError:
        return False
