"""What the workers do with each event: handlers, registered in one visible place.

A handler reacts to one event inside its own transaction: it reads what it needs
and *records* effects (e-mails to send) by unique key. It never performs I/O
itself, so it can run twice without doing anything twice. :func:`dispatch` runs
each handler subscribed to an event at most once, recording its fixed
:attr:`Handler.name` in ``processed`` in the same transaction, and returns the
effects recorded, for delivery right away. The transaction that marks the event handled
also marks its assignment for the public site's publisher, when the site shows it.

To add one: write the function, add a :class:`Handler` with a new name to
:data:`HANDLERS` under its event types. Names are stored: never rename one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from structlog.contextvars import bind_contextvars, unbind_contextvars

from workflow import store
from workflow.core.events import (
    REGISTER,
    DeadlineFired,
    Event,
    EventType,
    FiringKind,
    OccasionReached,
    OccasionReminderDue,
    ReportRequested,
)
from workflow.core.machine import step_closed
from workflow.core.plan import AssignmentPlan, Definitions, PointPlan
from workflow.core.specs import Language
from workflow.core.state import PointState, Replayer
from workflow.core.versions import from_data
from workflow.errors import StaleDefinitions
from workflow.mail import notices
from workflow.mail.prompts import build_prompt, owner_of
from workflow.ops.logs import get_logger
from workflow.report.mail import record_occasion_reminder, record_occasion_report, record_report
from workflow.settings import Settings
from workflow.store import effects, firings, outbox
from workflow.store import site as site_marks
from workflow.store import versions as store_versions
from workflow.store.effects import EffectKind

log = get_logger(__name__)

#: When a copy for someone back from an absence is delivered, local time.
BACK_AT = dt.time(7)


@dataclass(frozen=True)
class HandlerContext:
    conn: Connection
    definitions: Definitions
    settings: Settings
    event_id: int
    now: dt.datetime
    tz: ZoneInfo
    #: What the batch's handlers read of the log, shared by the batch: handlers write no
    #: events, so a point's log does not change within the batch's transaction.
    read: dict[tuple[str, int], list[tuple[int, Event]]] = field(default_factory=dict)
    #: And what they replayed of it: a point's states as of its events, folded once.
    replayed: dict[tuple[str, int], Replayer] = field(default_factory=dict)

    def history(self, assignment: str, point: int) -> list[tuple[int, Event]]:
        """The point's events with their ids, oldest first (read once per batch)."""
        key = (assignment, point)
        if key not in self.read:
            self.read[key] = store.list_events(self.conn, assignment=assignment, point=point)
        return self.read[key]

    def state(self, assignment: str, point: PointPlan, upto: int | None = None) -> PointState:
        """The point's state after its events up to ``upto`` (all of them with None): a
        batch's five prompts on a point fold its log once, not ten times."""
        key = (assignment, point.number)
        if key not in self.replayed:
            self.replayed[key] = Replayer(point, self.history(assignment, point.number))
        return self.replayed[key].at(upto)

    @property
    def replies(self) -> bool:
        """Whether e-mails carry a reply address (a reply secret is set)."""
        return self.settings.reply_key() is not None

    def day_of(self, event: Event) -> dt.date:
        return event.occurred_at.astimezone(self.tz).date()

    def back_on(self, person: str, day: dt.date) -> dt.datetime | None:
        """When a copy for someone away on ``day`` is delivered: the morning they are back."""
        absence = self.definitions.directory.absence_on(person, day)
        if absence is None:
            return None
        return dt.datetime.combine(absence.to + dt.timedelta(days=1), BACK_AT, self.tz)

    def record(
        self, *, key: str, kind: EffectKind, payload: dict[str, Any],
        not_before: dt.datetime | None = None,
    ) -> int | None:  # fmt: skip
        """Record an e-mail effect of this event, once by ``key``."""
        return effects.record(
            self.conn, key=key, kind=kind, event_id=self.event_id,
            payload={**payload, "created": self.now.isoformat()}, now=self.now,
            not_before=not_before,
        )  # fmt: skip


@dataclass(frozen=True)
class Handler:
    """A reaction to events, under a fixed name (stored in ``processed``)."""

    name: str
    react: Callable[[HandlerContext, Event], list[int]]


