"""`council backlog` end to end, on a real SQLite file and a real PostgreSQL database.

The seed history is played into the database (points 3-6 of the seed assignment open,
the premises and safety assignments not started), then the real CLI runs: in-process
through click's runner (stdout piped), or as a subprocess with stdout on a real
pseudo-terminal where the terminal matters (the rich table, xlsx refused on a terminal).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import pty
import re
import stat
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from click.testing import CliRunner, Result

from cli import main
from scripts.seed_history import A, play
from tests.support import DEFINITIONS, FIXTURES, ROOT, read_terminal
from workflow.core.plan import Definitions
from workflow.engine import Engine

LATER = "2026-01-05"  # every bundled assignment is decided by then
PREMISES = "kf-2024-lokalforsorjning"
SAFETY = "kf-2025-trygghet"
#: The CSV and Excel header, as docs/cli.md documents it.
HEADER = [
    "assignment", "point", "address", "title", "reference", "lead_id", "lead", "decided_on",
    "age_days", "age_months", "category", "due", "overdue", "at_risk", "old",
]  # fmt: skip
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@dataclass
class Council:
    """``council ARGS`` in-process, with this test's database and definitions."""

    env: dict[str, str]

    def __call__(self, *args: str, **env: str) -> Result:
        result = CliRunner().invoke(main, list(args), env={**self.env, **env})
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result

    def ok(self, *args: str, **env: str) -> Result:
        result = self(*args, **env)
        assert result.exit_code == 0, (args, result.output)
        return result

    def fails(self, code: int, *args: str, **env: str) -> str:
        """The command fails with ``code`` and exactly one ``error:`` line; return it."""
        result = self(*args, **env)
        assert result.exit_code == code, (args, result.output)
        assert "Traceback" not in result.output
        assert result.stdout == ""
        lines = result.stderr.splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("error: ")
        return lines[0]

    def items(self, *args: str) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = json.loads(
            self.ok("backlog", "--format", "json", *args).stdout
        )
        return data

    def subprocess_env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("COUNCIL_")}
        return {**env, **self.env, **extra}


@pytest.fixture
def council(engine: Engine, database_url: str, tmp_path: Path) -> Council:
    """The seed history up to June 2023 and the work after it, in this test's database."""
    play(engine, later=True)
    return Council(
        {
            "COUNCIL_DATABASE_URL": database_url,
            "COUNCIL_DEFINITIONS": str(DEFINITIONS),
            "COUNCIL_VAR_DIR": str(tmp_path / "var"),
            "COUNCIL_ACTOR": "sara.nilsson",
            "COUNCIL_TIMEZONE": "Europe/Stockholm",
        }
    )


def on_a_terminal(council: Council, *args: str, columns: int = 80) -> tuple[int, str, str]:
    """Run the real CLI with stdout on a pseudo-terminal ``columns`` wide (stderr piped):
    the exit code, what the terminal showed (escape sequences removed) and stderr."""
    master, slave = pty.openpty()
    env = council.subprocess_env(COLUMNS=str(columns), TERM="xterm-256color")
    process = subprocess.Popen(
        [sys.executable, "-c", "import cli; cli.main()", *args], cwd=ROOT, env=env,
        stdin=subprocess.DEVNULL, stdout=slave, stderr=subprocess.PIPE,
    )  # fmt: skip
    os.close(slave)
    shown = read_terminal(master)
    assert process.stderr is not None
    with process.stderr:
        stderr = process.stderr.read().decode()
    code = process.wait(timeout=120)
    return code, ANSI.sub("", shown.decode()).replace("\r\n", "\n"), stderr


# --- which points, as of which day --------------------------------------------------


