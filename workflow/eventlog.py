"""The one path by which events are written, and handed to the workers once committed.

Every event council writes goes through :class:`EventLog`: the engine's commands, the
sweep's firings, a delivery that gave up, a report asked for. It writes the events with
their outbox rows in the caller's transaction, stamped with the operating-system login
of the process, and, after the commit, hands their ids to the publisher.
"""

from __future__ import annotations

import datetime as dt
import getpass
from collections.abc import Callable, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from workflow import store
from workflow.core.events import Event
from workflow.store import outbox


def process_login() -> str | None:
    """The operating-system login running this process, or None when it has none."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no LOGNAME/USER (a bare container)
        return None


class EventLog:
    """The one path by which events are written, and handed to the workers once committed."""

    def __init__(
        self,
        db: sa.Engine,
        on_commit: Callable[[Sequence[int]], object] | None = None,
        *,
        login: str | None = None,
    ) -> None:
        self.db = db
        #: Called with the new event ids after each commit: hands them to the
        #: dispatcher. Whatever it fails to publish stays in the outbox for the relay.
        self.on_commit = on_commit
        #: The operating-system login stamped on every event (default: this process's).
        self.login = login if login is not None else process_login()

    def append(self, conn: Connection, events: Sequence[Event], *, now: dt.datetime) -> list[int]:
        """Write events and their outbox rows in the caller's transaction; return their ids.

        With a publisher, the rows are claimed for it (on the wall clock, whatever ``now``
        a command was given): it publishes them once committed, and the relay does not.
        """
        claimed_until = None
        if self.on_commit is not None:
            claimed_until = dt.datetime.now(dt.UTC) + outbox.CLAIM_LEASE
        return store.append_events(
            conn, events, now=now, claimed_until=claimed_until, login=self.login
        )

    def committed(self, event_ids: Sequence[int]) -> None:
        """The transaction that wrote these events committed: publish them."""
        if event_ids and self.on_commit is not None:
            self.on_commit(event_ids)
