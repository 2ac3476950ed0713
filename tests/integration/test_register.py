"""The register across assignments, from the real CLI, on SQLite and PostgreSQL.

The council of tests/fixtures/register/ (14 assignments, 5 bodies; tests/register_history.py
plays its history to the end of 2027). Golden files in every format and both languages at
the first tertial report and at year end; the same command gives the same bytes; the
selections; what each kind of point says.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.integration.conftest import STOCKHOLM
from tests.integration.test_cli import Council
from tests.register_history import FIXTURE, TERTIAL, YEAR_END, play
from tests.support import FIXTURES, assert_golden
from workflow.core.calendar import Calendar
from workflow.definitions.loader import load
from workflow.engine import Engine

GOLDEN = FIXTURES / "golden" / "register"
FORMATS = ("md", "html", "docx", "json", "csv")
OCCASIONS = (("tertial-1", TERTIAL), ("arsredovisning", YEAR_END))


@pytest.fixture
def register(database_url: str, db: sa.Engine, tmp_path: Path) -> Council:
    """The CLI on the register fixture's database, its history played to the end of 2027."""
    council = Council(database_url, FIXTURE, tmp_path / "var")
    council.env["COUNCIL_ACTOR"] = "erik.sjoberg"
    council.ok("db", "upgrade")
    play(Engine(db=db, definitions=load([FIXTURE]), calendar=Calendar(), timezone=STOCKHOLM))
    return council


def report(council: Council, tmp_path: Path, *args: str) -> bytes:
    """`council report ARGS -o FILE`: the file's bytes."""
    out = tmp_path / f"out-{len(list(tmp_path.iterdir()))}"
    fmt = args[args.index("--format") + 1] if "--format" in args else "md"
    target = out.with_suffix(f".{fmt}")
    council.ok("report", *args, "-o", str(target))
    return target.read_bytes()


def test_the_register_at_each_occasion_reads_as_its_golden_files(
    register: Council, tmp_path: Path
) -> None:
    """Tertial report 1 and the annual report of 2027, sv and en, md/html/docx/json/csv:
    byte for byte the golden files (the same on SQLite and PostgreSQL), and a second run
    of the same command gives the same bytes."""
    for occasion, day in OCCASIONS:
        for lang in ("sv", "en"):
            for fmt in FORMATS:
                args = ("--occasion", occasion, "--year", "2027", "--as-of", day.isoformat(),
                        "--lang", lang, "--format", fmt)  # fmt: skip
                data = report(register, tmp_path, *args)
                golden = GOLDEN / f"{occasion}-2027.{lang}.{fmt}"
                assert_golden(golden, data if fmt == "docx" else data.decode())
                assert report(register, tmp_path, *args) == data, f"{golden.name} twice"


def test_an_occasion_covers_what_was_open_when_its_year_began(
    register: Council, tmp_path: Path
) -> None:
    """Tertial 1 2027: 12 assignments (one finished in 2026 is in no 2027 report, one decided
    in June is not yet); the annual report: 13. One finished in March 2027 is in both, as
    completed; every kind of point says what it is."""
    tertial = json.loads(report(register, tmp_path, "--occasion", "tertial-1", "--year", "2027",
                                "--as-of", "2027-04-30", "--format", "json"))  # fmt: skip
    ids = [row["assignment"] for row in tertial["rows"]]
    assert len(ids) == 12
    assert "kf-2024-gatubelysning" not in ids  # completed in March 2026
    assert "kf-2027-fritidskort" not in ids  # decided on 21 June 2027
    rows = {row["assignment"]: row for row in tertial["rows"]}
    assert rows["kf-2025-skolskjuts"]["category"] == "completed"
    assert rows["kf-2026-bibliotek"]["category"] == "to_start"
    assert tertial["receiver"] == "Kommunfullmäktige"
    assert len({row["lead_id"] for row in tertial["rows"]}) == 4  # ks, son, bun, sbn

    points = {
        (r["assignment"], p["number"]): p
        for r in tertial["reports"]
        for group in (*r["groups"].values(), *r["apart"].values())
        for p in group
    }
    skipped = points[("kf-2026-bibliotek", 1)]
    assert (skipped["category"], skipped["all_skipped"]) == ("written_off", True)
    assert skipped["reason"] == "Försöket ryms inte i budgeten 2026.; Inget försök att utvärdera."
    assert points[("kf-2026-lekplatser", 1)]["category"] == "rejected"
    assert points[("kf-2026-trafiksakerhet", 1)]["category"] == "written_off"
    assert points[("kf-2025-hemtjanst", 1)]["overdue"] is True

    markdown = report(register, tmp_path, "--occasion", "tertial-1", "--year", "2027",
                      "--as-of", "2027-04-30").decode()  # fmt: skip
    assert markdown.startswith("# Uppdragslista till Kommunfullmäktige – Tertialrapport 1 2027\n")
    assert "Avslag – Kommunfullmäktige, 26 januari 2026, § 12." in markdown
    assert ("Alla moment hoppades över. Skäl: Försöket ryms inte i budgeten 2026.; Inget "
            "försök att utvärdera.") in markdown  # fmt: skip
    assert "Ingen lägesbeskrivning ännu." in markdown

    year_end = json.loads(report(register, tmp_path, "--occasion", "arsredovisning", "--year",
                                 "2027", "--as-of", "2027-12-31", "--format", "json"))  # fmt: skip
    assert len(year_end["rows"]) == 13
    assert "kf-2025-skolskjuts" in [row["assignment"] for row in year_end["rows"]]


