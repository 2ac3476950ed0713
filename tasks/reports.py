"""Assembling the report back to the council and mailing it to the coordinator."""

from __future__ import annotations

import datetime as dt

from celery import shared_task

from tasks.context import context
from tasks.dispatch import TRANSIENT
from workflow import delivery
from workflow.definitions import Language
from workflow.logs import get_logger
from workflow.report_mail import record_report

log = get_logger(__name__)


@shared_task(name="council.assemble_report", autoretry_for=TRANSIENT, retry_backoff=True,
             retry_jitter=True)  # fmt: skip
def assemble_report(assignment: str, as_of: str, language: str) -> None:
    """`council report --send`: the report as of a date, to the coordinator, once per key."""
    ctx = context()
    now = dt.datetime.now(dt.UTC)
    definitions = ctx.definitions()
    coordinator = definitions.assignment(assignment).coordinator
    day = dt.date.fromisoformat(as_of)
    with ctx.db.begin() as conn:
        effect_id = record_report(
            conn, definitions, assignment=assignment, as_of=day, language=Language(language),
            key=f"report:{assignment}:{as_of}:{language}:{coordinator}", event_id=None, now=now,
            tz=ctx.tz, notes=ctx.settings.report_notes, calendar=ctx.settings.calendar(),
            at_risk_days=ctx.settings.at_risk_days,
        )  # fmt: skip
    if effect_id is None:
        log.info("report.already_sent", assignment=assignment, as_of=as_of, language=language)
        return
    delivery.deliver(ctx.db, ctx.settings, [effect_id], now=now)
