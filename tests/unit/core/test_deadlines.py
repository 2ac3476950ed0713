"""Deadlines: what fires when (reminders, overdue notice, escalation rungs), to whom, once.

The schedule is pure (plan, state, calendar); the sweep and ``council simulate``
fire what :func:`deadlines.due_now` returns, once per key. The property tests
replay that sweep over random ladders and random sweep days.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workflow.core import deadlines, simulate
from workflow.core.actions import CompleteStep, ExtendStep, HoldStep, StartPoint
from workflow.core.calendar import Calendar
from workflow.core.deadlines import (
    Firing,
    Recipient,
    default_reminders,
    due_now,
    next_check,
    recipient,
    schedule,
)
from workflow.core.events import FiringKind
from workflow.core.plan import MANAGER, Rung
from workflow.core.specs import DayKind, Duration
from workflow.core.state import StepState, StepStatus

STOCKHOLM = ZoneInfo("Europe/Stockholm")
REMINDER, OVERDUE, ESCALATION = FiringKind.REMINDER, FiringKind.OVERDUE, FiringKind.ESCALATION
#: ladder_plan's due date: Thursday before midsommarafton (Friday 2024-06-21).
DUE = dt.date(2024, 6, 20)


def bd(days: int) -> Duration:
    return Duration(days, DayKind.BUSINESS)


def cd(days: int) -> Duration:
    return Duration(days, DayKind.CALENDAR)


def d(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def active(
    due: dt.date | None,
    activated: dt.date,
    *,
    status: StepStatus = StepStatus.ACTIVE,
    held: bool = False,
    step_id: str = "answer",
) -> StepState:
    """A step state as the machine leaves it: activated at 09:30 local time on ``activated``."""
    at = dt.datetime.combine(activated, dt.time(9, 30), tzinfo=STOCKHOLM)
    return StepState(
        id=step_id,
        owner="bo",
        status=status,
        due=due,
        activated_at=at,
        held_since=at if held else None,
    )


def summary(firings: list[Firing]) -> list[tuple[FiringKind, int, dt.date]]:
    return [(f.kind, f.level, f.fires_on) for f in firings]


@pytest.fixture(scope="module")
def answer(ladder_plan):
    """ladder_plan's only step (reminders -5bd, -1bd; four rungs)."""
    return ladder_plan.step("answer")


@pytest.fixture(scope="module")
def full(ladder_plan, answer, calendar):
    """ladder_plan's schedule for a step activated 2024-06-03, well before every reminder."""
    return schedule(ladder_plan, answer, active(DUE, d("2024-06-03")), calendar)


# --- schedule ----------------------------------------------------------------------


def test_schedule_lists_every_kind_on_its_exact_day(full):
    """Due Thu 2024-06-20 before midsommar: each reminder, notice and rung on its exact day.

    -5bd is Thu 13 June, -1bd Wed 19 June; the overdue notice skips midsommarafton
    and the weekend to Mon 24 June; rungs count working days from the due date
    (2bd Tue 25, 5bd Fri 28 June, 15bd Fri 12 July), the calendar-day rung does
    not (10d is Sunday 30 June).
    """
    assert summary(full) == [
        (REMINDER, 1, d("2024-06-13")),
        (REMINDER, 2, d("2024-06-19")),
        (OVERDUE, 0, d("2024-06-24")),
        (ESCALATION, 1, d("2024-06-25")),
        (ESCALATION, 2, d("2024-06-28")),
        (ESCALATION, 3, d("2024-06-30")),
        (ESCALATION, 4, d("2024-07-12")),
    ]


def test_schedule_firings_carry_the_step_due_date_and_rung_targets(full):
    """Every firing names the step and its due date; rungs carry their target, others none."""
    assert {(f.assignment, f.point, f.step, f.step_due) for f in full} == {
        ("hrv-2022", 7, "answer", DUE)
    }
    assert [f.target for f in full] == [None, None, None, MANAGER, MANAGER, "dan", MANAGER]


def test_keys_name_step_due_date_kind_and_level_and_are_unique(full):
    """A key is assignment/point/step:due:kind:level, and no two firings share one."""
    assert full[2].key == "hrv-2022/7/answer:2024-06-20:overdue:0"
    assert full[3].key == "hrv-2022/7/answer:2024-06-20:escalation:1"
    assert len({f.key for f in full}) == len(full)


