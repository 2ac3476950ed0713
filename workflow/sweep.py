"""The deadline sweep: fire what falls due at ``now``, each firing exactly once, and start
the points whose planned day has come.

A sweep reads only steps whose indexed ``next_check_at`` has come, so its cost
follows what is due, not what is open. For each, it computes the step's
firings (:mod:`workflow.core.deadlines`), claims each new one under its unique
key (a second sweep, at the same time or later, finds the key and fires
nothing), writes one event per firing through the engine's event log, and moves
``next_check_at`` to the next firing. The events reach the workers like any
command's: their handlers mail the reminders, overdue notices and one escalation
digest per person and sweep. On PostgreSQL concurrent sweeps skip each other's
rows (``FOR UPDATE SKIP LOCKED``); on SQLite they take turns at the write lock.

Planned starts follow the same pattern: ``council start`` records each point whose
planned start is ahead (``planned_starts``, indexed by day); the sweep reads the rows
whose day has come, starts each point through the engine (``point.started`` by
``council``, so its owners are prompted like any start) and deletes the row in the
same transaction; the point's row makes a second start impossible.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from workflow import store
from workflow.core import deadlines
from workflow.core.actions import SYSTEM, OpenOccurrences, StartPoint
from workflow.core.deadlines import Fired, Firing
from workflow.core.events import (
    REGISTER,
    Event,
    EventType,
    FiringKind,
    OccasionReached,
    OccasionReminderDue,
    Payload,
    StepActivated,
)
from workflow.core.machine import execute
from workflow.core.plan import OccasionPlan, PointPlan, StepPlan
from workflow.core.state import PointState, StepState, initial, replay
from workflow.engine import Engine
from workflow.errors import ConflictError, CouncilError
from workflow.store import firings, planned
from workflow.store.firings import DueStep
from workflow.store.planned import PlannedStart

#: Steps one sweep transaction handles at most; a sweep loops until none are due.
BATCH = 1000
#: How long after an occasion's day a sweep still asks for its report (no sweep ran on the
#: day: the scheduler was down); older occasions are left to `council report --occasion`.
OCCASION_GRACE = dt.timedelta(days=7)
EVENT_OF = {
    FiringKind.REMINDER: EventType.STEP_REMINDER_DUE,
    FiringKind.OVERDUE: EventType.STEP_OVERDUE,
    FiringKind.ESCALATION: EventType.STEP_ESCALATED,
}


@dataclass(frozen=True)
class Started:
    """A point the sweep started on its planned day (or, in a dry run, would start)."""

    planned: PlannedStart
    #: Who is prompted: the owners of the steps it activates.
    owners: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        """What `check-deadlines --json` prints for it, beside the firings."""
        return {
            "point": self.planned.address, "step": None, "kind": "start", "level": 0,
            "fires_on": self.planned.start_on.isoformat(), "due": None, "owner": None,
            "to": ", ".join(self.owners), "via": None, "days_overdue": 0,
        }  # fmt: skip


@dataclass(frozen=True)
class Opened:
    """An occurrence of a recurring duty the sweep opened (or, in a dry run, would open)."""

    point: str
    step: str
    owner: str
    due: dt.date | None

    def as_dict(self, today: dt.date) -> dict[str, Any]:
        """What `check-deadlines --json` prints for it, beside the firings."""
        return {
            "point": self.point, "step": self.step, "kind": "occurrence", "level": 0,
            "fires_on": today.isoformat(), "due": self.due.isoformat() if self.due else None,
            "owner": self.owner, "to": self.owner, "via": None, "days_overdue": 0,
        }  # fmt: skip


@dataclass(frozen=True)
class OccasionFired:
    """A reporting occasion's reminder or report the sweep asked for (or would ask for)."""

    occasion: str
    year: int
    day: dt.date
    #: ``report`` on the day, else the reminder's offset (-10bd).
    what: str
    to: str

    def as_dict(self, today: dt.date) -> dict[str, Any]:
        """What `check-deadlines --json` prints for it, beside the firings."""
        kind = "occasion" if self.what == "report" else "occasion-reminder"
        return {
            "point": self.occasion, "step": str(self.year), "kind": kind, "level": 0,
            "fires_on": today.isoformat(), "due": self.day.isoformat(), "owner": None,
            "to": self.to, "via": None, "days_overdue": 0,
        }  # fmt: skip


