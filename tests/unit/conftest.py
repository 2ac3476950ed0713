"""Shared fixtures for the pure machine: plans built in Python, a calendar and a fixed ``now``.

Plans are frozen, so the fixtures are session-scoped and safe to share with
hypothesis tests. Helpers are offered as fixtures (``run``, ``replay_all``)
because test modules are imported with ``--import-mode=importlib`` and cannot
import this file.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from zoneinfo import ZoneInfo

import pytest

from workflow.core.actions import (
    Action,
    AddNote,
    BeginStep,
    CompleteStep,
    ExtendStep,
    HoldStep,
    ReassignStep,
    ReopenStep,
    RequestExtension,
    ResumeStep,
    SkipStep,
    StartPoint,
    WriteOff,
)
from workflow.core.calendar import Calendar
from workflow.core.machine import Transition, allowed_actions, execute
from workflow.core.plan import (
    MANAGER,
    AssignmentPlan,
    Definitions,
    Directory,
    Localized,
    PointPlan,
    Rung,
    StepPlan,
)
from workflow.core.specs import DayKind, DueAnchor, DueRule, Duration, Language, Person
from workflow.core.state import Category, PointState, category, initial, replay

STOCKHOLM = ZoneInfo("Europe/Stockholm")

#: Monday 17 June 2024, the week of midsommarafton (Friday 21 June).
NOW = dt.datetime(2024, 6, 17, 9, 30, tzinfo=STOCKHOLM)


def _step(
    step_id: str,
    owner: str,
    *,
    after: tuple[str, ...] = (),
    due: DueRule | None = None,
    requires_note: bool = False,
) -> StepPlan:
    return StepPlan(
        id=step_id,
        title=Localized(sv=f"Moment {step_id}", en=f"Step {step_id}"),
        owner=owner,
        after=after,
        due=due,
        requires_note=requires_note,
    )


def _point(number: int, steps: tuple[StepPlan, ...], **extra: object) -> PointPlan:
    return PointPlan(
        assignment="hrv-2022",
        number=number,
        title=Localized(sv=f"Punkt {number}"),
        owner="anna",
        steps=steps,
        **extra,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="session")
def now() -> dt.datetime:
    """A fixed, timezone-aware ``now``: Monday 2024-06-17 09:30 in Stockholm."""
    return NOW


@pytest.fixture(scope="session")
def calendar() -> Calendar:
    """The default calendar: Swedish days off, due dates move to the previous working day."""
    return Calendar()


@pytest.fixture(scope="session")
def linear_plan() -> PointPlan:
    """draft -> review -> publish; review needs a note to be completed."""
    return _point(
        1,
        (
            _step("draft", "anna"),
            _step("review", "bo", after=("draft",), requires_note=True),
            _step("publish", "cilla", after=("review",)),
        ),
    )


@pytest.fixture(scope="session")
def diamond_plan() -> PointPlan:
    """a -> (b, c) -> d: b and c run in parallel, d waits for both."""
    return _point(
        2,
        (
            _step("a", "anna"),
            _step("b", "bo", after=("a",)),
            _step("c", "cilla", after=("a",)),
            _step("d", "anna", after=("b", "c")),
        ),
    )


@pytest.fixture(scope="session")
def due_plan() -> PointPlan:
    """Independent steps, one per kind of due rule, all active as soon as the point starts.

    The point starts on 2024-06-03 (declared) and is due 2024-11-30 (a Saturday).
    """
    return _point(
        3,
        (
            _step("fixed", "anna", due=DueRule(DueAnchor.DATE, date=dt.date(2024, 12, 24))),
            _step(
                "from_start",
                "bo",
                due=DueRule(DueAnchor.START, after=Duration(10, DayKind.BUSINESS)),
            ),
            _step(
                "from_activation",
                "cilla",
                due=DueRule(DueAnchor.ACTIVATION, after=Duration(5, DayKind.BUSINESS)),
            ),
            _step(
                "calendar_days",
                "anna",
                due=DueRule(DueAnchor.ACTIVATION, after=Duration(12, DayKind.CALENDAR)),
            ),
            _step("inherited", "bo"),
        ),
        start=dt.date(2024, 6, 3),
        due=dt.date(2024, 11, 30),
    )


@pytest.fixture(scope="session")
def chained_due_plan() -> PointPlan:
    """prepare -> decide, where decide is due 3 business days after it becomes active."""
    return _point(
        6,
        (
            _step("prepare", "anna"),
            _step(
                "decide",
                "bo",
                after=("prepare",),
                due=DueRule(DueAnchor.ACTIVATION, after=Duration(3, DayKind.BUSINESS)),
            ),
        ),
    )


@pytest.fixture(scope="session")
def single_plan() -> PointPlan:
    """One step and nothing else, the smallest running point."""
    return _point(4, (_step("only", "anna"),))


@pytest.fixture(scope="session")
def rejected_plan() -> PointPlan:
    """A point the council decided against (avslag): no steps."""
    return _point(5, (), rejected=True)


@pytest.fixture(scope="session")
def all_plans(
    linear_plan: PointPlan,
    diamond_plan: PointPlan,
    due_plan: PointPlan,
    single_plan: PointPlan,
    chained_due_plan: PointPlan,
) -> tuple[PointPlan, ...]:
    """Every runnable plan above, for property tests that range over plans."""
    return (linear_plan, diamond_plan, due_plan, single_plan, chained_due_plan)


Run = Callable[..., Transition]


@pytest.fixture(scope="session")
def run(calendar: Calendar) -> Run:
    """Execute commands one after another from ``state`` (or the initial state).

    ``run(plan, *commands, state=None, at=NOW)`` returns the last transition;
    every command happens at ``at``.
    """

    def _run(
        plan: PointPlan,
        *commands: Action,
        state: PointState | None = None,
        at: dt.datetime = NOW,
    ) -> Transition:
        current = state if state is not None else initial(plan)
        transition = Transition(current, ())
        for command in commands:
            transition = execute(plan, current, command, now=at, calendar=calendar)
            current = transition.state
        return transition

    return _run


@pytest.fixture(scope="session")
def replay_all() -> Callable[[PointPlan, Iterable[Transition]], PointState]:
    """Fold the events of several transitions from the initial state."""

    def _replay(plan: PointPlan, transitions: Iterable[Transition]) -> PointState:
        return replay(plan, [event for t in transitions for event in t.events])

    return _replay


PEOPLE = ("anna", "bo", "cilla", "dan")


def _step_command(verb: str, step: str, owner: str) -> Action:
    """A valid-looking command for one CLI verb on one step."""
    if verb == "begin":
        return BeginStep(actor=owner, step=step)
    if verb == "complete":
        return CompleteStep(actor=owner, step=step, note="Klart.")
    if verb == "skip":
        return SkipStep(actor="coord", step=step, reason="Behövs inte.")
    if verb == "reopen":
        return ReopenStep(actor="coord", step=step)
    if verb == "hold":
        return HoldStep(actor="coord", step=step, reason="Väntar på extern part.")
    if verb == "resume":
        return ResumeStep(actor="coord", step=step)
    if verb == "extend":
        return ExtendStep(actor="coord", step=step, to=dt.date(2030, 6, 14), reason="Förlängt.")
    if verb == "delay":
        return RequestExtension(actor=owner, step=step, days=10, reason="Väntar på svar.")
    assert verb == "assign", verb
    return ReassignStep(actor="coord", step=step, to=next(p for p in PEOPLE if p != owner))


def candidate_commands(
    plan: PointPlan, state: PointState, *, reopen: bool = True, write_off: bool = True
) -> list[Action]:
    """Commands worth trying on ``state``: one valid-looking command per allowed verb."""
    cat = category(plan, state)
    commands: list[Action] = []
    if state.started_at is None and cat is Category.TO_START:
        commands.append(StartPoint(actor="coord"))
    for step in plan.steps:
        owner = state.step(step.id).owner
        commands.extend(
            _step_command(verb, step.id, owner)
            for verb in allowed_actions(plan, state, step.id)
            if reopen or verb != "reopen"
        )
    if not plan.rejected:
        commands.append(AddNote(actor="coord", text="Lägesrapport."))
    if write_off and cat in (Category.TO_START, Category.ONGOING):
        commands.append(WriteOff(actor="coord", reason="Inaktuell."))
    return commands


Walk = Callable[..., list[tuple[PointState, Transition]]]


@pytest.fixture(scope="session")
def walk(calendar: Calendar) -> Walk:
    """Drive a plan through commands picked by ``choices``; return (state before, transition).

    ``walk(plan, choices, reopen=True, write_off=True)`` picks command
    ``choice % len(candidates)`` at each turn, one hour after the previous one.
    Write-off is offered only when ``choice`` is a multiple of 7, so most walks
    run long enough to reach interesting states.
    """

    def _walk(
        plan: PointPlan, choices: Iterable[int], *, reopen: bool = True, write_off: bool = True
    ) -> list[tuple[PointState, Transition]]:
        state = initial(plan)
        history: list[tuple[PointState, Transition]] = []
        for turn, choice in enumerate(choices):
            candidates = candidate_commands(
                plan, state, reopen=reopen, write_off=write_off and choice % 7 == 0
            )
            command = candidates[choice % len(candidates)]
            at = NOW + dt.timedelta(hours=turn)
            transition = execute(plan, state, command, now=at, calendar=calendar)
            history.append((state, transition))
            state = transition.state
        return history

    return _walk


@pytest.fixture(scope="session")
def step_command() -> Callable[[str, str, str], Action]:
    """Build a valid-looking command for a CLI verb: ``step_command(verb, step, owner)``."""
    return _step_command


# --- deadlines: a step with reminders and an escalation ladder, and the people it reaches ---


@pytest.fixture(scope="session")
def ladder_plan() -> PointPlan:
    """Point 7: one step ``answer`` owned by bo, due Thursday 2024-06-20 (before midsommar).

    Reminders at -5bd and -1bd; the ladder: manager after 2bd, manager after
    5bd, dan after 10 calendar days, manager after 15bd (a third manager rung,
    past the top of bo's chain).
    """
    answer = StepPlan(
        id="answer",
        title=Localized(sv="Svara", en="Answer"),
        owner="bo",
        due=DueRule(DueAnchor.DATE, date=dt.date(2024, 6, 20)),
        remind=(Duration(-5, DayKind.BUSINESS), Duration(-1, DayKind.BUSINESS)),
        escalate=(
            Rung(1, Duration(2, DayKind.BUSINESS), MANAGER),
            Rung(2, Duration(5, DayKind.BUSINESS), MANAGER),
            Rung(3, Duration(10, DayKind.CALENDAR), "dan"),
            Rung(4, Duration(15, DayKind.BUSINESS), MANAGER),
        ),
    )
    return _point(7, (answer,))


@pytest.fixture(scope="session")
def hold_plan() -> PointPlan:
    """Point 8: ``wait`` (bo, due Thursday 2024-09-12) and ``open`` (anna, no due date).

    Both are active as soon as the point starts; the point itself has no due date.
    """
    return _point(
        8,
        (
            _step("wait", "bo", due=DueRule(DueAnchor.DATE, date=dt.date(2024, 9, 12))),
            _step("open", "anna"),
        ),
    )


@pytest.fixture(scope="session")
def people() -> Directory:
    """bo -> chef -> direktor (the top); chef is away 2024-06-28..07-05 (vice stands in).

    eva is away 2024-07-01..07-05 with frida as substitute, and again 2024-08-01..08-02
    with no substitute named; dan, anna and coord have no manager.
    """

    def person(person_id: str, **extra: object) -> Person:
        return Person.model_validate(
            {"id": person_id, "name": person_id.title(), "email": f"{person_id}@kommun.se", **extra}
        )

    return Directory(
        {
            p.id: p
            for p in (
                person("bo", manager="chef"),
                person(
                    "chef",
                    manager="direktor",
                    away=[{"from": "2024-06-28", "to": "2024-07-05", "substitute": "vice"}],
                ),
                person("direktor"),
                person("vice"),
                person("dan"),
                person("anna"),
                person("coord"),
                person(
                    "eva",
                    away=[
                        {"from": "2024-07-01", "to": "2024-07-05", "substitute": "frida"},
                        {"from": "2024-08-01", "to": "2024-08-02"},
                    ],
                ),
                person("frida"),
            )
        }
    )


@pytest.fixture(scope="session")
def ladder_definitions(ladder_plan: PointPlan, people: Directory) -> Definitions:
    """Definitions holding one assignment ``hrv-2022`` (coordinator: coord) with ladder_plan."""
    assignment = AssignmentPlan(
        id="hrv-2022",
        title=Localized(sv="Handlingsplan"),
        reference="KS 2022/1",
        decided_by="Kommunstyrelsen",
        decided_on=dt.date(2022, 5, 2),
        lead="anna",
        coordinator="coord",
        report_back=dt.date(2024, 12, 31),
        language=Language.SV,
        points=(ladder_plan,),
    )
    return Definitions(
        directory=people, workflows={}, assignments={assignment.id: assignment}, sources={}
    )
