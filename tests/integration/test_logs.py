"""A real worker's logs: JSON lines through structlog, context bound, nothing secret.

A Celery worker (prefork pool, beat embedded) on this test's Redis handles real
prompts and mails them through an SMTP server that requires a login, on SQLite
and on PostgreSQL. Its stderr is read line by line afterwards: every line must
be JSON, Celery's own records included, from the main process and from the
forked pool children alike.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.integration.servers import SmtpCatcher, WorkerProcess, council, wait_for
from tests.support import ROOT
from workflow.store import tables

A = "kf-2022-hedersvald"
USER = "council-relay"
#: Distinctive strings that reach the worker (the password to log in, the notes in
#: the prompts' bodies) and must never reach its logs.
PASSWORD = "Pw-9f3a-never-in-a-log"
NOTE = "Anteckning-7c1e om arbetet med Bergsskolan"
COMPLETE_NOTE = "Kartan-5d2b klar efter samtal med rektorerna"


class LoginCatcher(SmtpCatcher):
    """An SMTP catcher that offers AUTH and accepts one user and password only.

    council logs in because a username is configured; the catcher records each
    login (AUTH is offered without TLS, on loopback only).
    """

    def __init__(self) -> None:
        super().__init__()
        self.logins: list[tuple[str, bool]] = []

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            USER.encode(), PASSWORD.encode()
        )  # fmt: skip
        self.logins.append((mechanism, ok))
        return AuthResult(success=ok, auth_data=data if ok else None)

    def start(self) -> None:
        self._controller = Controller(
            self.handler, hostname="127.0.0.1", port=self.port, authenticator=self._authenticate,
            auth_require_tls=False,
        )  # fmt: skip
        self._controller.start()


@pytest.fixture
def login_smtp() -> Iterator[LoginCatcher]:
    catcher = LoginCatcher()
    catcher.start()
    yield catcher
    catcher.stop()


class SplitWorker(WorkerProcess):
    """A worker whose stderr (the logs) and stdout go to two files, as under Docker."""

    def start(self) -> None:
        self.stdout = self.log.with_suffix(".stdout")
        with self.log.open("wb") as err, self.stdout.open("wb") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable, "-m", "celery", "-A", "worker", "worker", "-B",
                    "--pool=prefork", f"--concurrency={self.concurrency}", "--loglevel=INFO",
                    "--without-mingle", "--without-gossip",
                    "--schedule", str(self.log.parent / "beat-schedule"),
                ],
                cwd=ROOT, env=self.env, stdout=out, stderr=err, start_new_session=True,
            )  # fmt: skip
        wait_for(
            lambda: b" ready." in self.log.read_bytes() or self.process.poll() is not None,  # type: ignore[union-attr]
            timeout=60,
            what="the Celery worker to be ready",
        )
        assert self.process.poll() is None, self.log.read_text()[-2000:]


def _all_handled(db: sa.Engine) -> bool:
    with db.connect() as conn:
        waiting = conn.execute(
            sa.select(sa.func.count()).where(tables.outbox.c.handled_at.is_(None))
        ).scalar_one()
    return waiting == 0


def test_worker_logs_are_json_with_context_and_nothing_secret(
    worker_env: dict[str, str], login_smtp: LoginCatcher, db: sa.Engine, tmp_path: Path
) -> None:
    """Every stderr line is JSON; Celery's lines too; handling lines carry their context."""
    env = {
        **worker_env,
        "COUNCIL_SMTP_PORT": str(login_smtp.port),
        "COUNCIL_SMTP_USERNAME": USER,
        "COUNCIL_SMTP_PASSWORD": PASSWORD,
    }
    worker = SplitWorker(env, tmp_path / "worker.stderr")
    worker.start()
    try:
        main_pid = worker.process.pid  # type: ignore[union-attr]
        council(env, "start", A, "--point", "4", "--now", "2023-01-09T09:00")
        wait_for(lambda: len(login_smtp.received) == 1, timeout=30, what="the first prompt")
        council(env, "note", f"{A}/4", NOTE, "--now", "2023-01-10T09:00")
        council(env, "complete", f"{A}/4/map", "--note", COMPLETE_NOTE,
                "--now", "2023-01-11T09:00", actor="amir.hassan")  # fmt: skip
        wait_for(lambda: len(login_smtp.received) == 3, timeout=30, what="two more prompts")
        wait_for(lambda: _all_handled(db), timeout=30, what="every event handled")
    finally:
        worker.stop()  # a warm shutdown: every line is written

    # The secrets really went through the worker: it logged in, the notes are in the mail.
    assert ("PLAIN", True) in login_smtp.logins or ("LOGIN", True) in login_smtp.logins
    bodies = [r.message.get_body(("plain",)).get_content() for r in login_smtp.received]
    assert any(NOTE in body and COMPLETE_NOTE in body for body in bodies)

    raw = (tmp_path / "worker.stderr").read_text()
    lines = [_json(line) for line in raw.splitlines()]  # every line, or this fails
    assert len(lines) > 10
    for line in lines:
        assert line["level"] in ("debug", "info", "warning", "error", "critical")
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z", line["timestamp"])
        assert isinstance(line["pid"], int)
        assert line["logger"]
        assert isinstance(line["event"], str)

    # Celery's own records came through structlog, from the main process and the children.
    ready = [x for x in lines if re.fullmatch(r"celery@.+ ready\.", x["event"])]
    assert [x["pid"] for x in ready] == [main_pid]
    assert ready[0]["logger"].startswith("celery")
    received = [x for x in lines if x["event"].endswith("] received")]
    assert received
    assert all(x["logger"].startswith("celery") for x in received)
    assert all(x["task_id"] and x["task"] for x in received)
    assert any(x["task"] == "council.dispatch" for x in received)
    succeeded = [x for x in lines if " succeeded in " in x["event"]]
    assert succeeded
    assert all(x["pid"] != main_pid for x in succeeded)  # logged in the pool's children
    assert any(x["logger"] == "celery.beat" for x in lines)  # beat, embedded
    assert any(x["event"] == "worker.starting" for x in lines)  # the banner, as one line

    # Every line logged while a dispatch ran names its task and its batch of events; every
    # line about one event (a handler's, a mail's, dispatch.done) carries its whole context.
    handling = [x for x in lines if x.get("task") == "council.dispatch" and x["pid"] != main_pid]
    assert handling
    for line in handling:
        assert line["task_id"], line
        assert isinstance(line["events"], list), line
        if line["logger"].startswith("celery") and len(line["events"]) > 1:
            continue  # Celery's own line about the task: of the batch, not of one event
        for key in ("event_id", "assignment", "point", "step", "event_type"):
            assert key in line, (key, line)
        assert line["event_id"] in line["events"]
        assert line["assignment"] == A
        assert line["point"] == 4
    delivered = [x for x in handling if x["event"] == "effect.done"]
    assert sorted(x["step"] for x in delivered) == ["indicators", "map", "survey"]
    assert {x["logger"] for x in delivered} == {"workflow.mail.delivery"}
    assert all(x["event_type"] == "step.activated" for x in delivered)
    # One dispatch per command: the start's (map), the completion's batch (the other two).
    by_task = Counter(x["task_id"] for x in delivered)
    assert sorted(by_task.values()) == [1, 2]
    done = [x for x in handling if x["event"] == "dispatch.done"]
    assert {(x["step"], x["delivered"]) for x in done} == {
        ("map", 1), ("indicators", 1), ("survey", 1)
    }  # fmt: skip
    noted = [x for x in handling if x.get("event_type") == "note.added"]
    assert noted
    assert all(x["step"] is None for x in noted)

    # Nothing secret, in either stream: no password, no note, no line of a mail's text.
    stdout = worker.stdout.read_text()
    for text in (raw, stdout):
        assert PASSWORD not in text
        assert NOTE not in text
        assert COMPLETE_NOTE not in text
        for body in bodies:
            for body_line in body.splitlines():
                if len(body_line.strip()) >= 30:
                    assert body_line.strip() not in text, body_line
    # stdout holds no banner, only what Celery prints outside logging when it stops
    assert all(line.startswith("worker: ") for line in stdout.splitlines() if line), stdout


def _json(line: str) -> Any:
    """One log line as JSON; a line that is not says which it is."""
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        pytest.fail(f"a log line is not JSON: {line!r}")
