"""Gathering what an owner's task prompt says, from the definitions and the event log."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from sqlalchemy.engine import Connection

from workflow import store
from workflow.core.events import Event, EventType, StepActivated, StepReassigned
from workflow.core.plan import Definitions
from workflow.core.state import PointState, replay
from workflow.mail.compose import NoteView, Prompt


def owner_of(event: Event) -> str | None:
    """Who a prompt for this event goes to: the new owner."""
    match event.payload:
        case StepReassigned(to=to):
            return to
        case StepActivated(owner=owner):
            return owner
    return None


def build_prompt(
    conn: Connection,
    definitions: Definitions,
    event_id: int,
    event: Event,
    tz: ZoneInfo,
    *,
    recipient: str | None = None,
    state: PointState | None = None,
) -> Prompt | None:
    """The prompt for a ``step.activated``/``step.reassigned`` event, as of that event.

    None when the definitions no longer know the assignment, step or owner
    (the definition changed after the event): there is nobody to write to. ``state`` is
    the point's state as of the event if the caller replayed it already (a batch's
    handlers do, once per point); else the point's log is read and replayed here.
    """
    owner_id = owner_of(event)
    plan = definitions.assignments.get(event.assignment)
    if owner_id is None or plan is None or event.step is None or event.point is None:
        return None
    person = definitions.directory.people.get(recipient or owner_id)
    try:
        point = plan.point(event.point)
        step = point.step(event.step)
    except KeyError:
        return None
    if person is None:
        return None
    if state is None:
        history = store.list_events(conn, assignment=plan.id, point=point.number)
        state = replay(point, [e for i, e in history if i <= event_id])
    lang = person.language
    coordinator = definitions.directory.people[plan.coordinator]
    names = {p.id: p.name for p in definitions.directory.people.values()}
    return Prompt(
        language=lang,
        to_name=person.name,
        to_email=person.email,
        assignment=plan.id,
        assignment_title=plan.title.get(lang),
        reference=plan.reference,
        point=point.address,
        point_title=point.title.get(lang),
        step=step.id,
        step_title=step.title.get(lang),
        description=step.description.get(lang) if step.description else None,
        due=state.step(step.id).due,
        notes=tuple(
            NoteView(at=n.at.astimezone(tz).date(), author=names.get(n.actor, n.actor), text=n.text)
            for n in state.notes
        ),
        reassigned=event.type is EventType.STEP_REASSIGNED,
        coordinator_name=coordinator.name,
        coordinator_email=coordinator.email,
        reply_event=event_id,
    )
