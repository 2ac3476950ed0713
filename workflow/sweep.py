"""The deadline sweep: fire what falls due at ``now``, each firing exactly once.

A sweep reads only steps whose indexed ``next_check_at`` has come, so its cost
follows what is due, not what is open. For each, it computes the step's
firings (:mod:`workflow.deadlines`), records each new one under its unique key
in ``firings`` (a second sweep, at the same time or later, finds the key and
fires nothing), writes one event per firing with its outbox row, moves
``next_check_at`` to the next firing, and records one digest e-mail per person
escalated to in this sweep. On PostgreSQL concurrent sweeps skip each other's
rows (``FOR UPDATE SKIP LOCKED``); on SQLite they take turns at the write lock.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from workflow import deadlines, store
from workflow.calendar import Calendar
from workflow.deadlines import Firing, FiringKind
from workflow.events import Event, EventType
from workflow.loader import Definitions
from workflow.plan import MANAGER, PointPlan, StepPlan
from workflow.state import StepState, StepStatus

#: Steps one sweep transaction handles at most; a sweep loops until none are due.
BATCH = 1000
EVENT_OF = {
    FiringKind.REMINDER: EventType.STEP_REMINDER_DUE,
    FiringKind.OVERDUE: EventType.STEP_OVERDUE,
    FiringKind.ESCALATION: EventType.STEP_ESCALATED,
}


@dataclass(frozen=True)
class Fired:
    """One firing as the sweep resolved it (to whom, on whose behalf)."""

    firing: Firing
    owner: str
    to: str
    via: str | None
    days_overdue: int

    def as_dict(self) -> dict[str, Any]:
        f = self.firing
        return {
            "point": f"{f.assignment}/{f.point}",
            "step": f.step,
            "kind": f.kind.value,
            "level": f.level,
            "fires_on": f.fires_on.isoformat(),
            "due": f.step_due.isoformat(),
            "owner": self.owner,
            "to": self.to,
            "via": self.via,
            "days_overdue": self.days_overdue,
        }


@dataclass
class SweepResult:
    fired: list[Fired] = field(default_factory=list)
    event_ids: list[int] = field(default_factory=list)
    digests: list[int] = field(default_factory=list)
    steps_checked: int = 0


def _step_state(row: Any) -> StepState:
    return StepState(
        id=row.step,
        owner=row.owner,
        status=StepStatus(row.status),
        due=row.due,
        activated_at=store.aware(row.activated_at),
        held_since=store.aware(row.held_since),
    )


def _manager_rungs(plan: StepPlan, level: int) -> int:
    """How many `to: manager` rungs up to and including ``level`` (climbs the chain)."""
    return sum(1 for rung in plan.escalate if rung.to == MANAGER and rung.level <= level)


def resolve(
    firing: Firing,
    plan: StepPlan,
    state: StepState,
    definitions: Definitions,
    coordinator: str,
    today: dt.date,
    calendar: Calendar,
) -> Fired:
    """Who gets the firing today: owner, manager chain, target; a substitute if away."""
    who = deadlines.recipient(
        firing, state.owner, definitions.directory, coordinator,
        _manager_rungs(plan, firing.level),
    )  # fmt: skip
    to, via = who.person, who.via
    substitute = deadlines.away_substitute(definitions.directory, to, today)
    if substitute:
        via = f"substitute for {to}, who is away"
        to = substitute
    overdue = max(calendar.business_days_between(firing.step_due, today), 0)
    return Fired(firing, state.owner, to, via, overdue)


def _due_steps(conn: Connection, today: dt.date, limit: int | None) -> list[Any]:
    query = (
        sa.select(store.steps)
        .where(store.steps.c.next_check_at <= today)
        .order_by(store.steps.c.next_check_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(conn.execute(query))


def due_count(db: Engine, *, now: dt.datetime, tz: ZoneInfo) -> int:
    """How many steps a sweep at ``now`` would look at (for a progress bar; a snapshot)."""
    today = now.astimezone(tz).date()
    with db.connect() as conn:
        query = sa.select(sa.func.count()).where(store.steps.c.next_check_at <= today)
        return int(conn.execute(query).scalar_one())


def _claim_key(conn: Connection, firing: Firing, now: dt.datetime) -> bool:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    inserted = conn.execute(
        dialect.insert(store.firings)
        .values(
            key=firing.key, assignment=firing.assignment, point=firing.point, step=firing.step,
            kind=firing.kind.value, level=firing.level, fired_at=store.utc(now),
        )
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(store.firings.c.key)
    ).scalar_one_or_none()  # fmt: skip
    return inserted is not None


def already_fired(conn: Connection, keys: list[str]) -> set[str]:
    if not keys:
        return set()
    rows = conn.execute(sa.select(store.firings.c.key).where(store.firings.c.key.in_(keys)))
    return {row.key for row in rows}


def _plan_for(definitions: Definitions, row: Any) -> tuple[PointPlan, StepPlan] | None:
    assignment = definitions.assignments.get(row.assignment)
    if assignment is None:
        return None
    try:
        point = assignment.point(row.number)
        return point, point.step(row.step)
    except KeyError:
        return None


def sweep(
    db: Engine,
    definitions: Definitions,
    calendar: Calendar,
    *,
    now: dt.datetime,
    tz: ZoneInfo,
    dry_run: bool = False,
    limit: int | None = BATCH,
    on_step: Callable[[int], None] | None = None,
) -> SweepResult:
    """Fire everything due at ``now``; with ``dry_run``, only say what would fire.

    ``on_step(1)`` is called after each step is looked at, inside the sweep's one
    transaction (a progress bar): it must not touch the database.
    """
    today = now.astimezone(tz).date()
    result = SweepResult()
    with db.connect() if dry_run else db.begin() as conn:
        if not dry_run and conn.dialect.name == "sqlite":
            # Take SQLite's write lock before reading, as FOR UPDATE does on PostgreSQL:
            # otherwise a command committing between our read and our first write
            # (a hold, an extension) would be swept from a stale read.
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        rows = _due_steps(conn, today, limit)
        result.steps_checked = len(rows)
        for row in rows:
            _sweep_step(conn, row, definitions, calendar, now, today, dry_run, result)
            if on_step is not None:
                on_step(1)
        if dry_run:
            return result  # leaving connect() rolls back: nothing is written
        escalations = [f for f in result.fired if f.firing.kind is FiringKind.ESCALATION]
        if escalations:
            from workflow.notices import record_digests

            result.digests = record_digests(
                conn, definitions, escalations, today, first_event=result.event_ids[0], now=now
            )
    return result


def _sweep_step(
    conn: Connection,
    row: Any,
    definitions: Definitions,
    calendar: Calendar,
    now: dt.datetime,
    today: dt.date,
    dry_run: bool,
    result: SweepResult,
) -> None:
    found = _plan_for(definitions, row)
    key = (
        (store.steps.c.assignment == row.assignment)
        & (store.steps.c.number == row.number)
        & (store.steps.c.step == row.step)
    )
    if found is None:  # no longer defined: stop looking at it
        if not dry_run:
            conn.execute(store.steps.update().where(key).values(next_check_at=None))
        return
    point, plan = found
    state = _step_state(row)
    schedule = deadlines.schedule(point, plan, state, calendar)
    coordinator = definitions.assignment(point.assignment).coordinator
    ready = deadlines.due_now(schedule, today)
    if dry_run:
        done = already_fired(conn, [f.key for f in ready])
        ready = [f for f in ready if f.key not in done]
    else:
        ready = [f for f in ready if _claim_key(conn, f, now)]
        # Superseded reminders (several came due at once) are claimed too, so they never fire.
        for skipped in [f for f in schedule if f.fires_on <= today and f not in ready]:
            _claim_key(conn, skipped, now)
    fired = [resolve(f, plan, state, definitions, coordinator, today, calendar) for f in ready]
    result.fired.extend(fired)
    if dry_run:
        return
    events = [
        Event(
            type=EVENT_OF[item.firing.kind], assignment=point.assignment, point=point.number,
            step=plan.id, actor="council", occurred_at=now, data=item.as_dict(),
        )
        for item in fired
    ]  # fmt: skip
    ids = store.append_events(conn, events, now=now)
    for item, event_id in zip(fired, ids, strict=True):
        conn.execute(
            store.firings.update()
            .where(store.firings.c.key == item.firing.key)
            .values(event_id=event_id)
        )
    result.event_ids.extend(ids)
    # Only if the step is still as read: a command that committed meanwhile (an
    # extension, a hold) has set next_check_at for its new state, which must stand.
    unchanged = (
        (store.steps.c.status == row.status)
        & _same(store.steps.c.due, row.due)
        & _same(store.steps.c.held_since, row.held_since)
    )
    conn.execute(
        store.steps.update()
        .where(key & unchanged)
        .values(next_check_at=deadlines.next_check(schedule, today))
    )


def _same(column: Any, value: Any) -> Any:
    return column.is_(None) if value is None else column == value


def fired_keys_for(conn: Connection, assignment: str) -> set[str]:
    rows = conn.execute(
        sa.select(store.firings.c.key).where(store.firings.c.assignment == assignment)
    )
    return {row.key for row in rows}


def group_by_recipient(fired: list[Fired]) -> dict[str, list[Fired]]:
    grouped: dict[str, list[Fired]] = defaultdict(list)
    for item in fired:
        grouped[item.to].append(item)
    return dict(grouped)