def prompt_owner(ctx: HandlerContext, event: Event) -> list[int]:
    """E-mail the step's (new) owner a task prompt; their substitute if they are away,
    with a copy to the owner the day they are back."""
    owner = owner_of(event)
    if owner is None:
        return []
    closed = _no_longer_waiting(ctx, event)
    if closed is not None:
        log.info("prompt.skipped", reason=closed)
        return []
    day = ctx.day_of(event)
    substitute = ctx.definitions.directory.substitute_on(owner, day)
    recipients: list[tuple[str, str, dt.datetime | None]] = [(owner, owner, None)]
    if substitute is not None:
        recipients = [
            (substitute, substitute, None),
            (owner, f"{owner}:copy", ctx.back_on(owner, day)),
        ]
    recorded = []
    point = _point_plan(ctx.definitions, event)
    state = ctx.state(event.assignment, point, ctx.event_id) if point is not None else None
    for to, suffix, not_before in recipients:
        prompt = build_prompt(ctx.conn, ctx.definitions, ctx.event_id, event, ctx.tz,
                              recipient=to, state=state)  # fmt: skip
        if prompt is None:
            _require_current(ctx, event)
            log.warning("prompt.skipped", reason="owner or step no longer defined")
            return []
        effect_id = ctx.record(
            key=f"prompt:{ctx.event_id}:{suffix}", kind=EffectKind.PROMPT,
            payload={"prompt": prompt.model_dump(mode="json")}, not_before=not_before,
        )  # fmt: skip
        if effect_id is not None and not_before is None:
            recorded.append(effect_id)
    return recorded


def _point_plan(definitions: Definitions, event: Event) -> PointPlan | None:
    """The plan of the event's point here, if the definitions have it."""
    plan = definitions.assignments.get(event.assignment)
    if plan is None or event.point is None:
        return None
    try:
        return plan.point(event.point)
    except KeyError:
        return None


def _require_current(ctx: HandlerContext, event: Event) -> None:
    """Raise :class:`StaleDefinitions` when this process's definitions of the event's
    assignment are not the version in force in the database (an amendment added the step
    after the worker read its files): the task reloads them and runs again, instead of
    dropping the prompt."""
    row = store.get_assignment(ctx.conn, event.assignment)
    plan = ctx.definitions.assignments.get(event.assignment)
    if row is None or (plan is not None and plan.digest == row.digest):
        return
    found = store_versions.versions(ctx.conn, event.assignment)
    if found and _has_step(from_data(found[-1].plan), event):  # the version in force has it
        raise StaleDefinitions(
            f"the definitions of {event.assignment} here are not the version in force"
        )


def _has_step(plan: AssignmentPlan, event: Event) -> bool:
    try:
        plan.point(event.point or 0).step(event.step or "")
    except KeyError:
        return False
    return True


def _no_longer_waiting(ctx: HandlerContext, event: Event) -> str | None:
    """Why a prompt for this event is not sent now: the step was finished, handed on or
    closed after the event (a reply that said DELEGATE and DONE at once), else None."""
    point = _point_plan(ctx.definitions, event)
    if point is None or event.step is None:
        return None  # build_prompt says there is nobody to write to
    try:
        point.step(event.step)
    except KeyError:
        return None
    history = ctx.history(event.assignment, point.number)
    owners = [i for i, e in history if e.step == event.step and e.type.value in store.OWNER_EVENTS]
    if (owners[-1] if owners else None) != ctx.event_id:
        return "the step has another owner since"
    state = ctx.state(event.assignment, point)
    closed = step_closed(point, state, event.step)
    return f"the step is {closed} since" if closed else None


def _report(
    ctx: HandlerContext, plan: AssignmentPlan, as_of: dt.date, key: str,
    language: Language | None = None,
) -> list[int]:  # fmt: skip
    """Record the report as of ``as_of`` to the coordinator, once by ``key``:COORDINATOR."""
    effect_id = record_report(
        ctx.conn, ctx.definitions, assignment=plan.id, as_of=as_of,
        language=language or plan.language, key=f"{key}:{plan.coordinator}",
        event_id=ctx.event_id, now=ctx.now, tz=ctx.tz, notes=ctx.settings.report_notes,
        calendar=ctx.settings.calendar(), at_risk_days=ctx.settings.at_risk_days,
    )  # fmt: skip
    if effect_id is None:
        log.info("report.already_sent", assignment=plan.id, as_of=as_of.isoformat())
        return []
    return [effect_id]


