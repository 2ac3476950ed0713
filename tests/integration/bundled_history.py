"""A history across the bundled assignments, for tests of the register (uppdragslista).

The seed assignment's scripted history (:mod:`scripts.seed_history`), then the premises
assignment started on its day with its feasibility study done, and the safety
assignment started with its method settled. As of :data:`AS_OF_ALL` the register of
every assignment has three rows, points in every group, one decided against, overdue
marks and notes; the first tertial report of 2023 (:data:`TERTIAL_DAY`) has the seed
assignment only, as it stood in April.
"""

from __future__ import annotations

import datetime as dt

from scripts.seed_history import TZ, at, play
from tests.support import bundled
from workflow.core.actions import Action, BeginStep, CompleteStep
from workflow.core.specs import Language
from workflow.engine import Engine
from workflow.report.register import Register, Selection, build_register

LOKAL = "kf-2024-lokalforsorjning"
EST = "kf-2025-trygghet"
#: The day the register of every assignment is made: all three are decided by then.
AS_OF_ALL = dt.date(2025, 3, 31)
#: The first tertial report of 2023: the last business day of April.
TERTIAL_DAY = dt.date(2023, 4, 28)

#: (when, assignment, point, command) after each assignment's start, in time order.
WORK: list[tuple[str, str, int, Action]] = [
    ("2024-04-08T09:00", LOKAL, 1, BeginStep(actor="ulla.wik", step="forecast")),
    (
        "2024-05-28T10:00",
        LOKAL,
        2,
        CompleteStep(
            actor="per.lund", step="study", note="Förstudien visar att samlokalisering är möjlig."
        ),
    ),
    (
        "2025-02-20T09:00",
        EST,
        2,
        CompleteStep(
            actor="amir.hassan",
            step="metod",
            note="Analysen utgår från polisens och skolornas statistik.",
        ),
    ),
]


def play_all(engine: Engine) -> None:
    """The seed history (and its later work), then the other two assignments' work."""
    play(engine, later=True)
    engine.start(LOKAL, actor="erik.sjoberg", now=at("2024-04-02T09:00"))
    engine.start(LOKAL, actor="erik.sjoberg", now=at("2024-05-06T08:00"), only=2)
    engine.start(EST, actor="sara.nilsson", now=at("2025-02-03T08:00"))
    for when, assignment, number, command in WORK:
        point = engine.definitions.assignment(assignment).point(number)
        engine.act(point, command, now=at(when))


def register_of(engine: Engine, which: str, lang: Language) -> Register:
    """``all``: every assignment as of :data:`AS_OF_ALL`; ``tertial``: the first tertial
    report of 2023 on its day. Each assignment's current plan is the one in force."""
    definitions = engine.definitions
    events = [e for _, e in engine.events()]
    if which == "all":
        selection, as_of = Selection(everything=True), AS_OF_ALL
    else:
        tertial = bundled().occasions["tertial-1"]  # the engine may run without occasions
        selection = Selection(occasion=tertial, year=2023)
        as_of = TERTIAL_DAY
    return build_register(
        definitions, definitions.assignments, events, selection, as_of=as_of, tz=TZ, lang=lang
    )
