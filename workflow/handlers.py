"""Event handlers, registered in one visible place: :data:`HANDLERS`.

A handler reacts to one event inside the dispatcher's transaction: it reads
what it needs and *records* effects (e-mails to send) by unique key. It never
performs I/O itself, so it can run twice without doing anything twice. To add
one: write the function, add it to HANDLERS under its event types.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Connection

from workflow import deadlines, effects, notices, store
from workflow.events import Event, EventType
from workflow.loader import Definitions
from workflow.logs import get_logger
from workflow.prompts import build_prompt, owner_of
from workflow.report_mail import record_report

log = get_logger(__name__)


@dataclass(frozen=True)
class HandlerContext:
    conn: Connection
    definitions: Definitions
    event_id: int
    now: dt.datetime
    tz: ZoneInfo
    #: Whether e-mails carry a reply address (a reply secret is set).
    replies: bool = False


#: A handler returns the ids of the effects it recorded (to deliver right away).
Handler = Callable[[HandlerContext, Event], list[int]]


def prompt_owner(ctx: HandlerContext, event: Event) -> list[int]:
    """E-mail the step's (new) owner a task prompt; their substitute if they are away,
    with a copy to the owner the day they are back."""
    owner = owner_of(event)
    if owner is None:
        return []
    day = event.occurred_at.astimezone(ctx.tz).date()
    substitute = deadlines.away_substitute(ctx.definitions.directory, owner, day)
    recorded = []
    for to, key, not_before in _recipients(ctx, owner, substitute, day):
        prompt = build_prompt(ctx.conn, ctx.definitions, ctx.event_id, event, ctx.tz, recipient=to)
        if prompt is None:
            log.warning("prompt.skipped", reason="owner or step no longer defined")
            return []
        payload = {"prompt": prompt.model_dump(mode="json"), "created": ctx.now.isoformat()}
        effect_id = effects.record(
            ctx.conn, key=key, kind="prompt", event_id=ctx.event_id, payload=payload,
            now=ctx.now, not_before=not_before,
        )  # fmt: skip
        if effect_id is not None and not_before is None:
            recorded.append(effect_id)
    return recorded


def _recipients(
    ctx: HandlerContext, owner: str, substitute: str | None, day: dt.date
) -> list[tuple[str, str, dt.datetime | None]]:
    """(recipient, effect key, not before): the owner, or their substitute and a later copy."""
    if substitute is None:
        return [(owner, f"prompt:{ctx.event_id}:{owner}", None)]
    back = _back_on(ctx, owner, day)
    assert back is not None
    return [
        (substitute, f"prompt:{ctx.event_id}:{substitute}", None),
        (
            owner,
            f"prompt:{ctx.event_id}:{owner}:copy",
            dt.datetime.combine(back, dt.time(7), ctx.tz),
        ),
    ]


def mail_report(ctx: HandlerContext, event: Event) -> list[int]:
    """A step that assembles the report started: mail the coordinator the report as of today."""
    plan = ctx.definitions.assignments.get(event.assignment)
    if plan is None or event.step is None:
        return []
    try:
        step = plan.point(event.point).step(event.step)
    except KeyError:
        return []
    if not step.assembles_report:
        return []
    effect_id = record_report(
        ctx.conn,
        ctx.definitions,
        assignment=plan.id,
        as_of=event.occurred_at.astimezone(ctx.tz).date(),
        language=plan.language,
        key=f"report:{ctx.event_id}:{plan.coordinator}",
        event_id=ctx.event_id,
        now=ctx.now,
        tz=ctx.tz,
    )
    return [effect_id] if effect_id is not None else []


def notify_deadline(ctx: HandlerContext, event: Event) -> list[int]:
    """A reminder or the first overdue notice: mail whoever the sweep resolved (owner or
    substitute); a substitute's mail is copied to the owner the day they are back."""
    item = event.data
    if item["to"] not in ctx.definitions.directory.people:
        return []
    assignment, _, number = item["point"].partition("/")
    reply_event = store.owner_event(ctx.conn, assignment, int(number), item["step"])
    if not ctx.replies:
        reply_event = None
    message = notices.notice(ctx.definitions, item, reply_event=reply_event)
    payload = {"message": message.model_dump(mode="json"), "created": ctx.now.isoformat()}
    recorded = [
        effects.record(
            ctx.conn, key=f"{item['kind']}:{ctx.event_id}:{item['to']}", kind=item["kind"],
            event_id=ctx.event_id, payload=payload, now=ctx.now,
        )
    ]  # fmt: skip
    back = _back_on(ctx, item["owner"], event.occurred_at.astimezone(ctx.tz).date())
    if item["to"] != item["owner"] and back is not None:
        copy = {
            "message": notices.notice(ctx.definitions, item, copy=True).model_dump(mode="json"),
            "created": ctx.now.isoformat(),
        }
        effects.record(
            ctx.conn, key=f"{item['kind']}:{ctx.event_id}:{item['owner']}:copy",
            kind=item["kind"], event_id=ctx.event_id, payload=copy, now=ctx.now,
            not_before=dt.datetime.combine(back, dt.time(7), ctx.tz),
        )  # fmt: skip
    return [i for i in recorded if i is not None]


def ask_coordinator(ctx: HandlerContext, event: Event) -> list[int]:
    """An owner asked for more time: mail the coordinator the `council extend` to grant it."""
    rendered = notices.extension_request(ctx.definitions, event)
    if rendered is None:
        return []
    effect_id = effects.record(
        ctx.conn, key=f"extension-request:{ctx.event_id}", kind="extension-request",
        event_id=ctx.event_id,
        payload={"message": rendered.model_dump(mode="json"), "created": ctx.now.isoformat()},
        now=ctx.now,
    )  # fmt: skip
    return [effect_id] if effect_id is not None else []


def _back_on(ctx: HandlerContext, person: str, day: dt.date) -> dt.date | None:
    """The first day after the absence that covers ``day``, if any."""
    found = ctx.definitions.directory.people.get(person)
    for absence in found.away if found else ():
        if absence.from_ <= day <= absence.to:
            return absence.to + dt.timedelta(days=1)
    return None


HANDLERS: dict[EventType, tuple[Handler, ...]] = {
    EventType.STEP_ACTIVATED: (prompt_owner, mail_report),
    EventType.STEP_REASSIGNED: (prompt_owner,),
    EventType.STEP_REMINDER_DUE: (notify_deadline,),
    EventType.STEP_OVERDUE: (notify_deadline,),
    EventType.STEP_EXTENSION_REQUESTED: (ask_coordinator,),
    # step.escalated needs no handler: the sweep mails one digest per person.
}


def handler_name(handler: Handler) -> str:
    return f"{handler.__module__}.{handler.__qualname__}"