@pytest.mark.parametrize(
    ("due", "notice"),
    [
        ("2024-06-20", "2024-06-24"),  # Thu before midsommarafton: Monday
        ("2024-03-28", "2024-04-02"),  # Skärtorsdag: past Easter to Tuesday
        ("2024-05-08", "2024-05-10"),  # Wed before Ascension Thursday: Friday
        ("2024-12-30", "2025-01-02"),  # past nyårsafton and nyårsdagen
        ("2024-06-11", "2024-06-12"),  # an ordinary Tuesday: the next day
    ],
)
def test_overdue_notice_fires_on_the_first_working_day_after_the_due_date(
    ladder_plan, answer, calendar, due, notice
):
    """The overdue notice fires on the first working day after the due date, over holidays."""
    firings = schedule(ladder_plan, answer, active(d(due), d("2024-01-02")), calendar)
    assert [f.fires_on for f in firings if f.kind is OVERDUE] == [d(notice)]


def test_calendar_day_rungs_may_fire_on_a_holiday_business_day_rungs_never_do(
    ladder_plan, answer, calendar
):
    """Due Skärtorsdag 2024-03-28: 1d fires on Långfredagen, 1bd on the Tuesday after Easter."""
    plan = dataclasses.replace(
        answer, remind=(), escalate=(Rung(1, cd(1), MANAGER), Rung(2, bd(1), MANAGER))
    )
    firings = schedule(ladder_plan, plan, active(d("2024-03-28"), d("2024-03-01")), calendar)
    rungs = {f.level: f.fires_on for f in firings if f.kind is ESCALATION}
    assert rungs == {1: d("2024-03-29"), 2: d("2024-04-02")}


def test_reminders_before_activation_are_dropped(ladder_plan, answer, calendar):
    """Activated Mon 17 June: the -5bd reminder (13 June) is gone, -1bd (19 June) stays."""
    firings = schedule(ladder_plan, answer, active(DUE, d("2024-06-17")), calendar)
    assert [(f.level, f.fires_on) for f in firings if f.kind is REMINDER] == [(2, d("2024-06-19"))]


def test_a_reminder_on_the_activation_day_is_kept(ladder_plan, answer, calendar):
    """Activated on the very day of the -5bd reminder (Thu 13 June): it is kept."""
    firings = schedule(ladder_plan, answer, active(DUE, d("2024-06-13")), calendar)
    assert [f.fires_on for f in firings if f.kind is REMINDER] == [d("2024-06-13"), d("2024-06-19")]


def test_reminders_after_the_due_date_are_dropped(ladder_plan, answer, calendar):
    """A positive reminder offset would fire after the due date: it never does."""
    plan = dataclasses.replace(answer, remind=(bd(-1), bd(2)))
    firings = schedule(ladder_plan, plan, active(DUE, d("2024-06-03")), calendar)
    assert [f.fires_on for f in firings if f.kind is REMINDER] == [d("2024-06-19")]


@pytest.mark.parametrize(
    "state",
    [
        active(DUE, d("2024-06-03"), held=True),
        active(DUE, d("2024-06-03"), status=StepStatus.DONE),
        active(DUE, d("2024-06-03"), status=StepStatus.SKIPPED),
        active(DUE, d("2024-06-03"), status=StepStatus.PENDING),
        active(None, d("2024-06-03")),
    ],
    ids=["held", "done", "skipped", "pending", "no-due-date"],
)
def test_nothing_is_scheduled_for_held_finished_pending_or_undated_steps(
    ladder_plan, answer, calendar, state
):
    """Held, finished and pending steps, and steps with no due date, fire nothing."""
    assert schedule(ladder_plan, answer, state, calendar) == []


def test_an_in_progress_step_is_scheduled_like_an_active_one(ladder_plan, answer, calendar, full):
    """Beginning work does not stop the clock: an in-progress step has the same firings."""
    state = active(DUE, d("2024-06-03"), status=StepStatus.IN_PROGRESS)
    assert schedule(ladder_plan, answer, state, calendar) == full


def test_holding_the_step_empties_its_schedule(run, ladder_plan, calendar, now):
    """Held through the machine (step.held), the step's schedule is empty until resumed."""
    started = run(ladder_plan, StartPoint(actor="coord")).state
    held = run(ladder_plan, HoldStep(actor="coord", step="answer", reason="Väntar."), state=started)
    plan = ladder_plan.step("answer")
    assert schedule(ladder_plan, plan, started.step("answer"), calendar) != []
    assert schedule(ladder_plan, plan, held.state.step("answer"), calendar) == []


