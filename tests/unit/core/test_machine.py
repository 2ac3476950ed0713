"""The pure machine: every command, every rule, and properties over random command walks."""

from __future__ import annotations

import dataclasses
import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workflow.core.actions import (
    ALLOWED,
    AddNote,
    BeginStep,
    CompleteStep,
    ReassignStep,
    ReopenStep,
    SkipStep,
    StartPoint,
    WriteOff,
)
from workflow.core.calendar import Calendar, DuePolicy
from workflow.core.events import EventType
from workflow.core.machine import allowed_actions, execute
from workflow.core.state import (
    Category,
    StepStatus,
    category,
    initial,
    is_overdue,
    lifecycle,
    skip_reasons,
)
from workflow.errors import InvalidInput, NotFound, PersonalDataRefused, TransitionNotAllowed

STOCKHOLM = ZoneInfo("Europe/Stockholm")
PERSONNUMMER = "19121212-1212"
STEP_VERBS = ("begin", "complete", "skip", "reopen", "assign", "hold", "resume", "extend")

choices = st.lists(st.integers(min_value=0, max_value=10_000), max_size=30)


def types(transition):
    """The event types of a transition, in order, with their steps."""
    return [(e.type, e.step) for e in transition.events]


def statuses(state):
    return {s.id: s.status for s in state.steps}


# --- start -----------------------------------------------------------------------


def test_start_activates_the_root_step_only(run, linear_plan, now):
    """Starting a linear point emits point.started then step.activated for its first step."""
    t = run(linear_plan, StartPoint(actor="coord"))
    assert types(t) == [(EventType.POINT_STARTED, None), (EventType.STEP_ACTIVATED, "draft")]
    assert statuses(t.state) == {
        "draft": StepStatus.ACTIVE,
        "review": StepStatus.PENDING,
        "publish": StepStatus.PENDING,
    }
    assert t.state.started_at == now
    assert t.state.step("draft").activated_at == now


def test_start_date_defaults_to_today_in_nows_timezone(run, linear_plan, now):
    """A point without a declared start starts on the date of ``now``."""
    t = run(linear_plan, StartPoint(actor="coord"))
    assert t.state.start_date == now.date()
    assert t.events[0].data == {"start_date": "2024-06-17"}


def test_start_date_is_the_declared_start(run, due_plan, now):
    """A point with ``start:`` keeps the declared date, though it started at ``now``."""
    t = run(due_plan, StartPoint(actor="coord"))
    assert t.state.start_date == dt.date(2024, 6, 3)
    assert t.state.started_at == now


def test_start_activates_every_step_without_after(run, due_plan):
    """Every step with no ``after:`` becomes active when the point starts."""
    t = run(due_plan, StartPoint(actor="coord"))
    activated = [e.step for e in t.events if e.type is EventType.STEP_ACTIVATED]
    assert activated == [s.id for s in due_plan.steps]
    assert all(s.status is StepStatus.ACTIVE for s in t.state.steps)


def test_events_carry_who_when_and_what(run, diamond_plan, now):
    """Every event names the assignment, point, step, actor and time, and its facts."""
    t = run(diamond_plan, StartPoint(actor="coord"))
    for event in t.events:
        assert event.assignment == "hrv-2022"
        assert event.point == 2
        assert event.actor == "coord"
        assert event.occurred_at == now
    activated = t.events[1]
    assert activated.step == "a"
    assert activated.address == "hrv-2022/2/a"
    assert activated.data == {"owner": "anna"}


def test_started_point_is_to_start_until_a_step_begins(run, linear_plan):
    """A started point whose steps are only active is still in the to_start category."""
    t = run(linear_plan, StartPoint(actor="coord"))
    assert category(linear_plan, t.state) is Category.TO_START


def test_start_twice_is_refused(run, linear_plan):
    """A point starts once; starting it again raises TransitionNotAllowed."""
    started = run(linear_plan, StartPoint(actor="coord")).state
    with pytest.raises(TransitionNotAllowed) as info:
        run(linear_plan, StartPoint(actor="coord"), state=started)
    assert info.value.command == "start"
    assert info.value.target == "hrv-2022/1"
    assert info.value.state == "started"
    assert info.value.allowed == ()


def test_start_rejected_point_is_refused(run, rejected_plan):
    """A point the council rejected can never start."""
    with pytest.raises(TransitionNotAllowed) as info:
        run(rejected_plan, StartPoint(actor="coord"))
    assert info.value.state == "rejected"
    assert info.value.allowed == ()


def test_start_written_off_point_is_refused(run, linear_plan):
    """A point written off before it started cannot start afterwards."""
    off = run(linear_plan, WriteOff(actor="coord", reason="Inaktuell.")).state
    with pytest.raises(TransitionNotAllowed) as info:
        run(linear_plan, StartPoint(actor="coord"), state=off)
    assert info.value.state == "written_off"


def test_naive_now_is_refused(linear_plan, calendar):
    """The machine only accepts a timezone-aware ``now``."""
    with pytest.raises(ValueError, match="timezone-aware"):
        execute(
            linear_plan,
            initial(linear_plan),
            StartPoint(actor="coord"),
            now=dt.datetime(2024, 6, 17, 9, 30),
            calendar=calendar,
        )


def test_execute_leaves_the_given_state_untouched(run, linear_plan):
    """Commands return a new state; the state passed in is not changed."""
    before = run(linear_plan, StartPoint(actor="coord")).state
    snapshot = dataclasses.replace(before)
    run(linear_plan, CompleteStep(actor="anna", step="draft"), state=before)
    assert before == snapshot
    assert before.step("draft").status is StepStatus.ACTIVE


