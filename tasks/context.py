"""What a worker process needs to run tasks: settings, a database, the definitions.

Built on first use in each process (and rebuilt after a fork), never carried
between tasks as state: everything a task knows comes from the database.
Definitions are reloaded when a file under the definitions directory changes
(looked at once a second at most: a busy worker does not stat every file per task).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cache
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from workflow.core.plan import Definitions
from workflow.definitions.files import discover
from workflow.definitions.loader import load
from workflow.engine import Engine
from workflow.eventlog import EventLog
from workflow.mail.transport import forget_idle_connections
from workflow.settings import Settings
from workflow.store import connect

#: How often a worker looks whether the definition files changed.
RECHECK_SECONDS = 1.0


@dataclass
class Context:
    settings: Settings
    db: sa.Engine
    tz: ZoneInfo
    _definitions: Definitions | None = None
    _stamp: tuple[tuple[str, float], ...] = field(default=())
    _checked: float = float("-inf")

    def definitions(self) -> Definitions:
        now = time.monotonic()
        if self._definitions is not None and now - self._checked < RECHECK_SECONDS:
            return self._definitions
        self._checked = now
        files = discover([self.settings.definitions])
        stamp = tuple((str(f), f.stat().st_mtime) for f in files)
        if self._definitions is None or stamp != self._stamp:
            self._definitions = load([self.settings.definitions])
            self._stamp = stamp
        return self._definitions

    def forget_definitions(self) -> None:
        """Read the definitions again on the next use, changed files or not."""
        self._definitions = None
        self._checked = float("-inf")

    def event_log(self) -> EventLog:
        """The event log on this process's database; what it commits is published at once."""
        from tasks.publish import publish_committed

        batch = self.settings.dispatch_batch
        return EventLog(self.db, lambda ids: publish_committed(self.db, ids, batch=batch))

    def engine(self) -> Engine:
        """The engine on the current definitions, writing through :meth:`event_log`."""
        return Engine(
            db=self.db,
            definitions=self.definitions(),
            calendar=self.settings.calendar(),
            timezone=self.tz,
            admin_role=self.settings.admin_role,
            log=self.event_log(),
        )


@cache
def context() -> Context:
    settings = Settings()
    return Context(
        settings=settings,
        db=connect(settings.effective_database_url),
        tz=ZoneInfo(settings.timezone),
    )


def reset() -> None:
    """Forget the process's context (after a fork: connections must not be shared)."""
    if context.cache_info().currsize:
        context().db.dispose(close=False)
    context.cache_clear()
    forget_idle_connections()
