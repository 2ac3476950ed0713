"""Reporting occasions: the sweep reminds the coordinator before the day and, on the day,
has a worker assemble the register and mail it, exactly once; bodies' digests.

The bundled occasions (definitions/occasions.yaml): tertial-1 on the last working day of
April (reminder 10 working days before), the interim report in August, the annual report
on 31 December (reminders 10 and 2 working days before), all to Kommunfullmäktige, whose
registrar is registrator@kommun.example, coordinated by the kanslichef (erik.sjoberg).
"""

from __future__ import annotations

import datetime as dt
import io
import subprocess
import sys
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

import sqlalchemy as sa
from docx import Document

from tests.integration.servers import SmtpCatcher, WorkerProcess, council, wait_for
from tests.integration.test_sweep import at, effect_rows, handle, run_sweep, sweeps_at_once
from tests.integration.test_sweep_worker import settled
from tests.support import ROOT, copy_definitions
from workflow import sweep
from workflow.core.events import REGISTER, EventType
from workflow.engine import Engine
from workflow.store import tables

HEDER = "kf-2022-hedersvald"
LOKAL = "kf-2024-lokalforsorjning"
TERTIAL = "Uppdragslista till Kommunfullmäktige – Tertialrapport 1 2024"
REMINDER = "Påminnelse: Tertialrapport 1 2024 sammanställs 30 april 2024"


def occasion_events(db: sa.Engine) -> list[tuple[str, dict[str, object]]]:
    with db.connect() as conn:
        rows = conn.execute(
            sa.select(tables.events.c.type, tables.events.c.payload)
            .where(tables.events.c.assignment == REGISTER)
            .order_by(tables.events.c.id)
        )
        return [(row.type, row.payload) for row in rows]