# --- step commands on a point that is not running -----------------------------------


@pytest.mark.parametrize(
    "command",
    [
        BeginStep(actor="anna", step="draft"),
        CompleteStep(actor="anna", step="draft", note="Klart."),
        SkipStep(actor="anna", step="draft", reason="Behövs inte."),
        ReopenStep(actor="anna", step="draft"),
        ReassignStep(actor="anna", step="draft", to="bo"),
    ],
    ids=lambda c: type(c).__name__,
)
def test_step_commands_before_start_are_refused(run, linear_plan, command):
    """Before the point starts, every step command is refused and ``start`` is offered."""
    with pytest.raises(TransitionNotAllowed) as info:
        run(linear_plan, command)
    assert info.value.target == "hrv-2022/1/draft"
    assert info.value.state == "not started"
    assert info.value.allowed == ("start",)


def test_unknown_step_is_not_found(run, linear_plan):
    """A step command naming a step the point does not have raises NotFound listing steps."""
    started = run(linear_plan, StartPoint(actor="coord")).state
    with pytest.raises(NotFound, match="draft, review, publish"):
        run(linear_plan, BeginStep(actor="anna", step="nope"), state=started)


# --- begin -----------------------------------------------------------------------


def test_begin_moves_active_step_in_progress(run, linear_plan, now):
    """Beginning an active step emits step.begun, records when, and makes the point ongoing."""
    started = run(linear_plan, StartPoint(actor="coord")).state
    later = now + dt.timedelta(hours=2)
    t = run(linear_plan, BeginStep(actor="anna", step="draft"), state=started, at=later)
    assert types(t) == [(EventType.STEP_BEGUN, "draft")]
    assert t.events[0].actor == "anna"
    step = t.state.step("draft")
    assert step.status is StepStatus.IN_PROGRESS
    assert step.begun_at == later
    assert category(linear_plan, t.state) is Category.ONGOING


def test_begin_in_progress_step_is_refused_with_allowed_commands(run, linear_plan):
    """Beginning twice raises TransitionNotAllowed naming the step, its state and allowed verbs."""
    begun = run(linear_plan, StartPoint(actor="coord"), BeginStep(actor="anna", step="draft")).state
    with pytest.raises(TransitionNotAllowed) as info:
        run(linear_plan, BeginStep(actor="anna", step="draft"), state=begun)
    error = info.value
    assert error.command == "begin"
    assert error.target == "hrv-2022/1/draft"
    assert error.state == "in_progress"
    assert error.allowed == ("complete", "skip", "assign", "hold", "extend", "delay")
    assert "hrv-2022/1/draft" in str(error)
    assert "in_progress" in str(error)


def test_begin_pending_step_is_refused(run, linear_plan):
    """A pending step (waiting on after:) cannot begin; skip and assign are offered."""
    started = run(linear_plan, StartPoint(actor="coord")).state
    with pytest.raises(TransitionNotAllowed) as info:
        run(linear_plan, BeginStep(actor="bo", step="review"), state=started)
    assert info.value.state == "pending"
    assert info.value.allowed == ("skip", "assign")


# --- complete --------------------------------------------------------------------


def test_complete_active_step_without_begin(run, single_plan, now):
    """An active step may be completed directly, without beginning it first."""
    started = run(single_plan, StartPoint(actor="coord")).state
    t = run(single_plan, CompleteStep(actor="anna", step="only"), state=started)
    assert t.state.step("only").status is StepStatus.DONE
    assert t.state.step("only").finished_at == now


def test_complete_activates_next_step_in_same_command(run, linear_plan):
    """Completing a step activates its dependant in the same transition, after the completion."""
    started = run(linear_plan, StartPoint(actor="coord")).state
    t = run(linear_plan, CompleteStep(actor="anna", step="draft"), state=started)
    assert types(t) == [(EventType.STEP_COMPLETED, "draft"), (EventType.STEP_ACTIVATED, "review")]
    assert t.state.step("review").status is StepStatus.ACTIVE
    assert t.state.step("publish").status is StepStatus.PENDING
    assert category(linear_plan, t.state) is Category.ONGOING


def test_diamond_fans_out_and_joins(run, diamond_plan):
    """a -> (b, c) -> d: a activates b and c; d waits for both; the last completes the point."""
    state = run(diamond_plan, StartPoint(actor="coord")).state

    t = run(diamond_plan, CompleteStep(actor="anna", step="a"), state=state)
    assert types(t) == [
        (EventType.STEP_COMPLETED, "a"),
        (EventType.STEP_ACTIVATED, "b"),
        (EventType.STEP_ACTIVATED, "c"),
    ]
    t = run(diamond_plan, CompleteStep(actor="bo", step="b"), state=t.state)
    assert types(t) == [(EventType.STEP_COMPLETED, "b")]
    assert t.state.step("d").status is StepStatus.PENDING
    t = run(diamond_plan, CompleteStep(actor="cilla", step="c"), state=t.state)
    assert types(t) == [(EventType.STEP_COMPLETED, "c"), (EventType.STEP_ACTIVATED, "d")]
    t = run(diamond_plan, CompleteStep(actor="anna", step="d"), state=t.state)
    assert types(t) == [(EventType.STEP_COMPLETED, "d"), (EventType.POINT_COMPLETED, None)]
    assert category(diamond_plan, t.state) is Category.COMPLETED
    assert t.state.completed_at is not None


