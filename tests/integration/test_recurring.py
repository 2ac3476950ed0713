"""Recurring duties: occurrences opened by the sweep as they come, each its own unit of work.

On a real SQLite file and a real PostgreSQL database, with the bundled
kf-2025-trygghet (a weekly lägesbild due on Thursdays, a quarterly analysis, an
annual analysis with a count): ten weeks swept day by day with one week missed
(the missed week stays overdue on its own, the others open and close on their
days), racing sweeps open each occurrence once, a held or extended occurrence,
who may act on an occurrence, a reply by e-mail to an occurrence's prompt, skipping a
duty ends it, a counted duty completes
its point, and the as-of report counts only the occurrences up to its date. End to
end, a real worker mails the ten prompts and the overdue notices to a real SMTP
server.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.integration.conftest import STOCKHOLM
from tests.integration.servers import SmtpCatcher, WorkerProcess, wait_for
from tests.integration.test_sweep import at, days, handle, run_sweep, sweeps_at_once
from tests.support import DEFINITIONS
from workflow.core.actions import CompleteStep, ExtendStep, HoldStep, SkipStep
from workflow.core.calendar import Calendar
from workflow.core.specs import Language
from workflow.definitions.loader import load
from workflow.engine import Engine
from workflow.errors import NotFound, NotPermitted, TransitionNotAllowed
from workflow.report.model import build_report
from workflow.report.render import Format, render
from workflow.store import tables

EST = "kf-2025-trygghet"
#: The ten weeks from the start (Monday 2025-02-03): W06 ... W15, each due on its Thursday.
WEEKS = [f"2025-W{n:02d}" for n in range(6, 16)]
MISSED = "2025-W09"  # due Thursday 2025-02-27; nobody reports it


def thursday(week: str) -> dt.date:
    year, number = week.split("-W")
    return dt.date.fromisocalendar(int(year), int(number), 4)


def start_est(engine: Engine) -> None:
    """Start it, and run the handlers of its events as a worker would (the first prompts)."""
    now = at("2025-02-03", "08:00")
    handle(engine, engine.start(EST, actor="sara.nilsson", now=now).event_ids, now)


def complete(engine: Engine, week: str, when: dt.datetime, note: str | None = None) -> None:
    point = engine.definitions.assignment(EST).point(1)
    engine.act(point, CompleteStep(actor="amir.hassan", step=f"lagesbild@{week}", note=note),
               now=when)  # fmt: skip


def ten_weeks(engine: Engine, on_day: Callable[[dt.date], None] | None = None) -> Counter[str]:
    """Sweep every morning from 2025-02-03 to 2025-04-11, completing each week's picture on
    its Thursday afternoon, except MISSED; what the sweeps opened and fired, by kind."""
    start_est(engine)
    seen: Counter[str] = Counter()
    for day in days("2025-02-03", "2025-04-11"):
        result = run_sweep(engine, at(day.isoformat()))
        for item in result.result.items():
            if item["point"] == f"{EST}/1":
                seen[f"{item['kind']}:{item['step']}"] += 1
        week = f"{day.isocalendar()[0]}-W{day.isocalendar()[1]:02d}"
        if day.weekday() == 3 and week != MISSED:
            complete(engine, week, at(day.isoformat(), "15:00"), note=f"Lugnt läge {week}.")
        if on_day is not None:
            on_day(day)
    return seen


def occurrence_rows(engine: Engine) -> dict[str, tuple[str, dt.date | None]]:
    state = engine.snapshot(EST)[(EST, 1)]
    return {s.id: (s.status.value, s.due) for s in state.steps if "@" in s.id}


def test_ten_weeks_with_one_missed_week(engine: Engine) -> None:
    """Ten occurrences open, one a week on their Monday (the first with the start); each is
    due on its Thursday; the missed week stays open and overdue alone, with one overdue
    notice and one escalation, while the weeks after it open and close as usual."""
    seen = ten_weeks(engine)
    rows = occurrence_rows(engine)
    assert sorted(rows) == [f"lagesbild@{w}" for w in WEEKS]
    assert {w: rows[f"lagesbild@{w}"] for w in WEEKS} == {
        w: ("active" if w == MISSED else "done", thursday(w)) for w in WEEKS
    }
    opened_by_sweep = [k for k in seen if k.startswith("occurrence:")]
    assert sorted(opened_by_sweep) == [f"occurrence:lagesbild@{w}" for w in WEEKS[1:]]
    assert all(seen[k] == 1 for k in opened_by_sweep)  # each once, on its day
    missed = f"lagesbild@{MISSED}"
    assert seen[f"overdue:{missed}"] == 1
    assert seen[f"escalation:{missed}"] == 1
    assert [k for k in seen if k.startswith(("overdue:", "escalation:"))] == [
        f"overdue:{missed}", f"escalation:{missed}"
    ]  # fmt: skip
    reminders = [k for k in seen if k.startswith("reminder:")]
    assert len(reminders) == 10  # -1bd: each Wednesday, the missed week's too
    with engine.db.connect() as conn:
        prompts = conn.execute(
            sa.select(tables.events.c.step)
            .join(tables.effects, tables.effects.c.event_id == tables.events.c.id)
            .where(tables.effects.c.kind == "prompt", tables.events.c.point == 1,
                   tables.events.c.assignment == EST)
        ).scalars().all()  # fmt: skip
    assert sorted(prompts) == [f"lagesbild@{w}" for w in WEEKS]  # one prompt each


def test_the_as_of_report_counts_the_occurrences_up_to_its_date(engine: Engine) -> None:
    """As of 2025-03-01: three done, one missed; as of 2025-04-11: nine done, one missed, and
    the latest note; the same as-of report gives the same bytes however much follows."""
    early: list[bytes] = []

    def report(
        as_of: dt.date, lang: Language = Language.SV, fmt: Format = Format.MARKDOWN
    ) -> bytes:
        plan = engine.definitions.assignment(EST)
        events = [e for _, e in engine.events(assignment=EST)]
        built = build_report(engine.definitions, plan, events, as_of=as_of, tz=STOCKHOLM,
                             lang=lang, calendar=engine.calendar)  # fmt: skip
        return render(built, fmt)

    def on_day(day: dt.date) -> None:
        if day == dt.date(2025, 3, 1):
            early.append(report(day))

    ten_weeks(engine, on_day)
    march = report(dt.date(2025, 3, 1)).decode()
    assert (
        "- Lägesbild: 3 klara, 0 överhoppade, 1 missade, 0 pågående. Senast: Lugnt läge 2025-W08."
        in march
    )
    assert report(dt.date(2025, 3, 1)) == early[0]  # the weeks after change nothing of it
    april = report(dt.date(2025, 4, 11), Language.EN).decode()
    assert (
        "- Situation picture: 9 done, 0 skipped, 1 missed, 0 open. Latest: Lugnt läge 2025-W15."
        in april
    )
    import json

    (point,) = [p for p in json.loads(report(dt.date(2025, 4, 11), fmt=Format.JSON))["groups"]
                ["ongoing"] if p["number"] == 1]  # fmt: skip
    assert point["duties"] == [{
        "title": "Lägesbild", "done": 9, "skipped": 0, "missed": 1, "open": 0,
        "latest_note": "Lugnt läge 2025-W15.", "ended": False,
    }]  # fmt: skip
    docx = report(dt.date(2025, 4, 11), fmt=Format.DOCX)
    assert docx.startswith(b"PK")


def test_two_sweeps_racing_open_each_occurrence_once(engine: Engine) -> None:
    """Two sweeps at once on Monday 2025-02-10: week 7 opens once between them."""
    start_est(engine)
    results = sweeps_at_once(engine, at("2025-02-10"))
    opened = [o.step for result in results for o in result.result.opened]
    assert [o for o in opened if o.startswith("lagesbild")] == ["lagesbild@2025-W07"]
    with engine.db.connect() as conn:
        activations = conn.execute(
            sa.select(sa.func.count()).where(
                tables.events.c.type == "step.activated",
                tables.events.c.step == "lagesbild@2025-W07",
            )
        ).scalar_one()
    assert activations == 1


def test_an_occurrence_is_held_extended_and_acted_on_by_its_owner_only(engine: Engine) -> None:
    """Week 6 held fires nothing; week 7 extended moves its due date; a colleague may not
    complete an occurrence, and an occurrence that has not opened is not found."""
    start_est(engine)
    run_sweep(engine, at("2025-02-10"))
    point = engine.definitions.assignment(EST).point(1)
    hold = HoldStep(actor="sara.nilsson", step="lagesbild@2025-W06", reason="Väntar på polisen")
    engine.act(point, hold, now=at("2025-02-10", "09:00"))
    engine.act(point, ExtendStep(actor="sara.nilsson", step="lagesbild@2025-W07",
                                 to=dt.date(2025, 2, 21), reason="Sportlov"),
               now=at("2025-02-10", "09:05"))  # fmt: skip
    swept = run_sweep(engine, at("2025-02-17"))
    fired = {(f.firing.step, f.firing.kind.value) for f in swept.result.fired}
    assert ("lagesbild@2025-W06", "overdue") not in fired  # held: its clock stopped
    assert ("lagesbild@2025-W07", "overdue") not in fired  # due 2025-02-21 now
    assert occurrence_rows(engine)["lagesbild@2025-W07"] == ("active", dt.date(2025, 2, 21))
    with pytest.raises(NotPermitted):
        engine.act(point, CompleteStep(actor="per.lund", step="lagesbild@2025-W07"),
                   now=at("2025-02-17", "10:00"))  # fmt: skip
    with pytest.raises(NotFound, match="no such occurrence has opened"):
        engine.act(point, CompleteStep(actor="amir.hassan", step="lagesbild@2025-W20"),
                   now=at("2025-02-17", "10:00"))  # fmt: skip
    with pytest.raises(TransitionNotAllowed, match="act on one of its occurrences"):
        engine.act(point, CompleteStep(actor="amir.hassan", step="lagesbild"),
                   now=at("2025-02-17", "10:00"))  # fmt: skip


def test_skipping_a_duty_ends_it_and_its_open_occurrences_stay(engine: Engine) -> None:
    """The coordinator stops the weekly picture: no week opens after it, the open week
    stays the owner's to finish."""
    start_est(engine)
    point = engine.definitions.assignment(EST).point(1)
    stop = SkipStep(actor="sara.nilsson", step="lagesbild", reason="Ersätts av polisens bild")
    engine.act(point, stop, now=at("2025-02-05", "09:00"))
    for day in days("2025-02-05", "2025-02-25"):
        run_sweep(engine, at(day.isoformat()))
    assert sorted(occurrence_rows(engine)) == ["lagesbild@2025-W06"]
    state = engine.snapshot(EST)[(EST, 1)]
    assert state.step("lagesbild").status.value == "skipped"


