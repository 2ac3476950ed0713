"""Stored versions of a plan, and the machine carrying a point over to an amended plan."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.support import DEFINITIONS
from workflow.core import plan as plan_module
from workflow.core import versions
from workflow.core.actions import AddNote, Amend, CompleteStep, StartPoint
from workflow.core.calendar import Calendar
from workflow.core.machine import execute
from workflow.core.plan import PointPlan, StepPlan
from workflow.core.state import Category, category, initial, replay
from workflow.core.values import DueRule
from workflow.definitions.loader import load
from workflow.errors import NotFound

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


#: The digests release 0.2 stored for the bundled assignments (read from 30eab30): an
#: unchanged definition must keep its digest, or an upgrade would make it look amended.
DIGESTS_0_2 = {
    "kf-2022-hedersvald": "3cbd36ac83322d65aed6cad77fc50507a34ae053016e76d05b35fb5e965c2b19",
    "kf-2024-lokalforsorjning": "508047636a07794531b9b0a8a2ac257832cab86a4ef3dfcfd619512ba5194927",
}


#: The bundled definitions as release 0.3 shipped them (unchanged since 0.2; 0.4 moved the
#: bundled assignments to declared bodies, a change of definition that `council amend`
#: accepts).
RELEASE_0_3 = Path(__file__).parents[2] / "fixtures" / "release-0.3"


def test_an_unchanged_definition_keeps_its_digest_from_release_0_2() -> None:
    """Tripwire: these two files as 0.2 and 0.3 shipped them keep their digests; new plan
    fields left at their defaults (repeat, period, report_to, tags) do not enter it, and
    without a bodies file the bodies stay free text."""
    definitions = load([RELEASE_0_3])
    assert {a: definitions.assignment(a).digest for a in DIGESTS_0_2} == DIGESTS_0_2


def _duties_point() -> PointPlan:
    """EST point 1 with a second weekly duty beside the situation picture."""
    point = load([DEFINITIONS]).assignment("kf-2025-trygghet").point(1)
    (duty,) = point.steps
    meeting = dataclasses.replace(duty, id="veckomote", title=duty.title)
    return dataclasses.replace(point, steps=(duty, meeting))


def test_two_duties_of_one_point_open_their_own_occurrences() -> None:
    point = _duties_point()
    started = execute(point, initial(point), StartPoint(actor="sara.nilsson"),
                      now=at("2025-02-03"), calendar=CAL)  # fmt: skip
    ids = sorted(s.id for s in started.state.steps)
    assert ids == ["lagesbild", "lagesbild@2025-W06", "veckomote", "veckomote@2025-W06"]
    assert {s.id: s.status.value for s in started.state.steps if "@" not in s.id} == {
        "lagesbild": "recurring", "veckomote": "recurring"
    }  # fmt: skip


def test_a_duty_added_by_an_amendment_counts_from_the_amendment() -> None:
    """A second weekly duty added on 2025-03-12 opens week 11 only, not weeks 6 to 10."""
    old = load([DEFINITIONS]).assignment("kf-2025-trygghet").point(1)
    t = execute(old, initial(old), StartPoint(actor="sara.nilsson"), now=at("2025-02-03"),
                calendar=CAL)  # fmt: skip
    new = _duties_point()
    amended = execute(new, replay(new, list(t.events)),
                      Amend(actor="sara.nilsson", previous=old, before=t.state, reason="Ändrat"),
                      now=at("2025-03-12"), calendar=CAL)  # fmt: skip
    opened = [e.step for e in amended.events if e.step and e.step.startswith("veckomote@")]
    assert opened == ["veckomote@2025-W11"]


def test_a_point_whose_duty_has_not_opened_yet_is_ongoing() -> None:
    """The annual analysis opens in November: from its start in February the point runs."""
    point = load([DEFINITIONS]).assignment("kf-2025-trygghet").point(3)
    started = execute(point, initial(point), StartPoint(actor="sara.nilsson"),
                      now=at("2025-02-03"), calendar=CAL)  # fmt: skip
    assert started.state.step("arsanalys").status.value == "recurring"
    assert category(point, started.state) is Category.ONGOING


def test_a_note_on_an_occurrence_that_has_not_opened_is_not_found() -> None:
    point = load([DEFINITIONS]).assignment("kf-2025-trygghet").point(1)
    started = execute(point, initial(point), StartPoint(actor="sara.nilsson"),
                      now=at("2025-02-03"), calendar=CAL)  # fmt: skip
    early = AddNote(actor="amir.hassan", step="lagesbild@2025-W07", text="Tidigt.")
    with pytest.raises(NotFound):
        execute(point, started.state, early, now=at("2025-02-04"), calendar=CAL)


def test_a_plans_digest_is_computed_once_and_a_changed_copy_hashes_anew() -> None:
    """The digest is kept on the (frozen) plan; a copy with another title has its own,
    one that only changes whether it is public has the same."""
    plan = load([DEFINITIONS]).assignment("kf-2022-hedersvald")
    first = plan.digest
    assert plan._digest == first
    retitled = dataclasses.replace(plan, reference="KS 2022/0418")
    assert retitled.digest != first
    assert dataclasses.replace(plan, public=not plan.public).digest == first


@pytest.mark.parametrize(
    "where", [DEFINITIONS, RELEASE_0_3, Path(__file__).parents[2] / "fixtures" / "base"]
)
def test_a_plans_digest_hashes_the_json_of_asdict(where: Path) -> None:
    """The digest's data (built without ``dataclasses.asdict``'s deep copies) is the JSON
    of ``asdict`` less the fields it leaves out, for every plan of these definitions."""
    for assignment in load([where]).assignments.values():
        reference = dataclasses.asdict(assignment)
        built = plan_module._plain(assignment)
        assert json.dumps(built, sort_keys=True, default=str, ensure_ascii=False) == json.dumps(
            reference, sort_keys=True, default=str, ensure_ascii=False
        )
