"""Who may act on a point: the rule the engine enforces on every command.

- A step is moved (begun, completed, skipped, reopened, reassigned, held, resumed,
  delayed) and noted by its owner, the person standing in for the owner today (an
  absence's substitute), the assignment's coordinator, or an administrator (a person
  holding the configured administrator role).
- Extending a step's due date grants more time: for the coordinator and administrators
  (the owner asks for it with ``delay``).
- A note on the point itself may also come from the owner of any of its steps (or the
  point's owner), or whoever stands in for them today.
- Starting a point, writing it off and accepting a changed definition are for the
  coordinator and administrators.
- Recording on someone's behalf (``recorded_by``) is for the coordinator and
  administrators: the event names both.
- ``council`` (the system: the sweep, a worker) may do what the engine asks of it.

Pure: the day and the directory are parameters.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from workflow.core.actions import (
    SYSTEM,
    Action,
    AddNote,
    Amend,
    ExtendStep,
    OpenOccurrences,
    StartPoint,
    WriteOff,
)
from workflow.core.plan import Directory, PointPlan
from workflow.core.state import PointState
from workflow.errors import NotPermitted


@dataclass(frozen=True)
class Authority:
    """Who holds authority over an assignment beyond its owners."""

    coordinator: str
    #: The people holding the administrator role.
    administrators: frozenset[str]
    #: The role's name, to say who may when someone may not.
    role: str

    def covers(self, person: str) -> bool:
        return person in (self.coordinator, SYSTEM) or person in self.administrators


def _stands_in(directory: Directory, owners: set[str], day: dt.date) -> set[str]:
    return {s for owner in owners if (s := directory.substitute_on(owner, day)) is not None}


def _owners(plan: PointPlan, state: PointState, action: Action) -> set[str] | None:
    """The owners who may take this action themselves; None when only authority may."""
    if isinstance(action, StartPoint | WriteOff | ExtendStep | OpenOccurrences | Amend):
        return None  # the coordinator's decisions (an owner asks for time with `delay`)
    step = getattr(action, "step", None)
    if step is not None:
        return {state.step(step).owner}
    assert isinstance(action, AddNote)
    return {s.owner for s in state.steps} | ({plan.owner} if plan.owner else set())


def check(
    plan: PointPlan,
    state: PointState,
    action: Action,
    *,
    authority: Authority,
    directory: Directory,
    day: dt.date,
    verb: str,
) -> None:
    """Raise :class:`NotPermitted` unless the action's people may take it on ``day``."""
    if action.recorded_by is not None and action.recorded_by != action.actor:
        if not authority.covers(action.recorded_by):
            raise NotPermitted(
                person=action.recorded_by, verb=f"{verb} on behalf of {action.actor}",
                target=plan.address, who=authority_words(authority),
            )  # fmt: skip
        return
    if authority.covers(action.actor):
        return
    step = getattr(action, "step", None)
    if step is not None and step not in {s.id for s in state.steps}:
        return  # no such step (or occurrence not open): the machine says so
    owners = _owners(plan, state, action)
    allowed = set() if owners is None else owners | _stands_in(directory, owners, day)
    if action.actor in allowed:
        return
    target = plan.address if step is None else f"{plan.address}/{step}"
    raise NotPermitted(person=action.actor, verb=verb, target=target,
                       who=_words(owners, authority))  # fmt: skip


def authority_words(authority: Authority) -> str:
    return f"the coordinator {authority.coordinator} or an administrator (role {authority.role})"


def _words(owners: set[str] | None, authority: Authority) -> str:
    if not owners:
        return authority_words(authority)
    named = ", ".join(sorted(owners))
    return f"{named}, whoever stands in for them today, {authority_words(authority)}"