def plain(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def html(message: EmailMessage) -> str:
    body = message.get_body(("html",))
    assert body is not None
    return str(body.get_content())


def test_racing_sweeps_ask_for_an_occasion_once_and_a_dry_run_writes_nothing(
    occasion_engine: Engine,
) -> None:
    """Two sweeps on the occasion's day: one occasion.reached event between them, and none
    again later that week; a dry run before says what would fire and writes nothing."""
    dry = sweep.sweep(occasion_engine, now=at("2024-04-16"), dry_run=True)
    assert [(o.occasion, o.year, o.what) for o in dry.occasions] == [("tertial-1", 2024, "-10bd")]
    assert occasion_events(occasion_engine.db) == []

    reminded = run_sweep(occasion_engine, at("2024-04-16"))
    assert [(o.occasion, o.what, o.to) for o in reminded.occasions] == [
        ("tertial-1", "-10bd", "erik.sjoberg")
    ]
    assert run_sweep(occasion_engine, at("2024-04-17")).occasions == []  # once

    results = sweeps_at_once(occasion_engine, at("2024-04-30"))
    assert sorted(len(r.occasions) for r in results) == [0, 1]
    for day in ("2024-04-30", "2024-05-03", "2024-05-07"):
        assert run_sweep(occasion_engine, at(day)).occasions == []
    types = [(t, p["occasion"], p["year"]) for t, p in occasion_events(occasion_engine.db)]
    assert types == [
        (EventType.OCCASION_REMINDER_DUE.value, "tertial-1", 2024),
        (EventType.OCCASION_REACHED.value, "tertial-1", 2024),
    ]
    reached = occasion_events(occasion_engine.db)[-1][1]
    assert (reached["as_of"], reached["language"]) == ("2024-04-30", "sv")


def test_a_late_sweep_still_reports_within_a_week_and_an_older_occasion_is_left(
    occasion_engine: Engine,
) -> None:
    """No sweep ran on 30 April 2025 (beat down): the sweep of 7 May asks for the report as
    of the day itself; by 9 May (more than 7 days) it is left to `council report`."""
    late = run_sweep(occasion_engine, at("2025-05-07"))
    assert [(o.occasion, o.year, o.day) for o in late.occasions] == [
        ("tertial-1", 2025, dt.date(2025, 4, 30))
    ]
    assert occasion_events(occasion_engine.db)[-1][1]["as_of"] == "2025-04-30"
    assert run_sweep(occasion_engine, at("2026-05-09")).occasions == []


def test_only_the_latest_reminder_that_came_fires_and_it_supersedes_the_earlier(
    occasion_engine: Engine,
) -> None:
    """The annual report (31 December) reminds 10 and 2 working days before: a first sweep
    after both days sends the later reminder only; the earlier one never comes after it."""
    first = run_sweep(occasion_engine, at("2024-12-30"))
    assert [(o.occasion, o.what) for o in first.occasions] == [("arsredovisning", "-2bd")]
    assert run_sweep(occasion_engine, at("2024-12-30", "15:00")).occasions == []
    with occasion_engine.db.connect() as conn:
        keys = set(conn.execute(sa.select(tables.firings.c.key)).scalars())
    assert {"occasion:arsredovisning:2024:remind:-2bd",
            "occasion:arsredovisning:2024:remind:-10bd"} <= keys  # fmt: skip
    on_the_day = run_sweep(occasion_engine, at("2024-12-31"))
    assert [(o.occasion, o.what) for o in on_the_day.occasions] == [("arsredovisning", "report")]


def test_the_reminder_says_what_the_occasion_covers_and_what_is_missing(
    occasion_engine: Engine,
) -> None:
    """The kanslichef's reminder counts the assignments and points the report will cover,
    the overdue ones and those without a progress note, and names the command to look."""
    occasion_engine.start(HEDER, actor="sara.nilsson", now=at("2022-12-01", "09:00"))
    result = sweep.sweep(occasion_engine, now=at("2023-04-17"))
    handle(occasion_engine, result.event_ids, at("2023-04-17"))
    (reminder,) = effect_rows(occasion_engine.db, "reminder")
    message = reminder.payload["message"]
    assert message["to_email"] == "erik.sjoberg@kommun.example"
    assert message["subject"] == "Påminnelse: Tertialrapport 1 2023 sammanställs 28 april 2023"
    text = message["text"]
    assert text.startswith("Hej Erik Sjöberg,")
    assert (
        "Tertialrapport 1 2023 till Kommunfullmäktige sammanställs och skickas 28 april 2023."
        in (text)
    )
    assert "Läget just nu: 1 uppdrag med 6 punkter; 2 punkter är försenade och 6 saknar " in text
    assert (
        "- KS 2022/0417 Uppdrag att utveckla arbetet mot hedersrelaterat våld och förtryck (6)"
        in (text)
    )
    assert "council report --occasion tertial-1 --year 2023" in text


def test_a_body_chief_gets_one_digest_per_sweep_of_its_assignments_overdue_steps(
    occasion_engine: Engine,
) -> None:
    """Points 1 and 2 of the honour-violence assignment become overdue in one sweep. The
    chiefs of its co-owning committees each get one digest of both steps, except the step
    the chief owns (anders.berg, socialchef, owns `analyse`); the kommundirektor, chief of
    the leading board, had both escalated in the same sweep: no digest for her."""
    for number in (1, 2):
        occasion_engine.start(
            HEDER, actor="sara.nilsson", now=at("2022-12-01", "09:00"), only=number
        )
    run_sweep(occasion_engine, at("2022-12-22"))  # the reminders
    run_sweep(occasion_engine, at("2023-01-11"))  # overdue notices and escalations, one sweep
    digests = {row.key.rsplit(":", 1)[-1]: row.payload["message"]
               for row in effect_rows(occasion_engine.db, "body-digest")}  # fmt: skip
    assert sorted(digests) == ["kultur-och-fritidsnamnden", "socialnamnden", "utbildningsnamnden"]
    social = digests["socialnamnden"]
    assert social["to_email"] == "anders.berg@kommun.example"
    assert social["subject"] == "Försenat i uppdrag för Socialnämnden: 1 försenade moment"
    assert f"- {HEDER}/2/needs: Inventera utbildningsbehov" in social["text"]
    assert "analyse" not in social["text"]
    education = digests["utbildningsnamnden"]
    assert education["to_email"] == "maria.lind@kommun.example"
    assert (
        "Följande moment i uppdrag där Utbildningsnämnden är ansvarig eller medansvarig "
        in (education["text"])
    )
    assert f"- {HEDER}/1/analyse: Analysera underlaget" in education["text"]
    assert f"- {HEDER}/2/needs: Inventera utbildningsbehov" in education["text"]
    run_sweep(occasion_engine, at("2023-01-11", "15:00"))
    assert len(effect_rows(occasion_engine.db, "body-digest")) == 3


def test_an_occasion_report_is_mailed_once_by_a_worker_with_two_racing_sweeps(
    worker_env: dict[str, str],
    start_worker: Callable[..., WorkerProcess],
    smtp: SmtpCatcher,
    db: sa.Engine,
    tmp_path: Path,
) -> None:
    """Two `council check-deadlines` processes on the occasion's day: the kanslichef and
    the council's registrar each get the register once (HTML, plain text, DOCX attached),
    covering every assignment decided by then; asking again (`report --occasion --send`)
    and later sweeps send nothing more."""
    folder = copy_definitions(tmp_path / "definitions", occasions=True)
    env = {**worker_env, "COUNCIL_DEFINITIONS": str(folder), "COUNCIL_SWEEP_INTERVAL": "3600"}
    start_worker(env)
    council(env, "start", LOKAL, "--now", "2024-03-20T09:00", actor="erik.sjoberg")
    council(env, "check-deadlines", "--now", "2024-04-16T07:00")

    def subjects() -> list[str]:
        return [str(r.message["Subject"]) for r in smtp.received]

    wait_for(lambda: REMINDER in subjects(), timeout=60, what="the reminder",
             progress=lambda: len(smtp.received))  # fmt: skip
    (reminder,) = [r for r in smtp.received if r.message["Subject"] == REMINDER]
    assert reminder.envelope_to == ["erik.sjoberg@kommun.example"]

    sweeps = [
        subprocess.Popen(
            [sys.executable, "-c", "import cli; cli.main()", "check-deadlines", "--now",
             "2024-04-30T07:00"],
            cwd=ROOT, env={**env, "COUNCIL_ACTOR": "erik.sjoberg"}, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        )
        for _ in range(2)
    ]  # fmt: skip
    outputs = [s.communicate(timeout=120) for s in sweeps]
    assert [s.returncode for s in sweeps] == [0, 0], outputs
    assert sum("occasion " in out for out, _ in outputs) == 1, outputs

    def reports() -> list[EmailMessage]:
        return [r.message for r in smtp.received if str(r.message["Subject"]).startswith(TERTIAL)]

    wait_for(
        lambda: len(reports()) >= 2 and settled(db),
        timeout=60,
        what="the register to both recipients",
        progress=lambda: len(smtp.received),
    )
    council(env, "report", "--occasion", "tertial-1", "--year", "2024", "--as-of", "2024-04-30",
            "--send", actor="erik.sjoberg")  # fmt: skip
    council(env, "check-deadlines", "--now", "2024-05-02T07:00")
    wait_for(lambda: settled(db), timeout=60, what="every event handled",
             progress=lambda: len(smtp.received))  # fmt: skip

    mails = reports()
    assert sorted(str(m["To"]) for m in mails) == [
        "Erik Sjöberg <erik.sjoberg@kommun.example>",
        "Kommunfullmäktige <registrator@kommun.example>",
    ]
    assert len({m["Message-ID"] for m in mails}) == 2
    message = mails[0]
    assert str(message["Subject"]) == f"{TERTIAL} (läget per 30 april 2024)"
    for reference in ("KS 2022/0417", "KS 2024/0088"):
        assert reference in plain(message)
        assert reference in html(message)
    assert "KS 2025/0031" not in plain(message)  # decided in 2025
    (attachment,) = [part for part in message.iter_attachments()]
    assert attachment.get_filename() == "tertial-1-2024-2024-04-30-sv.docx"
    document = Document(io.BytesIO(attachment.get_content()))
    assert document.paragraphs[0].text == TERTIAL
    with db.connect() as conn:
        reached = conn.execute(
            sa.select(sa.func.count()).where(
                tables.events.c.type == EventType.OCCASION_REACHED.value
            )
        ).scalar_one()
    assert reached == 2  # the sweep's, and the coordinator's request: one mail each way