def test_body_keeps_the_assignments_it_leads_or_co_owns(
    council: Council, definitions: Definitions
) -> None:
    """--body: the points of assignments the body leads or co-owns, nothing else."""
    everything = council.items("--as-of", LATER)
    assert {i["assignment"] for i in everything} == {A, PREMISES, SAFETY}
    for body in definitions.bodies:
        involved = {a.id for a in definitions.assignments.values() if a.involves(body)}
        kept = council.items("--as-of", LATER, "--body", body)
        assert kept == [i for i in everything if i["assignment"] in involved], body
    # the bundled ones: every assignment is led by ks; the council itself leads none
    assert council.items("--as-of", LATER, "--body", "ks") == everything
    assert {i["assignment"] for i in council.items("--as-of", LATER, "--body", "socialnamnden")} \
        == {A, SAFETY}  # fmt: skip
    assert {
        i["assignment"]
        for i in council.items("--as-of", LATER, "--body", "kultur-och-fritidsnamnden")
    } == {A}
    assert council.items("--as-of", LATER, "--body", "kf") == []
    assert {(i["lead_id"], i["lead"]) for i in everything} == {("ks", "Kommunstyrelsen")}
    table = council.ok("backlog", "--as-of", LATER, "--body", "kf").stdout
    assert (
        table == "Backlog as of 2026-01-05, Kommunfullmäktige (lead or co-owner): no open points\n"
    )


def test_an_unknown_body_is_a_usage_error_naming_the_bodies(council: Council) -> None:
    line = council.fails(2, "backlog", "--body", "byggnadsnamnden")
    assert "'byggnadsnamnden' is no body" in line
    assert (
        "the bodies are kf, ks, socialnamnden, utbildningsnamnden, kultur-och-fritidsnamnden"
        in line
    )


def test_without_bodies_the_lead_is_free_text_and_body_is_refused(
    database_url: str, db: Any, tmp_path: Path
) -> None:
    """Definitions without bodies.yaml: the lead as written; --body says there are none."""
    council = Council(
        {
            "COUNCIL_DATABASE_URL": database_url,
            "COUNCIL_DEFINITIONS": str(FIXTURES / "base"),
            "COUNCIL_VAR_DIR": str(tmp_path / "var"),
        }
    )
    items = council.items("--as-of", "2024-06-01")
    assert items, "the base assignment's points are open (none started)"
    assert {(i["lead_id"], i["lead"]) for i in items} == {("Kommunstyrelsen", "Kommunstyrelsen")}
    line = council.fails(2, "backlog", "--body", "Kommunstyrelsen")
    assert "the definitions have no bodies.yaml" in line


def test_now_sets_today_when_as_of_is_not_given(council: Council) -> None:
    """--now's day (in the configured zone) is the as-of day; --as-of wins when both are
    given; the same day gives the same bytes."""
    as_of = council.ok("backlog", "--as-of", "2023-12-01", "--format", "json").stdout_bytes
    for now in ("2023-12-01", "2023-12-01T16:45", "2023-11-30T23:30+00:00"):  # 00:30 in Sweden
        assert council.ok("backlog", "--now", now, "--format", "json").stdout_bytes == as_of, now
    june = council.ok("backlog", "--as-of", "2023-06-12", "--format", "json").stdout_bytes
    assert june != as_of
    both = council.ok("backlog", "--as-of", "2023-06-12", "--now", "2023-12-01", "--format", "json")
    assert both.stdout_bytes == june
    ages = {i["age_months"] for i in json.loads(as_of)}
    assert ages == {12}  # decided 2022-11-14
    line = council.fails(2, "backlog", "--now", "yesterday")
    assert "'yesterday' is not an ISO date or time" in line


def test_due_is_the_one_the_point_shows_in_status(council: Council) -> None:
    """The safety cycle's weekly point has no due date of its own: the backlog shows its open
    occurrence's, as `status` does."""
    council.ok("start", SAFETY, "--now", "2025-02-03T09:00")
    now = "2025-02-10T09:00"
    status = json.loads(council.ok("status", SAFETY, "--now", now, "--json").stdout)
    shown = {row["number"]: row["due"] for row in status}
    listed = {
        i["point"]: i["due"] for i in council.items("--now", now) if i["assignment"] == SAFETY
    }
    assert listed == {n: due for n, due in shown.items() if n in listed}
    assert set(listed) == {1, 2, 3, 4}
    assert listed[1] is not None  # the occurrence's due date, not the point's (none)


# --- the table ---------------------------------------------------------------------