def mail_report(ctx: HandlerContext, event: Event) -> list[int]:
    """A step that assembles the report started: mail the coordinator the report as of today."""
    plan = ctx.definitions.assignments.get(event.assignment)
    if plan is None or event.step is None or event.point is None:
        return []
    try:
        step = plan.point(event.point).step(event.step)
    except KeyError:
        return []
    if not step.assembles_report:
        return []
    return _report(ctx, plan, ctx.day_of(event), f"report:{ctx.event_id}")


def mail_requested_report(ctx: HandlerContext, event: Event) -> list[int]:
    """`council report --send`: the report as of a date, to the coordinator, once per
    assignment, date and language (asking twice sends it once)."""
    asked = event.payload
    assert isinstance(asked, ReportRequested)
    plan = ctx.definitions.assignments.get(event.assignment)
    if plan is None:
        log.warning("report.skipped", reason="assignment no longer defined")
        return []
    key = f"report:{plan.id}:{asked.as_of}:{asked.language.value}"
    return _report(ctx, plan, asked.as_of, key, asked.language)


def notify_deadline(ctx: HandlerContext, event: Event) -> list[int]:
    """A reminder or the first overdue notice: mail whoever the sweep resolved (owner or
    substitute); a substitute's mail is copied to the owner the day they are back."""
    item = event.payload
    assert isinstance(item, DeadlineFired)
    if item.to not in ctx.definitions.directory.people or event.point is None:
        return []
    reply_event = (
        store.owner_event(ctx.conn, event.assignment, event.point, item.step)
        if ctx.replies
        else None
    )
    kind = EffectKind(item.kind.value)
    message = notices.notice(ctx.definitions, item, reply_event=reply_event)
    recorded = ctx.record(key=f"{kind}:{ctx.event_id}:{item.to}", kind=kind,
                          payload={"message": message.model_dump(mode="json")})  # fmt: skip
    back = ctx.back_on(item.owner, ctx.day_of(event))
    if item.to != item.owner and back is not None:
        copy = notices.notice(ctx.definitions, item, copy=True)
        ctx.record(key=f"{kind}:{ctx.event_id}:{item.owner}:copy", kind=kind,
                   payload={"message": copy.model_dump(mode="json")}, not_before=back)  # fmt: skip
    return [recorded] if recorded is not None else []


def mail_digest(ctx: HandlerContext, event: Event) -> list[int]:
    """One e-mail per person with every step escalated to them in one sweep.

    Each escalation event of the sweep reaches this handler; the first to run for a
    recipient records the digest of all of them, the others find its key.
    """
    item = event.payload
    assert isinstance(item, DeadlineFired)
    if item.sweep is None:  # fired before release 0.2: the sweep recorded the digest itself
        return []
    key = f"digest:{item.sweep}:{item.to}"
    if item.to not in ctx.definitions.directory.people or effects.exists(ctx.conn, key):
        return []
    items = [
        fired.payload
        for _, fired in firings.escalations_of_sweep(ctx.conn, item.sweep)
        if isinstance(fired.payload, DeadlineFired) and fired.payload.to == item.to
    ]
    message = notices.digest(ctx.definitions, item.to, items)
    recorded = ctx.record(key=key, kind=EffectKind.DIGEST,
                          payload={"message": message.model_dump(mode="json")})  # fmt: skip
    return [recorded] if recorded is not None else []


