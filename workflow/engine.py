"""The application service: one database transaction per command.

Each command reads a point's snapshot (its state as of its last event, kept in its row),
runs the pure machine with ``now``, and writes the new events, their outbox rows, the
point's projection and its new snapshot together.
If anything fails, nothing is written; if another command changed the point
in the meantime, the optimistic lock turns the loser into a ConflictError.

Every event it writes goes through its :class:`~workflow.eventlog.EventLog`, the one
path for events (the sweep's firings and a delivery that gave up use it too).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from workflow import store
from workflow.core import deadlines, drift, permissions, recurrence, versions
from workflow.core.actions import (
    SYSTEM,
    VERB,
    Action,
    OpenOccurrences,
    ReassignStep,
    StartPoint,
)
from workflow.core.calendar import Calendar
from workflow.core.events import (
    REGISTER,
    Event,
    EventType,
    OccasionReached,
    ReportRequested,
)
from workflow.core.machine import execute
from workflow.core.plan import AssignmentPlan, Definitions, PointPlan
from workflow.core.specs import Language
from workflow.core.state import (
    Category,
    PointState,
    StepState,
    StepStatus,
    category,
    duty_periods,
    duty_since,
    evolve,
    replay,
    replay_key,
    without_notes,
)
from workflow.errors import (
    ConflictError,
    DefinitionDrift,
    InvalidInput,
    NotFound,
    NotPermitted,
    TransitionNotAllowed,
    Unreachable,
)
from workflow.eventlog import EventLog
from workflow.store import migrate, planned
from workflow.store import versions as store_versions

#: The role whose holders may act on every assignment (``admin_role`` in the settings).
DEFAULT_ADMIN_ROLE = "council-admin"


@dataclass(frozen=True)
class Outcome:
    """What one command did."""

    point: PointPlan
    #: The state after it, without the notes (:meth:`Engine.point_state` replays them).
    state: PointState
    events: tuple[Event, ...]
    event_ids: tuple[int, ...]
    #: The state before it (without the notes).
    before: PointState


@dataclass(frozen=True, slots=True)
class _Current:
    """A point as a command finds it (see :meth:`Engine._current`)."""

    #: None when the point has no row yet.
    version: int | None
    #: Without the notes.
    state: PointState
    #: The plan's :func:`~workflow.core.state.replay_key`.
    key: str
    last_id: int | None
    last_at: dt.datetime | None
    #: The snapshot the step rows hold, when it was used: only changed rows are written.
    previous: store.Snapshot | None


@dataclass
class StartReport:
    """What ``start`` did to each point of an assignment."""

    assignment: str
    started: list[int] = field(default_factory=list)
    already: list[int] = field(default_factory=list)
    rejected: list[int] = field(default_factory=list)
    #: Points whose planned start is still ahead, by number.
    scheduled: dict[int, dt.date] = field(default_factory=dict)
    event_ids: list[int] = field(default_factory=list)
    accepted_changes: list[str] = field(default_factory=list)

    @property
    def changed_nothing(self) -> bool:
        return not self.started and not self.accepted_changes


class Engine:
    """Runs coordinators' and owners' commands against the store."""

    def __init__(
        self,
        *,
        db: sa.Engine,
        definitions: Definitions,
        calendar: Calendar,
        timezone: ZoneInfo,
        on_commit: Callable[[Sequence[int]], object] | None = None,
        admin_role: str = DEFAULT_ADMIN_ROLE,
        login: str | None = None,
        log: EventLog | None = None,
    ) -> None:
        self.db = db
        self.definitions = definitions
        self.calendar = calendar
        self.timezone = timezone
        #: People holding this role may act on every assignment (see core/permissions).
        self.admin_role = admin_role
        #: The one path for events (given, or one on ``db`` publishing with ``on_commit``).
        self.log = log or EventLog(db, on_commit, login=login)

    def authority(self, plan: AssignmentPlan) -> permissions.Authority:
        """Who may act on any point of the assignment besides its owners."""
        directory = self.definitions.directory
        return permissions.Authority(
            coordinator=plan.coordinator,
            administrators=frozenset(directory.holders(self.admin_role)),
            role=self.admin_role,
        )

    # --- transactions ------------------------------------------------------------

    def _local(self, now: dt.datetime) -> dt.datetime:
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        return now.astimezone(self.timezone)

    def today(self, now: dt.datetime) -> dt.date:
        """The day ``now`` falls on in the configured zone."""
        return self._local(now).date()

    def check_ready(self) -> None:
        """Raise a clear error unless the database is reachable and migrated."""
        try:
            migrate.require_current(self.db)
        except sa.exc.OperationalError as exc:
            raise Unreachable(f"cannot reach the database: {_first_line(exc)}") from None

    def _current(self, conn: Connection, plan: PointPlan, head: store.Head | None) -> _Current:
        """The point's state as a command finds it from its row (``head``, just read; None
        when it has none): its snapshot with the events after it folded in (usually none),
        or, when there is no snapshot it can trust, a replay of its whole log (the first
        command after 0012, after an amendment changed its steps, or a snapshot whose last
        event is not the point's)."""
        key = replay_key(plan)
        if head is not None and head.snapshot is not None and head.last_event_id is not None:
            after: list[tuple[int, Event]] | None = None
            if head.snapshot.plan_key != key:
                pass  # folded with another plan (an amendment changed the steps)
            elif head.latest_event_id == head.last_event_id:
                after = []  # nothing since: the usual case
            else:  # events written beside the commands since (the sweep's firings)
                after = store.point_events_after(
                    conn, plan.assignment, plan.number, head.last_event_id
                )
            if after is not None:
                state = head.snapshot.state
                for _, event in after:
                    state = without_notes(evolve(state, event))
                last_id: int | None = head.last_event_id
                last_at: dt.datetime | None = head.last_event_at
                if after:
                    last_id, last_at = after[-1][0], after[-1][1].occurred_at
                return _Current(head.version, state, key, last_id, last_at, head.snapshot)
        history = store.list_events(conn, assignment=plan.assignment, point=plan.number,
                                    probe=head is None)  # fmt: skip
        state = without_notes(replay(plan, [e for _, e in history]))
        if not history:
            return _Current(head.version if head else None, state, key, None, None, None)
        last_id, last_at = history[-1][0], history[-1][1].occurred_at
        return _Current(head.version if head else None, state, key, last_id, last_at, None)

    def _run(
        self,
        conn: Connection,
        plan: PointPlan,
        action: Action,
        now: dt.datetime,
        head: store.Head | None,
        judged: PointState | None = None,
    ) -> Outcome:
        """Run one action on the point whose row (``head``) was just read; who may take it
        is judged on ``judged`` (the state when a batch began), else on the state it finds."""
        found = self._current(conn, plan, head)
        if found.last_at is not None and now < found.last_at:
            latest = found.last_at.astimezone(now.tzinfo)
            raise InvalidInput(
                f"{plan.address} already has events at {latest:%Y-%m-%d %H:%M}; "
                "a command cannot happen before them (check --now)"
            )
        state = found.state
        permissions.check(
            plan, judged or state, action, authority=self.authority(self.definitions.assignment(
                plan.assignment)), directory=self.definitions.directory, day=now.date(),
            verb=VERB.get(type(action), "change"),
        )  # fmt: skip
        transition = execute(plan, state, action, now=now, calendar=self.calendar)
        ids = self.log.append(conn, transition.events, now=now)
        new = without_notes(transition.state)
        checks = self.next_checks(plan, new)
        last = (found.last_id, found.last_at)
        if ids:
            last = (ids[-1], transition.events[-1].occurred_at)
        saved = store.save_point(
            conn,
            new,
            category(plan, new),
            expected_version=found.version,
            now=now,
            next_checks=checks,
            snapshot=store.Snapshot(state=new, checks=checks, plan_key=found.key),
            last_event=last,
            previous=found.previous,
        )
        if not saved:
            raise ConflictError(plan.address)
        return Outcome(plan, new, transition.events, tuple(ids), state)

    def run_in(
        self, conn: Connection, plan: PointPlan, action: Action, now: dt.datetime
    ) -> Outcome:
        """Run one action in the caller's transaction (an amendment's); the events are the
        caller's to publish once it commits."""
        return self._run(conn, plan, action, self._local(now), _head(conn, plan))

    def local(self, now: dt.datetime) -> dt.datetime:
        """``now`` in the configured zone (it must be aware)."""
        return self._local(now)

    def require_authority(
        self, plan: AssignmentPlan, actor: str, recorded_by: str | None, verb: str
    ) -> None:
        """Refuse unless the actor (and whoever records for them) is the coordinator or an
        administrator."""
        self._require_authority(plan, actor, recorded_by, verb)

    def next_checks(self, plan: PointPlan, state: PointState) -> dict[str, dt.date | None]:
        """When the sweep must first look at each step (the earliest firing, due or not); for
        a recurring duty, the day its next occurrence opens."""
        checks: dict[str, dt.date | None] = {}
        for step in state.steps:
            step_plan = plan.step(step.id)
            if step_plan.repeat is None:
                schedule = deadlines.schedule(plan, step_plan, step, self.calendar)
                checks[step.id] = deadlines.next_check(schedule)
                continue
            since = duty_since(state, step.id, self.calendar)
            if since is None or step.status is not StepStatus.RECURRING:
                checks[step.id] = None
            else:
                checks[step.id] = recurrence.next_opening(
                    step_plan.repeat, since, duty_periods(state, step.id), self.calendar
                )
        return checks

    def open_occurrences(
        self, conn: Connection, plan: PointPlan, duty: str, *, now: dt.datetime
    ) -> Outcome | None:
        """Open a duty's occurrences whose day has come, in the caller's transaction (the
        sweep's); None while the assignment's definition changed and is not accepted."""
        digest = store.assignment_digest(conn, plan.assignment)
        if digest is None or digest != self.definitions.assignment(plan.assignment).digest:
            return None
        action = OpenOccurrences(actor=SYSTEM, step=duty)
        return self._run(conn, plan, action, self._local(now), _head(conn, plan))

    def _require_authority(
        self, plan: AssignmentPlan, actor: str, recorded_by: str | None, verb: str
    ) -> None:
        """What only the coordinator or an administrator may do to an assignment."""
        authority = self.authority(plan)
        for person in {actor, recorded_by} - {None}:
            assert person is not None
            if not authority.covers(person):
                raise NotPermitted(person=person, verb=verb, target=plan.id,
                                   who=permissions.authority_words(authority))  # fmt: skip

    def _require_same_definition(
        self, conn: Connection, plan: AssignmentPlan, digest: str | None = None
    ) -> None:
        """Refuse unless the assignment was started from this definition (``digest``: the
        stored one, when the caller has read it)."""
        if digest is None:
            digest = store.assignment_digest(conn, plan.id)
        if digest is None:
            raise TransitionNotAllowed(
                command="change",
                target=plan.id,
                state="not started",
                allowed=["start"],
                reason=f"run `council start {plan.id}`",
            )
        if digest != plan.digest:
            raise DefinitionDrift(
                f"the definition of {plan.id} changed after it was started; see "
                f"`council amend {plan.id} --dry-run`, then `council amend {plan.id}`"
            )

    # --- commands ----------------------------------------------------------------

    def act(self, plan: PointPlan, action: Action, *, now: dt.datetime) -> Outcome:
        """Run one action on one running point, in one transaction."""
        return self.run(plan, [action], now=now)[-1]

    def run(
        self,
        plan: PointPlan,
        actions: Sequence[Action],
        *,
        now: dt.datetime,
        also: Callable[[Connection, list[Outcome]], object] | None = None,
    ) -> list[Outcome]:
        """Run several actions on one point in one transaction: all of them or none.

        ``also`` writes what must commit with them (a reply's record, its answer).
        """
        local = self._local(now)
        for action in actions:
            if (
                isinstance(action, ReassignStep)
                and action.to not in self.definitions.directory.people
            ):
                raise NotFound("person", action.to)
        assignment = self.definitions.assignment(plan.assignment)
        try:
            with self.db.begin() as conn:
                # The point's row, with its assignment's digest: checked, then acted on.
                head = _head(conn, plan)
                self._require_same_definition(conn, assignment, head.digest if head else None)
                outcomes: list[Outcome] = []
                for action in actions:  # a batch is judged as of its start (a reply's)
                    judged = outcomes[0].before if outcomes else None
                    if outcomes:
                        head = _head(conn, plan)  # as the last action left it
                    outcomes.append(self._run(conn, plan, action, local, head, judged))
                if also is not None:
                    also(conn, outcomes)
        except sa.exc.IntegrityError:
            raise ConflictError(plan.address) from None
        self.log.committed([i for outcome in outcomes for i in outcome.event_ids])
        return outcomes

    def request_report(
        self, assignment_id: str, *, as_of: dt.date, language: Language, actor: str,
        now: dt.datetime,
    ) -> int:  # fmt: skip
        """Ask the workers to mail the report as of a date to the coordinator (an event).

        For the coordinator, administrators and ``council`` (a command run without an actor).
        """
        plan = self.definitions.assignment(assignment_id)
        self._require_authority(plan, actor, None, "mail the report of")
        event = Event(
            type=EventType.REPORT_REQUESTED, assignment=plan.id, point=None, actor=actor,
            occurred_at=self._local(now), payload=ReportRequested(as_of=as_of, language=language),
        )  # fmt: skip
        with self.db.begin() as conn:
            (event_id,) = self.log.append(conn, [event], now=now)
        self.log.committed([event_id])
        return event_id

    def request_occasion_report(
        self, occasion_id: str, *, year: int, as_of: dt.date, language: Language, actor: str,
        now: dt.datetime,
    ) -> int:  # fmt: skip
        """Ask the workers to mail an occasion's report now (``council report --occasion X
        --send``): for its coordinator and administrators. Mailed once per date and language,
        whoever asks and however often (the sweep asks on the day)."""
        occasion = self.definitions.occasions[occasion_id]
        authority = permissions.Authority(
            coordinator=occasion.coordinator,
            administrators=frozenset(self.definitions.directory.holders(self.admin_role)),
            role=self.admin_role,
        )
        if not authority.covers(actor):
            raise NotPermitted(person=actor, verb="mail the report of", target=occasion_id,
                               who=permissions.authority_words(authority))  # fmt: skip
        event = Event(
            type=EventType.OCCASION_REACHED, assignment=REGISTER, point=None, actor=actor,
            occurred_at=self._local(now),
            payload=OccasionReached(occasion=occasion_id, year=year, as_of=as_of,
                                    language=language),
        )  # fmt: skip
        with self.db.begin() as conn:
            (event_id,) = self.log.append(conn, [event], now=now)
        self.log.committed([event_id])
        return event_id

    def start(
        self,
        assignment_id: str,
        *,
        actor: str,
        now: dt.datetime,
        only: int | None = None,
        accept_changes: bool = False,
        recorded_by: str | None = None,
    ) -> StartReport:
        """Start an assignment's points; starting twice changes nothing.

        Without ``only``, points whose planned ``start:`` is still ahead wait for
        it; naming a point starts it now whatever its planned start. Starting, and
        accepting a changed definition, are for the coordinator and administrators.
        """
        plan = self.definitions.assignment(assignment_id)
        local = self._local(now)
        verb = "accept changes to" if accept_changes else "start"
        self._require_authority(plan, actor, recorded_by, verb)
        points = [plan.point(only)] if only is not None else list(plan.points)
        report = StartReport(plan.id)
        try:
            with self.db.begin() as conn:
                self._record_definition(conn, plan, report, accept_changes, local, actor)
                for point in points:
                    start_on = self.calendar.start_on(point.start) if point.start else None
                    head = None if point.rejected else _head(conn, point)
                    if point.rejected:
                        report.rejected.append(point.number)
                    elif head is not None:
                        report.already.append(point.number)
                    elif only is None and start_on and start_on > local.date():
                        report.scheduled[point.number] = start_on
                    else:
                        started = StartPoint(actor=actor, recorded_by=recorded_by)
                        outcome = self._run(conn, point, started, local, head)
                        planned.unplan(conn, plan.id, point.number)
                        report.started.append(point.number)
                        report.event_ids.extend(outcome.event_ids)
                planned.plan_starts(conn, plan.id, report.scheduled, now=local)
        except sa.exc.IntegrityError:
            raise ConflictError(plan.id) from None
        self.log.committed(report.event_ids)
        return report

    def start_planned(
        self, conn: Connection, due: planned.PlannedStart, *, now: dt.datetime
    ) -> Outcome | None:
        """Start a point whose planned day has come, in the caller's transaction (the sweep's).

        Returns None, and leaves the point planned, while its assignment's definition
        has changed and the change is not accepted; a point no longer defined, or
        started meanwhile, is no longer planned. The events are the caller's to publish.
        """
        plan = self.definitions.assignments.get(due.assignment)
        try:
            point = plan.point(due.number) if plan is not None else None
        except KeyError:
            point = None
        row = store.get_assignment(conn, due.assignment)
        if point is None or point.rejected or row is None:
            planned.unplan(conn, due.assignment, due.number)
            return None
        assert plan is not None
        if row.digest != plan.digest:
            return None
        head = _head(conn, point)
        if head is not None:
            planned.unplan(conn, due.assignment, due.number)
            return None
        outcome = self._run(conn, point, StartPoint(actor=SYSTEM), self._local(now), head)
        planned.unplan(conn, due.assignment, due.number)
        return outcome

    def planned_starts(self, assignment: str | None = None) -> dict[tuple[str, int], dt.date]:
        """Each point the sweep will start, and on which day."""
        with self.db.connect() as conn:
            return planned.planned(conn, assignment)

    def _record_definition(
        self,
        conn: Connection,
        plan: AssignmentPlan,
        report: StartReport,
        accept: bool,
        now: dt.datetime,
        actor: str,
    ) -> None:
        digest = store.assignment_digest(conn, plan.id)
        if digest == plan.digest and store_versions.has_versions(conn, plan.id):
            return  # started from this definition (the usual case): nothing to record
        row = store.get_assignment(conn, plan.id)
        source = self.definitions.sources.get(plan.id, "")
        new_structure = drift.structure(plan)
        if row is None:
            store.insert_assignment(
                conn,
                assignment_id=plan.id,
                digest=plan.digest,
                structure=new_structure,
                source=source,
                now=now,
            )
            self.record_version(conn, plan, now=now, actor=actor)
            return
        if row.digest == plan.digest:  # started before 0.3 kept versions: record this one
            self.record_version(conn, plan, now=store.aware(row.started_at) or now,
                                actor=actor)  # fmt: skip
            return
        changes = self.drift(conn, plan)
        if not accept:
            listed = "; ".join(str(c) for c in changes)
            raise DefinitionDrift(
                f"{plan.id} was started from another version of its definition ({listed}); "
                "use --accept-changes to go on with the new one"
            )
        breaking = [str(c) for c in changes if c.breaking]
        if breaking:
            raise DefinitionDrift(
                f"cannot accept the new definition of {plan.id}: it would break running points "
                f"({'; '.join(breaking)}); `council amend {plan.id}` carries them over"
            )
        store.update_assignment_definition(
            conn, plan.id, digest=plan.digest, structure=new_structure, source=source
        )
        self.record_version(conn, plan, now=now, actor=actor)
        report.accepted_changes = [str(c) for c in changes]

    def record_version(
        self, conn: Connection, plan: AssignmentPlan, *, now: dt.datetime, actor: str
    ) -> int:
        """Record the definition now in force (its file's text, digest and plan)."""
        source = self.definitions.sources.get(plan.id, "")
        try:
            text = Path(source).read_text(encoding="utf-8") if source else ""
        except OSError:
            text = ""
        return store_versions.record(
            conn, plan.id, digest=plan.digest, plan=versions.to_data(plan), text=text,
            source=source, now=now, accepted_by=actor,
        )  # fmt: skip

    def plan_in_force(
        self, conn: Connection, assignment_id: str, before: dt.datetime
    ) -> AssignmentPlan:
        """The assignment's plan as it was in force just before ``before`` (the current one
        when no other version was recorded)."""
        current = self.definitions.assignment(assignment_id)
        return store_versions.plan_in_force(conn, current, before)

    def drift(self, conn: Connection, plan: AssignmentPlan) -> list[drift.Change]:
        """How the current definition differs from the one the assignment started with."""
        row = store.get_assignment(conn, plan.id)
        if row is None or row.digest == plan.digest:
            return []
        running = {r.number for r in store.point_rows(conn, plan.id) if r.category in _RUNNING}
        changes = drift.compare(row.structure, drift.structure(plan), running)
        return changes or [drift.OTHER_CHANGES]

    # --- queries -----------------------------------------------------------------

    def point_state(
        self, plan: PointPlan, *, until: dt.datetime | None = None
    ) -> tuple[PointState, list[tuple[int, Event]]]:
        """A point's full state (replayed from its events) and its history."""
        with self.db.connect() as conn:
            history = store.list_events(conn, assignment=plan.assignment, point=plan.number)
        if until is not None:
            history = [(i, e) for i, e in history if e.occurred_at <= until]
        return replay(plan, [e for _, e in history]), history

    def started_assignments(self) -> list[str]:
        with self.db.connect() as conn:
            return [row.id for row in store.all_assignments(conn)]

    def snapshot(self, assignment_id: str | None = None) -> dict[tuple[str, int], PointState]:
        """Every started point's state from the projections (no notes), by (assignment, number)."""
        with self.db.connect() as conn:
            point_rows = store.point_rows(conn, assignment_id)
            step_rows = store.step_rows(conn, assignment_id)
        by_point: dict[tuple[str, int], list[StepState]] = defaultdict(list)
        for row in step_rows:
            by_point[(row.assignment, row.number)].append(store.step_state(row))
        return {
            (row.assignment, row.number): PointState(
                assignment=row.assignment,
                number=row.number,
                steps=tuple(by_point[(row.assignment, row.number)]),
                started_at=store.aware(row.started_at),
                completed_at=store.aware(row.completed_at),
                written_off_at=store.aware(row.written_off_at),
            )
            for row in point_rows
        }

    def events(
        self,
        *,
        assignment: str | None = None,
        point: int | None = None,
        since: int = 0,
        limit: int | None = None,
    ) -> Sequence[tuple[int, Event]]:
        with self.db.connect() as conn:
            return store.list_events(
                conn, assignment=assignment, point=point, since=since, limit=limit
            )


_RUNNING = {Category.TO_START.value, Category.ONGOING.value}


def _head(conn: Connection, plan: PointPlan) -> store.Head | None:
    """The point's row as a command reads it first (None: it has none, never started)."""
    return store.point_head(conn, plan.assignment, plan.number)


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
