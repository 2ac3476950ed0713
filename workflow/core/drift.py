"""Noticing definitions that changed under running points.

An assignment remembers the *structure* it was started from: for each point,
its steps and their ``after:`` lists. Comparing that with the current
definition tells which changes are harmless (titles, dates, new points) and
which would break a running point (a removed or added step, a changed DAG).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from workflow.core.plan import AssignmentPlan

Structure = dict[str, dict[str, list[str]]]


@dataclass(frozen=True)
class Change:
    """One difference between the stored and the current definition."""

    point: int
    message: str
    breaking: bool

    def __str__(self) -> str:
        return f"point {self.point}: {self.message}" if self.point else self.message


def structure(plan: AssignmentPlan) -> Structure:
    """Each non-rejected point's steps and their ``after:`` lists."""
    return {
        str(point.number): {step.id: list(step.after) for step in point.steps}
        for point in plan.points
        if not point.rejected
    }


#: Reported when the plans differ but no point's structure does.
OTHER_CHANGES = Change(0, "titles, dates, owners or reminders changed", breaking=False)


def compare(old: Any, new: Structure, running: Collection[int]) -> list[Change]:
    """What changed from ``old`` to ``new``; breaking only for running points."""
    changes: list[Change] = []
    for key in sorted(set(old) | set(new), key=int):
        number, before, after = int(key), old.get(key), new.get(key)
        is_running = number in running
        if before is None:
            changes.append(Change(number, "added", breaking=False))
        elif after is None:
            changes.append(Change(number, "removed or rejected", breaking=is_running))
        else:
            changes.extend(_compare_steps(number, before, after, is_running))
    return changes


def _compare_steps(
    number: int, before: dict[str, list[str]], after: dict[str, list[str]], running: bool
) -> list[Change]:
    changes = [Change(number, f"step {s!r} removed", running) for s in before if s not in after]
    changes += [Change(number, f"step {s!r} added", running) for s in after if s not in before]
    changes += [
        Change(
            number, f"step {s!r} now comes after {after[s] or 'nothing'} (was {before[s]})", running
        )
        for s in before
        if s in after and sorted(before[s]) != sorted(after[s])
    ]
    return changes
