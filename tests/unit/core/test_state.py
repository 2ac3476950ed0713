"""State: derived categories and overdue flags, ``evolve`` per event, and replay properties."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from functools import reduce
from zoneinfo import ZoneInfo

import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workflow.core.actions import BeginStep, CompleteStep, StartPoint, WriteOff
from workflow.core.events import SCHEMA_VERSION, Event, EventType
from workflow.core.state import (
    Category,
    Note,
    Replayer,
    StepStatus,
    category,
    evolve,
    initial,
    is_overdue,
    overdue_steps,
    replay,
    without_notes,
)

STOCKHOLM = ZoneInfo("Europe/Stockholm")
AT = dt.datetime(2024, 6, 18, 14, 0, tzinfo=STOCKHOLM)

choices = st.lists(st.integers(min_value=0, max_value=10_000), max_size=30)


def event(type_, step=None, actor="coord", at=AT, **data):
    return Event(
        type=type_,
        assignment="hrv-2022",
        point=2,
        step=step,
        actor=actor,
        occurred_at=at,
        data=data,
    )


def with_status(state, step_id, status, **changes):
    return state.with_step(dataclasses.replace(state.step(step_id), status=status, **changes))


# --- statuses and the initial state --------------------------------------------------


@pytest.mark.parametrize(
    ("status", "finished", "is_open"),
    [
        (StepStatus.PENDING, False, False),
        (StepStatus.ACTIVE, False, True),
        (StepStatus.IN_PROGRESS, False, True),
        (StepStatus.DONE, True, False),
        (StepStatus.SKIPPED, True, False),
    ],
)
def test_step_status_finished_and_open(status, finished, is_open):
    """done/skipped are finished; active/in_progress are open; pending is neither."""
    assert status.finished is finished
    assert status.open is is_open


def test_initial_state_has_pending_steps_with_plan_owners(diamond_plan):
    """A point that has not started has every step pending, owned as planned, and no notes."""
    state = initial(diamond_plan)
    assert state.address == "hrv-2022/2"
    assert [(s.id, s.owner, s.status) for s in state.steps] == [
        ("a", "anna", StepStatus.PENDING),
        ("b", "bo", StepStatus.PENDING),
        ("c", "cilla", StepStatus.PENDING),
        ("d", "anna", StepStatus.PENDING),
    ]
    assert state.started_at is None
    assert state.notes == ()
    assert category(diamond_plan, state) is Category.TO_START


def test_step_lookup_and_replacement(diamond_plan):
    """step() finds a step by id (KeyError otherwise); with_step replaces only that step."""
    state = initial(diamond_plan)
    with pytest.raises(KeyError):
        state.step("nope")
    changed = with_status(state, "b", StepStatus.ACTIVE)
    assert changed.step("b").status is StepStatus.ACTIVE
    assert [s.id for s in changed.steps] == ["a", "b", "c", "d"]
    assert changed.steps[0] is state.steps[0]
    assert state.step("b").status is StepStatus.PENDING
    assert [s.id for s in changed.open_steps()] == ["b"]


def test_state_is_frozen(diamond_plan):
    """States cannot be edited in place; only evolve makes new ones."""
    state = initial(diamond_plan)
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.started_at = AT  # type: ignore[misc]


# --- category ----------------------------------------------------------------------


def _started(plan):
    return evolve(initial(plan), event(EventType.POINT_STARTED, start_date="2024-06-18"))


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, Category.TO_START),
        ({"a": StepStatus.ACTIVE}, Category.TO_START),
        ({"a": StepStatus.IN_PROGRESS}, Category.ONGOING),
        ({"a": StepStatus.DONE, "b": StepStatus.ACTIVE}, Category.ONGOING),
        ({"a": StepStatus.SKIPPED}, Category.ONGOING),
        ({s: StepStatus.DONE for s in "abcd"}, Category.COMPLETED),
        (
            {
                "a": StepStatus.DONE,
                "b": StepStatus.SKIPPED,
                "c": StepStatus.DONE,
                "d": StepStatus.SKIPPED,
            },
            Category.COMPLETED,
        ),
    ],
)
def test_category_of_a_started_point(diamond_plan, changes, expected):
    """to_start until a step begins or finishes, ongoing after, completed when all are finished."""
    state = _started(diamond_plan)
    for step_id, status in changes.items():
        state = with_status(state, step_id, status)
    assert category(diamond_plan, state) is expected


def test_category_written_off_wins_over_steps(diamond_plan):
    """A written-off point is written_off whatever its steps' states."""
    state = with_status(_started(diamond_plan), "a", StepStatus.IN_PROGRESS)
    state = evolve(state, event(EventType.POINT_WRITTEN_OFF, reason="Inaktuell."))
    assert category(diamond_plan, state) is Category.WRITTEN_OFF