def mail_body_digest(ctx: HandlerContext, event: Event) -> list[int]:
    """One e-mail per body and sweep to its chief officer: the steps of the assignments the
    body leads or co-owns that became overdue in that sweep (not those the chief owns or had
    escalated in the same sweep: the chief has heard of them). Each overdue event of the
    sweep reaches this handler; the first to run for a body records the digest of all of
    them, the others find its key."""
    item = event.payload
    assert isinstance(item, DeadlineFired)
    plan = ctx.definitions.assignments.get(event.assignment)
    if item.sweep is None or plan is None:
        return []
    escalated = {
        (fired.payload.to, fired.payload.point, fired.payload.step)
        for _, fired in firings.escalations_of_sweep(ctx.conn, item.sweep)
        if isinstance(fired.payload, DeadlineFired)
    }
    recorded = []
    for body_id in (plan.lead, *plan.co_owners):
        body = ctx.definitions.bodies.get(body_id)
        key = f"body-digest:{item.sweep}:{body_id}"
        if body is None or body.chief not in ctx.definitions.directory.people:
            continue
        if effects.exists(ctx.conn, key):
            continue
        items = [
            fired.payload
            for _, fired in firings.escalations_of_sweep(ctx.conn, item.sweep, FiringKind.OVERDUE)
            if isinstance(fired.payload, DeadlineFired) and fired.payload.owner != body.chief
            and (body.chief, fired.payload.point, fired.payload.step) not in escalated
            and (owning := ctx.definitions.assignments.get(fired.assignment)) is not None
            and owning.involves(body_id)
        ]  # fmt: skip
        if not items:
            continue
        message = notices.body_digest(ctx.definitions, body, items)
        effect = ctx.record(key=key, kind=EffectKind.BODY_DIGEST,
                            payload={"message": message.model_dump(mode="json")})  # fmt: skip
        if effect is not None:
            recorded.append(effect)
    return recorded


def mail_occasion_reminder(ctx: HandlerContext, event: Event) -> list[int]:
    """An occasion comes near: remind its coordinator what it covers and what is missing."""
    due = event.payload
    assert isinstance(due, OccasionReminderDue)
    occasion = ctx.definitions.occasions.get(due.occasion)
    if occasion is None:
        log.warning("occasion.skipped", occasion=due.occasion, reason="no longer defined")
        return []
    effect = record_occasion_reminder(
        ctx.conn, ctx.definitions, occasion=occasion, year=due.year, day=due.day,
        offset=due.offset, event_id=ctx.event_id, now=ctx.now, tz=ctx.tz,
        calendar=ctx.settings.calendar(), at_risk_days=ctx.settings.at_risk_days,
    )  # fmt: skip
    return [effect] if effect is not None else []


def mail_occasion_report(ctx: HandlerContext, event: Event) -> list[int]:
    """An occasion's day came (or its coordinator asked): assemble its register and mail it
    to the coordinator and the receiving body's registrar, once per date and language."""
    reached = event.payload
    assert isinstance(reached, OccasionReached)
    occasion = ctx.definitions.occasions.get(reached.occasion)
    if occasion is None:
        log.warning("occasion.skipped", occasion=reached.occasion, reason="no longer defined")
        return []
    recorded = record_occasion_report(
        ctx.conn, ctx.definitions, occasion=occasion, year=reached.year, as_of=reached.as_of,
        language=reached.language, event_id=ctx.event_id, now=ctx.now, tz=ctx.tz,
        notes=ctx.settings.report_notes, calendar=ctx.settings.calendar(),
        at_risk_days=ctx.settings.at_risk_days,
    )  # fmt: skip
    if not recorded:
        log.info("occasion.already_sent", occasion=occasion.id, year=reached.year,
                 as_of=reached.as_of.isoformat())  # fmt: skip
    return recorded


def ask_coordinator(ctx: HandlerContext, event: Event) -> list[int]:
    """An owner asked for more time: mail the coordinator the `council extend` to grant it."""
    rendered = notices.extension_request(ctx.definitions, event)
    if rendered is None:
        return []
    recorded = ctx.record(key=f"extension-request:{ctx.event_id}",
                          kind=EffectKind.EXTENSION_REQUEST,
                          payload={"message": rendered.model_dump(mode="json")})  # fmt: skip
    return [recorded] if recorded is not None else []


_PROMPT = Handler("prompt-owner", prompt_owner)
_DEADLINE = Handler("notify-deadline", notify_deadline)

