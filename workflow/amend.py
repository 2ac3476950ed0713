"""Amending a running assignment: the council changed its definition, and the work follows.

`council amend ASSIGNMENT` compares the definition on disk with the version in force
(recorded in ``definition_versions``), and in one transaction records the new version
(its file's text, digest and plan, and when it took effect), writes a
``definition.amended`` event of the whole assignment, and carries every running point
over with the machine's :class:`~workflow.core.actions.Amend` (what it does is the
points' own events: an added step after done work becomes active and is prompted, an
open step removed is closed with a reason, a moved date moves open steps, a changed
owner takes open steps; work done is never undone). Points added by the amendment are
started or planned as `council start` would. A dry run does all of it and rolls back.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import sqlalchemy as sa

from workflow import store
from workflow.core import drift
from workflow.core.actions import Amend, StartPoint
from workflow.core.events import (
    DefinitionAmended,
    Event,
    EventType,
    PointCompleted,
    StepActivated,
    StepReassigned,
    StepRemoved,
    StepRescheduled,
)
from workflow.core.plan import AssignmentPlan
from workflow.core.state import Category, replay
from workflow.core.versions import from_data
from workflow.engine import Engine, Outcome
from workflow.errors import ConflictError, DefinitionDrift, TransitionNotAllowed
from workflow.store import planned
from workflow.store import versions as store_versions


@dataclass
class AmendReport:
    """What an amendment did (or, in a dry run, would do)."""

    assignment: str
    #: The version it recorded; None when the definition had not changed.
    version: int | None = None
    #: What changed in the definition, one line each.
    changes: list[str] = field(default_factory=list)
    #: Per running point, what carrying it over did.
    points: dict[int, list[str]] = field(default_factory=dict)
    started: list[int] = field(default_factory=list)
    scheduled: dict[int, dt.date] = field(default_factory=dict)
    event_ids: list[int] = field(default_factory=list)


#: The categories of points an amendment carries over (others have nothing running).
_RUNNING = {Category.TO_START.value, Category.ONGOING.value, Category.COMPLETED.value}


class _DryRun(Exception):
    """Raised inside the transaction to roll a dry run back."""


def amend(
    engine: Engine,
    assignment_id: str,
    *,
    actor: str,
    now: dt.datetime,
    dry_run: bool = False,
    recorded_by: str | None = None,
) -> AmendReport:
    """Carry the assignment over to its definition on disk, in one transaction."""
    plan = engine.definitions.assignment(assignment_id)
    engine.require_authority(plan, actor, recorded_by, "amend")
    local = engine.local(now)
    report = AmendReport(plan.id)
    try:
        with engine.db.begin() as conn:
            _amend(engine, conn, plan, report, actor=actor, recorded_by=recorded_by, now=local)
            if dry_run:
                raise _DryRun
    except _DryRun:
        return report
    except sa.exc.IntegrityError:
        raise ConflictError(plan.id) from None
    engine.log.committed(report.event_ids)
    return report


def _amend(
    engine: Engine,
    conn: sa.Connection,
    plan: AssignmentPlan,
    report: AmendReport,
    *,
    actor: str,
    recorded_by: str | None,
    now: dt.datetime,
) -> None:
    row = store.get_assignment(conn, plan.id)
    if row is None:
        raise TransitionNotAllowed(
            command="amend", target=plan.id, state="not started", allowed=["start"],
            reason=f"run `council start {plan.id}`",
        )  # fmt: skip
    if row.digest == plan.digest:
        return
    found = store_versions.versions(conn, plan.id)
    if not found:
        raise DefinitionDrift(
            f"{plan.id} was started before council kept versions of definitions (0.3): "
            f"accept the change with `council start {plan.id} --accept-changes`, or amend "
            "after that (it records the version)"
        )
    previous = from_data(found[-1].plan)
    rows = {r.number: r.category for r in store.point_rows(conn, plan.id)}
    running = {n for n, category in rows.items() if category in _RUNNING}
    report.changes = [str(c) for c in _changes(previous, plan, running)]
    report.version = engine.record_version(conn, plan, now=now, actor=actor)
    store.update_assignment_definition(
        conn, plan.id, digest=plan.digest, structure=drift.structure(plan),
        source=engine.definitions.sources.get(plan.id, ""),
    )  # fmt: skip
    amended = Event(
        type=EventType.DEFINITION_AMENDED, assignment=plan.id, point=None, actor=actor,
        recorded_by=recorded_by, occurred_at=now,
        payload=DefinitionAmended(version=report.version, digest=plan.digest,
                                  changes=tuple(report.changes)),
    )  # fmt: skip
    report.event_ids.extend(engine.log.append(conn, [amended], now=now))
    reason = f"Uppdraget ändrat (version {report.version}) / Assignment amended"
    planned_days = planned.planned(conn, plan.id)
    for point in plan.points:
        if point.number not in rows:  # never started: added, planned, or left as it was
            _not_started(engine, conn, plan, point.number, report, actor, recorded_by, now,
                         previous, (plan.id, point.number) in planned_days)  # fmt: skip
            continue
        if point.number not in running:
            continue  # written off or completed long ago: nothing of it runs
        before_plan = previous.point(point.number)
        history = store.point_events(conn, plan.id, point.number)
        action = Amend(actor=actor, recorded_by=recorded_by, previous=before_plan,
                       before=replay(before_plan, history), reason=reason)  # fmt: skip
        outcome = engine.run_in(conn, point, action, now)
        report.points[point.number] = _described(outcome)
        report.event_ids.extend(outcome.event_ids)


def _changes(
    previous: AssignmentPlan, plan: AssignmentPlan, running: set[int]
) -> list[drift.Change]:
    """What changed, refusing what no amendment can carry over."""
    changes = drift.compare(drift.structure(previous), drift.structure(plan), running)
    refused = [c for c in changes if c.message == "removed or rejected" and c.point in running]
    if refused:
        numbers = ", ".join(str(c.point) for c in refused)
        raise DefinitionDrift(
            f"cannot amend {plan.id}: running point(s) {numbers} would be removed or decided "
            "against; write them off instead (`council write-off`), and keep them in the file"
        )
    return changes or [drift.OTHER_CHANGES]


def _not_started(
    engine: Engine,
    conn: sa.Connection,
    plan: AssignmentPlan,
    number: int,
    report: AmendReport,
    actor: str,
    recorded_by: str | None,
    now: dt.datetime,
    previous: AssignmentPlan,
    was_planned: bool,
) -> None:
    """A point that has not started. One the amendment adds starts now, or is planned, as
    `council start` would start it; a planned one whose start moved is planned for the new
    day; any other is left as it was (`council start` starts it)."""
    point = plan.point(number)
    before = next((p for p in previous.points if p.number == number), None)
    if point.rejected or (before is not None and not was_planned):
        return
    start_on = engine.calendar.start_on(point.start) if point.start else None
    if before is not None:  # planned before: follow its start
        if start_on is not None and before.start != point.start:
            report.scheduled[number] = start_on
            planned.plan_starts(conn, plan.id, {number: start_on}, now=now)
        return
    if start_on and start_on > now.date():
        report.scheduled[number] = start_on
        planned.plan_starts(conn, plan.id, {number: start_on}, now=now)
        return
    outcome = engine.run_in(conn, point, StartPoint(actor=actor, recorded_by=recorded_by), now)
    report.started.append(number)
    report.event_ids.extend(outcome.event_ids)


def _described(outcome: Outcome) -> list[str]:
    """What carrying a point over did, one line per event."""
    lines = []
    for event in outcome.events:
        match event.payload:
            case StepActivated(owner=owner, due=due):
                when = f", due {due}" if due else ""
                lines.append(f"step {event.step} becomes active ({owner} is prompted{when})")
            case StepRemoved(status=status):
                lines.append(f"step {event.step} removed (it was {status})")
            case StepRescheduled(due=due, previous=before):
                lines.append(f"step {event.step} now due {due} (was {before or 'no date'})")
            case StepReassigned(from_=before, to=after):
                lines.append(f"step {event.step} now owned by {after} (was {before})")
            case PointCompleted():
                lines.append("the point is completed")
    return lines or ["nothing changes for its steps"]