def test_complete_records_the_note(run, single_plan, now):
    """A completion note is stripped, carried on the event and kept as a step note."""
    started = run(single_plan, StartPoint(actor="coord")).state
    t = run(single_plan, CompleteStep(actor="anna", step="only", note="  Klart.  "), state=started)
    assert t.events[0].data == {"note": "Klart."}
    (note,) = t.state.notes
    assert (note.at, note.actor, note.text, note.step) == (now, "anna", "Klart.", "only")


def test_complete_without_note_records_none(run, single_plan):
    """Completing without a note (where none is required) adds no note."""
    started = run(single_plan, StartPoint(actor="coord")).state
    t = run(single_plan, CompleteStep(actor="anna", step="only"), state=started)
    assert t.events[0].data == {}
    assert t.state.notes == ()


@pytest.mark.parametrize("note", [None, "", "   \n "])
def test_complete_requires_note_where_declared(run, linear_plan, note):
    """A step with requires_note refuses completion without a (non-blank) note."""
    state = run(
        linear_plan, StartPoint(actor="coord"), CompleteStep(actor="anna", step="draft")
    ).state
    with pytest.raises(InvalidInput, match="needs a note"):
        run(linear_plan, CompleteStep(actor="bo", step="review", note=note), state=state)


def test_complete_with_required_note_succeeds(run, linear_plan):
    """A step with requires_note completes when a note is given."""
    state = run(
        linear_plan, StartPoint(actor="coord"), CompleteStep(actor="anna", step="draft")
    ).state
    t = run(linear_plan, CompleteStep(actor="bo", step="review", note="Granskad."), state=state)
    assert t.state.step("review").status is StepStatus.DONE
    assert t.state.notes[-1].text == "Granskad."


def test_complete_note_with_personal_number_is_refused(run, single_plan):
    """A completion note holding a personnummer is refused."""
    started = run(single_plan, StartPoint(actor="coord")).state
    with pytest.raises(PersonalDataRefused):
        run(
            single_plan,
            CompleteStep(actor="anna", step="only", note=f"Gäller {PERSONNUMMER}"),
            state=started,
        )


def test_complete_pending_step_is_refused_before_note_check(run, linear_plan):
    """A pending step that needs a note is refused for its state, not for the missing note."""
    started = run(linear_plan, StartPoint(actor="coord")).state
    with pytest.raises(TransitionNotAllowed) as info:
        run(linear_plan, CompleteStep(actor="bo", step="review"), state=started)
    assert info.value.state == "pending"


def test_complete_done_step_is_refused(run, diamond_plan):
    """A done step cannot be completed again; only reopen is allowed."""
    state = run(diamond_plan, StartPoint(actor="coord"), CompleteStep(actor="anna", step="a")).state
    with pytest.raises(TransitionNotAllowed) as info:
        run(diamond_plan, CompleteStep(actor="anna", step="a"), state=state)
    assert info.value.state == "done"
    assert info.value.allowed == ("reopen",)


def test_completing_the_last_step_completes_the_point(run, single_plan, now):
    """When every step is finished the same command emits point.completed."""
    t = run(single_plan, StartPoint(actor="coord"), CompleteStep(actor="anna", step="only"))
    assert t.events[-1].type is EventType.POINT_COMPLETED
    assert t.state.completed_at == now
    assert category(single_plan, t.state) is Category.COMPLETED


# --- skip ------------------------------------------------------------------------


def test_skip_active_step_records_reason_and_activates_next(run, linear_plan, now):
    """Skipping needs a reason, which is on the event and kept as a note; dependants activate."""
    started = run(linear_plan, StartPoint(actor="coord")).state
    t = run(
        linear_plan, SkipStep(actor="coord", step="draft", reason=" Finns redan. "), state=started
    )
    assert types(t) == [(EventType.STEP_SKIPPED, "draft"), (EventType.STEP_ACTIVATED, "review")]
    assert t.events[0].data == {"reason": "Finns redan."}
    assert t.state.step("draft").status is StepStatus.SKIPPED
    assert t.state.step("draft").finished_at == now
    assert t.state.notes[-1].text == "Finns redan."
    assert t.state.notes[-1].step == "draft"


@pytest.mark.parametrize("reason", ["", "   "])
def test_skip_requires_a_reason(run, linear_plan, reason):
    """A skip without a reason is refused as invalid input."""
    started = run(linear_plan, StartPoint(actor="coord")).state
    with pytest.raises(InvalidInput, match="reason is required"):
        run(linear_plan, SkipStep(actor="coord", step="draft", reason=reason), state=started)


def test_skip_reason_with_personal_number_is_refused(run, linear_plan):
    """A skip reason holding a personnummer is refused."""
    started = run(linear_plan, StartPoint(actor="coord")).state
    with pytest.raises(PersonalDataRefused):
        run(
            linear_plan,
            SkipStep(actor="coord", step="draft", reason="Se 121212-1212"),
            state=started,
        )


def test_skip_pending_step_is_allowed(run, linear_plan):
    """A pending step may be skipped ahead of time; the active step before it stays active."""
    started = run(linear_plan, StartPoint(actor="coord")).state
    t = run(linear_plan, SkipStep(actor="coord", step="review", reason="Ingen."), state=started)
    assert t.state.step("review").status is StepStatus.SKIPPED
    assert t.state.step("draft").status is StepStatus.ACTIVE


def test_skipping_ahead_does_not_start_later_work_early(run, linear_plan):
    """Skipping review while draft is open keeps publish waiting; finishing draft starts it."""
    started = run(linear_plan, StartPoint(actor="coord")).state
    t = run(linear_plan, SkipStep(actor="coord", step="review", reason="Ingen."), state=started)
    assert t.state.step("publish").status is StepStatus.PENDING
    t = run(linear_plan, CompleteStep(actor="anna", step="draft"), state=t.state)
    assert types(t) == [(EventType.STEP_COMPLETED, "draft"), (EventType.STEP_ACTIVATED, "publish")]