@dataclass
class SweepResult:
    fired: list[Fired] = field(default_factory=list)
    event_ids: list[int] = field(default_factory=list)
    steps_checked: int = 0
    started: list[Started] = field(default_factory=list)
    starts_checked: int = 0
    #: Planned starts left waiting: their assignment's changed definition is not accepted.
    held_back: list[PlannedStart] = field(default_factory=list)
    #: Occurrences of recurring duties opened.
    opened: list[Opened] = field(default_factory=list)
    #: Reporting occasions' reminders and reports asked for.
    occasions: list[OccasionFired] = field(default_factory=list)
    today: dt.date | None = None
    #: Due steps and planned starts another sweep holds now (PostgreSQL: skipped, not
    #: missed; that sweep fires them).
    held_elsewhere: int = 0

    def full(self, limit: int | None = BATCH) -> bool:
        """The sweep hit its batch limit: another batch may find more to do."""
        return limit is not None and max(self.steps_checked, self.starts_checked) >= limit

    def items(self) -> list[dict[str, Any]]:
        """Planned starts first, then occurrences opened, then firings, then occasions, as
        `check-deadlines` prints them."""
        today = self.today
        opened = [o.as_dict(today) for o in self.opened] if today else []
        occasions = [o.as_dict(today) for o in self.occasions] if today else []
        fired = [f.as_dict() for f in self.fired]
        return [s.as_dict() for s in self.started] + opened + fired + occasions