def test_a_counted_duty_ends_with_its_last_occurrence_and_completes_its_point(
    engine: Engine,
) -> None:
    """The annual analysis (count 2, due 28 November): 2025 and 2026 open on 3 and 2
    November; the second is the last; both done, the point is completed."""
    start_est(engine)
    point = engine.definitions.assignment(EST).point(3)
    assert [o.step for o in run_sweep(engine, at("2025-11-03")).result.opened
            if o.point == f"{EST}/3"] == ["arsanalys@2025"]  # fmt: skip
    engine.act(point, CompleteStep(actor="sara.nilsson", step="arsanalys@2025"),
               now=at("2025-11-27", "10:00"))  # fmt: skip
    assert [o.step for o in run_sweep(engine, at("2026-11-02")).result.opened
            if o.point == f"{EST}/3"] == ["arsanalys@2026"]  # fmt: skip
    state = engine.snapshot(EST)[(EST, 3)]
    assert state.step("arsanalys").status.value == "done"  # no occurrence follows
    engine.act(point, CompleteStep(actor="sara.nilsson", step="arsanalys@2026"),
               now=at("2026-11-20", "10:00"))  # fmt: skip
    assert engine.snapshot(EST)[(EST, 3)].completed_at is not None
    later = run_sweep(engine, at("2027-11-01")).result.opened
    assert [o.step for o in later if o.point == f"{EST}/3"] == []