def test_reopening_a_step_whose_prerequisites_are_open_makes_it_wait(run, linear_plan):
    """A step skipped ahead and reopened while draft is open goes back to pending, not active."""
    state = run(
        linear_plan,
        StartPoint(actor="coord"),
        SkipStep(actor="coord", step="review", reason="Ingen."),
    ).state
    t = run(
        linear_plan, ReopenStep(actor="coord", step="review", reason="Behövs ändå."), state=state
    )
    assert t.state.step("review").status is StepStatus.PENDING
    assert t.state.step("review").due is None
    assert t.state.notes[-1].text == "Behövs ändå."
    t = run(linear_plan, CompleteStep(actor="anna", step="draft"), state=t.state)
    assert types(t) == [(EventType.STEP_COMPLETED, "draft"), (EventType.STEP_ACTIVATED, "review")]


def test_windows_line_breaks_in_a_note_are_accepted(run, linear_plan):
    """A note pasted with CRLF line endings is stored with plain newlines."""
    started = run(linear_plan, StartPoint(actor="coord")).state
    t = run(linear_plan, AddNote(actor="anna", text="Rad ett.\r\nRad två."), state=started)
    assert t.state.notes[-1].text == "Rad ett.\nRad två."


def test_skipped_step_satisfies_after(run, diamond_plan):
    """A skipped step counts as finished for its dependants' after:."""
    state = run(
        diamond_plan,
        StartPoint(actor="coord"),
        CompleteStep(actor="anna", step="a"),
        SkipStep(actor="coord", step="b", reason="Behövs inte."),
    ).state
    t = run(diamond_plan, CompleteStep(actor="cilla", step="c"), state=state)
    assert types(t) == [(EventType.STEP_COMPLETED, "c"), (EventType.STEP_ACTIVATED, "d")]


def test_skipping_every_step_finishes_the_point_as_written_off(run, single_plan):
    """Skipping the last open step finishes the point; with no step done it is reported as
    written off, its skip reason the reason, never as completed work."""
    t = run(
        single_plan,
        StartPoint(actor="coord"),
        SkipStep(actor="coord", step="only", reason="Behövs inte."),
    )
    assert t.events[-1].type is EventType.POINT_COMPLETED
    assert category(single_plan, t.state) is Category.WRITTEN_OFF
    assert skip_reasons(t.state) == ("Behövs inte.",)


def test_a_point_with_one_step_done_and_the_rest_skipped_is_completed(run, diamond_plan):
    """Work done counts: a point with a step done and the rest skipped is completed."""
    t = run(
        diamond_plan,
        StartPoint(actor="coord"),
        CompleteStep(actor="anna", step="a"),
        SkipStep(actor="coord", step="b", reason="Görs av regionen."),
        SkipStep(actor="coord", step="c", reason="Görs av regionen."),
        SkipStep(actor="coord", step="d", reason="Behövs inte."),
    )
    assert t.events[-1].type is EventType.POINT_COMPLETED
    assert category(diamond_plan, t.state) is Category.COMPLETED


def test_skip_done_step_is_refused(run, single_plan):
    """A done step cannot be skipped."""
    state = run(
        single_plan, StartPoint(actor="coord"), CompleteStep(actor="anna", step="only")
    ).state
    with pytest.raises(TransitionNotAllowed) as info:
        run(single_plan, SkipStep(actor="coord", step="only", reason="x"), state=state)
    assert info.value.allowed == ("reopen",)


# --- reopen ----------------------------------------------------------------------


def test_reopen_done_step_makes_it_active_again(run, single_plan, now):
    """Reopening clears begun/finished times, makes the step active and the point not completed."""
    done = run(
        single_plan,
        StartPoint(actor="coord"),
        BeginStep(actor="anna", step="only"),
        CompleteStep(actor="anna", step="only"),
    ).state
    later = now + dt.timedelta(days=1)
    t = run(single_plan, ReopenStep(actor="coord", step="only"), state=done, at=later)
    assert types(t) == [(EventType.STEP_REOPENED, "only")]
    step = t.state.step("only")
    assert step.status is StepStatus.ACTIVE
    assert (step.activated_at, step.begun_at, step.finished_at) == (later, None, None)
    assert t.state.completed_at is None
    assert category(single_plan, t.state) is Category.TO_START


def test_reopen_skipped_step(run, single_plan):
    """A skipped step can be reopened."""
    skipped = run(
        single_plan, StartPoint(actor="coord"), SkipStep(actor="coord", step="only", reason="x")
    ).state
    t = run(
        single_plan, ReopenStep(actor="coord", step="only", reason="Behövs ändå."), state=skipped
    )
    assert t.state.step("only").status is StepStatus.ACTIVE
    assert t.events[0].data == {"reason": "Behövs ändå."}


def test_reopen_deactivates_active_dependants(run, diamond_plan):
    """Reopening a step sends its active dependants back to pending, listed on the event."""
    state = run(diamond_plan, StartPoint(actor="coord"), CompleteStep(actor="anna", step="a")).state
    t = run(diamond_plan, ReopenStep(actor="coord", step="a"), state=state)
    assert t.events[0].data["deactivated"] == ["b", "c"]
    assert statuses(t.state) == {
        "a": StepStatus.ACTIVE,
        "b": StepStatus.PENDING,
        "c": StepStatus.PENDING,
        "d": StepStatus.PENDING,
    }
    assert t.state.step("b").activated_at is None