def test_selections_by_name_body_and_decision_year(register: Council, tmp_path: Path) -> None:
    """--body: what the body leads or co-owns; --decided-in: the council's year; names;
    --all: every assignment decided by the date. The CSV has one row per point."""

    def ids(*args: str) -> list[str]:
        data = report(register, tmp_path, *args, "--as-of", "2027-12-31", "--format", "json")
        return [row["assignment"] for row in json.loads(data)["rows"]]

    social = ids("--body", "son")
    assert social == ["kf-2025-hemtjanst", "kf-2026-ensamhet", "kf-2026-medborgardialog",
                      "kf-2026-tillganglighet", "kf-2027-fritidskort"]  # fmt: skip
    assert ids("--decided-in", "2025") == ["kf-2025-digital-namnd", "kf-2025-hemtjanst",
                                           "kf-2025-skolskjuts"]  # fmt: skip
    assert ids("--body", "son", "--decided-in", "2026") == [
        "kf-2026-ensamhet", "kf-2026-medborgardialog", "kf-2026-tillganglighet"
    ]  # fmt: skip
    assert ids("kf-2026-energi", "kf-2024-gatubelysning") == ["kf-2024-gatubelysning",
                                                             "kf-2026-energi"]  # fmt: skip
    assert len(ids("--all")) == 14
    table = report(register, tmp_path, "--body", "son", "--as-of", "2027-12-31", "--format",
                   "csv").decode()  # fmt: skip
    rows = list(csv.reader(io.StringIO(table)))
    assert rows[0][:3] == ["Uppdragets id", "Diarienummer", "Beslut"]
    assert len(rows) == 1 + 2 + 2 + 2 + 2 + 1  # the header, then each point of the five
    heading = report(register, tmp_path, "--body", "son", "--as-of", "2027-12-31").decode()
    assert heading.splitlines()[:5] == [
        "# Uppdragslista till Kommunfullmäktige", "", "- **Läget per:** 31 december 2027",
        "- **Urval:** Socialnämnden", "- **Antal uppdrag:** 5",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--body", "tekniska"), "error: no body 'tekniska'; known: bun, kf, ks, sbn, son"),
        (("--occasion", "delarsrapport"),
         "error: no occasion 'delarsrapport'; known: arsredovisning, tertial-1"),
        (("--year", "2027", "--all"), "error: --year is the year of an --occasion"),
        ((), "error: name an assignment, or select several: --all, --body ID, --decided-in YEAR, "
             "--occasion ID"),
        (("--all", "kf-2026-energi"), "error: --all selects every assignment: name none with it"),
        (("--all", "--send"), "error: --send mails one assignment's report or an --occasion's"),
        (("--decided-in", "twenty"), "error: Invalid value for '--decided-in'"),
    ],
)  # fmt: skip
def test_a_bad_selection_is_one_line_and_exit_code_2(
    register: Council, args: tuple[str, ...], message: str
) -> None:
    assert register.fails(2, "report", *args).startswith(message)
