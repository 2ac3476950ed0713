"""Assignments, points and steps: the projections the engine keeps beside the event log.

Every function takes the caller's :class:`~sqlalchemy.engine.Connection`, so
it joins the caller's transaction; nothing here commits.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from workflow.core.events import EventType
from workflow.core.state import Category, PointState, StepState, StepStatus
from workflow.store import fast
from workflow.store.tables import assignments, aware, events, points, steps, utc

#: The events after which a step's reply addresses are new.
OWNER_EVENTS = (
    EventType.STEP_ACTIVATED.value,
    EventType.STEP_REASSIGNED.value,
    EventType.STEP_REOPENED.value,
)


def owner_event(conn: Connection, assignment: str, point: int, step: str) -> int | None:
    """The id of the event that last gave a step its owner: activation, reassignment, reopening.

    Reply addresses are signed over it, so each of these expires the ones sent before.
    """
    found = conn.execute(
        sa.select(sa.func.max(events.c.id)).where(
            events.c.assignment == assignment,
            events.c.point == point,
            events.c.step == step,
            events.c.type.in_(OWNER_EVENTS),
        )
    ).scalar_one_or_none()
    return int(found) if found is not None else None


def get_assignment(conn: Connection, assignment_id: str) -> sa.Row[Any] | None:
    return conn.execute(
        sa.select(assignments).where(assignments.c.id == assignment_id)
    ).one_or_none()


_DIGEST = sa.select(assignments.c.digest).where(assignments.c.id == sa.bindparam("a"))


def assignment_digest(conn: Connection, assignment_id: str) -> str | None:
    """The digest of the definition an assignment runs on; None when it was never started."""
    if fast.usable(conn):
        return fast.assignment_digest(conn, assignment_id)
    found: str | None = conn.execute(_DIGEST, {"a": assignment_id}).scalar_one_or_none()
    return found


def all_assignments(conn: Connection) -> list[sa.Row[Any]]:
    return list(conn.execute(sa.select(assignments).order_by(assignments.c.id)))


def insert_assignment(
    conn: Connection,
    *,
    assignment_id: str,
    digest: str,
    structure: dict[str, Any],
    source: str,
    now: dt.datetime,
) -> None:
    conn.execute(
        assignments.insert().values(
            id=assignment_id,
            digest=digest,
            structure=structure,
            source=source,
            started_at=utc(now),
        )
    )


def update_assignment_definition(
    conn: Connection, assignment_id: str, *, digest: str, structure: dict[str, Any], source: str
) -> None:
    conn.execute(
        assignments.update()
        .where(assignments.c.id == assignment_id)
        .values(digest=digest, structure=structure, source=source)
    )


_VERSION = sa.select(points.c.version).where(
    points.c.assignment == sa.bindparam("a"), points.c.number == sa.bindparam("n")
)


def point_version(conn: Connection, assignment: str, number: int) -> int | None:
    """The point's version, or None when it has no row yet (never started)."""
    if fast.usable(conn):
        return fast.point_version(conn, assignment, number)
    found: int | None = conn.execute(_VERSION, {"a": assignment, "n": number}).scalar_one_or_none()
    return found


#: A point's row without its snapshot (which only the engine's commands read).
_POINT_COLUMNS = [c for c in points.c if c.name != "snapshot"]


def point_rows(conn: Connection, assignment: str | None = None) -> list[sa.Row[Any]]:
    query = sa.select(*_POINT_COLUMNS).order_by(points.c.assignment, points.c.number)
    if assignment is not None:
        query = query.where(points.c.assignment == assignment)
    return list(conn.execute(query))


def step_rows(conn: Connection, assignment: str | None = None) -> list[sa.Row[Any]]:
    query = sa.select(steps).order_by(steps.c.assignment, steps.c.number)
    if assignment is not None:
        query = query.where(steps.c.assignment == assignment)
    return list(conn.execute(query))


def step_state(row: Any) -> StepState:
    """A step's state as its projection row holds it (the one place a row becomes a state)."""
    return StepState(
        id=row.step,
        owner=row.owner,
        status=StepStatus(row.status),
        due=row.due,
        activated_at=aware(row.activated_at),
        begun_at=aware(row.begun_at),
        finished_at=aware(row.finished_at),
        held_since=aware(row.held_since),
    )


