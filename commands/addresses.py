"""Readable addresses: ``kf-2022-hedersvald/3`` for a point, ``.../3/produce`` for a step.

Any unambiguous prefix of an assignment id or a step id works
(``kf-2022-h/3/prod``). Resolution is pure: it needs only the definitions.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from workflow.core.plan import AssignmentPlan, Definitions, PointPlan, StepPlan
from workflow.core.recurrence import MARK, split
from workflow.errors import AmbiguousName, InvalidInput, NotFound


@dataclass(frozen=True)
class PointAddress:
    assignment: AssignmentPlan
    point: PointPlan

    def __str__(self) -> str:
        return self.point.address


@dataclass(frozen=True)
class StepAddress:
    assignment: AssignmentPlan
    point: PointPlan
    step: StepPlan

    def __str__(self) -> str:
        return f"{self.point.address}/{self.step.id}"


def _by_prefix(kind: str, given: str, names: Iterable[str]) -> str:
    names = list(names)
    if given in names:
        return given
    matches = [name for name in names if name.startswith(given)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise AmbiguousName(kind, given, matches)
    raise NotFound(kind, given)


def assignment(definitions: Definitions, given: str) -> AssignmentPlan:
    """The assignment whose id is ``given`` or starts with it."""
    return definitions.assignments[_by_prefix("assignment", given, definitions.assignments)]


def _split(given: str, parts: int, example: str) -> list[str]:
    pieces = given.strip("/").split("/")
    if len(pieces) != parts or not all(pieces):
        raise InvalidInput(f"{given!r} is not an address like {example}")
    return pieces


def point(definitions: Definitions, given: str) -> PointAddress:
    """Resolve ``ASSIGNMENT/N``."""
    assignment_name, number = _split(given, 2, "kf-2022-hedersvald/3")
    plan = assignment(definitions, assignment_name)
    try:
        return PointAddress(plan, plan.point(int(number)))
    except (KeyError, ValueError):
        numbers = ", ".join(str(p.number) for p in plan.points)
        raise NotFound("point", f"{plan.id}/{number}", f"its points are {numbers}") from None


def step(definitions: Definitions, given: str) -> StepAddress:
    """Resolve ``ASSIGNMENT/N/STEP``."""
    assignment_name, number, step_name = _split(given, 3, "kf-2022-hedersvald/3/produce")
    found = point(definitions, f"{assignment_name}/{number}")
    duty_name, mark, period = step_name.partition(MARK)
    if mark:  # an occurrence of a recurring duty: DUTY@PERIOD, the duty by prefix
        if split(f"x{MARK}{period}")[1] is None:
            raise InvalidInput(
                f"{period!r} is not a period: write STEP@2027-W05 (a week), @2027-01 (a "
                "month), @2027-Q1 (a quarter) or @2027 (a year)"
            )
        duties = (s.id for s in found.point.duties())
        duty = _by_prefix(f"recurring duty of {found.point.address}", duty_name, duties)
        occurrence = found.point.step(f"{duty}{MARK}{period}")
        return StepAddress(found.assignment, found.point, occurrence)
    step_id = _by_prefix(
        f"step of {found.point.address}", step_name, (s.id for s in found.point.steps)
    )
    return StepAddress(found.assignment, found.point, found.point.step(step_id))