def test_completing_a_reopened_step_reactivates_dependants(run, diamond_plan):
    """After reopen, completing the step again activates its dependants again."""
    state = run(
        diamond_plan,
        StartPoint(actor="coord"),
        CompleteStep(actor="anna", step="a"),
        ReopenStep(actor="coord", step="a"),
    ).state
    t = run(diamond_plan, CompleteStep(actor="anna", step="a"), state=state)
    assert types(t) == [
        (EventType.STEP_COMPLETED, "a"),
        (EventType.STEP_ACTIVATED, "b"),
        (EventType.STEP_ACTIVATED, "c"),
    ]


def test_reopen_keeps_finished_dependants(run, diamond_plan):
    """Only active dependants are deactivated; finished ones stay finished."""
    state = run(
        diamond_plan,
        StartPoint(actor="coord"),
        CompleteStep(actor="anna", step="a"),
        CompleteStep(actor="bo", step="b"),
    ).state
    t = run(diamond_plan, ReopenStep(actor="coord", step="a"), state=state)
    assert t.events[0].data["deactivated"] == ["c"]
    assert t.state.step("b").status is StepStatus.DONE


def test_reopened_point_completes_again(run, single_plan):
    """A completed point that is reopened emits point.completed again when finished again."""
    state = run(
        single_plan,
        StartPoint(actor="coord"),
        CompleteStep(actor="anna", step="only"),
        ReopenStep(actor="coord", step="only"),
    ).state
    t = run(single_plan, CompleteStep(actor="anna", step="only"), state=state)
    assert types(t) == [(EventType.STEP_COMPLETED, "only"), (EventType.POINT_COMPLETED, None)]


@pytest.mark.parametrize(
    ("prefix", "state_name", "allowed"),
    [
        ((), "active", ("begin", "complete", "skip", "assign", "hold", "extend", "delay")),
        (
            (BeginStep(actor="anna", step="only"),),
            "in_progress",
            ("complete", "skip", "assign", "hold", "extend", "delay"),
        ),
    ],
)
def test_reopen_open_step_is_refused(run, single_plan, prefix, state_name, allowed):
    """Only done or skipped steps can be reopened."""
    state = run(single_plan, StartPoint(actor="coord"), *prefix).state
    with pytest.raises(TransitionNotAllowed) as info:
        run(single_plan, ReopenStep(actor="coord", step="only"), state=state)
    assert info.value.state == state_name
    assert info.value.allowed == allowed


def test_reopen_reason_with_personal_number_is_refused(run, single_plan):
    """A reopen reason holding a personnummer is refused."""
    done = run(
        single_plan, StartPoint(actor="coord"), CompleteStep(actor="anna", step="only")
    ).state
    with pytest.raises(PersonalDataRefused):
        run(single_plan, ReopenStep(actor="coord", step="only", reason="1212121212"), state=done)


# --- reassign --------------------------------------------------------------------


def test_reassign_changes_owner(run, linear_plan):
    """Reassigning emits step.reassigned with from and to, and changes the owner."""
    started = run(linear_plan, StartPoint(actor="coord")).state
    t = run(linear_plan, ReassignStep(actor="coord", step="draft", to="dan"), state=started)
    assert types(t) == [(EventType.STEP_REASSIGNED, "draft")]
    assert t.events[0].data == {"from": "anna", "to": "dan"}
    assert t.state.step("draft").owner == "dan"
    assert t.state.step("draft").status is StepStatus.ACTIVE


def test_reassigned_pending_step_keeps_new_owner_when_activated(run, linear_plan):
    """A pending step reassigned ahead of time is activated for its new owner."""
    state = run(
        linear_plan,
        StartPoint(actor="coord"),
        ReassignStep(actor="coord", step="review", to="dan"),
    ).state
    t = run(linear_plan, CompleteStep(actor="anna", step="draft"), state=state)
    assert t.events[1].data["owner"] == "dan"
    assert t.state.step("review").owner == "dan"


def test_reassign_in_progress_step(run, linear_plan):
    """An in-progress step may change owner and stays in progress."""
    state = run(linear_plan, StartPoint(actor="coord"), BeginStep(actor="anna", step="draft")).state
    t = run(linear_plan, ReassignStep(actor="coord", step="draft", to="bo"), state=state)
    assert t.state.step("draft").status is StepStatus.IN_PROGRESS
    assert t.state.step("draft").owner == "bo"


def test_reassign_to_current_owner_is_refused(run, linear_plan):
    """Reassigning a step to the person who already owns it is invalid input."""
    started = run(linear_plan, StartPoint(actor="coord")).state
    with pytest.raises(InvalidInput, match="already owned by anna"):
        run(linear_plan, ReassignStep(actor="coord", step="draft", to="anna"), state=started)


def test_reassign_done_step_is_refused(run, single_plan):
    """A finished step cannot change owner."""
    done = run(
        single_plan, StartPoint(actor="coord"), CompleteStep(actor="anna", step="only")
    ).state
    with pytest.raises(TransitionNotAllowed) as info:
        run(single_plan, ReassignStep(actor="coord", step="only", to="bo"), state=done)
    assert info.value.command == "assign"
    assert info.value.state == "done"


# --- notes -----------------------------------------------------------------------


