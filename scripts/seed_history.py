"""The seed assignment's history, scripted: what the report of June 2023 describes.

Points 1-2 completed, 3-5 ongoing, 6 to be started, and point 7 (the report
back itself) delivered on 12 June 2023; then some later work, so a report as of
June must not show it. Used by the golden report test, the accessibility test
and ``make report-preview``.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from workflow.core.actions import Action, AddNote, BeginStep, CompleteStep
from workflow.engine import Engine

A = "kf-2022-hedersvald"
TZ = ZoneInfo("Europe/Stockholm")
AS_OF = dt.date(2023, 6, 12)


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=TZ)


#: (when, point, command), in time order.
HISTORY: list[tuple[str, int, Action]] = [
    ("2022-12-20T10:00", 1, CompleteStep(actor="anders.berg", step="analyse")),
    ("2023-01-20T09:00", 2, CompleteStep(actor="eva.dahl", step="needs")),
    ("2023-02-10T10:00", 1, CompleteStep(actor="anders.berg", step="draft")),
    ("2023-02-15T09:00", 4, BeginStep(actor="amir.hassan", step="map")),
    ("2023-02-20T09:00", 5, CompleteStep(actor="erik.sjoberg", step="identify")),
    ("2023-03-01T09:00", 3, CompleteStep(actor="maria.lind", step="content")),
    ("2023-03-01T09:30", 5, BeginStep(actor="erik.sjoberg", step="update")),
    ("2023-03-06T09:00", 3, BeginStep(actor="lena.strand", step="produce")),
    (
        "2023-04-14T09:00",
        2,
        CompleteStep(
            actor="sara.nilsson",
            step="offer",
            note="Det finns ett särskilt chefsstöd om våld i nära relationer och webbaserade "
            "utbildningar för medarbetare.",
        ),
    ),
    (
        "2023-05-05T09:00",
        2,
        CompleteStep(
            actor="eva.dahl",
            step="adopt",
            note="Man uppmärksammar också årligen den nationella kampanjen En vecka fri från "
            "våld i samverkan med Polisen, lokala föreningar samt Svenska kyrkan.",
        ),
    ),
    (
        "2023-05-22T14:00",
        1,
        CompleteStep(
            actor="erik.sjoberg",
            step="present",
            note="Åtgärderna presenterades i fullmäktige i maj 2023. De innebär bland annat att "
            "arbetet samordnas inom ramen för metodiken Effektiv samordning trygghet.",
        ),
    ),
    (
        "2023-05-30T09:00",
        3,
        AddNote(
            actor="lena.strand",
            text="Arbete pågår med att ta fram broschyrer och affischer riktade mot barn och unga.",
        ),
    ),
    (
        "2023-05-30T10:00",
        4,
        AddNote(
            actor="amir.hassan",
            text="Kartläggning och utvärdering av rapporteringsvägar pågår som utgår från "
            "statistik. Årliga hälsoenkäter i vissa årskurser genomförs.",
        ),
    ),
    ("2023-05-02T16:00", 7, CompleteStep(actor="sara.nilsson", step="collect")),
    ("2023-05-26T12:00", 7, CompleteStep(actor="sara.nilsson", step="assemble")),
    (
        "2023-06-12T19:00",
        7,
        CompleteStep(
            actor="erik.sjoberg", step="submit", note="Godkänd av kommunfullmäktige 12 juni 2023."
        ),
    ),
]

#: Work after the report's date: a report as of AS_OF must not show it.
LATER: list[tuple[str, int, Action]] = [
    ("2023-09-04T09:00", 3, CompleteStep(actor="lena.strand", step="produce")),
    (
        "2023-09-20T09:00",
        4,
        AddNote(actor="amir.hassan", text="Rapporteringsvägarna är kartlagda."),
    ),
]


def play(engine: Engine, *, later: bool = False) -> None:
    """Start the seed assignment and run its history (and the later work, if asked)."""
    engine.start(A, actor="sara.nilsson", now=at("2022-12-01T09:00"))
    engine.start(A, actor="sara.nilsson", now=at("2023-02-01T08:00"))
    engine.start(A, actor="sara.nilsson", now=at("2023-04-17T08:00"))
    assignment = engine.definitions.assignment(A)
    steps = sorted(HISTORY + (LATER if later else []), key=lambda item: item[0])
    for when, number, command in steps:
        engine.act(assignment.point(number), command, now=at(when))