def test_completing_the_step_empties_its_schedule(run, ladder_plan, calendar):
    """A completed step fires nothing more."""
    done = run(
        ladder_plan, StartPoint(actor="coord"), CompleteStep(actor="bo", step="answer")
    ).state
    assert schedule(ladder_plan, ladder_plan.step("answer"), done.step("answer"), calendar) == []


def test_a_new_due_date_is_a_new_cycle_with_new_keys(run, ladder_plan, calendar):
    """Extended from 20 June to 27 June, every key changes, since the key names the due date."""
    plan = ladder_plan.step("answer")
    started = run(ladder_plan, StartPoint(actor="coord")).state
    extended = run(
        ladder_plan,
        ExtendStep(actor="coord", step="answer", to=d("2024-06-27"), reason="Remissvar dröjer."),
        state=started,
    ).state
    before = schedule(ladder_plan, plan, started.step("answer"), calendar)
    after = schedule(ladder_plan, plan, extended.step("answer"), calendar)
    assert {f.step_due for f in after} == {d("2024-06-27")}
    assert {f.key for f in before}.isdisjoint({f.key for f in after})
    # 27 June minus 5 working days (19 June) is after activation now: both reminders are due
    assert summary(after)[:3] == [
        (REMINDER, 1, d("2024-06-19")),
        (REMINDER, 2, d("2024-06-26")),
        (OVERDUE, 0, d("2024-06-28")),
    ]


def test_point_schedule_gathers_every_steps_firings(run, ladder_plan, calendar):
    """point_schedule is the firings of each step of the point, with the point's state."""
    state = run(ladder_plan, StartPoint(actor="coord")).state
    expected = schedule(ladder_plan, ladder_plan.step("answer"), state.step("answer"), calendar)
    assert deadlines.point_schedule(ladder_plan, state, calendar) == expected
    assert expected


# --- default reminders --------------------------------------------------------------


@pytest.mark.parametrize(
    ("due", "span", "expected"),
    [
        ("2024-07-17", 21, (bd(-10), bd(-2))),
        ("2024-07-16", 20, (bd(-5),)),
        ("2024-06-26", 6, (bd(-5),)),
        ("2024-06-25", 5, ()),
        ("2024-06-17", 0, ()),
    ],
)
def test_default_reminders_by_span(calendar, due, span, expected):
    """Over 20 working days: -10bd and -2bd; over 5: -5bd; 5 or fewer: none."""
    activated = d("2024-06-17")
    assert calendar.business_days_between(activated, d(due)) == span
    assert default_reminders(activated, d(due), calendar) == expected


@pytest.mark.parametrize(
    ("due", "reminders"),
    [
        ("2024-07-17", ["2024-07-03", "2024-07-15"]),
        ("2024-07-16", ["2024-07-09"]),
        ("2024-06-26", ["2024-06-18"]),
        ("2024-06-25", []),
    ],
)
def test_a_step_declaring_no_reminders_gets_the_default_policy(
    ladder_plan, answer, calendar, due, reminders
):
    """With ``remind`` undeclared (None) the schedule holds the default reminders' days."""
    plan = dataclasses.replace(answer, remind=None)
    firings = schedule(ladder_plan, plan, active(d(due), d("2024-06-17")), calendar)
    assert [f.fires_on for f in firings if f.kind is REMINDER] == [d(r) for r in reminders]


def test_an_empty_reminder_list_means_no_reminders_not_the_default(ladder_plan, answer, calendar):
    """``remind: []`` is a declaration: a long step that declares it gets no reminders."""
    plan = dataclasses.replace(answer, remind=())
    firings = schedule(ladder_plan, plan, active(d("2024-07-17"), d("2024-06-17")), calendar)
    assert [f for f in firings if f.kind is REMINDER] == []
    assert [f.kind for f in firings][:1] == [OVERDUE]


# --- due_now -----------------------------------------------------------------------


def test_nothing_is_due_before_the_first_firing(full):
    """The day before the first reminder, nothing is due."""
    assert due_now(full, d("2024-06-12")) == []