def test_add_note_to_point(run, linear_plan, now):
    """A point note emits note.added with the stripped text and no step."""
    started = run(linear_plan, StartPoint(actor="coord")).state
    t = run(linear_plan, AddNote(actor="bo", text=" Möte bokat. "), state=started)
    assert types(t) == [(EventType.NOTE_ADDED, None)]
    assert t.events[0].data == {"text": "Möte bokat."}
    (note,) = t.state.notes
    assert (note.at, note.actor, note.text, note.step) == (now, "bo", "Möte bokat.", None)
    assert t.state.steps == started.steps


def test_add_note_to_step(run, linear_plan):
    """A step note names its step."""
    started = run(linear_plan, StartPoint(actor="coord")).state
    t = run(linear_plan, AddNote(actor="bo", text="Utkast skickat.", step="draft"), state=started)
    assert t.events[0].step == "draft"
    assert t.state.notes[-1].step == "draft"


def test_add_note_before_start_and_after_write_off(run, linear_plan):
    """Notes are accepted on a point not started and on one written off (whose reason is a note)."""
    t = run(linear_plan, AddNote(actor="coord", text="Väntar på budget."))
    assert len(t.state.notes) == 1
    off = run(linear_plan, WriteOff(actor="coord", reason="Inaktuell."), state=t.state).state
    t = run(linear_plan, AddNote(actor="coord", text="Arkiverad."), state=off)
    assert [n.text for n in t.state.notes] == ["Väntar på budget.", "Inaktuell.", "Arkiverad."]


def test_add_note_to_rejected_point_is_refused(run, rejected_plan):
    """A rejected point takes no notes."""
    with pytest.raises(TransitionNotAllowed) as info:
        run(rejected_plan, AddNote(actor="coord", text="x"))
    assert info.value.state == "rejected"


def test_add_note_to_unknown_step_is_not_found(run, linear_plan):
    """A note for a step the point does not have raises NotFound."""
    with pytest.raises(NotFound):
        run(linear_plan, AddNote(actor="coord", text="x", step="nope"))


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", InvalidInput),
        ("  ", InvalidInput),
        ("Ring 19121212-1212", PersonalDataRefused),
        ("Bell\x07", InvalidInput),
    ],
)
def test_add_note_refuses_bad_text(run, linear_plan, text, error):
    """Blank notes, notes with control characters and notes with a personnummer are refused."""
    with pytest.raises(error):
        run(linear_plan, AddNote(actor="coord", text=text))


# --- write off -------------------------------------------------------------------


def test_write_off_running_point(run, diamond_plan, now):
    """Writing off records the reason and the open steps, and makes the point written_off."""
    state = run(diamond_plan, StartPoint(actor="coord"), CompleteStep(actor="anna", step="a")).state
    t = run(diamond_plan, WriteOff(actor="coord", reason=" Uppdraget återkallat. "), state=state)
    assert types(t) == [(EventType.POINT_WRITTEN_OFF, None)]
    assert t.events[0].data == {"reason": "Uppdraget återkallat.", "open_steps": ["b", "c", "d"]}
    assert t.state.written_off_at == now
    assert t.state.steps == state.steps
    assert category(diamond_plan, t.state) is Category.WRITTEN_OFF


def test_write_off_unstarted_point(run, linear_plan):
    """A point can be written off before it starts."""
    t = run(linear_plan, WriteOff(actor="coord", reason="Inaktuell."))
    assert category(linear_plan, t.state) is Category.WRITTEN_OFF
    assert t.events[0].data["open_steps"] == ["draft", "review", "publish"]


def test_step_commands_on_written_off_point_are_refused(run, linear_plan):
    """Once written off, step commands are refused with nothing allowed."""
    state = run(
        linear_plan, StartPoint(actor="coord"), WriteOff(actor="coord", reason="Inaktuell.")
    ).state
    with pytest.raises(TransitionNotAllowed) as info:
        run(linear_plan, CompleteStep(actor="anna", step="draft"), state=state)
    assert info.value.state == "written_off"
    assert info.value.allowed == ()
    assert allowed_actions(linear_plan, state, "draft") == ()


@pytest.mark.parametrize("reason", ["", "   "])
def test_write_off_requires_reason(run, linear_plan, reason):
    """A write-off without a reason is refused."""
    with pytest.raises(InvalidInput, match="reason is required"):
        run(linear_plan, WriteOff(actor="coord", reason=reason))


def test_write_off_twice_is_refused(run, linear_plan):
    """A written-off point cannot be written off again."""
    off = run(linear_plan, WriteOff(actor="coord", reason="Inaktuell.")).state
    with pytest.raises(TransitionNotAllowed) as info:
        run(linear_plan, WriteOff(actor="coord", reason="Igen."), state=off)
    assert info.value.command == "write-off"
    assert info.value.state == "written_off"


def test_write_off_completed_point_is_refused(run, single_plan):
    """A completed point cannot be written off."""
    done = run(
        single_plan, StartPoint(actor="coord"), CompleteStep(actor="anna", step="only")
    ).state
    with pytest.raises(TransitionNotAllowed) as info:
        run(single_plan, WriteOff(actor="coord", reason="x"), state=done)
    assert info.value.state == "completed"


def test_write_off_rejected_point_is_refused(run, rejected_plan):
    """A rejected point is not written off: it never ran."""
    with pytest.raises(TransitionNotAllowed) as info:
        run(rejected_plan, WriteOff(actor="coord", reason="x"))
    assert info.value.state == "rejected"


# --- allowed commands ------------------------------------------------------------