def test_category_rejected(rejected_plan):
    """A rejected point is rejected, apart from the three report buckets."""
    assert category(rejected_plan, initial(rejected_plan)) is Category.REJECTED


def test_completed_needs_a_started_point(single_plan):
    """A step finished on a point never started does not make the point completed."""
    state = with_status(initial(single_plan), "only", StepStatus.SKIPPED)
    assert category(single_plan, state) is not Category.COMPLETED


# --- overdue -----------------------------------------------------------------------


def test_overdue_steps_are_open_and_past_due(diamond_plan):
    """Only open steps whose due date is before today are overdue; due today is not."""
    today = dt.date(2024, 6, 20)
    state = _started(diamond_plan)
    state = with_status(state, "a", StepStatus.DONE, due=dt.date(2024, 6, 1))
    state = with_status(state, "b", StepStatus.ACTIVE, due=dt.date(2024, 6, 19))
    state = with_status(state, "c", StepStatus.IN_PROGRESS, due=today)
    assert [s.id for s in overdue_steps(state, today)] == ["b"]
    state = with_status(state, "c", StepStatus.IN_PROGRESS, due=dt.date(2024, 6, 10))
    assert [s.id for s in overdue_steps(state, today)] == ["b", "c"]
    assert is_overdue(diamond_plan, state, today)
    assert not is_overdue(diamond_plan, state, dt.date(2024, 6, 10))


def test_point_past_its_own_due_is_overdue(due_plan):
    """A point whose own due date has passed is overdue, even before it starts."""
    state = initial(due_plan)
    assert not is_overdue(due_plan, state, dt.date(2024, 11, 30))
    assert is_overdue(due_plan, state, dt.date(2024, 12, 1))


def test_finished_points_are_never_overdue(due_plan, rejected_plan):
    """Completed, written-off and rejected points are not overdue, however late."""
    late = dt.date(2030, 1, 1)
    state = _started(due_plan)
    for step in due_plan.steps:
        state = with_status(state, step.id, StepStatus.DONE, due=dt.date(2024, 6, 1))
    assert category(due_plan, state) is Category.COMPLETED
    assert not is_overdue(due_plan, state, late)
    off = evolve(initial(due_plan), event(EventType.POINT_WRITTEN_OFF, reason="x"))
    assert not is_overdue(due_plan, off, late)
    assert not is_overdue(rejected_plan, initial(rejected_plan), late)


# --- evolve, one event type at a time ----------------------------------------------


def test_evolve_point_started(diamond_plan):
    """point.started records when the point started and its start date."""
    state = evolve(initial(diamond_plan), event(EventType.POINT_STARTED, start_date="2024-06-03"))
    assert state.started_at == AT
    assert state.start_date == dt.date(2024, 6, 3)


def test_evolve_step_activated(diamond_plan):
    """step.activated makes a step active with its due date, owner and activation time."""
    state = evolve(
        _started(diamond_plan),
        event(EventType.STEP_ACTIVATED, "b", owner="dan", due="2024-06-25"),
    )
    step = state.step("b")
    assert (step.status, step.owner, step.due, step.activated_at) == (
        StepStatus.ACTIVE,
        "dan",
        dt.date(2024, 6, 25),
        AT,
    )


def test_evolve_step_activated_without_owner_or_due_keeps_owner(diamond_plan):
    """step.activated without an owner keeps the current owner; without due the step has none."""
    state = with_status(_started(diamond_plan), "b", StepStatus.PENDING, due=dt.date(2024, 1, 1))
    state = evolve(state, event(EventType.STEP_ACTIVATED, "b"))
    assert state.step("b").owner == "bo"
    assert state.step("b").due is None


def test_evolve_step_begun(diamond_plan):
    """step.begun moves a step in progress and records when."""
    state = evolve(_started(diamond_plan), event(EventType.STEP_BEGUN, "a"))
    assert state.step("a").status is StepStatus.IN_PROGRESS
    assert state.step("a").begun_at == AT


@pytest.mark.parametrize(
    ("type_", "data", "status"),
    [
        (EventType.STEP_COMPLETED, {"note": "Klart."}, StepStatus.DONE),
        (EventType.STEP_SKIPPED, {"reason": "Klart."}, StepStatus.SKIPPED),
    ],
)
def test_evolve_step_finished_keeps_the_text_as_note(diamond_plan, type_, data, status):
    """step.completed / step.skipped finish the step and keep the note or reason as a note."""
    state = evolve(_started(diamond_plan), event(type_, "a", actor="anna", **data))
    assert state.step("a").status is status
    assert state.step("a").finished_at == AT
    assert state.notes == (Note(at=AT, actor="anna", text="Klart.", step="a"),)


