"""Hold, resume and extend: a step's clock paused and restarted, its due date moved.

hold_plan (conftest): ``wait`` owned by bo, due Thursday 2024-09-12, and ``open``
owned by anna with no due date; both active once the point starts on Monday
2024-06-17. Every test drives the pure machine with ``run``.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from workflow.core.actions import (
    BeginStep,
    CompleteStep,
    ExtendStep,
    HoldStep,
    ResumeStep,
    StartPoint,
    allowed_for,
)
from workflow.core.deadlines import schedule
from workflow.core.events import EventType
from workflow.core.machine import allowed_actions
from workflow.core.state import (
    StepStatus,
    evolve,
    initial,
    is_at_risk,
    is_overdue,
    overdue_steps,
    replay,
)
from workflow.errors import InvalidInput, PersonalDataRefused, TransitionNotAllowed

STOCKHOLM = ZoneInfo("Europe/Stockholm")
WAIT_DUE = dt.date(2024, 9, 12)


def at(day: str, hour: int = 10) -> dt.datetime:
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(hour), tzinfo=STOCKHOLM)


def hold(step: str = "wait", reason: str = "Väntar på remissvar från Region Skåne.") -> HoldStep:
    return HoldStep(actor="coord", step=step, reason=reason)


def resume(step: str = "wait") -> ResumeStep:
    return ResumeStep(actor="coord", step=step)


def extend(to: str, step: str = "wait", reason: str = "Nämnden sammanträder senare.") -> ExtendStep:
    return ExtendStep(actor="coord", step=step, to=dt.date.fromisoformat(to), reason=reason)


@pytest.fixture(scope="module")
def started(run, hold_plan):
    """hold_plan started at the conftest's ``now`` (Monday 2024-06-17 09:30)."""
    return run(hold_plan, StartPoint(actor="coord")).state


# --- hold ----------------------------------------------------------------------------


def test_hold_marks_the_step_held_since_now_and_keeps_its_status(run, hold_plan, started, now):
    """Holding emits step.held with the reason; the step stays active, held since ``now``."""
    t = run(hold_plan, hold(), state=started)
    assert [(e.type, e.step, e.data) for e in t.events] == [
        (EventType.STEP_HELD, "wait", {"reason": "Väntar på remissvar från Region Skåne."})
    ]
    step = t.state.step("wait")
    assert step.held_since == now
    assert step.status is StepStatus.ACTIVE
    assert step.due == WAIT_DUE
    assert t.state.step("open").held_since is None


@pytest.mark.parametrize("reason", ["", "   ", "\n"])
def test_hold_requires_a_reason(run, hold_plan, started, reason):
    """A hold without a reason (empty or blank) is refused as invalid input."""
    with pytest.raises(InvalidInput, match="reason is required"):
        run(hold_plan, hold(reason=reason), state=started)


def test_hold_reason_with_a_personnummer_is_refused(run, hold_plan, started):
    """A hold reason holding a personal identity number is refused."""
    with pytest.raises(PersonalDataRefused):
        run(hold_plan, hold(reason="Väntar på 19121212-1212."), state=started)


def test_a_held_step_swaps_hold_for_resume_in_its_verbs(run, hold_plan, started):
    """Held, a step offers resume instead of hold; every other verb stays, in order."""
    assert allowed_actions(hold_plan, started, "wait") == (
        "begin", "complete", "skip", "assign", "hold", "extend", "delay",
    )  # fmt: skip
    held = run(hold_plan, hold(), state=started).state
    assert allowed_actions(hold_plan, held, "wait") == (
        "begin", "complete", "skip", "assign", "resume", "extend", "delay",
    )  # fmt: skip
    assert allowed_for(held.step("open")) == (
        "begin", "complete", "skip", "assign", "hold", "extend", "delay",
    )  # fmt: skip


def test_a_held_step_cannot_be_held_again(run, hold_plan, started):
    """Holding a held step is refused; the error says it is held and offers resume."""
    held = run(hold_plan, hold(), state=started).state
    with pytest.raises(TransitionNotAllowed) as caught:
        run(hold_plan, hold(), state=held)
    assert caught.value.state == "active, held"
    assert "resume" in caught.value.allowed
    assert "hold" not in caught.value.allowed


