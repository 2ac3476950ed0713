"""`council inbox --imap` against a real IMAPS server: a private Dovecot on its own port."""

from __future__ import annotations

import contextlib
import imaplib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from pydantic import SecretStr

from tests.integration.servers import wait_for
from tests.support import DEFINITIONS, missing_server
from workflow import store
from workflow.replies import tokens as replies
from workflow.store import tables

A = "kf-2022-hedersvald"
SECRET = "imap-test-secret-0123456789abcdef"
USER, PASSWORD = "council", "imap-pass-word"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Dovecot:
    """A Dovecot serving one IMAPS user from a maildir under a private directory."""

    def __init__(self) -> None:
        # Dovecot drops to its own users: the directory must be reachable by them,
        # which pytest's 0700 tmp_path is not.
        self.dir = Path(tempfile.mkdtemp(prefix="council-imap-"))
        self.dir.chmod(0o755)
        self.port = _free_port()
        self.cert = self.dir / "cert.pem"

    def start(self) -> None:
        binary = shutil.which("dovecot")
        if binary is None or shutil.which("openssl") is None:
            missing_server("dovecot (Debian package dovecot-imapd) and openssl")
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
             "-keyout", str(self.dir / "key.pem"), "-out", str(self.cert),
             "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
            check=True, capture_output=True,
        )  # fmt: skip
        (self.dir / "users").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
        for sub in ("run", "state", "home"):
            (self.dir / sub).mkdir()
        shutil.chown(self.dir / "home", "dovecot", "dovecot")
        (self.dir / "dovecot.conf").write_text(
            f"""protocols = imap
listen = 127.0.0.1
base_dir = {self.dir}/run
state_dir = {self.dir}/state
log_path = {self.dir}/dovecot.log
default_internal_user = dovecot
default_login_user = dovenull
ssl = required
ssl_cert = <{self.cert}
ssl_key = <{self.dir}/key.pem
auth_mechanisms = plain login
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    port = {self.port}
    ssl = yes
  }}
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.dir}/users
}}
userdb {{
  driver = static
  args = uid=dovecot gid=dovecot home={self.dir}/home/%u
}}
mail_location = maildir:{self.dir}/home/%u/Maildir
first_valid_uid = 1
"""
        )
        subprocess.run([binary, "-c", str(self.dir / "dovecot.conf")], check=True)
        wait_for(self._listening, timeout=20, what="dovecot")

    def _listening(self) -> bool:
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", self.port), timeout=1),
        ):
            return True
        return False

    def client(self) -> imaplib.IMAP4_SSL:
        context = ssl.create_default_context(cafile=str(self.cert))
        client = imaplib.IMAP4_SSL("127.0.0.1", self.port, ssl_context=context, timeout=10)
        try:
            client.login(USER, PASSWORD)
            client.select("INBOX")
        except Exception:
            client.shutdown()
            raise
        return client

    def append(self, raw: bytes) -> None:
        client = self.client()
        try:
            client.append("INBOX", None, None, raw)
        finally:
            client.logout()

    def unseen(self) -> int:
        client = self.client()
        try:
            _, found = client.uid("SEARCH", "UNSEEN")
            return len((found[0] or b"").split())
        finally:
            client.logout()

    def stop(self) -> None:
        pid_file = self.dir / "run" / "master.pid"
        if pid_file.exists():
            pid = int(pid_file.read_text().strip())
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    server = Dovecot()
    try:
        server.start()
        yield server
    finally:
        server.stop()


def _env(tmp_path: Path, server: Dovecot, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COUNCIL_")}
    env.update(
        COUNCIL_VAR_DIR=str(tmp_path / "var"),
        COUNCIL_DEFINITIONS=str(DEFINITIONS),
        COUNCIL_ACTOR="sara.nilsson",
        COUNCIL_REPLY_SECRET=SECRET,
        COUNCIL_IMAP_HOST="127.0.0.1",
        COUNCIL_IMAP_PORT=str(server.port),
        COUNCIL_IMAP_USERNAME=USER,
        COUNCIL_IMAP_PASSWORD=PASSWORD,
        COUNCIL_IMAP_CA_FILE=str(server.cert),
        # No broker is configured or running: answers wait for a worker's reconciler.
    )
    env.update(extra)
    return env


def _council(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "council"), *args],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def _reply(to: str, body: str, message_id: str) -> bytes:
    return (
        "From: Amir Hassan <amir.hassan@kommun.example>\r\n"
        f"To: {to}\r\n"
        "Subject: Re: Task: Map and evaluate reporting routes\r\n"
        f"Message-ID: {message_id}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        f"{body}\r\n"
    ).encode()


def test_inbox_reads_unseen_imap_messages_once_and_flags_them_seen(
    tmp_path: Path, dovecot: Dovecot
) -> None:
    env = _env(tmp_path, dovecot)
    for args in (("db", "upgrade"), ("start", A, "--point", "4", "--now", "2023-01-09T09:00")):
        done = _council(env, *args)
        assert done.returncode == 0, done.stderr
    db = store.connect(f"sqlite:///{tmp_path / 'var' / 'council.db'}")
    with db.connect() as conn:
        owner_event = store.owner_event(conn, A, 4, "map")
    assert owner_event is not None
    address = replies.address("council@kommun.example", SecretStr(SECRET), owner_event)
    dovecot.append(_reply(address, "STARTED\nNOTE two of five schools answered", "<r1@amir>"))
    dovecot.append(_reply(address, "KLAR", "<r1@amir>"))  # the same Message-ID again
    assert dovecot.unseen() == 2

    done = _council(env, "inbox", "--imap", "--now", "2023-01-10T09:00", "--json")
    assert done.returncode == 0, done.stderr
    receipts = json.loads(done.stdout)
    assert [(r["outcome"], r["person"]) for r in receipts] == [
        ("done", "amir.hassan"),
        ("duplicate", None),
    ]
    assert dovecot.unseen() == 0
    with db.connect() as conn:
        kinds = conn.execute(
            sa.select(tables.events.c.type, tables.events.c.actor)
            .where(tables.events.c.id > owner_event)
            .order_by(tables.events.c.id)
        ).all()
        answers = conn.execute(
            sa.select(sa.func.count()).where(tables.effects.c.kind == "answer")
        ).scalar_one()
    assert [tuple(k) for k in kinds] == [
        ("step.begun", "amir.hassan"),
        ("note.added", "amir.hassan"),
    ]
    assert answers == 1

    again = _council(env, "inbox", "--imap", "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) == []
    db.dispose()


def test_inbox_imap_errors_are_one_line_with_exit_code_5(tmp_path: Path, dovecot: Dovecot) -> None:
    env = _env(tmp_path, dovecot)
    assert _council(env, "db", "upgrade").returncode == 0

    wrong = _council(_env(tmp_path, dovecot, COUNCIL_IMAP_PASSWORD="wrong"), "inbox", "--imap")
    assert wrong.returncode == 5
    assert wrong.stderr.startswith("error: the IMAP server refused the login")
    assert len(wrong.stderr.strip().splitlines()) == 1

    closed = _council(_env(tmp_path, dovecot, COUNCIL_IMAP_PORT=str(_free_port())),
                      "inbox", "--imap")  # fmt: skip
    assert closed.returncode == 5
    assert closed.stderr.startswith("error: cannot reach the IMAP server")
    assert "Traceback" not in closed.stderr