def test_evolve_step_completed_without_note(diamond_plan):
    """step.completed without a note adds no note."""
    state = evolve(_started(diamond_plan), event(EventType.STEP_COMPLETED, "a"))
    assert state.notes == ()


def test_evolve_step_reopened(diamond_plan):
    """step.reopened reactivates the step, resets the deactivated ones and the completion."""
    state = _started(diamond_plan)
    state = with_status(state, "a", StepStatus.DONE, begun_at=AT, finished_at=AT)
    state = with_status(state, "b", StepStatus.ACTIVE, due=dt.date(2024, 7, 1), activated_at=AT)
    state = dataclasses.replace(state, completed_at=AT)
    later = AT + dt.timedelta(days=2)
    state = evolve(
        state,
        event(EventType.STEP_REOPENED, "a", at=later, due="2024-06-27", deactivated=["b"]),
    )
    a, b = state.step("a"), state.step("b")
    assert (a.status, a.due, a.activated_at, a.begun_at, a.finished_at) == (
        StepStatus.ACTIVE,
        dt.date(2024, 6, 27),
        later,
        None,
        None,
    )
    assert (b.status, b.due, b.activated_at) == (StepStatus.PENDING, None, None)
    assert state.completed_at is None


def test_evolve_step_reassigned(diamond_plan):
    """step.reassigned changes only the owner."""
    before = _started(diamond_plan)
    state = evolve(before, event(EventType.STEP_REASSIGNED, "c", **{"from": "cilla", "to": "dan"}))
    assert state.step("c").owner == "dan"
    assert state.step("c").status is before.step("c").status


def test_evolve_note_added(diamond_plan):
    """note.added appends a note to the point (or a step) and changes nothing else."""
    before = _started(diamond_plan)
    state = evolve(before, event(EventType.NOTE_ADDED, None, actor="bo", text="Möte bokat."))
    state = evolve(state, event(EventType.NOTE_ADDED, "b", actor="bo", text="Utkast."))
    assert state.notes == (
        Note(at=AT, actor="bo", text="Möte bokat.", step=None),
        Note(at=AT, actor="bo", text="Utkast.", step="b"),
    )
    assert state.steps == before.steps


def test_evolve_point_completed_and_written_off(diamond_plan):
    """point.completed and point.written_off record their times."""
    state = evolve(_started(diamond_plan), event(EventType.POINT_COMPLETED))
    assert state.completed_at == AT
    state = evolve(_started(diamond_plan), event(EventType.POINT_WRITTEN_OFF, reason="x"))
    assert state.written_off_at == AT


def test_replay_of_nothing_is_the_initial_state(diamond_plan):
    """Replaying no events gives the initial state."""
    assert replay(diamond_plan, []) == initial(diamond_plan)


# --- events ----------------------------------------------------------------------


def test_event_address_and_schema_version():
    """An event's address names the point, and the step when there is one; it is versioned."""
    assert event(EventType.STEP_BEGUN, "a").address == "hrv-2022/2/a"
    assert event(EventType.NOTE_ADDED, text="x").address == "hrv-2022/2"
    assert event(EventType.NOTE_ADDED, text="x").schema_version == SCHEMA_VERSION == 1


def test_events_are_immutable_and_strict():
    """Events are frozen and refuse unknown fields."""
    e = event(EventType.STEP_BEGUN, "a")
    with pytest.raises(pydantic.ValidationError):
        e.actor = "someone"  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        Event.model_validate({**e.model_dump(), "extra": 1})


def test_event_types_are_named_subject_verb():
    """The event types: the design's ten, hold/resume/extend, extension requests, deadline
    firings, effect.failed, report.requested, amendments (definition.amended,
    step.removed, step.rescheduled) and the register's occasions."""
    assert {t.value for t in EventType} == {
        "occasion.reminder_due",
        "occasion.reached",
        "effect.failed",
        "report.requested",
        "definition.amended",
        "step.removed",
        "step.rescheduled",
        "step.held",
        "step.resumed",
        "step.extended",
        "step.extension_requested",
        "step.reminder_due",
        "step.overdue",
        "step.escalated",
        "point.started",
        "step.activated",
        "step.begun",
        "step.completed",
        "step.skipped",
        "step.reopened",
        "step.reassigned",
        "note.added",
        "point.completed",
        "point.written_off",
    }