def test_allowed_commands_per_status(run, linear_plan):
    """allowed_actions gives the ALLOWED verbs of each step's status while running."""
    assert allowed_actions(linear_plan, initial(linear_plan), "draft") == ()
    state = run(linear_plan, StartPoint(actor="coord"), BeginStep(actor="anna", step="draft")).state
    assert allowed_actions(linear_plan, state, "draft") == ALLOWED[StepStatus.IN_PROGRESS]
    assert allowed_actions(linear_plan, state, "review") == ALLOWED[StepStatus.PENDING]
    state = run(linear_plan, CompleteStep(actor="anna", step="draft"), state=state).state
    assert allowed_actions(linear_plan, state, "draft") == ("reopen",)
    assert allowed_actions(linear_plan, state, "review") == ALLOWED[StepStatus.ACTIVE]


def test_allowed_table_matches_the_rules():
    """The documented table: pending/active/in_progress/done/skipped/recurring and their
    verbs."""
    assert ALLOWED == {
        StepStatus.PENDING: ("skip", "assign"),
        StepStatus.ACTIVE: ("begin", "complete", "skip", "assign", "hold", "extend", "delay"),
        StepStatus.IN_PROGRESS: ("complete", "skip", "assign", "hold", "extend", "delay"),
        StepStatus.DONE: ("reopen",),
        StepStatus.SKIPPED: ("reopen",),
        StepStatus.RECURRING: ("skip", "assign"),
    }


# --- due dates -------------------------------------------------------------------


def _activation(transition, step):
    (event,) = [
        e for e in transition.events if e.step == step and e.type is EventType.STEP_ACTIVATED
    ]
    return event


def test_due_from_fixed_date_moves_off_julafton(run, due_plan):
    """A fixed due date on julafton 2024 moves to the Monday before; the declared date is kept."""
    t = run(due_plan, StartPoint(actor="coord"))
    assert t.state.step("fixed").due == dt.date(2024, 12, 23)
    assert _activation(t, "fixed").data["due_declared"] == "2024-12-24"


def test_due_from_start_counts_from_declared_start(run, due_plan):
    """start+10bd counts from the declared start (2024-06-03), skipping nationaldagen."""
    t = run(due_plan, StartPoint(actor="coord"))
    assert t.state.step("from_start").due == dt.date(2024, 6, 18)
    assert "due_declared" not in _activation(t, "from_start").data


def test_due_from_activation_skips_midsommarafton(run, due_plan):
    """activation+5bd from Monday 2024-06-17 skips midsommarafton and lands on Tuesday 06-25."""
    t = run(due_plan, StartPoint(actor="coord"))
    assert t.state.step("from_activation").due == dt.date(2024, 6, 25)


def test_due_in_calendar_days_moves_off_weekend(run, due_plan):
    """activation+12d lands on Saturday 2024-06-29 and moves to Friday 06-28."""
    t = run(due_plan, StartPoint(actor="coord"))
    assert t.state.step("calendar_days").due == dt.date(2024, 6, 28)
    assert _activation(t, "calendar_days").data["due_declared"] == "2024-06-29"


def test_step_without_due_inherits_point_due(run, due_plan):
    """A step with no due rule is due when the point is (Saturday 11-30 moves to Friday 11-29)."""
    t = run(due_plan, StartPoint(actor="coord"))
    assert t.state.step("inherited").due == dt.date(2024, 11, 29)


def test_no_due_anywhere_means_no_due(run, linear_plan):
    """Neither the step nor the point has a due date: the step has none and the event says none."""
    t = run(linear_plan, StartPoint(actor="coord"))
    assert t.state.step("draft").due is None
    assert "due" not in t.events[1].data


@pytest.mark.parametrize(
    ("policy", "due", "declared"),
    [
        (DuePolicy.PREVIOUS, dt.date(2024, 12, 23), "2024-12-24"),
        (DuePolicy.NEXT, dt.date(2024, 12, 27), "2024-12-24"),
        (DuePolicy.KEEP, dt.date(2024, 12, 24), None),
    ],
)
def test_due_policy_of_the_calendar_applies(due_plan, now, policy, due, declared):
    """The calendar's due policy decides where a due date on a day off goes."""
    t = execute(
        due_plan,
        initial(due_plan),
        StartPoint(actor="coord"),
        now=now,
        calendar=Calendar(due_policy=policy),
    )
    assert t.state.step("fixed").due == due
    assert _activation(t, "fixed").data.get("due_declared") == declared


def test_due_counts_from_when_the_step_activates(run, chained_due_plan):
    """activation+3bd counts from the completing command's date, not from the point's start."""
    started = run(chained_due_plan, StartPoint(actor="coord")).state
    wednesday = dt.datetime(2024, 6, 19, 10, 0, tzinfo=STOCKHOLM)
    t = run(
        chained_due_plan, CompleteStep(actor="anna", step="prepare"), state=started, at=wednesday
    )
    assert t.state.step("decide").due == dt.date(2024, 6, 25)


def test_reopen_recomputes_activation_due(run, chained_due_plan):
    """A reopened step's activation-anchored due date counts from the reopening."""
    done = run(
        chained_due_plan,
        StartPoint(actor="coord"),
        CompleteStep(actor="anna", step="prepare"),
        CompleteStep(actor="bo", step="decide"),
    ).state
    reopened_at = dt.datetime(2024, 6, 26, 8, 0, tzinfo=STOCKHOLM)
    t = run(chained_due_plan, ReopenStep(actor="coord", step="decide"), state=done, at=reopened_at)
    assert t.state.step("decide").due == dt.date(2024, 7, 1)
    assert t.events[0].data["due"] == "2024-07-01"


