"""A council's register, scripted: 14 assignments of 5 bodies from 2024 to 2027.

The definitions are tests/fixtures/register/. Played through the engine, with the deadline
sweep run every Monday morning (it starts the planned points and opens the quarterly
status reports), it gives a register with every kind of point: completed, ongoing with
notes, to be started (planned, and late to start), overdue, written off, all steps
skipped, decided against, a recurring duty, an assignment in English, one closed before
2027 (in no 2027 report) and one decided after the tertial report.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

from workflow import sweep
from workflow.core.actions import Action, AddNote, BeginStep, CompleteStep, SkipStep, WriteOff
from workflow.engine import Engine

FIXTURE = Path(__file__).parent / "fixtures" / "register"
TZ = ZoneInfo("Europe/Stockholm")
#: The two occasions the golden files are of.
TERTIAL = dt.date(2027, 4, 30)
YEAR_END = dt.date(2027, 12, 31)
ACTOR = "erik.sjoberg"  # the kanslichef: the coordinator, and an administrator

#: (day the assignment is started by its coordinator, assignment)
STARTS = [
    ("2024-09-20", "kf-2024-gatubelysning"),
    ("2025-12-01", "kf-2025-digital-namnd"),
    ("2025-12-01", "kf-2025-hemtjanst"),
    ("2025-12-01", "kf-2025-skolskjuts"),
    ("2026-02-02", "kf-2026-lekplatser"),
    ("2026-03-02", "kf-2026-trafiksakerhet"),
    ("2026-04-01", "kf-2026-bibliotek"),
    ("2026-05-04", "kf-2026-ensamhet"),
    ("2026-05-25", "kf-2026-energi"),
    ("2026-07-01", "kf-2026-medborgardialog"),
    ("2026-10-01", "kf-2026-tillganglighet"),
    ("2026-10-26", "kf-2026-rekrytering"),
    ("2027-03-01", "kf-2027-vattenplan"),
    ("2027-07-01", "kf-2027-fritidskort"),
]


def _done(step: str, note: str | None = None) -> CompleteStep:
    return CompleteStep(actor=ACTOR, step=step, note=note)


def _note(text: str) -> AddNote:
    return AddNote(actor=ACTOR, text=text)


def _begun(step: str = "utred") -> BeginStep:
    return BeginStep(actor=ACTOR, step=step)


#: (when, assignment, point, command), in time order.
HISTORY: list[tuple[str, str, int, Action]] = [
    ("2025-02-03T10:00", "kf-2024-gatubelysning", 1, _done("utred")),
    ("2026-03-02T10:00", "kf-2024-gatubelysning", 1,
     _done("besluta", "Alla armaturer på huvudgatorna är utbytta.")),
    ("2026-02-10T10:00", "kf-2025-digital-namnd", 1, _done("utred")),
    ("2026-04-20T10:00", "kf-2025-digital-namnd", 1,
     _done("besluta", "Kallelser och handlingar skickas digitalt sedan april 2026.")),
    ("2026-03-02T10:00", "kf-2025-skolskjuts", 1, _done("utred")),
    ("2026-06-15T10:00", "kf-2025-skolskjuts", 1, _done("besluta", "Avtal tecknat för 2026–2030.")),
    ("2026-08-20T09:00", "kf-2026-trafiksakerhet", 2, _begun()),
    ("2026-08-20T10:00", "kf-2026-trafiksakerhet", 2,
     _note("Tre övergångsställen är ombyggda, sju återstår.")),
    ("2026-09-14T10:00", "kf-2026-trafiksakerhet", 1,
     WriteOff(actor=ACTOR, reason="Hastigheten på statliga vägar beslutas av Trafikverket; "
              "kommunen har sänkt den där kommunen är väghållare.")),
    ("2026-05-04T10:00", "kf-2026-bibliotek", 1,
     SkipStep(actor=ACTOR, step="forsok", reason="Försöket ryms inte i budgeten 2026.")),
    ("2026-05-04T10:05", "kf-2026-bibliotek", 1,
     SkipStep(actor=ACTOR, step="utvardera", reason="Inget försök att utvärdera.")),
    ("2026-08-03T10:00", "kf-2026-medborgardialog", 1, _done("planera")),
    ("2026-09-24T10:00", "kf-2026-medborgardialog", 1,
     _done("lagesrapport@2026-Q3", "Två dialogmöten hölls i september.")),
    ("2026-09-28T09:00", "kf-2026-ensamhet", 1, _begun()),
    ("2026-09-28T10:00", "kf-2026-ensamhet", 1,
     _note("The survey of people over 75 is under way.")),
    ("2026-10-05T09:00", "kf-2025-hemtjanst", 1, _begun()),
    ("2026-10-05T10:00", "kf-2025-hemtjanst", 1, _note("Upphandlingen av verktyget pågår.")),
    ("2026-10-01T10:00", "kf-2025-skolskjuts", 2, _done("utred")),
    ("2026-11-20T10:00", "kf-2026-tillganglighet", 1, _done("utred")),
    ("2027-02-01T09:00", "kf-2026-lekplatser", 2, _begun()),
    ("2027-02-01T10:00", "kf-2026-lekplatser", 2,
     _note("Inventeringen är klar: tolv lekplatser behöver rustas upp.")),
    ("2027-03-10T09:00", "kf-2025-digital-namnd", 2, _begun()),
    ("2027-03-10T10:00", "kf-2025-digital-namnd", 2,
     _note("Utbildningen av ledamöterna hålls i maj.")),
    ("2027-03-22T10:00", "kf-2025-skolskjuts", 2,
     _done("besluta", "Nya skolskjutsregler gäller från läsåret 2027/28.")),
    ("2027-03-29T10:00", "kf-2026-medborgardialog", 1,
     _done("lagesrapport@2027-Q1", "Dialogmöten i alla kommundelar är genomförda.")),
    ("2027-04-15T09:00", "kf-2027-vattenplan", 1, _begun()),
    ("2027-04-15T10:00", "kf-2027-vattenplan", 1, _note("Samråd med grannkommunerna har inletts.")),
    # After the tertial report: only the year-end register shows these.
    ("2027-05-20T10:00", "kf-2025-digital-namnd", 2, _done("utred")),
    ("2027-06-10T10:00", "kf-2026-ensamhet", 2, _done("utred")),
    ("2027-06-14T10:00", "kf-2026-ensamhet", 2,
     _done("besluta", "Four meeting places opened in spring 2027.")),
    ("2027-09-20T10:00", "kf-2025-hemtjanst", 1, _done("utred")),
    ("2027-10-01T10:00", "kf-2026-energi", 1, _done("utred")),
    ("2027-10-25T10:00", "kf-2026-energi", 1,
     _done("besluta", "Energikartläggningen är klar; åtgärdsplan antagen.")),
    ("2027-11-01T09:00", "kf-2027-fritidskort", 1, _begun()),
    ("2027-11-01T10:00", "kf-2027-fritidskort", 1, _note("Utredningen jämför tre kommuners kort.")),
]  # fmt: skip


def _at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=TZ)


def play(engine: Engine, *, until: dt.date = YEAR_END) -> None:
    """Start the assignments and run the history up to ``until``, with a sweep each Monday
    at 07:00 in between (the sweep starts planned points and opens occurrences)."""
    moments: list[tuple[dt.datetime, int, object]] = []
    for day, assignment in STARTS:
        moments.append((_at(f"{day}T09:00"), 0, assignment))
    for when, assignment, number, command in HISTORY:
        moments.append((_at(when), 1, (assignment, number, command)))
    monday = dt.date(2024, 9, 23)
    while monday <= until:
        moments.append((_at(f"{monday.isoformat()}T07:00"), 2, None))
        monday += dt.timedelta(days=7)
    for moment, kind, item in sorted(moments, key=lambda m: (m[0], m[1])):
        if moment.date() > until:
            break
        if kind == 0:
            assert isinstance(item, str)
            engine.start(item, actor=ACTOR, now=moment)
        elif kind == 1:
            assignment, number, command = item  # type: ignore[misc]
            engine.act(engine.definitions.assignment(assignment).point(number), command, now=moment)
        else:
            while sweep.sweep(engine, now=moment).full():
                pass