def test_a_single_reminder_is_due_on_its_day(full):
    """On 13 June only the first reminder is due."""
    assert summary(due_now(full, d("2024-06-13"))) == [(REMINDER, 1, d("2024-06-13"))]


def test_of_several_reminders_due_at_once_only_the_latest(full):
    """On 19 June both reminders have come (a sweep missed the first): only -1bd is due."""
    assert summary(due_now(full, d("2024-06-19"))) == [(REMINDER, 2, d("2024-06-19"))]


def test_reminders_are_dropped_once_the_overdue_notice_is_due(full):
    """On 24 June the overdue notice is due and neither reminder is."""
    assert summary(due_now(full, d("2024-06-24"))) == [(OVERDUE, 0, d("2024-06-24"))]


def test_reminders_are_dropped_once_an_escalation_is_due(ladder_plan, answer, calendar):
    """A 1d rung fires on midsommarafton, before the overdue notice: the reminder is dropped."""
    plan = dataclasses.replace(answer, escalate=(Rung(1, cd(1), MANAGER),))
    firings = schedule(ladder_plan, plan, active(DUE, d("2024-06-03")), calendar)
    assert summary(due_now(firings, d("2024-06-20"))) == [(REMINDER, 2, d("2024-06-19"))]
    assert summary(due_now(firings, d("2024-06-21"))) == [(ESCALATION, 1, d("2024-06-21"))]


def test_every_notice_and_rung_that_has_come_is_due(full):
    """On 12 July the notice and all four rungs are due (the sweep fires unfired keys only)."""
    assert summary(due_now(full, d("2024-07-12"))) == summary(full)[2:]


def test_the_latest_of_several_reminders_is_the_latest_dated_one(ladder_plan, answer, calendar):
    """With -6bd and -7d reminders, -7d (13 June) is later than -6bd (12 June): it alone fires.

    Due Thu 20 June: -6bd is Wed 12 June, -7d is Thu 13 June. A sweep on
    14 June finds both due; the one that fires must be the latest-dated, the
    one closest to the due date.
    """
    plan = dataclasses.replace(answer, remind=(bd(-6), cd(-7)))
    firings = schedule(ladder_plan, plan, active(DUE, d("2024-06-03")), calendar)
    assert sorted(f.fires_on for f in firings if f.kind is REMINDER) == [
        d("2024-06-12"),
        d("2024-06-13"),
    ]
    assert [f.fires_on for f in due_now(firings, d("2024-06-14"))] == [d("2024-06-13")]


@pytest.mark.parametrize(
    ("remind", "expected"),
    [
        ((bd(-5), bd(-1)), ["2024-06-13", "2024-06-19"]),
        ((bd(-6), cd(-7)), ["2024-06-12", "2024-06-13"]),
    ],
    ids=["same-kind", "mixed-kinds"],
)
def test_daily_sweeps_send_every_reminder_on_its_day(
    ladder_plan, answer, calendar, remind, expected
):
    """Sweeping every day from activation, each reminder fires on its own day, none is lost."""
    plan = dataclasses.replace(answer, remind=remind)
    firings = schedule(ladder_plan, plan, active(DUE, d("2024-06-03")), calendar)
    days = [d("2024-06-03") + dt.timedelta(days=n) for n in range(20)]
    _, _, fired = sweep_days(ladder_plan, answer, (DUE, d("2024-06-03"), remind, (), days))
    assert [day for f, day in fired if f.kind is REMINDER] == [d(x) for x in expected]
    assert len([f for f in firings if f.kind is REMINDER]) == len(expected)


# --- next_check ----------------------------------------------------------------------


def test_next_check_is_the_first_firing_day_when_no_day_is_given(full):
    """Without ``after``, the next check is the first firing day."""
    assert next_check(full) == d("2024-06-13")


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        ("2024-06-12", "2024-06-13"),
        ("2024-06-13", "2024-06-19"),
        ("2024-06-19", "2024-06-24"),
        ("2024-06-21", "2024-06-24"),
        ("2024-06-30", "2024-07-12"),
    ],
)
def test_next_check_is_strictly_after_the_given_day(full, after, expected):
    """The next check after a day is the first firing strictly later, never that day itself."""
    assert next_check(full, d(after)) == d(expected)