def _title_column(table: str) -> dict[str, str]:
    """Each point row's title, read from the plain table's title column (continuation
    lines joined), by "assignment/number"."""
    titles: dict[str, str] = {}
    assignment, start, end, current = "", 0, 0, ""
    for line in table.splitlines():
        if line.startswith("point  title"):
            start, end = line.index("title"), line.index("category")
        elif re.match(r"kf-\S+ · ", line):
            assignment = line.split(" · ")[0]
        elif start and re.match(r"\d+ ", line):
            current = f"{assignment}/{line.split()[0]}"
            titles[current] = line[start:end].strip()
        elif start and line.startswith(" " * start) and line.strip():
            titles[current] += " " + line[start:end].strip()
    return titles


def test_the_table_fits_80_columns_and_full_shows_whole_titles(council: Council) -> None:
    """Piped, 80 columns: no line is longer, long titles end in an ellipsis; with --full the
    whole title of every point is there, wrapped in its column, and still within 80."""
    items = {i["address"]: i["title"] for i in council.items("--as-of", LATER)}
    cut = council.ok("backlog", "--as-of", LATER, COLUMNS="80").stdout
    full = council.ok("backlog", "--as-of", LATER, "--full", COLUMNS="80").stdout
    for table in (cut, full):
        assert max(len(line) for line in table.splitlines()) <= 80
    assert cut.splitlines()[0] == "Backlog as of 2026-01-05: 11 open points"
    assert f"{A} · KS 2022/0417 · decided 2022-11-14, 37 months ago" in cut
    shown = _title_column(cut)
    assert set(shown) == set(items)
    for address, title in items.items():
        assert shown[address] == title or (
            shown[address].endswith("…") and title.startswith(shown[address][:-1])
        ), address
    assert any(text.endswith("…") for text in shown.values())
    assert _title_column(full) == items
    wider = council.ok("backlog", "--as-of", LATER, COLUMNS="200").stdout
    assert _title_column(wider) == items  # room for every title: nothing is cut
    assert council.ok("backlog", "--as-of", LATER, COLUMNS="80").stdout == cut


def test_on_a_terminal_the_boxed_table_fits_too(council: Council) -> None:
    """On a terminal (rich, boxed), 80 columns: no line is longer; --full wraps the titles."""
    code, cut, _ = on_a_terminal(council, "backlog", "--as-of", LATER)
    assert code == 0, cut
    assert max(len(line) for line in cut.splitlines()) <= 80
    assert "┃ point ┃ title" in cut
    assert "…" in cut
    code, full, _ = on_a_terminal(council, "backlog", "--as-of", LATER, "--full")
    assert code == 0, full
    assert max(len(line) for line in full.splitlines()) <= 80
    assert "…" not in full
    column = " ".join(
        cells[2].strip() for line in full.splitlines() if len(cells := line.split("│")) == 7
    )
    for item in council.items("--as-of", LATER):
        assert item["title"] in " ".join(column.split()), item["address"]


# --- CSV and Excel -----------------------------------------------------------------


def test_csv_is_rfc_4180_with_one_fact_per_column(council: Council) -> None:
    """The documented header, CRLF line ends, quoted commas; ISO dates, integers,
    true/false, an empty field for no due date; the same rows as JSON."""
    data = council.ok("backlog", "--as-of", LATER, "--format", "csv").stdout_bytes
    text = data.decode("utf-8")
    assert text.endswith("\r\n")
    assert "\n" not in text.replace("\r\n", "")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0] == HEADER
    items = council.items("--as-of", LATER)
    assert len(rows) == len(items) + 1
    for row, item in zip(rows[1:], items, strict=True):
        record = dict(zip(HEADER, row, strict=True))
        assert int(record["point"]) == item["point"]
        assert int(record["age_days"]) == item["age_days"]
        assert int(record["age_months"]) == item["age_months"]
        assert dt.date.fromisoformat(record["decided_on"]).isoformat() == item["decided_on"]
        assert record["due"] == (item["due"] or "")
        for flag in ("overdue", "at_risk", "old"):
            assert record[flag] == ("true" if item[flag] else "false")
        for name in ("assignment", "address", "title", "reference", "lead_id", "lead", "category"):
            assert record[name] == item[name]
    assert any(record[HEADER.index("due")] == "" for record in rows[1:])  # the safety cycle