def test_a_step_that_is_not_held_cannot_be_resumed(run, hold_plan, started):
    """Resume is refused on a step that is not held."""
    with pytest.raises(TransitionNotAllowed) as caught:
        run(hold_plan, resume(), state=started)
    assert "resume" not in caught.value.allowed


@pytest.mark.parametrize("verb", ["hold", "extend"])
def test_hold_and_extend_are_refused_on_a_finished_step(run, hold_plan, started, verb):
    """A done step can only be reopened: hold and extend are refused."""
    done = run(hold_plan, CompleteStep(actor="bo", step="wait"), state=started).state
    command = hold() if verb == "hold" else extend("2024-10-01")
    with pytest.raises(TransitionNotAllowed) as caught:
        run(hold_plan, command, state=done)
    assert caught.value.allowed == ("reopen",)


def test_hold_is_refused_before_the_point_starts(run, hold_plan):
    """A point that has not started has no running step to hold."""
    with pytest.raises(TransitionNotAllowed) as caught:
        run(hold_plan, hold())
    assert tuple(caught.value.allowed) == ("start",)


def test_a_held_step_can_still_be_begun_and_completed(run, hold_plan, started):
    """Hold pauses the clock, not the work: the owner may begin and complete (which ends it)."""
    held = run(hold_plan, hold(), state=started).state
    begun = run(hold_plan, BeginStep(actor="bo", step="wait"), state=held).state
    assert begun.step("wait").held_since is not None
    assert allowed_actions(hold_plan, begun, "wait") == (
        "complete", "skip", "assign", "resume", "extend", "delay",
    )  # fmt: skip
    done = run(hold_plan, CompleteStep(actor="bo", step="wait"), state=begun).state
    assert done.step("wait").status is StepStatus.DONE
    assert done.step("wait").held_since is None


# --- resume ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("held_on", "resumed_on", "days", "due"),
    [
        ("2024-06-27", "2024-07-04", 5, "2024-09-19"),  # Thu -> next Thu, over a weekend
        ("2024-06-20", "2024-06-27", 4, "2024-09-18"),  # over midsommarafton as well
        ("2024-06-28", "2024-07-01", 1, "2024-09-13"),  # Fri -> Mon
        ("2024-06-27", "2024-06-27", 0, "2024-09-12"),  # resumed the same day
    ],
)
def test_resume_moves_the_due_date_out_by_the_working_days_held(
    run, hold_plan, started, held_on, resumed_on, days, due
):
    """Resuming emits step.resumed with the working days held and the due date moved by them."""
    held = run(hold_plan, hold(), state=started, at=at(held_on)).state
    t = run(hold_plan, resume(), state=held, at=at(resumed_on, 15))
    assert [(e.type, e.step, e.data) for e in t.events] == [
        (EventType.STEP_RESUMED, "wait", {"held_days": days, "due": due})
    ]
    step = t.state.step("wait")
    assert step.due == dt.date.fromisoformat(due)
    assert step.held_since is None
    assert allowed_actions(hold_plan, t.state, "wait")[4] == "hold"


def test_resume_counts_the_held_day_in_nows_timezone(run, hold_plan, started):
    """Held at 23:00 UTC Thursday (01:00 Friday in Stockholm), resumed Monday: one day held.

    A hold read back from the store is in UTC; the day it began is the local
    one (that of ``now``), so Friday -> Monday is one working day, not two.
    """
    held_at = dt.datetime(2024, 6, 27, 23, 0, tzinfo=dt.UTC)
    held = run(hold_plan, hold(), state=started, at=held_at).state
    t = run(hold_plan, resume(), state=held, at=at("2024-07-01"))
    assert t.events[0].data == {"held_days": 1, "due": "2024-09-13"}