#: The layout of a snapshot; one written in another is not read (the point is replayed).
SNAPSHOT_FORMAT = 1


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A point's state as of its last event folded in, as its row keeps it."""

    #: The state without its notes (they are only in the event log).
    state: PointState
    #: Each step's ``next_check_at`` as the engine last computed it.
    checks: dict[str, dt.date | None]
    #: :func:`~workflow.core.state.replay_key` of the plan it was folded with.
    plan_key: str


@dataclass(frozen=True, slots=True)
class Head:
    """What a command reads of a point's row before it acts."""

    version: int
    #: None when the row has none, or one in another format (written before 0012, ...).
    snapshot: Snapshot | None
    last_event_id: int | None
    last_event_at: dt.datetime | None
    #: The point's last event in the log: when it is ``last_event_id``, nothing is to be
    #: folded in (the usual case, read in the same query).
    latest_event_id: int | None
    #: The digest of the definition its assignment runs on (read in the same query).
    digest: str | None = None


#: The point's last event id: one step into the events' (assignment, point, id) index.
_LATEST = (
    sa.select(events.c.id)
    .where(events.c.assignment == points.c.assignment, events.c.point == points.c.number)
    .order_by(events.c.id.desc())
    .limit(1)
    .scalar_subquery()
)
_HEAD = sa.select(
    points.c.version,
    points.c.snapshot,
    points.c.last_event_id,
    points.c.last_event_at,
    _LATEST.label("latest"),
    sa.select(assignments.c.digest)
    .where(assignments.c.id == points.c.assignment)
    .scalar_subquery()
    .label("digest"),
).where(points.c.assignment == sa.bindparam("a"), points.c.number == sa.bindparam("n"))


def point_head(conn: Connection, assignment: str, number: int) -> Head | None:
    """The point's version, snapshot and last event, and its assignment's digest; None when
    it has no row yet."""
    row: Any
    if fast.usable(conn):
        row = fast.point_head(conn, assignment, number)
        if row is None:
            return None
        snapshot = _read_snapshot(assignment, number, row.snapshot)
    else:
        row = conn.execute(_HEAD, {"a": assignment, "n": number}).one_or_none()
        if row is None:
            return None
        snapshot = decode_snapshot(assignment, number, row.snapshot)
    return Head(
        version=row.version,
        snapshot=snapshot,
        last_event_id=row.last_event_id,
        last_event_at=aware(row.last_event_at),
        latest_event_id=row.latest,
        digest=row.digest,
    )


#: The last snapshot this process wrote to each point's row, with its JSON text, as
#: :func:`decode_snapshot` would read it back: a command finding that text in the row takes
#: it instead of decoding it again (a pure function of the text and the point: whatever
#: the database, whichever transaction committed or not, the same text reads the same).
#: With it, each step's encoding (a step unchanged since keeps it).
_WRITTEN: dict[tuple[str, int], tuple[str, Snapshot, list[list[Any]]]] = {}
#: Past this many points (a few kB each), the cache starts anew.
_WRITTEN_MAX = 4_096


def _read_snapshot(assignment: str, number: int, text: str | None) -> Snapshot | None:
    """A snapshot from the row's JSON text (see :data:`_WRITTEN`)."""
    if text is None:
        return None
    known = _WRITTEN.get((assignment, number))
    if known is not None and known[0] == text:
        return known[1]
    return decode_snapshot(assignment, number, json.loads(text))


def _written(state: PointState, text: str, snapshot: Snapshot, steps: list[list[Any]]) -> None:
    """Remember the snapshot written as ``text``, as it will be read back."""
    if len(_WRITTEN) >= _WRITTEN_MAX:
        _WRITTEN.clear()
    _WRITTEN[(state.assignment, state.number)] = (text, as_read(snapshot), steps)


def _encoded_steps(state: PointState, previous: Snapshot | None) -> _Encoded | None:
    """The steps of ``previous`` and their encoding, when it is the snapshot this process
    wrote last for the point."""
    known = _WRITTEN.get((state.assignment, state.number))
    if previous is None or known is None or known[1] is not previous:
        return None
    return previous, known[2]


