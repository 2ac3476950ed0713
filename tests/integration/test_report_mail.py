"""The report as a workflow step: a worker assembles it and mails it to the coordinator."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable

import sqlalchemy as sa

from scripts.seed_history import TZ, A
from tests.integration.servers import SmtpCatcher, WorkerProcess, council, wait_for
from tests.support import DEFINITIONS
from workflow.core.actions import CompleteStep
from workflow.core.calendar import Calendar
from workflow.definitions.loader import load
from workflow.engine import Engine
from workflow.store import tables

COORDINATOR = "sara.nilsson@kommun.example"


def _reports(smtp: SmtpCatcher) -> list:  # type: ignore[type-arg]
    return [r for r in smtp.received if r.message["Subject"].startswith("Återrapportering")]


def test_report_send_mails_html_and_docx_once(
    worker_env: dict[str, str],
    start_worker: Callable[..., WorkerProcess],
    smtp: SmtpCatcher,
    db: sa.Engine,
) -> None:
    """`report --send` mails the coordinator the HTML report with the DOCX; twice sends once."""
    from docx import Document

    start_worker()
    council(worker_env, "start", A, "--now", "2022-12-01T09:00")
    council(worker_env, "report", A, "--send", "--as-of", "2023-06-12")
    wait_for(lambda: len(_reports(smtp)) == 1, timeout=60, what="the report mail")
    council(worker_env, "report", A, "--send", "--as-of", "2023-06-12")
    wait_for(lambda: _report_effects(db) == 1 and _requests_handled(db) == 2, timeout=30,
             what="the second send to be handled")  # fmt: skip

    (mail,) = _reports(smtp)
    message = mail.message
    assert mail.envelope_to == [COORDINATOR]
    assert message["Subject"] == (
        "Återrapportering: Uppdrag att utveckla arbetet mot hedersrelaterat våld och förtryck "
        "(läget per 12 juni 2023)"
    )
    assert message.get_body(("plain",)).get_content().startswith("# Återrapportering:")
    html = message.get_body(("html",)).get_content()
    assert '<html lang="sv">' in html
    assert "Pågående åtgärder" in html
    (attachment,) = list(message.iter_attachments())
    assert attachment.get_filename() == f"{A}-2023-06-12-sv.docx"
    doc = Document(io.BytesIO(attachment.get_content()))
    assert doc.paragraphs[0].style.name == "Heading 1"


def _report_effects(db: sa.Engine) -> int:
    with db.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count()).where(tables.effects.c.kind == "report")
            ).scalar_one()
        )


def _requests_handled(db: sa.Engine) -> int:
    """How many `report.requested` events a worker has handled (each asked once)."""
    with db.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count())
                .select_from(tables.events.join(tables.outbox))
                .where(
                    tables.events.c.type == "report.requested",
                    tables.outbox.c.handled_at.is_not(None),
                )
            ).scalar_one()
        )


def test_assemble_step_mails_the_report_when_it_starts(
    start_worker: Callable[..., WorkerProcess],
    smtp: SmtpCatcher,
    db: sa.Engine,
    publisher: Callable[[int], None],
) -> None:
    """Completing 'collect' activates 'assemble', whose start mails the coordinator the report."""
    start_worker()
    engine = Engine(db=db, definitions=load([DEFINITIONS]), calendar=Calendar(), timezone=TZ)
    report_back = engine.definitions.assignment(A).point(7)
    engine.start(A, actor="sara.nilsson", now=dt.datetime(2023, 4, 17, 8, tzinfo=TZ), only=7)
    engine.act(
        report_back,
        CompleteStep(actor="sara.nilsson", step="collect"),
        now=dt.datetime(2023, 5, 2, 16, tzinfo=TZ),
    )
    wait_for(lambda: len(_reports(smtp)) == 1, timeout=60, what="the report mail")
    (mail,) = _reports(smtp)
    assert mail.envelope_to == [COORDINATOR]
    assert "(läget per 2 maj 2023)" in mail.message["Subject"]


def test_a_report_queued_by_0_1_is_still_mailed(
    worker_env: dict[str, str],
    start_worker: Callable[..., WorkerProcess],
    smtp: SmtpCatcher,
    db: sa.Engine,
) -> None:
    """A `council.assemble_report` message an older release queued before the upgrade is
    turned into a report.requested event by the worker, and the report is mailed once."""
    from celery import Celery

    start_worker()
    council(worker_env, "start", A, "--now", "2022-12-01T09:00")
    sender = Celery("old-release", broker=worker_env["COUNCIL_BROKER_URL"], set_as_current=False)
    sender.conf.update(task_serializer="json", accept_content=["json"])
    try:
        sender.send_task("council.assemble_report", args=[A, "2023-06-12", "sv"], queue="council")
    finally:
        sender.close()
    wait_for(lambda: len(_reports(smtp)) == 1, timeout=60, what="the report mail",
             progress=lambda: len(smtp.received))  # fmt: skip
    (mail,) = _reports(smtp)
    assert "(läget per 12 juni 2023)" in mail.message["Subject"]
    wait_for(lambda: _requests_handled(db) == 1, timeout=30, what="the request to be handled")
