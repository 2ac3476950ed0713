"""What falls due when: reminders, the first overdue notice and escalation rungs.

Pure: given a step's plan, its state, the point and a calendar, :func:`schedule`
lists every firing of the step's current due date with the day it fires.
Each firing has a key (step, due date, kind, level): a new due date (an
extension, a resumed hold) is a new cycle, and within a cycle each firing
happens once (the store enforces the key). Held steps fire nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from workflow.core.calendar import Calendar
from workflow.core.events import DeadlineFired, FiringKind
from workflow.core.plan import MANAGER, Directory, PointPlan, StepPlan
from workflow.core.specs import DayKind, Duration
from workflow.core.state import PointState, StepState

#: Default reminders for a step that declares none, by its length in working days.
LONG_STEP = 20  # longer than this: reminders 10 and 2 working days ahead
SHORT_STEP = 5  # longer than this: a reminder a week (5 working days) ahead


@dataclass(frozen=True, slots=True)
class Firing:
    """One reminder, overdue notice or escalation of one step's due date."""

    assignment: str
    point: int
    step: str
    kind: FiringKind
    level: int
    fires_on: dt.date
    step_due: dt.date
    #: An escalation's target: a person id, or MANAGER (resolved when it fires).
    target: str | None = None

    @property
    def key(self) -> str:
        return (
            f"{self.assignment}/{self.point}/{self.step}:{self.step_due.isoformat()}:"
            f"{self.kind.value}:{self.level}"
        )


def default_reminders(activated: dt.date, due: dt.date, calendar: Calendar) -> tuple[Duration, ...]:
    """Well ahead for long steps, a week ahead for short ones, none for very short ones."""
    span = calendar.business_days_between(activated, due)
    if span > LONG_STEP:
        return (Duration(-10, DayKind.BUSINESS), Duration(-2, DayKind.BUSINESS))
    if span > SHORT_STEP:
        return (Duration(-5, DayKind.BUSINESS),)
    return ()


def schedule(
    point: PointPlan, plan: StepPlan, state: StepState, calendar: Calendar
) -> list[Firing]:
    """Every firing of the step's current due date, in the order they fire."""
    if not state.status.open or state.due is None or state.held_since is not None:
        return []
    due = state.due
    activated = calendar.day_of(state.activated_at) if state.activated_at else due

    def make(kind: FiringKind, level: int, fires_on: dt.date, target: str | None = None) -> Firing:
        return Firing(point.assignment, point.number, plan.id, kind, level, fires_on, due, target)

    offsets = (
        plan.remind if plan.remind is not None else default_reminders(activated, due, calendar)
    )
    # Levels follow the dates (offsets may mix business and calendar days).
    days = sorted({calendar.shift(due, offset) for offset in offsets})
    firings = [
        make(FiringKind.REMINDER, level, fires_on)
        for level, fires_on in enumerate(days, start=1)
        if activated <= fires_on <= due
    ]
    firings.append(make(FiringKind.OVERDUE, 0, calendar.add_business_days(due, 1)))
    firings += [
        make(FiringKind.ESCALATION, rung.level, calendar.shift(due, rung.after), rung.to)
        for rung in plan.escalate
    ]
    return sorted(firings, key=lambda f: (f.fires_on, f.kind != FiringKind.REMINDER, f.level))


def due_now(firings: list[Firing], today: dt.date) -> list[Firing]:
    """What fires by ``today``; of several reminders due at once, only the latest."""
    ready = [f for f in firings if f.fires_on <= today]
    reminders = [f for f in ready if f.kind is FiringKind.REMINDER]
    if len(reminders) > 1:
        latest = max(reminders, key=lambda f: (f.fires_on, f.level))
        ready = [f for f in ready if f.kind is not FiringKind.REMINDER or f is latest]
    if any(f.kind is not FiringKind.REMINDER for f in ready):
        # Past the due date a reminder says nothing the overdue notice does not.
        ready = [f for f in ready if f.kind is not FiringKind.REMINDER]
    return ready


def next_check(firings: list[Firing], after: dt.date | None = None) -> dt.date | None:
    """The first day anything fires (strictly after ``after``, when given)."""
    days = [f.fires_on for f in firings if after is None or f.fires_on > after]
    return min(days) if days else None


def point_schedule(point: PointPlan, state: PointState, calendar: Calendar) -> list[Firing]:
    return [
        firing
        for plan in point.steps
        for firing in schedule(point, plan, state.step(plan.id), calendar)
    ]


@dataclass(frozen=True)
class Recipient:
    """Who a firing goes to, and why (when it is not the obvious person)."""

    person: str
    via: str | None = None


def manager_rungs(plan: StepPlan, level: int) -> int:
    """How many `to: manager` rungs up to and including ``level`` (each climbs the chain)."""
    return sum(1 for rung in plan.escalate if rung.to == MANAGER and rung.level <= level)


def recipient(
    firing: Firing, owner: str, directory: Directory, coordinator: str, manager_rungs: int
) -> Recipient:
    """Resolve who gets a firing: the owner, or up the manager chain, or the coordinator.

    ``manager_rungs`` is how many ``to: manager`` rungs this one is (1 for the
    first): each climbs one level further up people.yaml's manager chain. A rung
    that climbs past the top goes to the coordinator, and says so.
    """
    if firing.kind is not FiringKind.ESCALATION:
        return Recipient(owner)
    if firing.target != MANAGER:
        assert firing.target is not None
        return Recipient(firing.target)
    current: str | None = owner
    for _ in range(manager_rungs):
        person = directory.people.get(current) if current else None
        current = person.manager if person else None
    if current is None:
        return Recipient(coordinator, via=f"{owner} has no manager at that level")
    return Recipient(current)


@dataclass(frozen=True)
class Fired:
    """One firing as it is resolved on the day it fires: to whom, on whose behalf."""

    firing: Firing
    owner: str
    to: str
    via: str | None
    days_overdue: int

    def payload(self, sweep: str | None = None) -> DeadlineFired:
        """The event's payload; ``sweep`` names the sweep transaction (for digests)."""
        f = self.firing
        return DeadlineFired(
            point=f"{f.assignment}/{f.point}", step=f.step, kind=f.kind, level=f.level,
            fires_on=f.fires_on, due=f.step_due, owner=self.owner, to=self.to, via=self.via,
            days_overdue=self.days_overdue, sweep=sweep,
        )  # fmt: skip

    def as_dict(self) -> dict[str, Any]:
        """What `check-deadlines --json` and `simulate --json` print for it."""
        return self.payload().model_dump(mode="json", exclude={"sweep"})


def resolve(
    firing: Firing,
    plan: StepPlan,
    state: StepState,
    directory: Directory,
    coordinator: str,
    today: dt.date,
    calendar: Calendar,
) -> Fired:
    """Who gets the firing today: owner, manager chain, target; a substitute if away."""
    who = recipient(firing, state.owner, directory, coordinator, manager_rungs(plan, firing.level))
    to, via = who.person, who.via
    substitute = directory.substitute_on(to, today)
    if substitute:
        via = f"substitute for {to}, who is away"
        to = substitute
    overdue = max(calendar.business_days_between(firing.step_due, today), 0)
    return Fired(firing, state.owner, to, via, overdue)