def test_reopen_keeps_start_anchored_due(run, due_plan):
    """A reopened step due from the start keeps the same due date."""
    done = run(
        due_plan, StartPoint(actor="coord"), CompleteStep(actor="bo", step="from_start")
    ).state
    later = dt.datetime(2024, 8, 1, 8, 0, tzinfo=STOCKHOLM)
    t = run(due_plan, ReopenStep(actor="coord", step="from_start"), state=done, at=later)
    assert t.state.step("from_start").due == dt.date(2024, 6, 18)


def test_overdue_as_of_now(run, due_plan):
    """The point is overdue once a day passes the earliest open due date, not on the day."""
    state = run(due_plan, StartPoint(actor="coord")).state
    assert not is_overdue(due_plan, state, dt.date(2024, 6, 18))
    assert is_overdue(due_plan, state, dt.date(2024, 6, 19))


# --- properties over random walks ------------------------------------------------


@settings(max_examples=120, deadline=None)
@given(plan_index=st.integers(min_value=0, max_value=4), picks=choices)
def test_category_never_returns_to_to_start_without_reopen(all_plans, walk, plan_index, picks):
    """Without reopen, a point that has left to_start never comes back to it."""
    plan = all_plans[plan_index]
    left = False
    for _before, transition in walk(plan, picks, reopen=False):
        cat = category(plan, transition.state)
        if left:
            assert cat is not Category.TO_START
        left = left or cat is not Category.TO_START


@settings(max_examples=120, deadline=None)
@given(plan_index=st.integers(min_value=0, max_value=4), picks=choices)
def test_back_to_to_start_only_by_reopen(all_plans, walk, plan_index, picks):
    """A transition that takes a begun point back to to_start is one that reopened a step."""
    plan = all_plans[plan_index]
    for before, transition in walk(plan, picks):
        was = category(plan, before)
        now_cat = category(plan, transition.state)
        if was is not Category.TO_START and now_cat is Category.TO_START:
            assert EventType.STEP_REOPENED in [e.type for e in transition.events]


@settings(max_examples=100, deadline=None)
@given(plan_index=st.integers(min_value=0, max_value=4), picks=choices)
def test_written_off_is_final(all_plans, walk, plan_index, picks):
    """Once written off (by a write-off, the machine's lifecycle) a point stays written off
    and its steps never change."""
    plan = all_plans[plan_index]
    off = None
    for _before, transition in walk(plan, picks):
        if off is not None:
            assert lifecycle(plan, transition.state) is Category.WRITTEN_OFF
            assert transition.state.steps == off.steps
        elif lifecycle(plan, transition.state) is Category.WRITTEN_OFF:
            off = transition.state


@settings(max_examples=100, deadline=None)
@given(plan_index=st.integers(min_value=0, max_value=4), picks=choices)
def test_running_point_invariants(all_plans, walk, plan_index, picks):
    """After every command: pending means not ready, active means ready, completed_at means all
    finished. Ready: every after: step is done, or skipped and itself ready."""
    plan = all_plans[plan_index]

    def satisfied(state, step_id):
        status = state.step(step_id).status
        if status is StepStatus.SKIPPED:
            return all(satisfied(state, dep) for dep in plan.step(step_id).after)
        return status is StepStatus.DONE

    for _before, transition in walk(plan, picks):
        state = transition.state
        if state.started_at is None:
            assert all(s.status is StepStatus.PENDING for s in state.steps)
            continue
        for step in plan.steps:
            ready = all(satisfied(state, dep) for dep in step.after)
            if state.step(step.id).status is StepStatus.PENDING:
                assert not ready
            if state.step(step.id).status is StepStatus.ACTIVE:
                assert ready
        all_finished = all(s.status.finished for s in state.steps)
        assert (state.completed_at is not None) == all_finished


@settings(max_examples=100, deadline=None)
@given(plan_index=st.integers(min_value=0, max_value=4), picks=choices)
def test_events_are_stamped_with_the_command(all_plans, walk, plan_index, picks):
    """Every event of a transition carries the command's actor, its time and the point."""
    plan = all_plans[plan_index]
    for turn, (_before, transition) in enumerate(walk(plan, picks)):
        assert transition.events
        actors = {e.actor for e in transition.events}
        assert len(actors) == 1
        for event in transition.events:
            assert event.occurred_at == dt.datetime(2024, 6, 17, 9, 30, tzinfo=STOCKHOLM) + (
                dt.timedelta(hours=turn)
            )
            assert (event.assignment, event.point) == (plan.assignment, plan.number)


@settings(max_examples=60, deadline=None)
@given(plan_index=st.integers(min_value=0, max_value=4), picks=choices)
def test_allowed_commands_agree_with_execute(
    all_plans, walk, step_command, calendar, plan_index, picks
):
    """A step verb succeeds exactly when allowed_actions lists it; refusals list the same verbs."""
    plan = all_plans[plan_index]
    history = walk(plan, picks)
    state = history[-1][1].state if history else initial(plan)
    if state.started_at is None or lifecycle(plan, state) is Category.WRITTEN_OFF:
        assert all(allowed_actions(plan, state, s.id) == () for s in plan.steps)
        return
    at = dt.datetime(2024, 9, 2, 9, 0, tzinfo=STOCKHOLM)
    for step in plan.steps:
        allowed = allowed_actions(plan, state, step.id)
        for verb in STEP_VERBS:
            command = step_command(verb, step.id, state.step(step.id).owner)
            if verb in allowed:
                execute(plan, state, command, now=at, calendar=calendar)
            else:
                with pytest.raises(TransitionNotAllowed) as info:
                    execute(plan, state, command, now=at, calendar=calendar)
                assert info.value.allowed == allowed
                current = state.step(step.id)
                held = ", held" if current.held_since else ""
                assert info.value.state == current.status.value + held