def test_a_worker_mails_ten_prompts_and_the_missed_weeks_notices(
    worker_env: dict[str, str],
    start_worker: Callable[..., WorkerProcess],
    smtp: SmtpCatcher,
    db: sa.Engine,
    publisher: Callable[[int], None],
) -> None:
    """Ten simulated weeks against a real worker and SMTP server: ten prompts, one per week,
    each naming its week; ten reminders; the missed week's overdue notice to the owner and
    its escalation digest to his manager; nothing twice."""
    start_worker({**worker_env, "COUNCIL_SWEEP_INTERVAL": "3600"})  # only our sweeps

    def publish(ids: object) -> None:
        for event_id in ids:  # type: ignore[attr-defined]
            publisher(event_id)

    engine = Engine(db=db, definitions=load([DEFINITIONS]), calendar=Calendar(),
                    timezone=STOCKHOLM, on_commit=publish)  # fmt: skip
    ten_weeks(engine)

    def subjects() -> list[str]:
        return [str(r.message["Subject"]) for r in smtp.received]

    def lagesbild(prefix: str) -> list[str]:
        return [s for s in subjects() if s.startswith(prefix) and "Situation picture" in s]

    wait_for(lambda: len(lagesbild("Task: ")) == 10 and len(lagesbild("Reminder: ")) == 10
             and len(lagesbild("Overdue: ")) == 1, timeout=60, what="prompts and notices",
             progress=lambda: len(smtp.received))  # fmt: skip
    # amir.hassan reads English (people.yaml); his manager's digest is in Swedish
    prompts = lagesbild("Task: ")
    assert sorted(prompts) == sorted(
        f"Task: Situation picture – week {int(w[-2:])} 2025 ({EST}/1)" for w in WEEKS
    )
    assert lagesbild("Overdue: ") == ["Overdue: Situation picture – week 9 2025 (27 February 2025)"]
    wait_for(lambda: any(s.startswith("Eskalering: ") for s in subjects()), timeout=60,
             what="the escalation digest")  # fmt: skip
    digests = [r for r in smtp.received if str(r.message["Subject"]).startswith("Eskalering: ")]
    assert [r.envelope_to for r in digests] == [["anders.berg@kommun.example"]]
    assert len(set(smtp.message_ids())) == len(smtp.received)


