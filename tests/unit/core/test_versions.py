"""Stored versions of a plan, and the machine carrying a point over to an amended plan."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest

from tests.support import DEFINITIONS
from workflow.core import versions
from workflow.core.actions import Amend, CompleteStep, StartPoint
from workflow.core.calendar import Calendar
from workflow.core.machine import execute
from workflow.core.plan import PointPlan, StepPlan
from workflow.core.state import initial, replay
from workflow.core.values import DueRule
from workflow.definitions.loader import load

TZ = ZoneInfo("Europe/Stockholm")
CAL = Calendar()


def at(day: str) -> dt.datetime:
    return dt.datetime.fromisoformat(f"{day}T09:00").replace(tzinfo=TZ)


@pytest.mark.parametrize("assignment", sorted(load([DEFINITIONS]).assignments))
def test_a_stored_plan_reads_back_equal_with_its_digest(assignment: str) -> None:
    """Every bundled plan (inline steps, workflows, overrides, duties) survives JSON."""
    plan = load([DEFINITIONS]).assignment(assignment)
    back = versions.from_data(json.loads(json.dumps(versions.to_data(plan))))
    assert back == plan
    assert back.digest == plan.digest


def test_a_stored_plan_of_another_format_is_refused() -> None:
    plan = load([DEFINITIONS]).assignment("kf-2024-lokalforsorjning")
    data = {**versions.to_data(plan), "format": 99}
    with pytest.raises(ValueError, match="format 99"):
        versions.from_data(data)


def _point() -> PointPlan:
    return load([DEFINITIONS]).assignment("kf-2024-lokalforsorjning").point(2)


def test_amend_activates_an_added_step_after_done_work_and_never_undoes_it() -> None:
    """study and decide done (completed); the amended plan adds `check` after decide: it is
    activated for its owner; study and decide stay done; completing check completes again."""
    old = _point()
    events = []
    state = initial(old)
    steps = [
        (StartPoint(actor="erik.sjoberg"), "2024-05-06"),
        (CompleteStep(actor="per.lund", step="study"), "2024-05-20"),
        (CompleteStep(actor="per.lund", step="decide", note="Ja."), "2024-05-27"),
    ]
    for action, day in steps:
        t = execute(old, state, action, now=at(day), calendar=CAL)
        state, events = t.state, [*events, *t.events]
    assert state.completed_at is not None
    check = StepPlan(id="check", title=old.steps[0].title, owner="ulla.wik", after=("decide",),
                     due=DueRule.parse("5bd"))  # fmt: skip
    new = dataclasses.replace(old, steps=(*old.steps, check))
    amended = execute(new, replay(new, events),
                      Amend(actor="erik.sjoberg", previous=old, before=state, reason="Ändrat"),
                      now=at("2024-06-03"), calendar=CAL)  # fmt: skip
    assert [(e.type.value, e.step) for e in amended.events] == [("step.activated", "check")]
    assert {s.id: s.status.value for s in amended.state.steps} == {
        "study": "done", "decide": "done", "check": "active"
    }  # fmt: skip
    assert amended.state.completed_at is None
    assert replay(new, [*events, *amended.events]) == amended.state  # decisions == replay
    done = execute(new, amended.state, CompleteStep(actor="ulla.wik", step="check"),
                   now=at("2024-06-05"), calendar=CAL)  # fmt: skip
    assert done.events[-1].type.value == "point.completed"


def test_amend_closes_a_removed_open_step_and_keeps_its_note_in_the_history() -> None:
    old = _point()
    t1 = execute(old, initial(old), StartPoint(actor="erik.sjoberg"), now=at("2024-05-06"),
                 calendar=CAL)  # fmt: skip
    t2 = execute(old, t1.state, CompleteStep(actor="per.lund", step="study", note="Klar."),
                 now=at("2024-05-20"), calendar=CAL)  # fmt: skip
    events = [*t1.events, *t2.events]
    new = dataclasses.replace(old, steps=(old.steps[0],))
    amended = execute(new, replay(new, events),
                      Amend(actor="erik.sjoberg", previous=old, before=t2.state, reason="Ändrat"),
                      now=at("2024-06-03"), calendar=CAL)  # fmt: skip
    assert [(e.type.value, e.step) for e in amended.events] == [
        ("step.removed", "decide"), ("point.completed", None)
    ]  # fmt: skip
    assert [n.text for n in amended.state.notes] == ["Klar."]