def test_xlsx_has_the_rows_with_real_dates(council: Council, tmp_path: Path) -> None:
    """The workbook: a bold, frozen header row, one row per point, dates as date cells,
    integers and booleans as such; written only for its owner."""
    target = tmp_path / "backlog.xlsx"
    result = council.ok("backlog", "--as-of", LATER, "-o", str(target))  # format: the extension
    assert result.stdout == ""
    assert result.stderr == f"wrote {target} (xlsx, as of {LATER})\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    book = openpyxl.load_workbook(target)
    sheet = book.worksheets[0]
    assert sheet.title == "Backlog"
    assert sheet.freeze_panes == "A2"
    header = [cell.value for cell in sheet[1]]
    assert header == HEADER
    assert all(cell.font.bold for cell in sheet[1])
    items = council.items("--as-of", LATER)
    rows = list(sheet.iter_rows(min_row=2))
    assert len(rows) == len(items)
    for row, item in zip(rows, items, strict=True):
        cells = dict(zip(HEADER, row, strict=True))
        decided = cells["decided_on"]
        assert decided.is_date
        assert decided.number_format == "yyyy-mm-dd"
        assert decided.value.date().isoformat() == item["decided_on"]
        due = cells["due"].value
        assert (due.date().isoformat() if due else None) == item["due"]
        assert cells["point"].value == item["point"]
        assert cells["age_days"].value == item["age_days"]
        for flag in ("overdue", "at_risk", "old"):
            assert cells[flag].value is item[flag]
        assert cells["title"].value == item["title"]
    assert sheet.column_dimensions["D"].width > sheet.column_dimensions["B"].width  # title, point
    assert book.properties.created == dt.datetime(2026, 1, 5)
    assert book.properties.creator == "council"


def test_xlsx_is_the_same_bytes_every_time(council: Council, tmp_path: Path) -> None:
    """Two processes (different hash seeds, different moments) write the same bytes: the
    zip members and the document properties carry the as-of day, never the clock."""
    outputs = []
    for seed in ("1", "2"):
        target = tmp_path / f"backlog-{seed}.xlsx"
        done = subprocess.run(
            [sys.executable, "-c", "import cli; cli.main()", "backlog", "--as-of", LATER,
             "-o", str(target)],
            cwd=ROOT, env=council.subprocess_env(PYTHONHASHSEED=seed), capture_output=True,
            timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        outputs.append(target.read_bytes())
    assert outputs[0] == outputs[1]
    piped = council.ok("backlog", "--as-of", LATER, "--format", "xlsx").stdout_bytes
    assert piped == outputs[0]  # to a pipe, the same workbook
    with zipfile.ZipFile(io.BytesIO(outputs[0])) as package:
        assert {info.date_time for info in package.infolist()} == {(2026, 1, 5, 0, 0, 0)}
        core = package.read("docProps/core.xml").decode()
    assert core.count("2026-01-05T00:00:00Z") == 2  # created and modified


def test_every_format_is_reproducible_and_follows_the_extension(
    council: Council, tmp_path: Path
) -> None:
    """-o FILE: the format from the extension; the same command gives the same bytes."""
    for name, fmt in [("b.csv", "csv"), ("b.json", "json"), ("b.md", "md"), ("b.txt", "table")]:
        target = tmp_path / name
        council.ok("backlog", "--as-of", LATER, "-o", str(target), COLUMNS="80")
        again = council.ok("backlog", "--as-of", LATER, "--format", fmt, COLUMNS="80")
        assert target.read_bytes() == again.stdout_bytes, name
    line = council.fails(2, "backlog", "-o", str(tmp_path / "b.pdf"))
    assert "cannot tell the format" in line


def test_xlsx_is_refused_on_a_terminal(council: Council) -> None:
    """A binary file is never written to a terminal: one line, exit 2, nothing shown."""
    code, shown, stderr = on_a_terminal(council, "backlog", "--format", "xlsx")
    assert code == 2
    assert shown == ""
    assert stderr.splitlines() == [
        "error: xlsx is a binary file: write it with -o FILE (see `council backlog --help`)"
    ]
