"""Who may act: owners on their steps, substitutes on the days they stand in, the
coordinator and administrators on everything, and nobody else."""

from __future__ import annotations

import datetime as dt

import pytest

from workflow.core import permissions
from workflow.core.actions import (
    SYSTEM,
    AddNote,
    BeginStep,
    CompleteStep,
    ExtendStep,
    ReassignStep,
    StartPoint,
    WriteOff,
)
from workflow.core.plan import Directory, PointPlan
from workflow.core.specs import Person
from workflow.core.state import PointState
from workflow.errors import EXIT_CONFLICT, NotPermitted

AUTHORITY = permissions.Authority(
    coordinator="coord", administrators=frozenset({"admin"}), role="council-admin"
)
DAY = dt.date(2024, 6, 17)


def _person(pid: str, **extra: object) -> Person:
    return Person.model_validate({"id": pid, "name": pid, "email": f"{pid}@kommun.example",
                                  **extra})  # fmt: skip


@pytest.fixture(scope="module")
def directory() -> Directory:
    """bo is away in June 2024 and cilla stands in for him; dag is nobody's substitute."""
    people = [
        _person("anna"),
        _person("bo", away=[{"from": "2024-06-01", "to": "2024-06-30", "substitute": "cilla"}]),
        _person("cilla"),
        _person("dag"),
        _person("coord"),
        _person("admin", roles=["council-admin"]),
    ]
    return Directory({p.id: p for p in people})


@pytest.fixture(scope="module")
def started(run, linear_plan: PointPlan) -> PointState:  # type: ignore[no-untyped-def]
    """linear_plan started: draft (anna) active, review (bo) and publish (cilla) pending."""
    return run(linear_plan, StartPoint(actor="coord")).state


def check(plan, state, action, directory, day=DAY):  # type: ignore[no-untyped-def]
    permissions.check(plan, state, action, authority=AUTHORITY, directory=directory, day=day,
                      verb="do")  # fmt: skip


@pytest.mark.parametrize("who", ["anna", "coord", "admin", SYSTEM])
def test_the_owner_the_coordinator_administrators_and_the_system_may_move_a_step(
    who: str, linear_plan: PointPlan, started: PointState, directory: Directory
) -> None:
    """anna owns draft; the coordinator, an administrator and council itself may act too."""
    for action in (
        BeginStep(actor=who, step="draft"),
        CompleteStep(actor=who, step="draft"),
        ReassignStep(actor=who, step="draft", to="dag"),
        AddNote(actor=who, step="draft", text="t"),
    ):
        check(linear_plan, started, action, directory)


@pytest.mark.parametrize("who", ["bo", "cilla", "dag"])
def test_anyone_else_may_not_move_someone_elses_step(
    who: str, linear_plan: PointPlan, started: PointState, directory: Directory
) -> None:
    """bo, cilla and dag own no part of draft: refused, exit 4, one line saying who may."""
    with pytest.raises(NotPermitted) as refused:
        check(linear_plan, started, CompleteStep(actor=who, step="draft"), directory)
    error = refused.value
    assert error.exit_code == EXIT_CONFLICT
    assert str(error) == (
        f"{who} may not do hrv-2022/1/draft: only anna, whoever stands in for them today, "
        "the coordinator coord or an administrator (role council-admin) may"
    )
    assert "\n" not in str(error)


def test_a_substitute_may_act_on_the_days_they_stand_in(
    linear_plan: PointPlan, started: PointState, directory: Directory
) -> None:
    """cilla stands in for bo in June: she may move his step then, not in July."""
    action = AddNote(actor="cilla", step="review", text="Läget")
    check(linear_plan, started, action, directory, day=dt.date(2024, 6, 30))
    with pytest.raises(NotPermitted):
        check(linear_plan, started, action, directory, day=dt.date(2024, 7, 1))


def test_a_point_note_may_come_from_any_owner_of_the_point(
    linear_plan: PointPlan, started: PointState, directory: Directory
) -> None:
    """Every step owner of the point (and who stands in for them) may note the point; dag
    may not."""
    for who in ("anna", "bo", "cilla", "coord"):
        check(linear_plan, started, AddNote(actor=who, text="Läget"), directory)
    with pytest.raises(NotPermitted, match=r"only anna, bo, cilla, whoever stands in for them"):
        check(linear_plan, started, AddNote(actor="dag", text="Läget"), directory)


@pytest.mark.parametrize("action", [StartPoint(actor="anna"), WriteOff(actor="anna", reason="r")])
def test_starting_and_writing_off_are_for_the_coordinator_and_administrators(
    action, linear_plan: PointPlan, started: PointState, directory: Directory
) -> None:  # type: ignore[no-untyped-def]
    """Even the point's owner may not start or write off a point."""
    with pytest.raises(NotPermitted, match="only the coordinator coord or an administrator"):
        check(linear_plan, started, action, directory)
    check(linear_plan, started, WriteOff(actor="admin", reason="r"), directory)


def test_extending_a_due_date_is_for_the_coordinator_and_administrators(
    linear_plan: PointPlan, started: PointState, directory: Directory
) -> None:
    """More time is granted, not taken: anna asks with `delay`; coord and admin extend."""
    extend = {who: ExtendStep(actor=who, step="draft", to=dt.date(2024, 7, 1), reason="r")
              for who in ("anna", "coord", "admin", SYSTEM)}  # fmt: skip
    with pytest.raises(NotPermitted, match="anna may not do hrv-2022/1/draft: only the coord"):
        check(linear_plan, started, extend["anna"], directory)
    for who in ("coord", "admin", SYSTEM):
        check(linear_plan, started, extend[who], directory)


def test_recording_on_someones_behalf_is_for_the_coordinator_and_administrators(
    linear_plan: PointPlan, started: PointState, directory: Directory
) -> None:
    """The coordinator may enter anna's completion for her; bo may not enter it for her,
    and anna may not have it entered by dag."""
    check(linear_plan, started, CompleteStep(actor="anna", recorded_by="coord", step="draft"),
          directory)  # fmt: skip
    for typist in ("bo", "dag"):
        entered = CompleteStep(actor="anna", recorded_by=typist, step="draft")
        with pytest.raises(NotPermitted, match=f"{typist} may not do on behalf of anna"):
            check(linear_plan, started, entered, directory)


def test_an_unknown_step_is_left_to_the_machine(
    linear_plan: PointPlan, started: PointState, directory: Directory
) -> None:
    """A step the point does not have is not a permission question (the machine says
    'not found')."""
    check(linear_plan, started, CompleteStep(actor="dag", step="nope"), directory)
