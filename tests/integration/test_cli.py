"""The coordinator's CLI end to end, on a real SQLite file and a real PostgreSQL database.

Every command runs through ``click.testing.CliRunner`` against ``cli.main`` with
its settings in the environment, and every command that depends on the clock is
given ``--now`` so that dates, deadlines and "overdue" are deterministic.
"""

from __future__ import annotations

import datetime as dt
import errno
import getpass
import json
import os
import shutil
import stat
import subprocess
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

import cli
from cli import main
from tests.support import DEFINITIONS, ROOT
from workflow.store import tables

A = "kf-2022-hedersvald"
T0 = "2022-12-01T09:00"  # points 1 and 2 are planned to start on 2022-12-01
PERSONNUMMER = "19121212-1212"  # the Swedish Tax Agency's test number
UNREACHABLE_URL = "postgresql+psycopg://postgres@127.0.0.1:1/none"


class Council:
    """Runs ``council ARGS`` in-process with a fixed environment."""

    def __init__(self, database_url: str, definitions: Path, var_dir: Path) -> None:
        self.database_url = database_url
        self.definitions = definitions
        self.runner = CliRunner()
        self.env: dict[str, str | None] = {
            "COUNCIL_DATABASE_URL": database_url,
            "COUNCIL_DEFINITIONS": str(definitions),
            "COUNCIL_VAR_DIR": str(var_dir),
            "COUNCIL_ACTOR": "sara.nilsson",
            "COUNCIL_TIMEZONE": "Europe/Stockholm",
            "COUNCIL_EXTRA_DAYS_OFF": None,
            "COUNCIL_DUE_POLICY": None,
        }

    def __call__(self, *args: str, **env: str | None) -> Result:
        # The CLI closes its connection pools when the command ends, so running
        # it in-process leaks no connection (warnings are errors here).
        result = self.runner.invoke(main, list(args), env={**self.env, **env})
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            crash = "".join(traceback.format_exception(*result.exc_info))
            pytest.fail(f"`council {' '.join(args)}` crashed:\n{crash}")
        return result

    def ok(self, *args: str, **env: str | None) -> str:
        """Run a command that must succeed; return its stdout."""
        result = self(*args, **env)
        assert result.exit_code == 0, (args, result.output)
        assert "Traceback" not in result.output
        return result.stdout

    def fails(self, code: int, *args: str, **env: str | None) -> str:
        """Run a command that must fail with ``code`` and one ``error:`` line; return it."""
        result = self(*args, **env)
        assert result.exit_code == code, (args, result.output)
        return one_error_line(result)

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json"))

    def status(self, now: str, assignment: str = A) -> dict[int, dict[str, Any]]:
        """``status --json`` as rows by point number."""
        return {row["number"]: row for row in self.json("status", assignment, "--now", now)}

    def event_count(self) -> int:
        """How many events the database holds, counted with SQL, not through the CLI."""
        engine = sa.create_engine(self.database_url)
        try:
            with engine.connect() as conn:
                query = sa.select(sa.func.count()).select_from(tables.events)
                return int(conn.execute(query).scalar_one())
        finally:
            engine.dispose()


def one_error_line(result: Result) -> str:
    """Assert stderr is exactly one line starting with ``error:``, and no traceback."""
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.fixture(autouse=True)
def _no_council_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from an empty directory so that no council.toml around the repo leaks in."""
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)


@pytest.fixture
def council(database_url: str, tmp_path: Path) -> Council:
    """The CLI on an empty (not yet upgraded) database and the repository's definitions."""
    return Council(database_url, DEFINITIONS, tmp_path / "var")


@pytest.fixture
def ready(council: Council) -> Council:
    """The CLI on an upgraded database."""
    council.ok("db", "upgrade")
    return council


@pytest.fixture
def started(ready: Council) -> Council:
    """The seed assignment started on 2022-12-01: points 1 and 2 are running."""
    ready.ok("start", A, "--now", T0)
    return ready


@pytest.fixture
def drifting(database_url: str, tmp_path: Path) -> Council:
    """The CLI on a copy of the definitions, upgraded, with the seed assignment started."""
    definitions = tmp_path / "definitions"
    shutil.copytree(DEFINITIONS, definitions)
    council = Council(database_url, definitions, tmp_path / "var")
    council.ok("db", "upgrade")
    council.ok("start", A, "--now", T0)
    return council


def edit(path: Path, change: Callable[[str], str]) -> None:
    before = path.read_text(encoding="utf-8")
    after = change(before)
    assert after != before, f"the edit did not change {path}"
    path.write_text(after, encoding="utf-8")


def retitle_analyse(council: Council) -> None:
    """A compatible change: a new title for step 'analyse' of point 1's workflow."""
    edit(
        council.definitions / "workflows" / "measures-proposal.yaml",
        lambda text: text.replace("sv: Analysera underlaget,", "sv: Analysera kartläggningen,"),
    )


def remove_present(council: Council) -> None:
    """A breaking change for running point 1: its last step 'present' is removed."""
    edit(
        council.definitions / "workflows" / "measures-proposal.yaml",
        lambda text: text[: text.index("  - id: present")],
    )


# --- help, imports, validate ---------------------------------------------------------


def test_help_shows_the_exit_codes() -> None:
    """`council --help` lists every command and ends with the stable exit codes."""
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for command in ("begin", "complete", "skip", "reopen", "assign", "note", "write-off"):
        assert command in result.stdout
    assert "Exit codes:" in result.stdout
    for line in (
        "0  ok",
        "1  invalid input or definition",
        "2  usage (a wrong option or argument)",
        "3  not found",
        "4  transition not allowed, or a conflict with another command",
        "5  a server unreachable (database, broker, SMTP)",
    ):
        assert line in result.stdout


