"""E-mailed task prompts end to end: CLI -> outbox -> Redis -> Celery worker -> SMTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

import sqlalchemy as sa

from tests.integration.servers import SmtpCatcher, WorkerProcess, council, wait_for
from tests.support import ROOT
from workflow.mail.compose import message_id
from workflow.store import tables

A = "kf-2022-hedersvald"


def _by_recipient(smtp: SmtpCatcher) -> dict[str, EmailMessage]:
    return {r.envelope_to[0]: r.message for r in smtp.received}


def _event_id(db: sa.Engine, step: str, kind: str) -> int:
    with db.connect() as conn:
        return int(
            conn.execute(
                sa.select(tables.events.c.id).where(
                    tables.events.c.step == step, tables.events.c.type == kind
                )
            ).scalar_one()
        )


def test_owners_receive_prompts_in_their_language(
    worker_env: dict[str, str],
    start_worker: Callable[..., WorkerProcess],
    smtp: SmtpCatcher,
    db: sa.Engine,
) -> None:
    """Starting points mails each owner a prompt: both parts, VTODO, stable Message-ID, sv/en."""
    start_worker()
    council(worker_env, "start", A, "--point", "4", "--now", "2023-01-09T09:00")
    wait_for(lambda: len(smtp.received) == 1, timeout=30, what="the first prompt")
    council(worker_env, "assign", f"{A}/4/map", "maria.lind", "--now", "2023-01-10T09:00")
    wait_for(lambda: len(smtp.received) == 2, timeout=30, what="the reassignment prompt")

    mails = _by_recipient(smtp)
    english = mails["amir.hassan@kommun.example"]  # amir.hassan reads English
    swedish = mails["maria.lind@kommun.example"]
    assert english["Subject"] == f"Task: Map and evaluate reporting routes ({A}/4)"
    assert swedish["Subject"] == (
        f"Ny ansvarig för uppgift: Kartlägg och utvärdera rapporteringsvägar ({A}/4)"
    )
    assert english["To"] == "Amir Hassan <amir.hassan@kommun.example>"
    assert english["Content-Language"] == "en"
    assert swedish["Content-Language"] == "sv"

    parts = [p.get_content_type() for p in english.walk()]
    assert parts == [
        "multipart/mixed", "multipart/alternative", "text/plain", "text/html", "text/calendar"
    ]  # fmt: skip
    text = english.get_body(("plain",)).get_content()
    html = english.get_body(("html",)).get_content()
    assert "Due:       6 March 2023" in text
    # Replies are off here: the owner is told whom to write to, never to run a command.
    assert "To report progress, write to the coordinator Sara Nilsson " in text
    assert "<sara.nilsson@kommun.example>" in text
    assert "council " not in text.replace("by council.", "")
    assert '<html lang="en">' in html
    assert "Klart senast: 6 mars 2023" in swedish.get_body(("plain",)).get_content()

    ics = next(english.iter_attachments())
    assert ics.get_filename() == "task.ics"
    calendar = ics.get_content()
    assert "BEGIN:VTODO" in calendar
    assert "DUE;VALUE=DATE:20230306" in calendar

    activated = _event_id(db, "map", "step.activated")
    reassigned = _event_id(db, "map", "step.reassigned")
    assert english["Message-ID"] == message_id(f"prompt:{activated}:amir.hassan", "kommun.example")
    assert swedish["Message-ID"] == message_id(f"prompt:{reassigned}:maria.lind", "kommun.example")


def test_header_injection_through_a_title_is_impossible(
    worker_env: dict[str, str],
    start_worker: Callable[..., WorkerProcess],
    smtp: SmtpCatcher,
    tmp_path: Path,
) -> None:
    """A title with CR/LF cannot reach a header: definitions refuse it at load time."""
    definitions = tmp_path / "defs"
    subprocess.run(["cp", "-r", str(ROOT / "definitions"), str(definitions)], check=True)
    workflow = definitions / "workflows" / "partnership.yaml"
    workflow.write_text(
        workflow.read_text().replace(
            "title: {sv: Kontakta studieförbund och organisationer,",
            'title: {sv: "Kontakta\\r\\nBcc: evil@example.org",',
        )
    )
    result = subprocess.run(
        [sys.executable, "-c", "import cli; cli.main()", "validate", str(definitions)],
        cwd=ROOT,
        env={**os.environ, **worker_env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "must be a single line" in result.stderr


def test_worker_logs_are_json_with_context_and_no_bodies(
    worker_env: dict[str, str],
    start_worker: Callable[..., WorkerProcess],
    smtp: SmtpCatcher,
    tmp_path: Path,
) -> None:
    """Worker log lines are JSON with task, event, assignment, point and step; no mail text."""
    start_worker()
    council(worker_env, "start", A, "--point", "4", "--now", "2023-01-09T09:00")
    wait_for(lambda: len(smtp.received) == 1, timeout=30, what="the prompt")
    council(worker_env, "note", f"{A}/4", "Hemlig anteckning om arbetet", "--now", "2023-01-10")
    wait_for(
        lambda: "dispatch.done" in (tmp_path / "worker.log").read_text(),
        timeout=30,
        what="the dispatch log line",
    )
    lines = [
        json.loads(line)
        for line in (tmp_path / "worker.log").read_text().splitlines()
        if line.startswith("{")
    ]
    done = next(line for line in lines if line["event"] == "dispatch.done")
    assert done["assignment"] == A
    assert done["point"] == 4
    assert done["step"] == "map"
    assert done["event_type"] == "step.activated"
    assert isinstance(done["event_id"], int)
    assert done["task_id"]
    text = (tmp_path / "worker.log").read_text()
    body = smtp.received[0].message.get_body(("plain",)).get_content()
    assert "Hemlig anteckning" not in text
    assert body.splitlines()[2] not in text  # no line of the mail's text is logged


def test_a_stopping_worker_says_quit_on_the_connection_it_kept(
    worker_env: dict[str, str],
    start_worker: Callable[..., WorkerProcess],
    smtp: SmtpCatcher,
) -> None:
    """The SMTP connection kept between batches is closed with QUIT at a warm shutdown."""
    worker = start_worker()
    council(worker_env, "start", A, "--point", "4", "--now", "2023-01-09T09:00")
    wait_for(lambda: len(smtp.received) == 1, timeout=30, what="the prompt")
    peer = smtp.received[0].peer
    assert peer not in smtp.handler.quits  # kept open for the next batch
    worker.stop()
    wait_for(lambda: peer in smtp.handler.quits, timeout=10, what="QUIT from the stopped worker")