def test_next_check_is_none_once_everything_has_fired(full):
    """After the last rung, and for an empty schedule, there is nothing to check."""
    assert next_check(full, d("2024-07-12")) is None
    assert next_check([]) is None


# --- recipient -----------------------------------------------------------------------


def firing_of(full: list[Firing], kind: FiringKind, level: int) -> Firing:
    return next(f for f in full if f.kind is kind and f.level == level)


@pytest.mark.parametrize(("kind", "level"), [(REMINDER, 1), (REMINDER, 2), (OVERDUE, 0)])
def test_reminders_and_the_overdue_notice_go_to_the_owner(full, people, kind, level):
    """Reminders and the overdue notice go to the step's owner, with no explanation."""
    assert recipient(firing_of(full, kind, level), "bo", people, "coord", 0) == Recipient("bo")


@pytest.mark.parametrize(("rungs", "expected"), [(1, "chef"), (2, "direktor")])
def test_manager_rungs_climb_the_chain_one_level_each(full, people, rungs, expected):
    """The first manager rung reaches bo's manager, the second that manager's manager."""
    firing = firing_of(full, ESCALATION, 1)
    assert recipient(firing, "bo", people, "coord", rungs) == Recipient(expected)


def test_a_rung_past_the_top_goes_to_the_coordinator_and_says_so(full, people):
    """A third manager rung climbs past direktor: the coordinator gets it, with a reason."""
    found = recipient(firing_of(full, ESCALATION, 4), "bo", people, "coord", 3)
    assert found.person == "coord"
    assert found.via is not None
    assert "bo" in found.via
    assert "manager" in found.via


@pytest.mark.parametrize("owner", ["dan", "nobody-known"])
def test_an_owner_without_a_manager_escalates_to_the_coordinator(full, people, owner):
    """An owner with no manager (or not in people.yaml) escalates to the coordinator, saying so."""
    found = recipient(firing_of(full, ESCALATION, 1), owner, people, "coord", 1)
    assert found.person == "coord"
    assert found.via is not None


def test_a_rung_to_a_named_person_goes_to_that_person(full, people):
    """A ``to: dan`` rung reaches dan, whatever the manager chain, with no explanation."""
    assert recipient(firing_of(full, ESCALATION, 3), "bo", people, "coord", 2) == Recipient("dan")


@pytest.mark.parametrize(
    ("level", "day", "to", "via"),
    [
        (1, "2024-06-25", "chef", None),
        (2, "2024-06-25", "direktor", None),
        (3, "2024-06-25", "dan", None),
        (1, "2024-06-28", "vice", "substitute for chef, who is away"),
    ],
)
def test_resolve_counts_manager_rungs_and_reaches_a_substitute(
    full, answer, ladder_definitions, calendar, level, day, to, via
):
    """The sweep's resolve: rung 2 is the 2nd manager rung; chef away on 28 June -> vice."""
    state = active(DUE, d("2024-06-03"))
    fired = deadlines.resolve(
        firing_of(full, ESCALATION, level), answer, state, ladder_definitions.directory, "coord",
        d(day), calendar,
    )  # fmt: skip
    assert (fired.to, fired.via, fired.owner) == (to, via, "bo")


def test_resolve_sends_the_fourth_rung_the_third_manager_one_to_the_coordinator(
    full, answer, ladder_definitions, calendar
):
    """Rung 4 is the third ``to: manager`` rung (rung 3 names dan): past the top, to coord."""
    state = active(DUE, d("2024-06-03"))
    fired = deadlines.resolve(
        firing_of(full, ESCALATION, 4), answer, state, ladder_definitions.directory, "coord",
        d("2024-07-12"), calendar,
    )  # fmt: skip
    assert fired.to == "coord"
    assert fired.via is not None
    assert fired.days_overdue == 15


# --- Directory.substitute_on -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        ("2024-06-30", None),  # the day before the absence
        ("2024-07-01", "frida"),  # its first day
        ("2024-07-03", "frida"),
        ("2024-07-05", "frida"),  # its last day
        ("2024-07-06", None),  # the day after
    ],
)
def test_substitute_on_covers_the_absence_inclusively(people, day, expected):
    """eva is away 1-5 July: frida stands in on the first and last day, not the day after."""
    assert people.substitute_on("eva", d(day)) == expected