@pytest.mark.parametrize("args", [["--help"], ["validate"]])
def test_help_and_validate_import_neither_sqlalchemy_nor_celery(args: list[str]) -> None:
    """`council --help` and `council validate` run without importing SQLAlchemy or Celery."""
    probe = (
        "import json, sys\n"
        f"sys.argv = ['council', *{args!r}]\n"
        "import cli\n"
        "try:\n"
        "    cli.main()\n"
        "except SystemExit as exc:\n"
        "    code = exc.code\n"
        "print(json.dumps({'code': code, 'sqlalchemy': 'sqlalchemy' in sys.modules,"
        " 'celery': 'celery' in sys.modules}), file=sys.stderr)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("COUNCIL_")}
    env["COUNCIL_DEFINITIONS"] = str(DEFINITIONS)
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    report = json.loads(done.stderr.strip().splitlines()[-1])
    assert report == {"code": 0, "sqlalchemy": False, "celery": False}


def test_status_and_note_import_neither_alembic_nor_celery(started: Council) -> None:
    """A command on the database checks the schema without Alembic, and one that records
    events imports Celery only to publish (no broker here: the relay will). The second
    time, the days off the first computed are kept: not even `holidays` is imported. On
    SQLite, SQLAlchemy's PostgreSQL dialect is not imported either."""
    postgres = "sqlalchemy.dialects.postgresql"
    probe = (
        "import json, sys\n"
        "import cli\n"
        "codes, heavy = [], set()\n"
        f"for args in (['status', {A!r}], ['note', '{A}/1', 'x', '--now', "
        f"'2022-12-02T09:00']):\n"
        "    sys.argv = ['council', *args]\n"
        "    try:\n"
        "        cli.main()\n"
        "    except SystemExit as exc:\n"
        "        codes.append(exc.code)\n"
        "    heavy |= {m for m in ('alembic', 'celery', 'kombu', 'holidays', "
        f"{postgres!r}) if m in sys.modules}}\n"
        "print(json.dumps({'codes': codes, 'heavy': sorted(heavy)}), file=sys.stderr)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("COUNCIL_")}
    env.update({k: v for k, v in started.env.items() if v is not None})
    reports = []
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True,
            timeout=60, check=False,
        )  # fmt: skip
        reports.append(json.loads(done.stderr.strip().splitlines()[-1]))
    on_postgres = [postgres] if started.database_url.startswith("postgresql") else []
    assert reports[0]["codes"] == [0, 0]
    assert set(reports[0]["heavy"]) <= {"holidays", *on_postgres}
    assert reports[1] == {"codes": [0, 0], "heavy": on_postgres}


def test_a_command_collects_less_and_leaves_its_objects_to_the_exit(started: Council) -> None:
    """While a command runs, the youngest objects are collected less often (its modules'
    objects live to the end); its thresholds are put back after it. Its process ends
    without the interpreter's last collections over every object it loaded (gc.freeze at
    exit, registered once however many commands run), and its connections are closed
    before: SQLite's write-ahead log is gone with the last one."""
    probe = (
        "import atexit, gc, json, sys\n"
        "import cli\n"
        "codes, during = [], []\n"
        "default = gc.get_threshold()\n"
        "gc.callbacks.append(lambda phase, info: during.append(gc.get_threshold()[0]))\n"
        "for _ in range(2):\n"
        f"    sys.argv = ['council', 'status', {A!r}]\n"
        "    try:\n"
        "        cli.main()\n"
        "    except SystemExit as exc:\n"
        "        codes.append(exc.code)\n"
        "gc.callbacks.clear()\n"
        "before = gc.get_freeze_count()\n"
        "atexit._run_exitfuncs()\n"
        "print(json.dumps({'codes': codes, 'before': before, "
        "'frozen': gc.get_freeze_count() > 0, 'put_back': gc.get_threshold() == default, "
        "'during': max(during) if during else None}), file=sys.stderr)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("COUNCIL_")}
    env.update({k: v for k, v in started.env.items() if v is not None})
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    report = json.loads(done.stderr.strip().splitlines()[-1])
    assert report == {
        "codes": [0, 0], "before": 0, "frozen": True, "put_back": True,
        "during": cli.YOUNG_COLLECTIONS_EVERY,
    }  # fmt: skip
    if started.database_url.startswith("sqlite"):
        database = Path(started.database_url.removeprefix("sqlite:///"))
        assert database.exists()
        assert not Path(f"{database}-wal").exists()


def test_validate_counts_the_definitions(tmp_path: Path) -> None:
    """`council validate` checks the definitions directory and needs no database."""
    council = Council("sqlite:///" + str(tmp_path / "unused.db"), DEFINITIONS, tmp_path / "var")
    out = council.ok("validate")
    assert (
        out.strip() == "ok: 11 people, 5 bodies, 3 occasions, 7 workflows, 3 assignments, 15 points"
    )
    assert not (tmp_path / "unused.db").exists()


# --- the database ----------------------------------------------------------------------


def test_db_upgrade_upgrades_once_then_says_already(council: Council) -> None:
    """The first `db upgrade` creates the schema; the second one says it is already there."""
    first = council.ok("db", "upgrade")
    assert first.startswith("database upgraded from empty to ")
    head = first.split()[-1]
    second = council.ok("db", "upgrade")
    assert second.strip() == f"database already at {head}"


@pytest.mark.parametrize(
    "args",
    [
        ["status"],
        ["start", A, "--now", T0],
        ["show", f"{A}/1"],
        ["events"],
        ["begin", f"{A}/1/analyse", "--now", T0],
        ["note", f"{A}/1", "a note", "--now", T0],
    ],
    ids=lambda args: args[0],
)
def test_command_before_db_upgrade_says_not_initialised(council: Council, args: list[str]) -> None:
    """Before `db upgrade`, commands that need the database exit 5 and say so in one line."""
    line = council.fails(5, *args)
    assert "not initialised" in line
    assert "council db upgrade" in line


def test_unreachable_database_exits_5_with_one_line(tmp_path: Path) -> None:
    """A database that cannot be reached gives exit 5 and one `error:` line, no traceback."""
    council = Council(UNREACHABLE_URL, DEFINITIONS, tmp_path / "var")
    for args in (["db", "upgrade"], ["status"], ["start", A, "--now", T0], ["events"]):
        line = council.fails(5, *args)
        assert line.startswith("error: cannot reach the database"), line


# --- start -------------------------------------------------------------------------------


def test_start_starts_points_that_are_due_and_schedules_the_rest(ready: Council) -> None:
    """`start` starts the points planned up to --now and names the ones planned later."""
    out = ready.ok("start", A, "--now", T0)
    lines = out.splitlines()
    assert lines[0] == f"started {A}: point(s) 1, 2 (4 events)"
    assert (
        f"point 3 is planned to start on 2023-01-09: the deadline sweep starts it then; "
        f"`council start {A} --point 3`"
    ) in out
    assert "point 7 is planned to start on 2023-04-17" in out
    assert ready.event_count() == 4
    status = ready.status(T0)
    assert [n for n, row in status.items() if row["started"]] == [1, 2]


def test_start_again_changes_nothing(started: Council) -> None:
    """A second `start` records no event and reports the points as already running."""
    before = started.event_count()
    out = started.ok("start", A, "--now", "2022-12-01T10:00")
    assert out.splitlines()[0] == "already running: point(s) 1, 2"
    assert not any(line.startswith("started ") for line in out.splitlines())
    assert started.event_count() == before


def test_start_again_says_nothing_changed(ready: Council) -> None:
    """Once every point is running, starting again says plainly that nothing changed."""
    first = ready.ok("start", A, "--now", "2023-09-01T09:00")
    assert first.splitlines()[0] == f"started {A}: point(s) 1, 2, 3, 4, 5, 6, 7 (14 events)"
    before = ready.event_count()
    again = ready.ok("start", A, "--now", "2023-09-02T09:00")
    assert again.strip() == f"{A} is already started: nothing changed"
    assert ready.event_count() == before


def test_start_point_starts_a_point_planned_for_later(ready: Council) -> None:
    """`start --point N` starts only that point, now, even if it is planned for later."""
    out = ready.ok("start", A, "--point", "3", "--now", T0)
    assert out.strip() == f"started {A}: point(s) 3 (2 events)"
    status = ready.status(T0)
    assert status[3]["started"] is True
    assert status[3]["current_steps"] == ["content"]
    assert status[1]["started"] is False
    again = ready.ok("start", A, "--point", "3", "--now", T0)
    assert again.strip() == f"{A} is already started: nothing changed"
    assert ready.event_count() == 2


def test_start_unknown_assignment_or_point_exits_3(ready: Council) -> None:
    """Starting an assignment or a point that is not defined exits 3 in one line."""
    assert "no assignment 'nope'" in ready.fails(3, "start", "nope", "--now", T0)
    line = ready.fails(3, "start", A, "--point", "99", "--now", T0)
    assert f"no point '{A}/99'" in line
    assert ready.event_count() == 0


def test_start_several_assignments_or_all(ready: Council) -> None:
    """`start A B` starts each in turn (named once each); `start --all` starts every one.
    (erik.sjoberg, head of the secretariat, is an administrator: he may start them all.)"""
    b = "kf-2024-lokalforsorjning"
    out = ready.ok("start", A, "kf-2024-lok", A, "--now", "2024-06-01T09:00",
                   COUNCIL_ACTOR="erik.sjoberg")  # fmt: skip
    assert out.splitlines() == [
        f"started {A}: point(s) 1, 2, 3, 4, 5, 6, 7 (14 events)",
        f"started {b}: point(s) 1, 2 (5 events)",
        f"point 4 is planned to start on 2025-02-03: the deadline sweep starts it then; "
        f"`council start {b} --point 4` starts it now",
        f"{b}: decided against (no work): point(s) 3",
    ]
    assert ready.event_count() == 19
    again = ready.ok("start", "--all", "--now", "2024-06-02T09:00", COUNCIL_ACTOR="erik.sjoberg")
    assert again.splitlines()[:2] == [
        f"{A} is already started: nothing changed",
        f"{b}: already running: point(s) 1, 2",
    ]
    assert ready.event_count() == 19


def test_start_needs_assignments_or_all_and_checks_them_all_first(ready: Council) -> None:
    """Usage errors exit 2; an unknown assignment among several starts none of them."""
    assert "say which assignment" in ready.fails(2, "start", "--now", T0)
    assert "not both" in ready.fails(2, "start", A, "--all", "--now", T0)
    line = ready.fails(2, "start", A, "kf-2024-lok", "--point", "1", "--now", T0)
    assert "--point needs exactly one assignment" in line
    assert "no assignment 'nope'" in ready.fails(3, "start", A, "nope", "--now", T0)
    assert ready.event_count() == 0


def test_start_several_says_what_started_before_one_fails(drifting: Council) -> None:
    """Each assignment commits alone: the one that fails leaves those before it started."""
    retitle_analyse(drifting)
    before = drifting.event_count()
    result = drifting(
        "start", "kf-2024-lok", A, "--now", "2024-06-01T09:00", COUNCIL_ACTOR="erik.sjoberg"
    )  # the administrator may start both
    assert result.exit_code == 4
    line = one_error_line(result)
    assert A in line
    assert "--accept-changes" in line
    assert result.stdout.splitlines() == [
        "started kf-2024-lokalforsorjning: point(s) 1, 2 (5 events)",
        "point 4 is planned to start on 2025-02-03: the deadline sweep starts it then; "
        "`council start kf-2024-lokalforsorjning --point 4` starts it now",
        "kf-2024-lokalforsorjning: decided against (no work): point(s) 3",
    ]
    assert drifting.event_count() == before + 5


# --- status and show ---------------------------------------------------------------


def test_status_shows_category_steps_owners_due_and_overdue(started: Council) -> None:
    """`status --json` gives each point's category, current steps, owners, due date (the
    point's, as every report shows it), its next step's due date, overdue and since when."""
    status = started.status("2022-12-02")
    assert sorted(status) == [1, 2, 3, 4, 5, 6, 7]
    first = status[1]
    assert first["point"] == f"{A}/1"
    assert first["category"] == "to_start"
    assert first["current_steps"] == ["analyse"]
    assert first["owners"] == ["anders.berg"]
    assert first["due"] == "2023-05-15"  # the council's date for the point
    assert first["next_due"] == "2022-12-30"  # its open step's
    assert first["overdue"] is False
    assert first["late_since"] is None
    assert status[2]["owners"] == ["eva.dahl"]
    assert status[2]["next_due"] == "2023-01-09"
    # not started: the point's planned owner and due date, no current steps
    assert status[3]["started"] is False
    assert status[3]["current_steps"] == []
    assert status[3]["owners"] == ["maria.lind"]
    assert status[3]["due"] == "2023-09-29"
    # the same state judged a month later: step 'analyse' (due 2022-12-30) is late
    later = started.status("2023-01-02")
    assert later[1]["overdue"] is True
    assert later[1]["late_since"] == "2022-12-30"
    assert later[3]["overdue"] is False


def test_status_table_marks_overdue_rows_and_categories(started: Council) -> None:
    """The plain table shows one row per point with its category and OVERDUE as of --now."""
    started.ok("begin", f"{A}/1/analyse", "--as", "anders.berg", "--now", "2022-12-02T09:00")
    out = started.ok("status", A, "--now", "2023-01-02")
    header, *rows = out.splitlines()
    assert header.split() == [
        "point",
        "title",
        "category",
        "current",
        "steps",
        "owner",
        "due",
        "marks",
    ]
    assert len(rows) == 7
    by_point = {row.split()[0]: row for row in rows}
    assert "ongoing" in by_point[f"{A}/1"]
    assert by_point[f"{A}/1"].rstrip().endswith("2023-05-15  OVERDUE since 2022-12-30")
    assert "to_start" in by_point[f"{A}/2"]
    assert "OVERDUE" not in by_point[f"{A}/3"]
    before = started.ok("status", A, "--now", "2022-12-02")
    assert "OVERDUE" not in before


def test_status_without_assignment_lists_only_started_ones(ready: Council) -> None:
    """`status` alone covers started assignments; before any start it says how to begin."""
    assert ready.ok("status", "--now", T0).strip() == (
        "nothing started yet: run `council start ASSIGNMENT`"
    )
    assert ready.json("status", "--now", T0) == []
    ready.ok("start", A, "--now", T0)
    points = [row["point"] for row in ready.json("status", "--now", T0)]
    assert points == [f"{A}/{n}" for n in range(1, 8)]


def test_show_gives_steps_notes_and_history(started: Council) -> None:
    """`show POINT` lists the steps with states, the notes (point and step) and the history."""
    started.ok("complete", f"{A}/1/analyse", "--as", "anders.berg", "--now", "2022-12-05T10:00")
    started.ok("note", f"{A}/1", "Underlaget är genomgånget.", "--now", "2022-12-06T10:00")
    started.ok(
        "note", f"{A}/1/draft", "Utkast påbörjat.", "--as", "anders.berg", "--now", "2022-12-07"
    )
    detail = started.json("show", f"{A}/1", "--now", "2022-12-08")
    assert detail["category"] == "ongoing"
    assert [(s["step"], s["status"], s["owner"]) for s in detail["steps"]] == [
        ("analyse", "done", "anders.berg"),
        ("draft", "active", "anders.berg"),
        ("present", "pending", "erik.sjoberg"),
    ]
    assert detail["steps"][2]["requires_note"] is True
    assert [(n["actor"], n["step"], n["text"]) for n in detail["notes"]] == [
        ("sara.nilsson", None, "Underlaget är genomgånget."),
        ("anders.berg", "draft", "Utkast påbörjat."),
    ]
    assert [e["type"] for e in detail["history"]] == [
        "point.started",
        "step.activated",
        "step.completed",
        "step.activated",
        "note.added",
        "note.added",
    ]
    text = started.ok("show", f"{A}/1", "--now", "2022-12-08")
    assert text.splitlines()[0].startswith(f"{A}/1: Presentera ytterligare")
    assert "category: ongoing" in text
    assert "Steps" in text
    assert "History" in text
    assert "sara.nilsson: Underlaget är genomgånget." in text
    assert "anders.berg [draft]: Utkast påbörjat." in text


def test_show_unknown_point_exits_3(started: Council) -> None:
    """`show` of a point number the assignment does not have exits 3 in one line."""
    line = started.fails(3, "show", f"{A}/99")
    assert "its points are 1, 2, 3, 4, 5, 6, 7" in line


# --- step commands -------------------------------------------------------------------


def test_begin_complete_skip_reopen_move_steps(started: Council) -> None:
    """begin, complete, skip and reopen each print the events they recorded and move state."""
    out = started.ok("begin", f"{A}/1/analyse", "--as", "anders.berg", "--now", "2022-12-02T09:00")
    assert out.split() == ["step.begun", f"{A}/1/analyse"]
    out = started.ok("complete", f"{A}/1/analyse", "--as", "anders.berg", "--now", "2022-12-05")
    assert [line.split() for line in out.splitlines()] == [
        ["step.completed", f"{A}/1/analyse"],
        ["step.activated", f"{A}/1/draft"],
    ]
    out = started.ok("skip", f"{A}/1/draft", "--reason", "Redan gjort.", "--now", "2022-12-06")
    assert [line.split()[0] for line in out.splitlines()] == ["step.skipped", "step.activated"]
    states = {
        s["step"]: s["status"]
        for s in started.json("show", f"{A}/1", "--now", "2022-12-06")["steps"]
    }
    assert states == {"analyse": "done", "draft": "skipped", "present": "active"}
    out = started.ok(
        "reopen", f"{A}/1/draft", "--reason", "Behövs ändå.", "--now", "2022-12-07T09:00"
    )
    assert out.splitlines()[0].split() == ["step.reopened", f"{A}/1/draft"]
    steps = started.json("show", f"{A}/1", "--now", "2022-12-07")["steps"]
    states = {s["step"]: s["status"] for s in steps}
    assert states["draft"] == "active"
    assert states["present"] == "pending"  # not begun, so it waits for draft again
    history = started.json("events", "--point", f"{A}/1")
    assert [e["detail"] for e in history if e["type"] in ("step.skipped", "step.reopened")] == [
        "Redan gjort.",
        "Behövs ändå.",
    ]


def test_begin_a_pending_step_exits_4(started: Council) -> None:
    """A transition the step's state forbids exits 4, says what is allowed, writes nothing."""
    before = started.event_count()
    line = started.fails(4, "begin", f"{A}/1/draft", "--now", "2022-12-02")
    assert line == (f"error: cannot begin {A}/1/draft: it is pending; allowed now: skip, assign")
    line = started.fails(4, "complete", f"{A}/1/draft", "--now", "2022-12-02")
    assert line.startswith(f"error: cannot complete {A}/1/draft: it is pending")
    assert started.fails(4, "reopen", f"{A}/1/analyse", "--now", "2022-12-02").startswith(
        f"error: cannot reopen {A}/1/analyse: it is active"
    )
    assert started.event_count() == before


def test_complete_a_step_that_requires_a_note(started: Council) -> None:
    """Completing a requires_note step without --note exits 1 and writes nothing; with it, ok."""
    started.ok("complete", f"{A}/1/analyse", "--now", "2022-12-05")
    started.ok("complete", f"{A}/1/draft", "--now", "2022-12-06")
    before = started.event_count()
    line = started.fails(
        1, "complete", f"{A}/1/present", "--as", "erik.sjoberg", "--now", "2022-12-07"
    )
    assert line == f"error: {A}/1/present needs a note to be completed: say what was done"
    started.fails(1, "complete", f"{A}/1/present", "--note", "   ", "--now", "2022-12-07")
    assert started.event_count() == before
    out = started.ok(
        "complete",
        f"{A}/1/present",
        "--note",
        "Åtgärderna presenterades i fullmäktige.",
        "--as",
        "erik.sjoberg",
        "--now",
        "2022-12-07",
    )
    assert [line.split() for line in out.splitlines()] == [
        ["step.completed", f"{A}/1/present"],
        ["point.completed", f"{A}/1"],
    ]
    notes = [e["detail"] for e in started.json("events", "--point", f"{A}/1")]
    assert notes[-2] == "Åtgärderna presenterades i fullmäktige."
    assert started.status("2022-12-08")[1]["category"] == "completed"


def test_personal_identity_number_is_refused_and_nothing_is_written(started: Council) -> None:
    """Free text with a personnummer exits 1 in every command that takes text; no trace is kept."""
    started.ok("complete", f"{A}/1/analyse", "--now", "2022-12-02T08:00")
    before = started.event_count()
    text = f"Gäller {PERSONNUMMER}"
    for args in (
        ["note", f"{A}/1", text],
        ["note", f"{A}/1/draft", text],
        ["complete", f"{A}/1/draft", "--note", text],
        ["skip", f"{A}/1/draft", "--reason", text],
        ["reopen", f"{A}/1/analyse", "--reason", text],
        ["write-off", f"{A}/1", "--reason", text],
    ):
        line = started.fails(1, *args, "--now", "2022-12-02T09:00")
        assert "personal identity number" in line, args
        assert PERSONNUMMER not in line
    assert started.event_count() == before
    log = started.ok("events", "--json")
    assert PERSONNUMMER not in log
    assert "Gäller" not in log


def test_note_on_a_point_and_on_a_step(started: Council) -> None:
    """`note POINT TEXT` notes the point; `note POINT/STEP TEXT` notes one of its steps."""
    out = started.ok("note", f"{A}/2", "Enkät skickad.", "--as", "eva.dahl", "--now", "2022-12-03")
    assert out.split() == ["note.added", f"{A}/2"]
    out = started.ok("note", f"{A}/2/needs", "Svar in.", "--as", "hr-chef", "--now", "2022-12-04")
    assert out.split() == ["note.added", f"{A}/2/needs"]
    notes = started.json("show", f"{A}/2", "--now", "2022-12-05")["notes"]
    assert [(n["actor"], n["step"], n["text"], n["at"][:10]) for n in notes] == [
        ("eva.dahl", None, "Enkät skickad.", "2022-12-03"),
        ("eva.dahl", "needs", "Svar in.", "2022-12-04"),
    ]
    assert "note is required" in started.fails(1, "note", f"{A}/2", "  ", "--now", "2022-12-05")


def test_assign_takes_a_person_id_or_a_role(started: Council) -> None:
    """`assign STEP PERSON` accepts a person id or a role; an unknown one exits 3."""
    out = started.ok("assign", f"{A}/1/analyse", "karin.holm", "--now", "2022-12-02")
    assert out.split() == ["step.reassigned", f"{A}/1/analyse"]
    assert started.status("2022-12-02")[1]["owners"] == ["karin.holm"]
    started.ok("assign", f"{A}/1/analyse", "hr-chef", "--now", "2022-12-03")
    assert started.status("2022-12-03")[1]["owners"] == ["eva.dahl"]
    details = [
        e["detail"]
        for e in started.json("events", "--point", f"{A}/1")
        if e["type"] == "step.reassigned"
    ]
    assert details == ["anders.berg -> karin.holm", "karin.holm -> eva.dahl"]
    before = started.event_count()
    line = started.fails(3, "assign", f"{A}/1/analyse", "nobody", "--now", "2022-12-04")
    assert line.startswith("error: no person 'nobody'")
    assert started.event_count() == before


def test_write_off_shows_as_written_off(started: Council) -> None:
    """`write-off POINT --reason` ends the point: written_off in status, further work refused."""
    out = started.ok("write-off", f"{A}/2", "--reason", "KF § 12", "--now", "2022-12-10")
    assert out.split() == ["point.written_off", f"{A}/2"]
    status = started.status("2022-12-11")
    assert status[2]["category"] == "written_off"
    assert status[1]["category"] == "to_start"
    row = next(r for r in started.ok("status", A, "--now", "2022-12-11").splitlines() if "/2 " in r)
    assert row.split()[0] == f"{A}/2"
    assert "written_off" in row.split()
    reasons = [e["detail"] for e in started.json("events", "--point", f"{A}/2")]
    assert reasons[-1] == "KF § 12"
    started.fails(4, "complete", f"{A}/2/needs", "--now", "2022-12-11")
    started.fails(4, "write-off", f"{A}/2", "--reason", "igen", "--now", "2022-12-11")
    result = started("write-off", f"{A}/1", "--now", "2022-12-11")  # --reason is required
    assert result.exit_code == 2
    assert "--reason" in result.stderr


# --- events ------------------------------------------------------------------------------


def test_events_filters_by_point_since_and_limit(started: Council) -> None:
    """`events` lists the log oldest first; --point, --since and --limit narrow it."""
    started.ok("complete", f"{A}/1/analyse", "--as", "anders.berg", "--now", "2022-12-05")
    everything = started.json("events")
    ids = [e["id"] for e in everything]
    assert ids == sorted(ids)
    assert len(ids) == 6
    assert set(everything[0]) >= {"id", "at", "type", "point", "step", "actor", "detail"}
    assert everything[0]["at"] == "2022-12-01T09:00+01:00"
    one = started.json("events", "--point", f"{A}/1")
    assert {e["point"] for e in one} == {f"{A}/1"}
    assert [e["type"] for e in one] == [
        "point.started",
        "step.activated",
        "step.completed",
        "step.activated",
    ]
    assert [e["point"] for e in started.json("events", "--point", "kf-2022-h")] == [
        e["point"] for e in everything
    ]
    assert [e["id"] for e in started.json("events", "--since", str(ids[2]))] == ids[3:]
    page = started.json("events", "--since", str(ids[1]), "--limit", "2")
    assert [e["id"] for e in page] == ids[2:4]
    table = started.ok("events", "--point", f"{A}/2", "--limit", "1")
    header, *rows = table.splitlines()
    assert header.split() == ["id", "at", "event", "point", "step", "actor", "detail"]
    assert len(rows) == 1
    point_2 = next(e for e in everything if e["point"] == f"{A}/2")
    assert rows[0].split()[:6] == [
        str(point_2["id"]),
        "2022-12-01T09:00+01:00",
        "point.started",
        f"{A}/2",
        "sara.nilsson",
        "start",
    ]
    assert started.fails(3, "events", "--point", f"{A}/99").startswith("error: no point")


# --- addresses --------------------------------------------------------------------------


def test_unambiguous_prefixes_work(started: Council) -> None:
    """An unambiguous prefix of an assignment or a step id resolves to the full address."""
    out = started.ok("complete", "kf-2022-h/1/ana", "--as", "anders.berg", "--now", "2022-12-05")
    assert out.splitlines()[0].split() == ["step.completed", f"{A}/1/analyse"]
    assert started.json("show", "kf-2022-h/1", "--now", "2022-12-05")["point"] == f"{A}/1"
    assert started.status("2022-12-05", assignment="kf-2022")[1]["current_steps"] == ["draft"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["begin", "kf/1/analyse"], "assignment 'kf' is ambiguous: it matches"),
        (["show", "kf-20/1"], "assignment 'kf-20' is ambiguous"),
        (["status", "kf"], "assignment 'kf' is ambiguous"),
        (["begin", "nope/1/analyse"], "no assignment 'nope'"),
        (["begin", "kf-2022-h/1/zzz"], "no step of kf-2022-hedersvald/1 'zzz'"),
        (["note", "kf-2022-h/8", "text"], "no point 'kf-2022-hedersvald/8'"),
        (["assign", "kf-2022-h/9/x", "hr-chef"], "no point 'kf-2022-hedersvald/9'"),
    ],
    ids=[
        "ambiguous-step",
        "ambiguous-point",
        "ambiguous-assignment",
        "unknown-assignment",
        "unknown-step",
        "unknown-point",
        "unknown-point-of-step",
    ],
)
def test_ambiguous_or_unknown_addresses_exit_3(
    started: Council, args: list[str], message: str
) -> None:
    """An ambiguous or unknown address exits 3 with one line naming it; nothing is written."""
    before = started.event_count()
    line = started.fails(3, *args, "--now", "2022-12-05")
    assert message in line
    assert started.event_count() == before