def as_read(snapshot: Snapshot) -> Snapshot:
    """The snapshot as :func:`decode_snapshot` reads back its encoding: times in UTC, no
    notes, a first check for each step (None unless given)."""
    state = snapshot.state
    steps = tuple(_step_as_read(s) for s in state.steps)
    read = PointState(
        assignment=state.assignment, number=state.number, steps=steps,
        started_at=_utc(state.started_at), start_date=state.start_date,
        completed_at=_utc(state.completed_at), written_off_at=_utc(state.written_off_at),
        written_off_reason=state.written_off_reason,
    )  # fmt: skip
    checks = {s.id: snapshot.checks.get(s.id) for s in steps}
    return Snapshot(state=read, checks=checks, plan_key=snapshot.plan_key)


def _step_as_read(s: StepState) -> StepState:
    """The step with its times in UTC (itself when they are)."""
    a, b, f, h = s.activated_at, s.begun_at, s.finished_at, s.held_since
    utc_ = dt.UTC
    if (
        (a is None or a.tzinfo is utc_) and (b is None or b.tzinfo is utc_)
        and (f is None or f.tzinfo is utc_) and (h is None or h.tzinfo is utc_)
    ):  # fmt: skip
        return s
    return StepState(
        id=s.id, owner=s.owner, status=s.status, due=s.due, activated_at=_utc(a),
        begun_at=_utc(b), finished_at=_utc(f), held_since=_utc(h),
    )  # fmt: skip


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    return value if value is None or value.tzinfo is dt.UTC else value.astimezone(dt.UTC)