#: Event type -> its handlers, in the order they run.
HANDLERS: dict[EventType, tuple[Handler, ...]] = {
    EventType.STEP_ACTIVATED: (_PROMPT, Handler("mail-report", mail_report)),
    EventType.STEP_REASSIGNED: (_PROMPT,),
    EventType.STEP_REMINDER_DUE: (_DEADLINE,),
    EventType.STEP_OVERDUE: (_DEADLINE, Handler("mail-body-digest", mail_body_digest)),
    EventType.STEP_ESCALATED: (Handler("mail-digest", mail_digest),),
    EventType.STEP_EXTENSION_REQUESTED: (Handler("ask-coordinator", ask_coordinator),),
    EventType.REPORT_REQUESTED: (Handler("mail-requested-report", mail_requested_report),),
    EventType.OCCASION_REMINDER_DUE: (Handler("mail-occasion-reminder", mail_occasion_reminder),),
    EventType.OCCASION_REACHED: (Handler("mail-occasion-report", mail_occasion_report),),
}


@dataclass
class Dispatched:
    """What dispatching one event did."""

    event: Event | None
    #: Effects to deliver right away: those the handlers recorded, and those a dispatch
    #: that died had recorded but not delivered.
    recorded: list[int] = field(default_factory=list)
    #: Handlers that had run before (a redelivered message).
    skipped: list[str] = field(default_factory=list)
    #: The event was handled already: the message came back after the work was done.
    redundant: bool = False


@dataclass
class Batch:
    """What dispatching a batch of events did."""

    #: The events found, by id (an id not found is in ``unknown``).
    events: dict[int, Event] = field(default_factory=dict)
    #: Effects to deliver right away, by the event they are of (see :class:`Dispatched`).
    recorded_by: dict[int, list[int]] = field(default_factory=dict)
    #: (event id, handler name) of the handlers that had run before.
    skipped: list[tuple[int, str]] = field(default_factory=list)
    #: Events handled already: their message came back after the work was done.
    redundant: list[int] = field(default_factory=list)
    #: With ``claim``: the effect rows claimed for delivery with the handlers' transaction.
    claimed: list[Any] = field(default_factory=list)
    #: Ids of no event (a message from another database, or a typo in a manual publish).
    unknown: list[int] = field(default_factory=list)
    #: Events whose handlers raised, with what they raised: not handled, held until the
    #: hold runs out (the task raises the first for a retry of the batch).
    failed: dict[int, BaseException] = field(default_factory=dict)

    @property
    def recorded(self) -> list[int]:
        """Every effect to deliver right away, in the events' order."""
        return [effect for ids in self.recorded_by.values() for effect in ids]

    def log_context(self, event_id: int) -> dict[str, Any]:
        """What a line logged about the event names (:data:`EVENT_CONTEXT`)."""
        event = self.events[event_id]
        return {"event_id": event_id, "assignment": event.assignment, "point": event.point,
                "step": event.step, "event_type": event.type.value}  # fmt: skip

    @property
    def handled(self) -> list[int]:
        """The events this dispatch handled."""
        done = set(self.redundant) | set(self.unknown) | set(self.failed)
        return [event_id for event_id in self.events if event_id not in done]


#: Faults of the database itself, not of one event: a batch that meets one is not split.
DATABASE_AWAY = (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.DisconnectionError)

#: The log context of a line logged while an event is handled.
EVENT_CONTEXT = ("event_id", "assignment", "point", "step", "event_type")


def dispatch(
    db: sa.Engine,
    definitions: Definitions,
    settings: Settings,
    event_id: int,
    *,
    now: dt.datetime,
    tz: ZoneInfo,
) -> Dispatched:
    """:func:`dispatch_batch` for one event; what its handlers raised is raised here."""
    batch = dispatch_batch(db, definitions, settings, [event_id], now=now, tz=tz)
    if event_id in batch.failed:
        raise batch.failed[event_id]
    return Dispatched(
        event=batch.events.get(event_id),
        recorded=batch.recorded,
        skipped=[name for _, name in batch.skipped],
        redundant=event_id in batch.redundant,
    )