# --- usage, actors, debug ---------------------------------------------------------------


@pytest.mark.parametrize("bad", ["2023-13-01", "yesterday", "1/12/2022"])
def test_bad_now_is_a_usage_error(started: Council, bad: str) -> None:
    """A --now that is not an ISO date or time exits 2 with the reason, no traceback."""
    for args in (["status", A], ["begin", f"{A}/1/analyse"]):
        result = started(*args, "--now", bad)
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output
        assert "is not an ISO date or time" in result.stderr
        assert result.stdout == ""


def test_missing_actor_is_a_usage_error(started: Council) -> None:
    """Without --as and without COUNCIL_ACTOR a recording command exits 2 and writes nothing."""
    before = started.event_count()
    for args in (
        ["begin", f"{A}/1/analyse"],
        ["note", f"{A}/1", "text"],
        ["start", A, "--point", "3"],
        ["assign", f"{A}/1/analyse", "hr-chef"],
    ):
        result = started(*args, "--now", "2022-12-02", COUNCIL_ACTOR=None)
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output
        assert "say who acts: --as PERSON or COUNCIL_ACTOR=PERSON" in result.stderr
    assert started.event_count() == before


def test_unknown_actor_exits_3(started: Council) -> None:
    """--as with a person that is not in people.yaml exits 3 in one line; a role works."""
    before = started.event_count()
    line = started.fails(3, "begin", f"{A}/1/analyse", "--as", "nobody", "--now", "2022-12-02")
    assert line == ("error: no person 'nobody': --as takes a person id or a role from people.yaml")
    started.fails(3, "start", A, "--point", "3", "--as", "nobody", "--now", "2022-12-02")
    assert started.event_count() == before
    started.ok("begin", f"{A}/1/analyse", "--as", "socialchef", "--now", "2022-12-02")
    last = started.json("events")[-1]
    assert (last["type"], last["actor"]) == ("step.begun", "anders.berg")


