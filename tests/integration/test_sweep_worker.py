"""The deadline sweep end to end: sweep -> outbox -> Redis -> Celery worker -> SMTP.

A real worker (beat embedded) on the test's own Redis, an aiosmtpd catcher and
SQLite or PostgreSQL. The sweep runs as the coordinator's `council
check-deadlines --now` and as beat's `council.sweep_deadlines` task; the
owners' notices and the managers' digests are read back from the catcher.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections import Counter
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

import sqlalchemy as sa

from tests.integration.conftest import STOCKHOLM
from tests.integration.servers import Received, SmtpCatcher, WorkerProcess, council, wait_for
from tests.support import DEFINITIONS
from workflow.core.calendar import Calendar
from workflow.definitions.loader import load
from workflow.engine import Engine
from workflow.mail.compose import message_id
from workflow.store import tables
from workflow.store.effects import EffectState

HEDER = "kf-2022-hedersvald"
LOKAL = "kf-2024-lokalforsorjning"
DOMAIN = "kommun.example"
#: Subjects of the sweep's mail (the task prompts of started steps are not counted).
DEADLINE_SUBJECT = re.compile(r"^(Påminnelse|Försenad|Eskalering): ")
#: The worker's log line for a finished sweep task, with its result.
SWEEP_RAN = re.compile(r"Task council\.sweep_deadlines\[[^\]]+\] succeeded in [\d.]+s: (\d+)")


def deadline_mail(smtp: SmtpCatcher) -> list[Received]:
    return [r for r in smtp.received if DEADLINE_SUBJECT.match(str(r.message["Subject"]))]


def by_subject(smtp: SmtpCatcher) -> dict[str, Received]:
    return {str(r.message["Subject"]): r for r in deadline_mail(smtp)}


def text(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def settled(db: sa.Engine) -> bool:
    """Every event handled and every effect sent."""
    with db.connect() as conn:
        unhandled = conn.execute(
            sa.select(sa.func.count()).where(tables.outbox.c.handled_at.is_(None))
        ).scalar_one()
        unsent = conn.execute(
            sa.select(sa.func.count()).where(tables.effects.c.state != EffectState.DONE.value)
        ).scalar_one()
    return unhandled == 0 and unsent == 0


def deadline_rows(db: sa.Engine) -> tuple[int, int, Counter[str]]:
    """(firings, deadline events, effects by kind)."""
    with db.connect() as conn:
        firings = conn.execute(sa.select(sa.func.count()).select_from(tables.firings)).scalar_one()
        events = conn.execute(
            sa.select(sa.func.count()).where(
                tables.events.c.type.in_(["step.reminder_due", "step.overdue", "step.escalated"])
            )
        ).scalar_one()
        kinds = Counter(conn.execute(sa.select(tables.effects.c.kind)).scalars().all())
    return int(firings), int(events), kinds


def effect_keys(db: sa.Engine, kind: str) -> list[str]:
    with db.connect() as conn:
        query = sa.select(tables.effects.c.key).where(tables.effects.c.kind == kind)
        return sorted(conn.execute(query).scalars().all())


def test_check_deadlines_mails_owners_and_one_digest_to_the_manager(
    worker_env: dict[str, str],
    start_worker: Callable[..., WorkerProcess],
    smtp: SmtpCatcher,
    db: sa.Engine,
) -> None:
    """`check-deadlines --now`: each owner gets a Swedish reminder, then an overdue notice;
    karin.holm gets one digest listing both escalated steps; sweeping again sends nothing."""
    env = {**worker_env, "COUNCIL_SWEEP_INTERVAL": "3600"}  # only our sweeps, at our `now`
    start_worker(env)
    for number in ("1", "2"):  # only these: points 3 and 4 would start on 2023-01-09
        council(env, "start", HEDER, "--point", number, "--now", "2022-12-01T09:00")
    assert "2 fired" in council(env, "check-deadlines", "--now", "2022-12-22T08:00")
    wait_for(lambda: len(deadline_mail(smtp)) == 2, timeout=30, what="the two reminders")
    out = council(env, "check-deadlines", "--now", "2023-01-11T08:00")
    assert "4 fired" in out  # two overdue notices, two escalations
    wait_for(lambda: len(deadline_mail(smtp)) == 5, timeout=30, what="notices and the digest")

    mails = by_subject(smtp)
    reminder = mails["Påminnelse: Analysera underlaget (30 december 2022)"]
    assert reminder.envelope_to == ["anders.berg@kommun.example"]
    assert reminder.message["To"] == "Anders Berg <anders.berg@kommun.example>"
    body = text(reminder.message)
    assert body.startswith("Hej Anders Berg,")
    assert "Ett moment du ansvarar för ska vara klart snart." in body
    assert "Klart senast: 30 december 2022" in body
    assert "Så rapporterar du: skriv till samordnaren Sara Nilsson" in body
    assert "council complete" not in body  # owners never need a command line
    assert mails["Påminnelse: Inventera utbildningsbehov (9 januari 2023)"].envelope_to == [
        "eva.dahl@kommun.example"
    ]

    overdue = mails["Försenad: Inventera utbildningsbehov (9 januari 2023)"]
    assert overdue.envelope_to == ["eva.dahl@kommun.example"]
    assert "Ett moment du ansvarar för är försenat." in text(overdue.message)
    assert mails["Försenad: Analysera underlaget (30 december 2022)"].envelope_to == [
        "anders.berg@kommun.example"
    ]

    digest = mails["Eskalering: 2 försenade moment"]
    assert digest.envelope_to == ["karin.holm@kommun.example"]
    assert digest.message["Content-Language"] == "sv"
    body = text(digest.message)
    assert body.startswith("Hej Karin Holm,")
    assert "Följande moment är försenade och har eskalerats till dig." in body
    assert f"- {HEDER}/1/analyse: Analysera underlaget" in body
    assert f"- {HEDER}/2/needs: Inventera utbildningsbehov" in body
    assert "Ansvarig: Anders Berg · Klart senast: 30 december 2022 · Arbetsdagar försenat: 7" in (
        body
    )
    assert "Ansvarig: Eva Dahl · Klart senast: 9 januari 2023 · Arbetsdagar försenat: 2" in body
    (key,) = effect_keys(db, "digest")
    assert digest.message_id == message_id(key, DOMAIN)

    wait_for(lambda: settled(db), timeout=30, what="every effect sent")
    rows = deadline_rows(db)
    for now in ("2023-01-11T08:00", "2023-01-11T15:00", "2023-01-12T08:00"):
        assert "nothing fired" in council(env, "check-deadlines", "--now", now)
    assert deadline_rows(db) == rows
    time.sleep(2)  # a relay and a reconciler run (1 s each) find nothing to send either
    assert len(deadline_mail(smtp)) == 5
    assert len(set(smtp.message_ids())) == len(smtp.received)


def test_beat_sweeping_every_second_fires_each_notice_once(
    worker_env: dict[str, str],
    start_worker: Callable[..., WorkerProcess],
    smtp: SmtpCatcher,
    db: sa.Engine,
    tmp_path: Path,
) -> None:
    """Beat's `council.sweep_deadlines`, run every second at the real clock, mails the owner
    one overdue notice and the kommundirektor one digest, however often it runs again."""
    start_worker({**worker_env, "COUNCIL_SWEEP_INTERVAL": "1"})
    # The study is due 60 working days after the point's planned start (2024-05-06), on
    # 2024-08-01, and escalated 10 days later to the kommundirektor: started today, it is
    # overdue and escalated at once (its reminders fall before it started: none).
    engine = Engine(db=db, definitions=load([DEFINITIONS]), calendar=Calendar(), timezone=STOCKHOLM)
    engine.start(LOKAL, actor="erik.sjoberg", now=dt.datetime.now(STOCKHOLM), only=2)
    assert engine.snapshot(LOKAL)[(LOKAL, 2)].step("study").due == dt.date(2024, 8, 1)

    wait_for(lambda: len(deadline_mail(smtp)) == 2, timeout=30, what="the notice and the digest")
    mails = by_subject(smtp)
    overdue = mails["Försenad: Genomför förstudie (1 augusti 2024)"]
    assert overdue.envelope_to == ["per.lund@kommun.example"]
    assert "Ett moment du ansvarar för är försenat." in text(overdue.message)
    digest = mails["Eskalering: 1 försenade moment"]
    assert digest.envelope_to == ["karin.holm@kommun.example"]
    assert f"- {LOKAL}/2/study: Genomför förstudie" in text(digest.message)
    assert "Ansvarig: Per Lund" in text(digest.message)

    log = tmp_path / "worker.log"

    def fired_per_run() -> list[int]:
        """What each finished `council.sweep_deadlines` run returned (the firings it fired)."""
        return [int(n) for n in SWEEP_RAN.findall(log.read_text())]

    runs = len(fired_per_run())
    wait_for(lambda: len(fired_per_run()) >= runs + 3, timeout=30, what="three more sweeps")
    assert sum(fired_per_run()) == 2  # fired once, then nothing in each later run
    wait_for(lambda: settled(db), timeout=30, what="every effect sent")
    firings, events, kinds = deadline_rows(db)
    assert (firings, events) == (2, 2)  # the overdue notice and the escalation
    assert (kinds["overdue"], kinds["digest"], kinds["reminder"]) == (1, 1, 0)
    assert len(deadline_mail(smtp)) == 2
    assert len(set(smtp.message_ids())) == len(smtp.received)