def due_count(engine: Engine, *, now: dt.datetime) -> int:
    """How many steps and planned starts a sweep at ``now`` would look at (a snapshot, for
    a progress bar)."""
    today = engine.today(now)
    with engine.db.connect() as conn:
        return firings.due_count(conn, today) + planned.due_start_count(conn, today)


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
    result = SweepResult(today=today)
    run = _Run(engine, now, today, dry_run, sweep=uuid.uuid4().hex)
    with engine.db.connect() if dry_run else engine.db.begin() as conn:
        if not dry_run:
            firings.lock_for_sweep(conn)
        # Planned starts first: a point started late is looked at in the same sweep, so its
        # owners get the overdue notices it already deserves with their prompts.
        starts = planned.due_starts(conn, today, limit)
        result.starts_checked = len(starts)
        imagined: list[DueStep] = []  # a dry run's started steps, which it does not write
        for due in starts:
            imagined += run.start(conn, due, result)
            if on_step is not None:
                on_step(1)
        rows = firings.due_steps(conn, today, limit) + imagined
        result.steps_checked = len(rows)
        opened: list[DueStep] = []  # occurrences opened late: looked at in this sweep too
        for row in rows:
            opened += run.step(conn, row, result)
            if on_step is not None:
                on_step(1)
        for row in opened:
            run.step(conn, row, result)
        run.occasions(conn, result)
        if dry_run:
            return result  # leaving connect() rolls back: nothing is written
        if conn.dialect.name == "postgresql" and not result.full(limit):
            # The due rows this sweep skipped because another one holds them (skip locked).
            result.held_elsewhere = firings.due_held_elsewhere(
                conn, today
            ) + planned.due_starts_held_elsewhere(conn, today)
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

    def step(self, conn: Connection, row: DueStep, result: SweepResult) -> list[DueStep]:
        """Fire what is due of one step, or open a duty's occurrences (returned when they
        are due to be looked at today: one opened late already deserves its notices)."""
        found = self._plan_for(row)
        if found is None:  # no longer defined: stop looking at it
            if not self.dry_run:
                firings.stop_checking(conn, row)
            return []
        point, plan = found
        if plan.duty:
            return self._open(conn, point, plan, result)
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
            return []
        events = [
            Event(
                type=EVENT_OF[item.firing.kind], assignment=point.assignment, point=point.number,
                step=plan.id, actor="council", occurred_at=self.now,
                payload=item.payload(self.sweep if item.firing.kind in _DIGESTED else None),
            )
            for item in fired
        ]  # fmt: skip
        ids = self.engine.log.append(conn, events, now=self.now)
        firings.link_events(conn, [(f.firing.key, i) for f, i in zip(fired, ids, strict=True)])
        result.event_ids.extend(ids)
        firings.set_next_check(conn, row, deadlines.next_check(schedule, self.today))
        return []

    def start(self, conn: Connection, due: PlannedStart, result: SweepResult) -> list[DueStep]:
        """Start a point whose planned day has come.

        Each start runs in a savepoint: a point a coordinator started in the same instant
        (PostgreSQL) costs only that start, and the next sweep finds it started. A dry run
        works out what the start would do, and returns the steps it would have the sweep
        look at today (a real start writes their rows, which the sweep then reads).
        """
        if self.dry_run:
            return self._imagine_start(conn, due, result)
        try:
            with conn.begin_nested():
                outcome = self.engine.start_planned(conn, due, now=self.now)
        except (sa.exc.IntegrityError, sa.exc.OperationalError) as exc:
            if not _lost_race(exc):
                raise
            return []  # a command took the point meanwhile: the next sweep sees it
        if outcome is None:
            if self._point_for(due) is not None:
                result.held_back.append(due)
            return []
        result.started.append(Started(due, _prompted(outcome.events)))
        result.event_ids.extend(outcome.event_ids)
        return []

    def _imagine_start(
        self, conn: Connection, due: PlannedStart, result: SweepResult
    ) -> list[DueStep]:
        point = self._point_for(due)
        row = store.get_assignment(conn, due.assignment)
        if point is None or point.rejected or row is None:
            return []
        if row.digest != self.engine.definitions.assignment(due.assignment).digest:
            result.held_back.append(due)
            return []
        transition = execute(point, initial(point), StartPoint(actor=SYSTEM), now=self.now,
                             calendar=self.engine.calendar)  # fmt: skip
        result.started.append(Started(due, _prompted(transition.events)))
        checks = self.engine.next_checks(point, transition.state)
        return [
            DueStep(point.assignment, point.number, step)
            for step in transition.state.steps
            if (check := checks.get(step.id)) is not None and check <= self.today
        ]

    def _open(
        self, conn: Connection, point: PointPlan, duty: StepPlan, result: SweepResult
    ) -> list[DueStep]:
        """Open the duty's occurrences whose day has come, through the engine (a dry run works
        them out from the point's events); the point's row takes the duty's next check."""
        if self.dry_run:
            state = replay(point, store.point_events(conn, point.assignment, point.number))
            action = OpenOccurrences(actor=SYSTEM, step=duty.id)
            try:
                transition = execute(point, state, action, now=self.now,
                                     calendar=self.engine.calendar)  # fmt: skip
            except CouncilError:
                return []
            result.opened.extend(_opened(point, transition.events))
            return self._due_today(point, transition.state, transition.events)
        try:
            with conn.begin_nested():
                outcome = self.engine.open_occurrences(conn, point, duty.id, now=self.now)
        except (sa.exc.IntegrityError, sa.exc.OperationalError, ConflictError) as exc:
            if not _lost_race(exc):
                raise
            return []  # a command changed the point meanwhile: the next sweep opens them
        except CouncilError:
            firings.stop_checking(conn, DueStep(point.assignment, point.number,
                                                StepState(id=duty.id, owner="")))  # fmt: skip
            return []
        if outcome is None:
            return []  # its definition changed and is not accepted: it waits, as a start does
        result.opened.extend(_opened(point, outcome.events))
        result.event_ids.extend(outcome.event_ids)
        return self._due_today(point, outcome.state, outcome.events)

    def _due_today(
        self, point: PointPlan, state: PointState, events: tuple[Event, ...]
    ) -> list[DueStep]:
        """The occurrences just opened whose first check has come (opened late)."""
        ids = {e.step for e in events}
        checks = self.engine.next_checks(point, state)
        return [
            DueStep(point.assignment, point.number, step)
            for step in state.steps
            if step.id in ids and (check := checks.get(step.id)) is not None
            and check <= self.today
        ]  # fmt: skip

    def occasions(self, conn: Connection, result: SweepResult) -> None:
        """Remind each occasion's coordinator before its day, and on the day (or within
        :data:`OCCASION_GRACE` after it, if no sweep ran that day) ask the workers for its
        report: each once, by key, whatever the number of sweeps."""
        calendar = self.engine.calendar
        for occasion in self.engine.definitions.occasions.values():
            for year in (self.today.year - 1, self.today.year):
                day = occasion.day(year, calendar)
                if day <= self.today <= day + OCCASION_GRACE:
                    self._occasion_report(conn, occasion, year, day, result)
                elif self.today < day:
                    self._occasion_reminder(conn, occasion, year, day, result)

    def _occasion_report(
        self, conn: Connection, occasion: OccasionPlan, year: int, day: dt.date,
        result: SweepResult,
    ) -> None:  # fmt: skip
        key = f"occasion:{occasion.id}:{year}"
        if not self._claim_occasion(conn, key, occasion.id, firings.OCCASION):
            return
        result.occasions.append(OccasionFired(occasion.id, year, day, "report",
                                              occasion.coordinator))  # fmt: skip
        payload = OccasionReached(occasion=occasion.id, year=year, as_of=day,
                                  language=occasion.language)  # fmt: skip
        self._occasion_event(conn, key, EventType.OCCASION_REACHED, payload, result)

    def _occasion_reminder(
        self, conn: Connection, occasion: OccasionPlan, year: int, day: dt.date,
        result: SweepResult,
    ) -> None:  # fmt: skip
        """The latest reminder whose day has come; earlier ones it supersedes never fire."""
        calendar = self.engine.calendar
        come = [o for o in occasion.remind if calendar.shift(day, o) <= self.today]
        if not come:
            return
        latest = max(come, key=lambda o: calendar.shift(day, o))
        keys = {o: f"occasion:{occasion.id}:{year}:remind:{o}" for o in come}
        if not self._claim_occasion(conn, keys[latest], occasion.id, firings.OCCASION_REMINDER):
            return
        for offset in come:
            if offset != latest:
                self._claim_occasion(conn, keys[offset], occasion.id, firings.OCCASION_REMINDER)
        result.occasions.append(OccasionFired(occasion.id, year, day, str(latest),
                                              occasion.coordinator))  # fmt: skip
        payload = OccasionReminderDue(occasion=occasion.id, year=year, day=day,
                                      offset=str(latest))  # fmt: skip
        self._occasion_event(conn, keys[latest], EventType.OCCASION_REMINDER_DUE, payload,
                             result)  # fmt: skip

    def _claim_occasion(self, conn: Connection, key: str, occasion: str, kind: str) -> bool:
        if self.dry_run:
            return not firings.already_fired(conn, [key])
        return firings.claim_occasion(conn, key, occasion=occasion, kind=kind, now=self.now,
                                      sweep=self.sweep)  # fmt: skip

    def _occasion_event(
        self, conn: Connection, key: str, type_: EventType, payload: Payload,
        result: SweepResult,
    ) -> None:  # fmt: skip
        if self.dry_run:
            return
        event = Event(type=type_, assignment=REGISTER, point=None, actor=SYSTEM,
                      occurred_at=self.now, payload=payload)  # fmt: skip
        ids = self.engine.log.append(conn, [event], now=self.now)
        firings.link_events(conn, [(key, ids[0])])
        result.event_ids.extend(ids)

    def _point_for(self, due: PlannedStart) -> PointPlan | None:
        assignment = self.engine.definitions.assignments.get(due.assignment)
        try:
            return assignment.point(due.number) if assignment is not None else None
        except KeyError:
            return None

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


