"""The task of releases before 0.2 that mailed a report (`council report --send`).

``report --send`` now records a ``report.requested`` event whose handler mails the
report. A message of the old task still queued when a worker is upgraded is
turned into that event, so it is not lost; remove this in a later release.
"""

from __future__ import annotations

import datetime as dt

from celery import shared_task

from tasks.context import context
from tasks.dispatch import TRANSIENT
from workflow.core.specs import Language


@shared_task(name="council.assemble_report", autoretry_for=TRANSIENT, retry_backoff=True,
             retry_jitter=True)  # fmt: skip
def assemble_report(assignment: str, as_of: str, language: str) -> None:
    """A queued request of an older release: record it as a ``report.requested`` event."""
    context().engine().request_report(
        assignment, as_of=dt.date.fromisoformat(as_of), language=Language(language),
        actor="council", now=dt.datetime.now(dt.UTC),
    )  # fmt: skip