def test_resume_of_a_step_without_a_due_date_moves_nothing(run, hold_plan, started):
    """A step with no due date resumes with the days held and still has no due date."""
    held = run(hold_plan, hold("open"), state=started, at=at("2024-06-27")).state
    t = run(hold_plan, resume("open"), state=held, at=at("2024-07-04"))
    assert [(e.type, e.data) for e in t.events] == [(EventType.STEP_RESUMED, {"held_days": 5})]
    assert t.state.step("open").due is None
    assert t.state.step("open").held_since is None


def test_resume_starts_a_new_deadline_cycle(run, hold_plan, started, calendar):
    """Held: nothing fires; resumed with a moved due date: every firing key is new."""
    plan = hold_plan.step("wait")
    held = run(hold_plan, hold(), state=started, at=at("2024-06-27")).state
    resumed = run(hold_plan, resume(), state=held, at=at("2024-07-04")).state
    before = schedule(hold_plan, plan, started.step("wait"), calendar)
    assert schedule(hold_plan, plan, held.step("wait"), calendar) == []
    after = schedule(hold_plan, plan, resumed.step("wait"), calendar)
    assert {f.step_due for f in after} == {dt.date(2024, 9, 19)}
    assert before
    assert {f.key for f in before}.isdisjoint({f.key for f in after})


# --- extend ----------------------------------------------------------------------------


def test_extend_moves_the_due_date_and_says_from_where(run, hold_plan, started):
    """Extending to a working day emits the new and previous due date, no due_declared."""
    t = run(hold_plan, extend("2024-10-03"), state=started)
    assert [(e.type, e.step, e.data) for e in t.events] == [
        (
            EventType.STEP_EXTENDED,
            "wait",
            {
                "reason": "Nämnden sammanträder senare.",
                "due": "2024-10-03",
                "previous": "2024-09-12",
            },
        )
    ]
    assert t.state.step("wait").due == dt.date(2024, 10, 3)


def test_extend_to_a_saturday_lands_on_the_friday_before(run, hold_plan, started):
    """Extended to Saturday 2024-06-29, the step is due Friday 28 June, declared the 29th."""
    t = run(hold_plan, extend("2024-06-29"), state=started)
    data = t.events[0].data
    assert (data["due"], data["due_declared"]) == ("2024-06-28", "2024-06-29")
    assert t.state.step("wait").due == dt.date(2024, 6, 28)


def test_extend_to_midsommardagen_skips_back_past_midsommarafton(run, hold_plan, started):
    """Saturday 2024-06-22 is midsommardagen; the Friday before is off too: due Thursday 20th."""
    t = run(hold_plan, extend("2024-06-22"), state=started)
    assert t.state.step("wait").due == dt.date(2024, 6, 20)
    assert t.events[0].data["due_declared"] == "2024-06-22"


def test_extend_to_a_past_day_is_refused(run, hold_plan, started):
    """Extending to yesterday (Sunday 16 June, seen on Monday 17th) is invalid input."""
    with pytest.raises(InvalidInput, match="has passed"):
        run(hold_plan, extend("2024-06-16"), state=started)


def test_extend_to_today_is_allowed(run, hold_plan, started, now):
    """Today has not passed: extending to it is accepted."""
    t = run(hold_plan, extend(now.date().isoformat()), state=started)
    assert t.state.step("wait").due == now.date()


def test_extend_a_step_without_a_due_date_gives_it_one(run, hold_plan, started):
    """A step with no due date can be given one; the event has no ``previous``."""
    t = run(hold_plan, extend("2024-10-03", step="open"), state=started)
    assert "previous" not in t.events[0].data
    assert t.state.step("open").due == dt.date(2024, 10, 3)


@pytest.mark.parametrize("reason", ["", "  "])
def test_extend_requires_a_reason(run, hold_plan, started, reason):
    """An extension without a reason is refused as invalid input."""
    with pytest.raises(InvalidInput, match="reason is required"):
        run(hold_plan, extend("2024-10-03", reason=reason), state=started)