def dispatch_batch(
    db: sa.Engine,
    definitions: Definitions,
    settings: Settings,
    event_ids: Sequence[int],
    *,
    now: dt.datetime,
    tz: ZoneInfo,
    claim: bool = False,
) -> Batch:
    """Run each handler subscribed to each event at most once; mark the events handled.

    First the batch's events are held for this dispatch for ``claim_lease`` seconds, in a
    commit of their own: if the worker dies, the holds run out and the reconciler
    publishes the events again at once. An event handled already is left alone (its
    message came back after the work was done). Then every handler of every held event
    runs, its ``processed`` row and its effects, the site's marks and the events' handled
    stamps in **one transaction**: all of the batch or none of it. When that transaction
    fails, each event is dispatched again in a transaction of its own, so one event whose
    handler raises (a definition newer than this worker's, a bug) holds back only itself.
    A handler that ran before (a dispatch that died after it) is skipped, and the e-mails
    it recorded that were never sent are delivered now. With ``claim``, the e-mails to
    deliver now are claimed for this process in the same transaction (``batch.claimed``,
    for :func:`~workflow.mail.delivery.deliver`): one commit fewer before the first send.
    """
    batch = Batch()
    bind_contextvars(events=list(event_ids))
    with db.connect() as conn:
        batch.events = store.get_events(conn, event_ids)
    batch.unknown = sorted(set(event_ids) - set(batch.events))
    if not batch.events:
        return batch
    until = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=settings.claim_lease)
    with store.begin_advisory(db) as conn:  # lost in a crash: only republished later
        held = outbox.hold_many(conn, list(batch.events), until=until)
    batch.redundant = sorted(set(batch.events) - set(held))
    if not held:
        return batch
    try:
        _handle(db, definitions, settings, batch, held, now=now, tz=tz, claim=claim)
    except Exception as exc:
        if len(held) == 1 or isinstance(exc, DATABASE_AWAY):
            batch.failed.update(dict.fromkeys(held, exc))  # a retry redoes them all
            return batch
        log.warning("dispatch.batch_split", events=len(held), error=repr(exc)[:200],
                    action="each event in a transaction of its own")  # fmt: skip
        for event_id in held:
            try:
                _handle(db, definitions, settings, batch, [event_id], now=now, tz=tz,
                        claim=claim)  # fmt: skip
            except Exception as failed:
                batch.failed[event_id] = failed
    finally:
        if len(held) > 1:  # what is logged next speaks of the batch, not its last event
            unbind_contextvars(*EVENT_CONTEXT)
    return batch


def _handle(
    db: sa.Engine, definitions: Definitions, settings: Settings, batch: Batch,
    held: Sequence[int], *, now: dt.datetime, tz: ZoneInfo, claim: bool,
) -> None:  # fmt: skip
    """Every handler of the held events in one transaction; into ``batch`` once committed."""
    recorded: dict[int, list[int]] = {}
    skipped: list[tuple[int, str]] = []
    read: dict[tuple[str, int], list[tuple[int, Event]]] = {}
    replayed: dict[tuple[str, int], Replayer] = {}
    with db.begin() as conn:
        for event_id in held:
            event = batch.events[event_id]
            bind_contextvars(**batch.log_context(event_id))  # until the next event's
            ctx = HandlerContext(conn, definitions, settings, event_id, now, tz, read, replayed)
            mine: list[int] = []
            again = False
            for handler in HANDLERS.get(event.type, ()):
                if not outbox.mark_processed(conn, event_id, handler.name, now=now):
                    skipped.append((event_id, handler.name))  # done before: a redelivery
                    again = True
                    continue
                mine.extend(handler.react(ctx, event))
            if again:
                mine.extend(effects.undelivered(conn, event_id, now=now))
            if mine:
                recorded[event_id] = mine
        for assignment in sorted({batch.events[e].assignment for e in held}):
            if _on_site(definitions, assignment):
                site_marks.mark(conn, assignment, now=now)
        outbox.mark_handled(conn, held, now=now)
        claimed = []
        if claim and recorded:
            until = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=settings.claim_lease)
            every = [effect for ids in recorded.values() for effect in ids]
            claimed = effects.claim_many(conn, every, now=now, until=until)
    batch.recorded_by.update(recorded)
    batch.skipped.extend(skipped)
    batch.claimed.extend(claimed)


def _on_site(definitions: Definitions, assignment: str) -> bool:
    """Whether the public site may show this assignment's events: a public one, or one
    no longer defined (its pages are removed). The publisher rebuilds what is marked."""
    if assignment == REGISTER:
        return False  # the register's own events (occasions) are not on the site
    plan = definitions.assignments.get(assignment)
    return plan is None or plan.public