def test_an_owner_reports_an_occurrence_done_by_replying_to_its_prompt(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    """The reply address of week 7's prompt is signed over its own activation: amir.hassan
    answers DONE with a note, and that week (only) is done."""
    from pydantic import SecretStr

    from workflow.replies import tokens
    from workflow.replies.inbox import Inbox
    from workflow.settings import Settings

    mailbox = "council@kommun.example"
    secret = SecretStr("recurring-tests-reply-secret-0123456789")
    settings = Settings(
        reply_secret=secret,
        database_url=database_url,
        definitions=DEFINITIONS,
        var_dir=tmp_path / "var",
        mail_from=mailbox,
        reply_address=mailbox,
    )
    start_est(engine)
    run_sweep(engine, at("2025-02-10"))
    with engine.db.connect() as conn:
        activation = conn.execute(
            sa.select(tables.events.c.id).where(
                tables.events.c.type == "step.activated",
                tables.events.c.step == "lagesbild@2025-W07",
            )
        ).scalar_one()
    address = tokens.address(mailbox, settings.reply_key(), activation)  # type: ignore[arg-type]
    raw = (
        "From: Amir Hassan <amir.hassan@kommun.example>\r\n"
        f"To: {address}\r\nSubject: Re: Task: Situation picture - week 7 2025\r\n"
        "Message-ID: <week-7-done@mail.kommun.example>\r\n\r\n"
        "DONE\r\nA quiet week; two incidents near the station.\r\n"
    ).encode()
    receipt = Inbox(engine, settings).receive(raw, now=at("2025-02-13", "10:00"))
    assert (receipt.outcome, receipt.step) == ("done", f"{EST}/1/lagesbild@2025-W07")
    rows = occurrence_rows(engine)
    assert rows["lagesbild@2025-W07"][0] == "done"
    assert rows["lagesbild@2025-W06"][0] == "active"
    state = engine.snapshot(EST)[(EST, 1)]
    assert state.step("lagesbild").status.value == "recurring"
