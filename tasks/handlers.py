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

from workflow import effects
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


#: A handler returns the ids of the effects it recorded (to deliver right away).
Handler = Callable[[HandlerContext, Event], list[int]]


def prompt_owner(ctx: HandlerContext, event: Event) -> list[int]:
    """E-mail the step's (new) owner a task prompt."""
    prompt = build_prompt(ctx.conn, ctx.definitions, ctx.event_id, event, ctx.tz)
    if prompt is None:
        log.warning("prompt.skipped", reason="owner or step no longer defined")
        return []
    key = f"prompt:{ctx.event_id}:{owner_of(event)}"
    payload = {"prompt": prompt.model_dump(mode="json"), "created": ctx.now.isoformat()}
    effect_id = effects.record(
        ctx.conn, key=key, kind="prompt", event_id=ctx.event_id, payload=payload, now=ctx.now
    )
    return [effect_id] if effect_id is not None else []


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


HANDLERS: dict[EventType, tuple[Handler, ...]] = {
    EventType.STEP_ACTIVATED: (prompt_owner, mail_report),
    EventType.STEP_REASSIGNED: (prompt_owner,),
}


def handler_name(handler: Handler) -> str:
    return f"{handler.__module__}.{handler.__qualname__}"