def test_a_held_step_can_be_extended_and_stays_held(run, hold_plan, started):
    """Extending a held step moves its due date; resuming then adds the days held to it."""
    held = run(hold_plan, hold(), state=started, at=at("2024-06-27")).state
    extended = run(hold_plan, extend("2024-10-03"), state=held, at=at("2024-07-01")).state
    assert extended.step("wait").held_since is not None
    assert extended.step("wait").due == dt.date(2024, 10, 3)
    resumed = run(hold_plan, resume(), state=extended, at=at("2024-07-04")).state
    assert resumed.step("wait").due == dt.date(2024, 10, 10)


# --- notes, overdue, replay ---------------------------------------------------------------


def test_hold_and_extend_reasons_become_step_notes(run, hold_plan, started):
    """Each hold and extension reason becomes a note on the step, by its actor; resume adds none."""
    held = run(hold_plan, hold(), state=started, at=at("2024-06-27")).state
    resumed = run(hold_plan, resume(), state=held, at=at("2024-07-04")).state
    final = run(hold_plan, extend("2024-10-03"), state=resumed, at=at("2024-07-05")).state
    assert [(n.step, n.actor, n.text, n.at) for n in final.notes] == [
        ("wait", "coord", "Väntar på remissvar från Region Skåne.", at("2024-06-27")),
        ("wait", "coord", "Nämnden sammanträder senare.", at("2024-07-05")),
    ]


def test_a_held_step_is_never_overdue(run, hold_plan, started):
    """Past its due date, the step is overdue; held, it is not (nor is the point)."""
    late = dt.date(2024, 9, 20)
    assert is_overdue(hold_plan, started, late)
    assert [s.id for s in overdue_steps(started, late)] == ["wait"]
    held = run(hold_plan, hold(), state=started).state
    assert not is_overdue(hold_plan, held, late)
    assert overdue_steps(held, late) == []


def test_a_held_step_is_not_at_risk(run, hold_plan, started, calendar):
    """Two working days before its due date the step is at risk; held, it is not."""
    soon = dt.date(2024, 9, 10)
    assert is_at_risk(hold_plan, started, soon, within=5, calendar=calendar)
    held = run(hold_plan, hold(), state=started).state
    assert not is_at_risk(hold_plan, held, soon, within=5, calendar=calendar)


def test_events_replay_to_the_same_state(run, hold_plan):
    """Start, hold, extend, resume, begin, hold again, complete: replaying the events agrees."""
    steps = [
        (StartPoint(actor="coord"), at("2024-06-17")),
        (hold(), at("2024-06-20")),
        (hold("open", reason="Väntar på IT."), at("2024-06-24")),
        (extend("2024-09-27"), at("2024-06-25")),
        (resume(), at("2024-06-27")),
        (BeginStep(actor="bo", step="wait"), at("2024-07-01")),
        (hold(reason="Väntar igen."), at("2024-07-02")),
        (CompleteStep(actor="bo", step="wait", note="Klart."), at("2024-07-03")),
    ]
    state = initial(hold_plan)
    events = []
    for command, when in steps:
        t = run(hold_plan, command, state=state, at=when)
        state = t.state
        events.extend(t.events)
    assert replay(hold_plan, events) == state
    folded = initial(hold_plan)
    for event in events:
        folded = evolve(folded, event)
    assert folded == state
    assert state.step("wait").due == dt.date(2024, 10, 3)  # 27 Sept + 4 working days held
    assert state.step("open").held_since == at("2024-06-24")
    assert state.step("wait").held_since is None


def test_an_extension_that_a_day_off_moves_into_the_past_is_refused(run, hold_plan):
    """On a Saturday, extending to that Saturday would land on the Friday before: refused."""
    saturday = dt.datetime(2024, 9, 14, 10, 0, tzinfo=ZoneInfo("Europe/Stockholm"))
    started = run(hold_plan, StartPoint(actor="coord")).state
    with pytest.raises(InvalidInput, match="would move to 2024-09-13"):
        run(
            hold_plan,
            ExtendStep(actor="coord", step="wait", to=saturday.date(), reason="Förlängt."),
            state=started,
            at=saturday,
        )