def test_away_without_a_named_substitute_or_unknown_person_has_none(people):
    """An absence naming no substitute, a person not away, or an unknown id: no substitute."""
    assert people.substitute_on("eva", d("2024-08-01")) is None
    assert people.substitute_on("bo", d("2024-07-01")) is None
    assert people.substitute_on("nobody-known", d("2024-07-01")) is None


# --- simulate.timeline ------------------------------------------------------------------


@pytest.fixture(scope="module")
def started(run, ladder_plan):
    """ladder_plan started on Mon 2024-06-17: answer is active, due Thu 2024-06-20."""
    return run(ladder_plan, StartPoint(actor="coord")).state


def timeline(definitions, started, *, start, until, fired=frozenset(), calendar=None):
    return simulate.timeline(
        definitions.directory,
        definitions.assignment("hrv-2022"),
        {("hrv-2022", 7): started},
        start=d(start),
        until=d(until),
        calendar=calendar or Calendar(),
        fired=set(fired),
    )


def test_timeline_lists_each_firing_on_its_day_to_its_recipient(ladder_definitions, started):
    """Day by day from activation: the -1bd reminder, the notice, then each rung, once each."""
    rows = timeline(ladder_definitions, started, start="2024-06-17", until="2024-07-31")
    assert [(r["fires_on"], r["kind"], r["level"], r["to"]) for r in rows] == [
        ("2024-06-19", "reminder", 2, "bo"),
        ("2024-06-24", "overdue", 0, "bo"),
        ("2024-06-25", "escalation", 1, "chef"),
        ("2024-06-28", "escalation", 2, "direktor"),
        ("2024-06-30", "escalation", 3, "dan"),
        ("2024-07-12", "escalation", 4, "coord"),
    ]
    assert [r["days_overdue"] for r in rows] == [0, 1, 2, 5, 5, 15]
    assert {(r["point"], r["step"], r["due"]) for r in rows} == {
        ("hrv-2022/7", "answer", "2024-06-20")
    }


def test_timeline_skips_keys_that_already_fired(ladder_definitions, started, ladder_plan):
    """Keys recorded as fired (the reminder and the notice) do not appear again."""
    firings = schedule(ladder_plan, ladder_plan.step("answer"), started.step("answer"), Calendar())
    done = {f.key for f in firings if f.kind is not ESCALATION}
    rows = timeline(ladder_definitions, started, start="2024-06-17", until="2024-07-31", fired=done)
    assert [(r["kind"], r["level"]) for r in rows] == [(ESCALATION.value, n) for n in (1, 2, 3, 4)]


def test_timeline_starting_late_catches_up_once_and_never_sends_the_reminder(
    ladder_definitions, started
):
    """Simulated from 26 June: the notice and rung 1 fire that day; the reminder never does."""
    rows = timeline(ladder_definitions, started, start="2024-06-26", until="2024-07-31")
    assert [(r["fires_on"], r["kind"], r["level"]) for r in rows] == [
        ("2024-06-26", "overdue", 0),
        ("2024-06-26", "escalation", 1),
        ("2024-06-28", "escalation", 2),
        ("2024-06-30", "escalation", 3),
        ("2024-07-12", "escalation", 4),
    ]


def test_timeline_stops_at_until(ladder_definitions, started):
    """Nothing after ``until`` is listed; a window before the first firing lists nothing."""
    rows = timeline(ladder_definitions, started, start="2024-06-17", until="2024-06-24")
    assert [r["fires_on"] for r in rows] == ["2024-06-19", "2024-06-24"]
    assert timeline(ladder_definitions, started, start="2024-06-17", until="2024-06-18") == []


def test_timeline_of_a_point_not_in_the_snapshot_is_empty(ladder_definitions):
    """A point with no state (never loaded) has nothing to simulate."""
    rows = simulate.timeline(
        ladder_definitions.directory,
        ladder_definitions.assignment("hrv-2022"),
        {},
        start=d("2024-06-17"),
        until=d("2024-07-31"),
        calendar=Calendar(),
        fired=set(),
    )
    assert rows == []


# --- properties: the sweep over random ladders and random sweep days ---------------------

kinds = st.sampled_from([DayKind.BUSINESS, DayKind.CALENDAR])
remind_offsets = st.lists(
    st.builds(lambda n, k: Duration(-n, k), st.integers(0, 25), kinds), max_size=4
)
ladders = st.lists(
    st.tuples(st.integers(0, 40), kinds, st.sampled_from([MANAGER, "dan"])), max_size=5
)
sweep_offsets = st.lists(st.integers(-10, 120), min_size=1, max_size=25, unique=True).map(sorted)


