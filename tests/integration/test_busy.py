"""A SQLite database locked by another writer: the CLI says that it waits, and if the lock
is not given up it stops with its own exit code and message, having written nothing.

The lock is real: the test holds SQLite's write lock (BEGIN IMMEDIATE) on the database
the CLI uses; the CLI runs as a subprocess with stderr on a pseudo-terminal, as on a
coordinator's screen.
"""

from __future__ import annotations

import os
import pty
import select
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from commands.base import database_fault
from tests.support import ROOT, copy_definitions
from workflow.errors import EXIT_BUSY, EXIT_UNREACHABLE
from workflow.store import connect, migrate

A = "kf-2022-hedersvald"
WAITING = b"waiting for the database"


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "council.db"
    engine = connect(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()
    return path


class Cli:
    """`council ARGS` with stderr on a pseudo-terminal, read as it comes."""

    def __init__(self, database: Path, tmp_path: Path, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("COUNCIL_")}
        env.update(COUNCIL_DATABASE_URL=f"sqlite:///{database}", COUNCIL_ACTOR="sara.nilsson",
                   COUNCIL_DEFINITIONS=str(copy_definitions(tmp_path / "definitions")),
                   COUNCIL_VAR_DIR=str(tmp_path / "var"))  # fmt: skip
        self.master, slave = pty.openpty()
        self.process = subprocess.Popen(
            [sys.executable, "-c", "import cli; cli.main()", *args], cwd=ROOT, env=env,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave,
        )  # fmt: skip
        os.close(slave)
        self.shown = b""

    def read_until(self, wanted: bytes) -> bool:
        """Read stderr until ``wanted`` shows or the process closed it."""
        while wanted not in self.shown:
            ready, _, _ = select.select([self.master], [], [], 0.5)
            if not ready:
                if self.process.poll() is not None:
                    return False
                continue
            try:
                chunk = os.read(self.master, 4096)
            except OSError:  # EIO: the process closed its side
                return False
            if not chunk:
                return False
            self.shown += chunk
        return True

    def finish(self) -> tuple[int, str]:
        self.read_until(b"\x00never\x00")  # everything, until the process closes stderr
        os.close(self.master)
        code = self.process.wait(timeout=120)
        return code, self.shown.decode().replace("\r\n", "\n")


def events(database: Path) -> int:
    engine = connect(f"sqlite:///{database}")
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM events")).scalar_one())
    finally:
        engine.dispose()


def hold_write_lock(database: Path) -> sqlite3.Connection:
    other = sqlite3.connect(database, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another writer, mid-transaction
    return other


def test_a_command_waiting_on_the_lock_says_so_then_goes_on(database: Path, tmp_path: Path) -> None:
    """After a second the CLI says it waits; once the other writer commits, it goes on."""
    other = hold_write_lock(database)
    started = time.monotonic()
    cli = Cli(database, tmp_path, "start", A, "--point", "1", "--now", "2022-12-01T09:00")
    try:
        assert cli.read_until(WAITING), cli.shown
        assert time.monotonic() - started >= 1.0
    finally:
        other.execute("COMMIT")
        other.close()
    code, shown = cli.finish()
    assert code == 0, shown
    assert shown.count("waiting for the database") == 1
    assert events(database) > 0


def test_a_lock_never_given_up_stops_the_command_with_exit_7(
    database: Path, tmp_path: Path
) -> None:
    """The other writer keeps the lock past SQLite's busy timeout (10 s): one error line,
    its own exit code, and nothing written."""
    other = hold_write_lock(database)
    try:
        cli = Cli(database, tmp_path, "start", A, "--point", "1", "--now", "2022-12-01T09:00")
        code, shown = cli.finish()
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert code == EXIT_BUSY
    errors = [line for line in shown.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: the database is busy: another council process kept it locked; nothing was "
        "written, try again"
    ]
    assert "Traceback" not in shown
    assert events(database) == 0


@pytest.mark.parametrize(
    ("said", "code", "start"),
    [
        ("database is locked", EXIT_BUSY, "the database is busy"),
        ("canceling statement due to lock timeout", EXIT_BUSY, "the database is busy"),
        ("disk I/O error", EXIT_UNREACHABLE, "the database's storage failed (disk I/O error)"),
        ("database or disk is full", EXIT_UNREACHABLE, "the database's storage failed"),
        ('connection to server at "db" failed', EXIT_UNREACHABLE, "cannot reach the database"),
    ],
)
def test_each_database_fault_has_its_line(said: str, code: int, start: str) -> None:
    """A lock, the disk, an unreachable server: told apart, each with its exit code."""
    fault = sa.exc.OperationalError("INSERT ...", {}, sqlite3.OperationalError(said))
    message, got = database_fault(fault)
    assert got == code
    assert message.startswith(start)
    assert "INSERT" not in message  # never the statement (or its parameters)