# --- replay properties -----------------------------------------------------------


def test_replay_of_a_scripted_history(run, diamond_plan):
    """Replaying the events of a scripted history gives exactly the state the machine returned."""
    transitions = []
    state = initial(diamond_plan)
    for command in (
        StartPoint(actor="coord"),
        CompleteStep(actor="anna", step="a"),
        BeginStep(actor="bo", step="b"),
        WriteOff(actor="coord", reason="Inaktuell."),
    ):
        transitions.append(run(diamond_plan, command, state=state))
        state = transitions[-1].state
    events = [e for t in transitions for e in t.events]
    assert replay(diamond_plan, events) == state


@settings(max_examples=100, deadline=None)
@given(plan_index=st.integers(min_value=0, max_value=4), picks=choices)
def test_each_transition_equals_folding_its_events(all_plans, walk, plan_index, picks):
    """For every transition, evolving the state before with its events gives its new state."""
    plan = all_plans[plan_index]
    for before, transition in walk(plan, picks):
        assert reduce(evolve, transition.events, before) == transition.state


@settings(max_examples=100, deadline=None)
@given(plan_index=st.integers(min_value=0, max_value=4), picks=choices)
def test_replay_from_the_start_gives_every_intermediate_state(
    all_plans, walk, replay_all, plan_index, picks
):
    """Replaying the events of the first k transitions gives the state after the k-th."""
    plan = all_plans[plan_index]
    history = walk(plan, picks)
    transitions = [t for _before, t in history]
    for k, transition in enumerate(transitions, start=1):
        assert replay_all(plan, transitions[:k]) == transition.state


@settings(max_examples=60, deadline=None)
@given(plan_index=st.integers(min_value=0, max_value=4), picks=choices)
def test_replay_of_stored_events_gives_the_same_state(all_plans, walk, plan_index, picks):
    """Events survive a JSON round trip (as stored) and still replay to the same state."""
    plan = all_plans[plan_index]
    history = walk(plan, picks)
    events = [e for _before, t in history for e in t.events]
    # As the store writes and reads them: the payload's JSON (defaults left out), read back
    # through data=; and the whole event through JSON too.
    stored = [
        Event(type=e.type, assignment=e.assignment, point=e.point, step=e.step, actor=e.actor,
              occurred_at=e.occurred_at, data=json.loads(json.dumps(e.data)))
        for e in events
    ]  # fmt: skip
    assert [Event.model_validate_json(e.model_dump_json()) for e in events] == events
    final = history[-1][1].state if history else initial(plan)
    assert replay(plan, stored) == final


@settings(max_examples=60, deadline=None)
@given(plan_index=st.integers(min_value=0, max_value=4), picks=choices)
def test_replay_is_folding_evolve_and_a_snapshot_folds_on(all_plans, walk, plan_index, picks):
    """``replay`` (which gathers the notes aside) is ``evolve`` folded from the initial state;
    folding the later events onto a snapshot taken anywhere (without its notes, as a point's
    row keeps it) gives the replay's state, with the later notes only."""
    plan = all_plans[plan_index]
    events = [e for _before, t in walk(plan, picks) for e in t.events]
    whole = replay(plan, events)
    assert whole == reduce(evolve, events, initial(plan))
    for k in range(len(events) + 1):
        before = replay(plan, events[:k])
        folded = reduce(evolve, events[k:], without_notes(before))
        assert without_notes(folded) == without_notes(whole)
        assert before.notes + folded.notes == whole.notes


@settings(max_examples=80, deadline=None)
@given(
    plan_index=st.integers(min_value=0, max_value=4),
    picks=choices,
    asks=st.lists(st.one_of(st.none(), st.integers(min_value=-1, max_value=40)), max_size=12),
)
def test_a_replayer_answers_what_a_replay_of_the_prefix_gives(
    all_plans, walk, plan_index, picks, asks
):
    """``Replayer.at(id)`` is the replay of the events up to that id, whatever the order
    it is asked in (ids with gaps, as a log of several points has them)."""
    plan = all_plans[plan_index]
    events = [e for _before, t in walk(plan, picks) for e in t.events]
    log = [(3 * i + 1, e) for i, e in enumerate(events)]
    replayer = Replayer(plan, log)
    for ask in [*asks, *sorted(a for a in asks if a is not None)]:
        upto = None if ask is None else ask * 3
        expected = replay(plan, [e for i, e in log if upto is None or i <= upto])
        assert replayer.at(upto) == expected