def _stamp(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat() if value is not None else None


def _unstamp(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value is not None else None


def _day(value: str | None) -> dt.date | None:
    return dt.date.fromisoformat(value) if value is not None else None


#: A snapshot and its steps' encoding.
_Encoded = tuple[Snapshot, list[list[Any]]]


def encode_snapshot(snapshot: Snapshot, known: _Encoded | None = None) -> dict[str, Any]:
    """A snapshot as the row's JSON (times in UTC, as the log's are read back); a step
    ``known`` holds unchanged (the same object, the same first check) keeps its encoding."""
    state = snapshot.state
    checks = snapshot.checks
    if known is not None and len(known[0].state.steps) == len(state.steps):
        before, rows = known
        steps = [
            row if s is old and checks.get(s.id) == before.checks.get(s.id)
            else _encode_step(s, checks.get(s.id))
            for s, old, row in zip(state.steps, before.state.steps, rows, strict=True)
        ]  # fmt: skip
    else:
        steps = [_encode_step(s, checks.get(s.id)) for s in state.steps]
    return {
        "format": SNAPSHOT_FORMAT,
        "plan": snapshot.plan_key,
        "started_at": _stamp(state.started_at),
        "start_date": state.start_date.isoformat() if state.start_date else None,
        "completed_at": _stamp(state.completed_at),
        "written_off_at": _stamp(state.written_off_at),
        "written_off_reason": state.written_off_reason,
        "steps": steps,
    }


def _encode_step(s: StepState, check: dt.date | None) -> list[Any]:
    return [
        s.id, s.owner, s.status, s.due.isoformat() if s.due else None,  # a StrEnum: its value
        _stamp(s.activated_at), _stamp(s.begun_at), _stamp(s.finished_at), _stamp(s.held_since),
        check.isoformat() if check is not None else None,
    ]  # fmt: skip


def decode_snapshot(assignment: str, number: int, data: Any) -> Snapshot | None:
    """The row's JSON as a snapshot; None when there is none or it is in another format."""
    if not isinstance(data, dict) or data.get("format") != SNAPSHOT_FORMAT:
        return None
    steps = []
    checks: dict[str, dt.date | None] = {}
    for step_id, owner, status, due, activated, begun, finished, held, check in data["steps"]:
        steps.append(
            StepState(
                id=step_id, owner=owner, status=StepStatus(status), due=_day(due),
                activated_at=_unstamp(activated), begun_at=_unstamp(begun),
                finished_at=_unstamp(finished), held_since=_unstamp(held),
            )
        )  # fmt: skip
        checks[step_id] = _day(check)
    state = PointState(
        assignment=assignment,
        number=number,
        steps=tuple(steps),
        started_at=_unstamp(data["started_at"]),
        start_date=_day(data["start_date"]),
        completed_at=_unstamp(data["completed_at"]),
        written_off_at=_unstamp(data["written_off_at"]),
        written_off_reason=data["written_off_reason"],
    )
    return Snapshot(state=state, checks=checks, plan_key=data["plan"])


def save_point(
    conn: Connection,
    state: PointState,
    category: Category,
    *,
    expected_version: int | None,
    now: dt.datetime,
    next_checks: dict[str, dt.date | None] | None = None,
    snapshot: Snapshot | None = None,
    last_event: tuple[int | None, dt.datetime | None] = (None, None),
    previous: Snapshot | None = None,
) -> bool:
    """Write the point's projection if nobody changed it since ``expected_version``.

    With ``snapshot``, the row keeps it as of ``last_event`` (id and time), in the same
    statement as the version. With ``previous`` (the snapshot the command started from,
    which the step rows match), only the step rows that changed are written; without it,
    every step row is written anew. Returns False when the optimistic lock fails (the
    caller rolls back).
    """
    checks = next_checks or {}
    encoded = None
    if snapshot is not None:
        encoded = encode_snapshot(snapshot, _encoded_steps(state, previous))
    if fast.usable(conn):
        text = json.dumps(encoded)  # what Core's JSON type writes (None: ``null``)
        times = (state.started_at, state.completed_at, state.written_off_at, now)
        if expected_version is None:
            key = (state.assignment, state.number)
            fast.insert_point(conn, key, category.value, times, text, last_event)
        else:
            key3 = (state.assignment, state.number, expected_version)
            if not fast.update_point(conn, key3, category.value, times, text, last_event):
                return False
        if snapshot is not None and encoded is not None:
            _written(state, text, snapshot, encoded["steps"])
    elif not _save_point_row(conn, state, category, expected_version, now, encoded, last_event):
        return False
    if expected_version is None:  # a new row: no step rows yet (they reference it)
        _insert_steps(conn, state, checks)
    elif previous is None:
        _save_steps(conn, state, checks)
    else:
        _save_changed_steps(conn, state, checks, previous)
    return True


def _save_point_row(
    conn: Connection,
    state: PointState,
    category: Category,
    expected_version: int | None,
    now: dt.datetime,
    encoded: dict[str, Any] | None,
    last_event: tuple[int | None, dt.datetime | None],
) -> bool:
    """The point's row through Core; False when the optimistic lock fails."""
    values = {
        "category": category.value,
        "started_at": utc(state.started_at),
        "completed_at": utc(state.completed_at),
        "written_off_at": utc(state.written_off_at),
        "updated_at": utc(now),
        "snapshot": encoded,
        "last_event_id": last_event[0],
        "last_event_at": utc(last_event[1]),
    }
    if expected_version is None:
        conn.execute(
            points.insert().values(
                assignment=state.assignment, number=state.number, version=1, **values
            )
        )
        return True
    result = conn.execute(
        _UPDATE_POINT,
        {"a": state.assignment, "n": state.number, "expected": expected_version,
         "p_version": expected_version + 1, **{f"p_{k}": v for k, v in values.items()}},
    )  # fmt: skip
    return bool(result.rowcount == 1)


_UPDATE_POINT = (
    points.update()
    .where(
        points.c.assignment == sa.bindparam("a"),
        points.c.number == sa.bindparam("n"),
        points.c.version == sa.bindparam("expected"),
    )
    .values({name: sa.bindparam(f"p_{name}", type_=points.c[name].type) for name in (
        "version", "category", "started_at", "completed_at", "written_off_at", "updated_at",
        "snapshot", "last_event_id", "last_event_at",
    )})
)  # fmt: skip

_STEP_FIELDS = (
    "status", "owner", "due", "activated_at", "begun_at", "finished_at", "held_since",
    "next_check_at",
)  # fmt: skip

_UPDATE_STEP = (
    steps.update()
    .where(
        steps.c.assignment == sa.bindparam("a"),
        steps.c.number == sa.bindparam("n"),
        steps.c.step == sa.bindparam("s"),
    )
    .values({name: sa.bindparam(f"v_{name}", type_=steps.c[name].type) for name in _STEP_FIELDS})
)

_DELETE_STEP = steps.delete().where(
    steps.c.assignment == sa.bindparam("a"),
    steps.c.number == sa.bindparam("n"),
    steps.c.step == sa.bindparam("s"),
)


def _step_values(step: StepState, check: dt.date | None) -> dict[str, Any]:
    return {
        "status": step.status.value,
        "owner": step.owner,
        "due": step.due,
        "activated_at": utc(step.activated_at),
        "begun_at": utc(step.begun_at),
        "finished_at": utc(step.finished_at),
        "held_since": utc(step.held_since),
        "next_check_at": check,
    }


def _save_changed_steps(
    conn: Connection, state: PointState, checks: dict[str, dt.date | None], previous: Snapshot
) -> None:
    """Write only the step rows whose state or first check differs from ``previous``."""
    before = {s.id: s for s in previous.state.steps}
    key = {"a": state.assignment, "n": state.number}
    inserted, changed = [], []
    for step in state.steps:
        check = checks.get(step.id)
        old = before.pop(step.id, None)
        if old is None:
            inserted.append({"assignment": state.assignment, "number": state.number,
                             "step": step.id, **_step_values(step, check)})  # fmt: skip
        elif old != step or previous.checks.get(step.id) != check:
            changed.append((step, check, old, previous.checks.get(step.id)))
    if changed and fast.usable(conn):
        _update_changed_columns(conn, state, changed)
    elif changed:
        conn.execute(_UPDATE_STEP, [
            {**key, "s": s.id, **{f"v_{k}": v for k, v in _step_values(s, check).items()}}
            for s, check, _, _ in changed
        ])  # fmt: skip
    if before:
        conn.execute(_DELETE_STEP, [{**key, "s": gone} for gone in before])
    if inserted:
        conn.execute(steps.insert(), inserted)


def _update_changed_columns(
    conn: Connection,
    state: PointState,
    changed: list[tuple[StepState, dt.date | None, StepState, dt.date | None]],
) -> None:
    """The changed step rows on the fast path, setting only the columns that changed in
    any of them (an indexed column set unchanged still costs its index a page)."""
    rows: list[tuple[Any, ...]] = []
    differ: set[int] = set()
    for step, check, old, old_check in changed:
        new = _step_tuple(step, check)
        differ.update(i for i, (a, b) in enumerate(zip(new, _step_tuple(old, old_check),
                                                       strict=True)) if a != b)  # fmt: skip
        rows.append(new)
    columns = tuple(sorted(differ))
    fast.update_steps(conn, columns, [
        (*(new[i] for i in columns), state.assignment, state.number, step.id)
        for new, (step, _, _, _) in zip(rows, changed, strict=True)
    ])  # fmt: skip


def _step_tuple(s: StepState, check: dt.date | None) -> tuple[Any, ...]:
    """A step's values in :data:`~workflow.store.fast.STEP_COLUMNS`' order."""
    return (s.status.value, s.owner, s.due, s.activated_at, s.begun_at, s.finished_at,
            s.held_since, check)  # fmt: skip


def _save_steps(
    conn: Connection, state: PointState, next_checks: dict[str, dt.date | None]
) -> None:
    """Every step row anew."""
    key = (steps.c.assignment == state.assignment) & (steps.c.number == state.number)
    conn.execute(steps.delete().where(key))
    _insert_steps(conn, state, next_checks)


def _insert_steps(
    conn: Connection, state: PointState, next_checks: dict[str, dt.date | None]
) -> None:
    if not state.steps:
        return
    if fast.usable(conn):
        fast.insert_steps(conn, [
            (*_step_tuple(s, next_checks.get(s.id)), state.assignment, state.number, s.id)
            for s in state.steps
        ])  # fmt: skip
        return
    rows: Sequence[dict[str, Any]] = [
        {
            "assignment": state.assignment,
            "number": state.number,
            "step": s.id,
            "status": s.status.value,
            "owner": s.owner,
            "due": s.due,
            "activated_at": utc(s.activated_at),
            "begun_at": utc(s.begun_at),
            "finished_at": utc(s.finished_at),
            "held_since": utc(s.held_since),
            "next_check_at": next_checks.get(s.id),
        }
        for s in state.steps
    ]
    conn.execute(steps.insert(), list(rows))