def test_debug_shows_the_traceback(started: Council) -> None:
    """Without --debug a refused command prints one line; with --debug the full traceback."""
    args = ["begin", f"{A}/1/draft", "--now", "2022-12-02"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("COUNCIL_")}
    env.update({k: v for k, v in started.env.items() if v is not None})
    run = "import cli; cli.main()"

    def council(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", run, *argv],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    plain = council(*args)
    assert plain.returncode == 4
    assert plain.stderr.splitlines() == [
        f"error: cannot begin {A}/1/draft: it is pending; allowed now: skip, assign"
    ]
    debug = council("--debug", *args)
    assert debug.returncode == 4  # the traceback, and still the documented exit code
    assert "Traceback (most recent call last)" in debug.stderr
    assert "TransitionNotAllowed" in debug.stderr
    assert debug.stderr.splitlines()[-1] == plain.stderr.splitlines()[0]


# --- definition drift -------------------------------------------------------------------


def test_changed_title_refuses_start_until_accept_changes(drifting: Council) -> None:
    """After a step title changes, start exits 4 until --accept-changes, which goes on."""
    retitle_analyse(drifting)
    before = drifting.event_count()
    line = drifting.fails(4, "start", A, "--now", "2022-12-02T09:00")
    assert "started from another version of its definition" in line
    assert "--accept-changes" in line
    out = drifting.ok("start", A, "--accept-changes", "--now", "2022-12-02T09:00")
    assert out.splitlines()[0] == "accepted change: titles, dates, owners or reminders changed"
    assert drifting.event_count() == before
    again = drifting.ok("start", A, "--now", "2022-12-02T10:00")
    assert "accepted change" not in again
    drifting.ok("begin", f"{A}/1/analyse", "--as", "anders.berg", "--now", "2022-12-02T11:00")
    titles = [s["title"] for s in drifting.json("show", f"{A}/1", "--now", "2022-12-02")["steps"]]
    assert titles[0] == "Analysera kartläggningen"  # the accepted definition is in use


def test_commands_on_a_drifted_assignment_exit_4(drifting: Council) -> None:
    """Until the change is accepted, every command that records on the assignment exits 4."""
    retitle_analyse(drifting)
    before = drifting.event_count()
    for args in (
        ["begin", f"{A}/1/analyse"],
        ["complete", f"{A}/1/analyse"],
        ["skip", f"{A}/1/analyse", "--reason", "r"],
        ["reopen", f"{A}/1/analyse"],
        ["assign", f"{A}/1/analyse", "hr-chef"],
        ["note", f"{A}/1", "text"],
        ["note", f"{A}/1/analyse", "text"],
        ["write-off", f"{A}/1", "--reason", "r"],
        ["start", A, "--point", "3"],
    ):
        line = drifting.fails(4, *args, "--now", "2022-12-02")
        way = "--accept-changes" if args[0] == "start" else f"`council amend {A}`"
        assert way in line, args
    assert drifting.event_count() == before
    # reading is still allowed
    assert drifting.status("2022-12-02")[1]["current_steps"] == ["analyse"]


def test_validate_against_db_warns_about_a_changed_title(drifting: Council) -> None:
    """`validate --against-db` prints a warning line for a definition that start would refuse."""
    retitle_analyse(drifting)
    result = drifting("validate", "--against-db")
    assert result.exit_code == 0
    drifting.fails(4, "start", A, "--now", "2022-12-02")  # start sends the user to validate
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, result.output
    assert warnings[0].startswith(f"warning: {A}: ")


def test_removed_step_of_a_running_point_is_refused_even_when_accepted(
    drifting: Council,
) -> None:
    """A step removed from a running point: validate warns; start refuses even when accepted."""
    remove_present(drifting)
    before = drifting.event_count()
    result = drifting("validate", "--against-db")
    assert result.exit_code == 0
    assert result.stderr.splitlines() == [
        f"warning: {A}: point 1: step 'present' removed (breaks a running point)"
    ]
    assert result.stdout.strip().endswith("; 1 change(s) against running assignments")
    line = drifting.fails(4, "start", A, "--now", "2022-12-02")
    assert "point 1: step 'present' removed" in line
    line = drifting.fails(4, "start", A, "--accept-changes", "--now", "2022-12-02")
    assert line == (
        f"error: cannot accept the new definition of {A}: it would break running points "
        f"(point 1: step 'present' removed); `council amend {A}` carries them over"
    )
    drifting.fails(4, "begin", f"{A}/1/analyse", "--now", "2022-12-02")
    assert drifting.event_count() == before


def test_validate_against_db_without_changes_prints_no_warning(drifting: Council) -> None:
    """With definitions as started, `validate --against-db` is quiet and reports no change."""
    result = drifting("validate", "--against-db")
    assert result.exit_code == 0
    assert result.stderr == ""
    assert (
        result.stdout.strip()
        == "ok: 11 people, 5 bodies, 3 occasions, 7 workflows, 3 assignments, 15 points"
    )


def test_a_command_cannot_happen_before_the_points_history(started: Council) -> None:
    """--now earlier than a point's last event is refused (exit 1) and writes nothing."""
    before = started.event_count()
    line = started.fails(1, "complete", f"{A}/1/analyse", "--now", "2022-11-02T09:00")
    assert "cannot happen before them" in line
    assert started.event_count() == before


def test_usage_errors_are_one_line_too(started: Council) -> None:
    """click's usage errors (a bad --now, a missing --reason) are one `error:` line, exit 2."""
    line = started.fails(2, "begin", f"{A}/1/analyse", "--now", "yesterday")
    assert "is not an ISO date or time" in line
    assert "council begin --help" in line
    line = started.fails(2, "skip", f"{A}/1/analyse")
    assert "--reason" in line


def test_written_off_point_lists_no_current_work(started: Council) -> None:
    """A written-off point shows no current steps and is never overdue."""
    started.ok("write-off", f"{A}/1", "--reason", "KF beslut § 12", "--now", "2022-12-05")
    row = started.status("2024-01-01")[1]
    assert row["category"] == "written_off"
    assert row["current_steps"] == []
    assert row["overdue"] is False
    detail = started.json("show", f"{A}/1", "--now", "2024-01-01")
    assert not any(step["overdue"] for step in detail["steps"])
    assert detail["notes"][-1]["text"] == "KF beslut § 12"


def test_missing_actor_is_a_usage_error_before_any_database_work(council: Council) -> None:
    """Without --as or COUNCIL_ACTOR, start stops with exit 2 even on an empty database."""
    line = council.fails(2, "start", A, "--now", T0, COUNCIL_ACTOR=None)
    assert "--as PERSON" in line


def test_help_imports_only_click() -> None:
    """`council --help` loads neither pydantic, the core, Celery nor holidays: it starts fast."""
    probe = (
        "import sys\n"
        "sys.argv = ['council', '--help']\n"
        "import cli\n"
        "try:\n"
        "    cli.main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = [m for m in ('pydantic', 'holidays', 'workflow.core', 'workflow.core.machine',"
        " 'celery', 'sqlalchemy', 'rich', 'jinja2') if m in sys.modules]\n"
        "print(','.join(heavy) or 'none', file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert done.stderr.strip().splitlines()[-1] == "none"


# --- trust: who may act, the audit trail, bad URLs, files that cannot be written ----------

#: Point 1's first step, owned by anders.berg (socialchef); the coordinator is sara.nilsson.
ANALYSE = f"{A}/1/analyse"
LATER = "2022-12-05T10:00"


def test_only_the_owner_the_coordinator_or_an_administrator_may_move_a_step(
    started: Council,
) -> None:
    """amir.hassan owns nothing in point 1: refused with exit 4 and one line naming who may;
    the owner, the coordinator and the administrator (erik.sjoberg) may."""
    line = started.fails(4, "begin", ANALYSE, "--as", "amir.hassan", "--now", LATER)
    assert line == (
        f"error: amir.hassan may not begin {ANALYSE}: only anders.berg, whoever stands in "
        "for them today, the coordinator sara.nilsson or an administrator (role "
        "council-admin) may"
    )
    before = started.event_count()
    started.fails(4, "note", ANALYSE, "Jag tar den här.", "--as", "amir.hassan", "--now", LATER)
    started.fails(4, "write-off", f"{A}/1", "--reason", "nej", "--as", "anders.berg",
                  "--now", LATER)  # fmt: skip
    assert started.event_count() == before
    started.ok("begin", ANALYSE, "--as", "anders.berg", "--now", LATER)
    started.ok("note", ANALYSE, "Läget.", "--as", "sara.nilsson", "--now", LATER)
    started.ok("note", f"{A}/1", "Läget.", "--as", "erik.sjoberg", "--now", LATER)


def test_on_behalf_of_records_both_and_the_login(started: Council) -> None:
    """The coordinator enters anders.berg's completion for him: the event's actor is
    anders.berg, recorded_by sara.nilsson, and login the OS user that ran the command."""
    started.ok("complete", ANALYSE, "--as", "sara.nilsson", "--on-behalf-of", "anders.berg",
               "--note", "Klart per telefon.", "--now", LATER)  # fmt: skip
    events = started.json("events", "--point", f"{A}/1")
    done = next(e for e in events if e["type"] == "step.completed")
    assert (done["actor"], done["recorded_by"], done["login"]) == (
        "anders.berg", "sara.nilsson", getpass.getuser()
    )  # fmt: skip
    shown = started.ok("show", f"{A}/1", "--now", LATER)
    assert "anders.berg (by sara.nilsson)" in shown


def test_on_behalf_of_is_for_the_coordinator_and_administrators(started: Council) -> None:
    """maria.lind may not enter anders.berg's work for him, nor name an unknown person."""
    line = started.fails(4, "complete", ANALYSE, "--as", "maria.lind", "--on-behalf-of",
                         "anders.berg", "--now", LATER)  # fmt: skip
    assert "maria.lind may not complete on behalf of anders.berg" in line
    line = started.fails(3, "complete", ANALYSE, "--on-behalf-of", "nobody", "--now", LATER)
    assert "nobody" in line


def test_more_time_is_granted_by_the_coordinator_and_asked_for_by_the_owner(
    started: Council,
) -> None:
    """anders.berg may not extend his own step (exit 4, nothing recorded); he asks with
    `delay`, and the coordinator grants it with `extend`."""
    before = started.event_count()
    line = started.fails(4, "extend", ANALYSE, "--to", "2023-03-01", "--reason", "mer tid",
                         "--as", "anders.berg", "--now", LATER)  # fmt: skip
    assert line.startswith(f"error: anders.berg may not extend {ANALYSE}: only the coordinator")
    assert started.event_count() == before
    started.ok("delay", ANALYSE, "--days", "10", "--as", "anders.berg", "--now", LATER)
    started.ok("extend", ANALYSE, "--to", "2023-03-01", "--reason", "mer tid",
               "--as", "sara.nilsson", "--now", LATER)  # fmt: skip
    types = [e["type"] for e in started.json("events", "--point", f"{A}/1")][-2:]
    assert types == ["step.extension_requested", "step.extended"]


def test_starting_and_accepting_changes_are_for_the_coordinator(drifting: Council) -> None:
    """An owner may neither start an assignment nor accept a changed definition for it."""
    before = drifting.event_count()
    line = drifting.fails(4, "start", A, "--as", "anders.berg", "--now", "2023-02-01T09:00")
    assert "anders.berg may not start" in line
    retitle_analyse(drifting)
    line = drifting.fails(4, "start", A, "--accept-changes", "--as", "anders.berg",
                          "--now", "2023-02-01T09:00")  # fmt: skip
    assert "anders.berg may not" in line
    assert drifting.event_count() == before
    drifting.ok("start", A, "--accept-changes", "--as", "erik.sjoberg", "--now", "2023-02-01T09:00")


def test_a_change_may_not_be_dated_in_the_future(started: Council) -> None:
    """--now ahead of the clock is for reading; a command that records is refused (exit 2,
    nothing recorded), so no change can stand before every later one."""
    ahead = (dt.datetime.now() + dt.timedelta(days=2)).isoformat(timespec="minutes")
    before = started.event_count()
    for args in (
        ["begin", ANALYSE, "--as", "anders.berg"],
        ["start", A],
        ["check-deadlines"],
    ):
        result = started(*args, "--now", ahead)
        assert result.exit_code == 2, (args, result.output)
        assert "is in the future" in result.stderr
    assert started.event_count() == before
    started.ok("status", A, "--now", ahead)
    started.ok("check-deadlines", "--dry-run", "--now", ahead)


@pytest.mark.parametrize(
    ("url", "code", "message"),
    [
        ("nonsense", 1, "the database URL is not one council can use"),
        ("postgresql://user:secret@host:notaport/db", 1, "the database URL is not one"),
        ("frobnicate://x", 1, "the database URL is not one council can use"),
    ],
)
def test_a_bad_database_url_is_one_line_and_shows_no_password(
    ready: Council, url: str, code: int, message: str
) -> None:
    """An URL that is none, or names no database council knows: exit 1, one line, without
    the URL (it may hold a password); --debug adds the traceback, not another code."""
    line = ready.fails(code, "status", A, COUNCIL_DATABASE_URL=url)
    assert message in line
    assert "secret" not in line
    debug = ready("--debug", "status", A, COUNCIL_DATABASE_URL=url)
    assert debug.exit_code == code


def test_a_file_that_is_no_database_is_exit_5(ready: Council, tmp_path: Path) -> None:
    """A SQLite URL to a file that is not a database: exit 5, one line."""
    junk = tmp_path / "junk.db"
    junk.write_text("not a database at all, just some text\n" * 10)
    line = ready.fails(5, "status", A, COUNCIL_DATABASE_URL=f"sqlite:///{junk}")
    assert "file is not a database" in line


def test_status_on_a_missing_sqlite_file_creates_nothing(ready: Council, tmp_path: Path) -> None:
    """Only `council db upgrade` creates the database: status on a path with no file says
    it is not initialised (exit 5) and leaves no empty file behind."""
    missing = tmp_path / "nowhere" / "council.db"
    line = ready.fails(5, "status", A, COUNCIL_DATABASE_URL=f"sqlite:///{missing}")
    assert "not initialised" in line
    assert "council db upgrade" in line
    assert not missing.exists()
    assert not missing.parent.exists()


@pytest.mark.parametrize("target", ["/missing/dir/report.html", "/dev/full"])
def test_a_report_that_cannot_be_written_is_one_line_and_leaves_nothing(
    started: Council, target: str
) -> None:
    """-o into a folder that does not exist, or onto a full device: exit 1, one line, no
    half-written file and no temporary file left."""
    line = started.fails(1, "report", A, "--format", "html", "-o", target)
    assert f"cannot write {target}" in line
    parent = Path(target).parent
    if parent.exists():
        assert not [p for p in parent.iterdir() if p.name.startswith(f".{Path(target).name}.")]


def test_a_report_replaces_its_file_whole(started: Council, tmp_path: Path) -> None:
    """-o writes the report whole: the old file is replaced, no temporary file is left."""
    out = tmp_path / "aterrapport.html"
    out.write_text("an older report")
    started.ok("report", A, "-o", str(out), "--as-of", "2023-06-12")
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".aterrapport")] == []


