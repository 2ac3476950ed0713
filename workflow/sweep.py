"""The deadline sweep: fire what falls due at ``now``, each firing exactly once.

A sweep reads only steps whose indexed ``next_check_at`` has come, so its cost
follows what is due, not what is open. For each, it computes the step's
firings (:mod:`workflow.core.deadlines`), claims each new one under its unique
key (a second sweep, at the same time or later, finds the key and fires
nothing), writes one event per firing through the engine's event log, and moves
``next_check_at`` to the next firing. The events reach the workers like any
command's: their handlers mail the reminders, overdue notices and one escalation
digest per person and sweep. On PostgreSQL concurrent sweeps skip each other's
rows (``FOR UPDATE SKIP LOCKED``); on SQLite they take turns at the write lock.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.engine import Connection

from workflow.core import deadlines
from workflow.core.deadlines import Fired, Firing
from workflow.core.events import Event, EventType, FiringKind
from workflow.core.plan import PointPlan, StepPlan
from workflow.engine import Engine
from workflow.store import firings
from workflow.store.firings import DueStep

#: Steps one sweep transaction handles at most; a sweep loops until none are due.
BATCH = 1000
EVENT_OF = {
    FiringKind.REMINDER: EventType.STEP_REMINDER_DUE,
    FiringKind.OVERDUE: EventType.STEP_OVERDUE,
    FiringKind.ESCALATION: EventType.STEP_ESCALATED,
}


@dataclass
class SweepResult:
    fired: list[Fired] = field(default_factory=list)
    event_ids: list[int] = field(default_factory=list)
    steps_checked: int = 0


def due_count(engine: Engine, *, now: dt.datetime) -> int:
    """How many steps a sweep at ``now`` would look at (for a progress bar; a snapshot)."""
    with engine.db.connect() as conn:
        return firings.due_count(conn, engine.today(now))


def fired_keys_for(engine: Engine, assignment: str) -> set[str]:
    """The firings an assignment has had (what `council simulate` does not show again)."""
    with engine.db.connect() as conn:
        return firings.fired_keys_for(conn, assignment)


def sweep(
    engine: Engine,
    *,
    now: dt.datetime,
    dry_run: bool = False,
    limit: int | None = BATCH,
    on_step: Callable[[int], None] | None = None,
) -> SweepResult:
    """Fire everything due at ``now``; with ``dry_run``, only say what would fire.

    ``on_step(1)`` is called after each step is looked at, inside the sweep's one
    transaction (a progress bar): it must not touch the database. The events are
    handed to the engine's publisher after the commit.
    """
    today = engine.today(now)
    result = SweepResult()
    run = _Run(engine, now, today, dry_run, sweep=uuid.uuid4().hex)
    with engine.db.connect() if dry_run else engine.db.begin() as conn:
        if not dry_run:
            firings.lock_for_sweep(conn)
        rows = firings.due_steps(conn, today, limit)
        result.steps_checked = len(rows)
        for row in rows:
            run.step(conn, row, result)
            if on_step is not None:
                on_step(1)
        if dry_run:
            return result  # leaving connect() rolls back: nothing is written
    engine.log.committed(result.event_ids)
    return result


@dataclass(frozen=True)
class _Run:
    """One sweep transaction: what it needs to look at each due step."""

    engine: Engine
    now: dt.datetime
    today: dt.date
    dry_run: bool
    #: Names this transaction in its escalation events: one digest per person and sweep.
    sweep: str

    def _plan_for(self, row: DueStep) -> tuple[PointPlan, StepPlan] | None:
        assignment = self.engine.definitions.assignments.get(row.assignment)
        if assignment is None:
            return None
        try:
            point = assignment.point(row.number)
            return point, point.step(row.state.id)
        except KeyError:
            return None

    def step(self, conn: Connection, row: DueStep, result: SweepResult) -> None:
        found = self._plan_for(row)
        if found is None:  # no longer defined: stop looking at it
            if not self.dry_run:
                firings.stop_checking(conn, row)
            return
        point, plan = found
        calendar, definitions = self.engine.calendar, self.engine.definitions
        schedule = deadlines.schedule(point, plan, row.state, calendar)
        ready = self._claim(conn, schedule)
        coordinator = definitions.assignment(point.assignment).coordinator
        fired = [
            deadlines.resolve(
                f, plan, row.state, definitions.directory, coordinator, self.today, calendar
            )
            for f in ready
        ]
        result.fired.extend(fired)
        if self.dry_run:
            return
        events = [
            Event(
                type=EVENT_OF[item.firing.kind], assignment=point.assignment, point=point.number,
                step=plan.id, actor="council", occurred_at=self.now,
                payload=item.payload(self.sweep if item.firing.kind is FiringKind.ESCALATION
                                     else None),
            )
            for item in fired
        ]  # fmt: skip
        ids = self.engine.log.append(conn, events, now=self.now)
        firings.link_events(conn, [(f.firing.key, i) for f, i in zip(fired, ids, strict=True)])
        result.event_ids.extend(ids)
        firings.set_next_check(conn, row, deadlines.next_check(schedule, self.today))

    def _claim(self, conn: Connection, schedule: list[Firing]) -> list[Firing]:
        """What fires now and has not fired before; a dry run only looks."""
        ready = deadlines.due_now(schedule, self.today)
        if self.dry_run:
            done = firings.already_fired(conn, [f.key for f in ready])
            return [f for f in ready if f.key not in done]
        claimed = [f for f in ready if firings.claim(conn, f, now=self.now, sweep=self.sweep)]
        # Superseded reminders (several came due at once) are claimed too, so they never fire.
        for skipped in [f for f in schedule if f.fires_on <= self.today and f not in ready]:
            firings.claim(conn, skipped, now=self.now, sweep=self.sweep)
        return claimed