@st.composite
def scenarios(draw):
    """A due date, an activation before it, reminders, a ladder and increasing sweep days."""
    due = draw(st.dates(dt.date(2024, 1, 1), dt.date(2026, 12, 31)))
    activated = due - dt.timedelta(days=draw(st.integers(0, 90)))
    remind = draw(st.none() | remind_offsets)
    rungs = tuple(
        Rung(level, Duration(n, kind), to)
        for level, (n, kind, to) in enumerate(draw(ladders), start=1)
    )
    days = [activated + dt.timedelta(days=n) for n in draw(sweep_offsets)]
    return due, activated, (tuple(remind) if remind is not None else None), rungs, days


def sweep_days(ladder_plan, answer, scenario):
    """Sweep on each day as workflow/sweep.py does; return the schedule and (key, day) fired."""
    due, activated, remind, rungs, days = scenario
    plan = dataclasses.replace(answer, remind=remind, escalate=rungs)
    firings = schedule(ladder_plan, plan, active(due, activated), Calendar())
    claimed: set[str] = set()
    fired: list[tuple[Firing, dt.date]] = []
    for day in days:
        ready = [f for f in due_now(firings, day) if f.key not in claimed]
        claimed.update(f.key for f in ready)
        fired.extend((f, day) for f in ready)
        # superseded reminders are claimed too, so they never fire later
        claimed.update(f.key for f in firings if f.fires_on <= day and f not in ready)
    return firings, days, fired


@settings(max_examples=300, deadline=None)
@given(scenario=scenarios())
def test_sweeping_fires_each_key_at_most_once_and_never_early(ladder_plan, answer, scenario):
    """Over random sweeps every key fires at most once, never before its ``fires_on``."""
    firings, _, fired = sweep_days(ladder_plan, answer, scenario)
    keys = [f.key for f, _ in fired]
    assert len(keys) == len(set(keys))
    assert len({f.key for f in firings}) == len(firings)
    assert all(day >= f.fires_on for f, day in fired)


@settings(max_examples=300, deadline=None)
@given(scenario=scenarios())
def test_notice_and_every_rung_fire_by_the_first_sweep_on_or_after_their_day(
    ladder_plan, answer, scenario
):
    """The overdue notice and each rung fire on the first sweep day on or after ``fires_on``."""
    firings, days, fired = sweep_days(ladder_plan, answer, scenario)
    when = {f.key: day for f, day in fired}
    for firing in firings:
        if firing.kind is REMINDER:
            continue
        first = next((day for day in days if day >= firing.fires_on), None)
        assert when.get(firing.key) == first, firing.key


@settings(max_examples=300, deadline=None)
@given(scenario=scenarios())
def test_a_sweep_sends_at_most_one_reminder_and_none_once_overdue(ladder_plan, answer, scenario):
    """No sweep fires two reminders, nor a reminder once the notice or any rung has come."""
    firings, _, fired = sweep_days(ladder_plan, answer, scenario)
    first_alarm = min(f.fires_on for f in firings if f.kind is not REMINDER)
    reminder_days = [day for f, day in fired if f.kind is REMINDER]
    assert len(reminder_days) == len(set(reminder_days))
    assert all(day < first_alarm for day in reminder_days)


def test_the_activation_day_is_the_local_day_whatever_zone_the_time_is_in(ladder_plan):
    """An activation at 00:30 in Stockholm, read back in UTC, gives the same default reminders."""
    stockholm = ZoneInfo("Europe/Stockholm")
    calendar = Calendar(timezone=stockholm)
    step = dataclasses.replace(ladder_plan.steps[0], remind=None)
    local = dt.datetime(2024, 6, 17, 0, 30, tzinfo=stockholm)
    as_local = StepState(
        id=step.id, owner="bo", status=StepStatus.ACTIVE, due=dt.date(2024, 7, 16),
        activated_at=local,
    )  # fmt: skip
    as_utc = dataclasses.replace(as_local, activated_at=local.astimezone(dt.UTC))
    assert deadlines.schedule(ladder_plan, step, as_utc, calendar) == deadlines.schedule(
        ladder_plan, step, as_local, calendar
    )