def test_a_report_through_a_link_replaces_the_file_it_names_and_keeps_its_mode(
    started: Council, tmp_path: Path
) -> None:
    """-o onto a symbolic link writes the file the link names (the link stays a link), and
    a replaced file keeps the permissions its owner gave it."""
    shared = tmp_path / "shared"
    shared.mkdir()
    target = shared / "aterrapport.html"
    target.write_text("an older report")
    target.chmod(0o640)
    link = tmp_path / "latest.html"
    link.symlink_to(target)
    started.ok("report", A, "-o", str(link), "--as-of", "2023-06-12")
    assert link.is_symlink()
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert [p.name for p in shared.iterdir()] == ["aterrapport.html"]


def test_a_report_that_fails_to_write_leaves_the_old_file(
    started: Council, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk fills up while the report is written: exit 1, one line, the old report
    kept as it was and no temporary file left."""
    folder = tmp_path / "reports"
    folder.mkdir()
    old = folder / "aterrapport.html"
    old.write_text("an older report")

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    line = started.fails(1, "report", A, "-o", str(old), "--as-of", "2023-06-12")
    assert line == f"error: cannot write {old}: No space left on device"
    assert old.read_text() == "an older report"
    assert [p.name for p in folder.iterdir()] == ["aterrapport.html"]


def test_files_at_rest_are_the_owners_only(council: Council, tmp_path: Path) -> None:
    """The SQLite database (and its WAL files), var/ and the generated reply secret are
    created readable and writable by their owner only, whatever the umask was; doctor
    warns when one is opened up and says how to fix it."""
    var = tmp_path / "var"
    database = var / "council.db"
    env = {"COUNCIL_DATABASE_URL": None, "COUNCIL_BROKER_URL": None, "COUNCIL_VAR_DIR": str(var)}
    previous = os.umask(0o022)
    try:
        council.ok("db", "upgrade", **env)
        council.ok("start", A, "--now", T0, **env)
        # An embedded installation's inbox makes its reply secret on first use.
        for sub in ("new", "cur", "tmp"):
            (tmp_path / "maildir" / sub).mkdir(parents=True)
        council.ok("inbox", "--maildir", str(tmp_path / "maildir"), **env)
        doctor = council.ok("doctor", "--check", "database", **env)
        var_mode = stat.S_IMODE(var.stat().st_mode)
        os.chmod(var, 0o755)
        warned = council("doctor", "--check", "database", "--json", **env)
    finally:
        os.umask(previous)
    secret = var / "reply-secret"
    created = [database, secret, *var.glob("council.db-*")]
    assert secret.exists()
    assert var_mode == 0o700
    assert {p.name: stat.S_IMODE(p.stat().st_mode) & 0o077 for p in created} == {
        p.name: 0 for p in created
    }
    assert "files" in doctor
    assert "readable by others" in warned.stdout
    assert f"chmod -R go-rwx {var}" in warned.stdout
