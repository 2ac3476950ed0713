"""Progress bars: on a terminal for long work, never when piped, never on stdout.

The real CLI runs in a subprocess twice: once with stderr on the slave side of
a real pseudo-terminal (stdout piped, as in `council backlog > file` typed at a
terminal), once with both streams piped. The definitions hold 23 assignments
(20 copies of the premises assignment beside the bundled three), 95 points: enough
work for a bar.
"""

from __future__ import annotations

import datetime as dt
import os
import pty
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from commands.console import PROGRESS_THRESHOLD
from tests.support import DEFINITIONS, ROOT, read_terminal
from workflow.store import connect, tables

COPIES = 20
POINTS = 7 + 4 + 4 * (COPIES + 1)  # the seed's 7, the safety cycle's 4, 4 per premises one
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
NOW = "2025-03-01T09:00"
LATER = "2026-01-05"


@dataclass
class Run:
    stdout: str
    stderr: str  # what the terminal received, or the piped stderr


@dataclass
class Council:
    env: dict[str, str]

    def _argv(self, args: tuple[str, ...]) -> list[str]:
        return [sys.executable, "-c", "import cli; cli.main()", *args]

    def piped(self, *args: str) -> Run:
        done = subprocess.run(
            self._argv(args), cwd=ROOT, env=self.env, capture_output=True, text=True,
            timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return Run(done.stdout, done.stderr)

    def on_a_terminal(self, *args: str) -> Run:
        """stderr on a pseudo-terminal, stdout piped."""
        master, slave = pty.openpty()
        process = subprocess.Popen(
            self._argv(args), cwd=ROOT, env=self.env,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave,
        )  # fmt: skip
        os.close(slave)
        terminal = read_terminal(master)
        assert process.stdout is not None
        with process.stdout:
            stdout = process.stdout.read().decode()
        assert process.wait(timeout=120) == 0, terminal.decode(errors="replace")
        return Run(stdout, terminal.decode())


def _many_assignments(target: Path) -> Path:
    """The bundled definitions plus COPIES copies of the premises assignment."""
    shutil.copytree(DEFINITIONS, target)
    source = (target / "assignments" / "lokalforsorjning-2024.yaml").read_text()
    for i in range(COPIES):
        copy = source.replace("id: kf-2024-lokalforsorjning", f"id: kf-2024-lokal-{i:02d}", 1)
        (target / "assignments" / f"lokal-{i:02d}.yaml").write_text(copy)
    return target


def _council(database_url: str, tmp_path: Path, definitions: Path) -> Council:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COUNCIL_")}
    env.update(
        COUNCIL_DATABASE_URL=database_url,
        COUNCIL_DEFINITIONS=str(definitions),
        COUNCIL_VAR_DIR=str(tmp_path / "var"),  # no broker: nothing is published
        COUNCIL_ACTOR="erik.sjoberg",  # an administrator: he may start every assignment
        TERM="xterm-256color",
        COLUMNS="100",
    )
    council = Council(env)
    council.piped("db", "upgrade")
    return council


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _many_assignments(tmp_path_factory.mktemp("definitions") / "definitions")


def _due_steps(database_url: str) -> int:
    """Steps a sweep on LATER looks at, counted from the database itself."""
    engine = connect(database_url)
    try:
        with engine.connect() as conn:
            query = sa.select(sa.func.count()).where(
                tables.steps.c.next_check_at <= dt.date.fromisoformat(LATER)
            )
            return int(conn.execute(query).scalar_one())
    finally:
        engine.dispose()


def _bar(run: Run, description: str, total: int) -> None:
    """The terminal got a bar for ``description`` that reached ``total``."""
    assert ANSI.search(run.stderr), "a bar is drawn with escape sequences"
    shown = ANSI.sub("", run.stderr)
    assert description in shown
    assert f"{total}/{total}" in shown  # the last frame: every item counted


def _quiet(run: Run) -> None:
    assert run.stderr == ""
    assert not ANSI.search(run.stdout)


def test_start_all_shows_progress_on_a_terminal_only(
    database_url: str, tmp_path: Path, many: Path
) -> None:
    """`council start --all`: a bar over the points on a terminal; the same stdout piped."""
    assert POINTS >= PROGRESS_THRESHOLD
    shown = _council(database_url, tmp_path / "a", many).on_a_terminal(
        "start", "--all", "--now", NOW
    )
    _bar(shown, "starting", POINTS)
    piped = _council(f"sqlite:///{tmp_path / 'b.db'}", tmp_path / "b", many).piped(
        "start", "--all", "--now", NOW
    )
    _quiet(piped)
    assert shown.stdout == piped.stdout
    assert piped.stdout.count("started ") == COPIES + 3
    assert "started kf-2024-lokal-07: point(s) 1, 2, 4 (7 events)\n" in piped.stdout


def test_sweep_and_backlog_show_progress_on_a_terminal_only(
    database_url: str, tmp_path: Path, many: Path
) -> None:
    """check-deadlines (dry run and real) and backlog: a bar on a terminal, stdout unchanged."""
    council = _council(database_url, tmp_path, many)
    council.piped("start", "--all", "--now", NOW)

    dry = council.piped("check-deadlines", "--dry-run", "--now", LATER)
    _quiet(dry)
    shown = council.on_a_terminal("check-deadlines", "--dry-run", "--now", LATER)
    assert shown.stdout == dry.stdout
    due = _due_steps(database_url)
    assert due >= PROGRESS_THRESHOLD
    _bar(shown, "checking deadlines", due)

    before = council.piped("backlog", "--as-of", LATER)
    _quiet(before)
    shown = council.on_a_terminal("backlog", "--as-of", LATER)
    _bar(shown, "backlog", POINTS)
    assert shown.stdout == before.stdout

    fired = council.on_a_terminal("check-deadlines", "--now", LATER)
    _bar(fired, "checking deadlines", due)
    heading, *rows = fired.stdout.splitlines()
    dry_heading, *dry_rows = dry.stdout.splitlines()
    assert heading == dry_heading.replace("would fire", "fired")
    assert sorted(rows) == sorted(dry_rows)
    _quiet(again := council.piped("check-deadlines", "--now", LATER))
    assert again.stdout.startswith("nothing fired")


def test_little_work_shows_no_bar(database_url: str, tmp_path: Path) -> None:
    """Two assignments, eleven points: over before a bar could help, so none is drawn."""
    council = _council(database_url, tmp_path, DEFINITIONS)
    shown = council.on_a_terminal("start", "--all", "--now", NOW)
    assert shown.stderr == ""
    assert shown.stdout.startswith("started kf-2022-hedersvald: point(s) 1, 2, 3, 4, 5, 6, 7")
    assert "started kf-2024-lokalforsorjning: point(s) 1, 2, 4" in shown.stdout