def _prompted(events: tuple[Event, ...]) -> tuple[str, ...]:
    """The owners a start prompts: those of the steps it activated, each once, in order."""
    owners = [
        e.payload.owner
        for e in events
        if isinstance(e.payload, StepActivated) and e.payload.owner is not None
    ]
    return tuple(dict.fromkeys(owners))


def _opened(point: PointPlan, events: tuple[Event, ...]) -> list[Opened]:
    return [
        Opened(point.address, e.step or "", e.payload.owner or "", e.payload.due)
        for e in events
        if isinstance(e.payload, StepActivated)
    ]


#: Firings whose events carry their sweep: escalations (one digest per person and sweep)
#: and overdue notices (one digest per body and sweep).
_DIGESTED = (FiringKind.ESCALATION, FiringKind.OVERDUE)

#: PostgreSQL's deadlock_detected and serialization_failure: a command on the same point
#: took its locks in the other order (the point's row, then its steps).
_RACES = {"40P01", "40001"}


def _lost_race(exc: Exception) -> bool:
    """The savepoint lost to a concurrent command on the same point: retry on the next
    sweep (only the savepoint rolls back, the rest of the sweep commits)."""
    if isinstance(exc, sa.exc.IntegrityError | ConflictError):
        return True
    code = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return code in _RACES
