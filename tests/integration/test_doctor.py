"""`council doctor` against real servers, healthy and broken.

Every server is the test's own: a redis-server on a unix socket under
tmp_path (some configured badly on purpose), an aiosmtpd server on a free
loopback port (plain, STARTTLS with AUTH, TLS, with a self-signed certificate
made here by openssl), a SQLite file or a fresh PostgreSQL database, real
Celery workers and a real `council beat`. "Unreachable" is a port or socket
nothing listens on, or a listener that never answers; the machine's own
PostgreSQL and Redis are never stopped.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from alembic import command as alembic
from alembic.config import Config
from click.testing import CliRunner, Result

from cli import main
from tests.integration.servers import RedisServer, SmtpCatcher, WorkerProcess, wait_for
from tests.support import DEFINITIONS, ROOT, missing_server
from workflow.errors import Unreachable
from workflow.ops.embedded import EmbeddedRedis, find_redis_server
from workflow.store import connect, migrate

#: Made-up credentials that must never be printed.
SMTP_PASSWORD = "Sm7p-Pa55word-Never-Shown"
DB_PASSWORD = "Db-Pa55word-Never-Shown"
REDIS_PASSWORD = "Redis-Pa55word-Never-Shown"
SECRETS = (SMTP_PASSWORD, DB_PASSWORD, REDIS_PASSWORD)

Checks = dict[str, dict[str, Any]]


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture(autouse=True)
def _empty_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from an empty directory: no council.toml around the repo leaks in."""
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)


class Doctor:
    """Runs `council doctor` in-process with exactly the COUNCIL_* variables given."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def __call__(self, *args: str, **env: str | None) -> Result:
        cleared: dict[str, str | None] = {k: None for k in os.environ if k.startswith("COUNCIL_")}
        result = CliRunner().invoke(main, ["doctor", *args], env={**cleared, **self.env, **env})
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise AssertionError(f"council doctor crashed: {result.exc_info}")
        for secret in SECRETS:
            assert secret not in result.output, f"a secret was printed:\n{result.output}"
        return result

    def json(self, *args: str, **env: str | None) -> tuple[int, Checks]:
        """Exit code and {check: line} from `doctor --json`."""
        result = self("--json", *args, **env)
        data = json.loads(result.stdout)
        assert data["exit_code"] == result.exit_code
        return result.exit_code, {line["check"]: line for line in data["checks"]}


def statuses(checks: Checks) -> dict[str, str]:
    return {name: line["status"] for name, line in checks.items()}


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A migrated SQLite database, readable by its owner only (as council creates it)."""
    path = tmp_path / "installed.db"
    url = f"sqlite:///{path}"
    engine = connect(url)
    migrate.upgrade(engine)
    engine.dispose()
    for made in tmp_path.glob("installed.db*"):
        made.chmod(0o600)
    return url


@pytest.fixture
def env(
    sqlite_url: str, redis_server: RedisServer, smtp: SmtpCatcher, tmp_path: Path
) -> dict[str, str]:
    """A healthy installation (SQLite, the test's Redis and SMTP server) but no worker or beat."""
    (tmp_path / "var").mkdir(mode=0o700, exist_ok=True)
    return {
        "COUNCIL_DATABASE_URL": sqlite_url,
        "COUNCIL_BROKER_URL": redis_server.url,
        "COUNCIL_DEFINITIONS": str(DEFINITIONS),
        "COUNCIL_VAR_DIR": str(tmp_path / "var"),
        "COUNCIL_SMTP_HOST": "127.0.0.1",
        "COUNCIL_SMTP_PORT": str(smtp.port),
        "COUNCIL_SMTP_SECURITY": "none",
        "COUNCIL_RELAY_INTERVAL": "1",
        "COUNCIL_RECONCILE_INTERVAL": "1",
        "COUNCIL_TASK_SOFT_TIME_LIMIT": "8",
        "COUNCIL_TASK_TIME_LIMIT": "10",
        "COUNCIL_VISIBILITY_TIMEOUT": "30",
    }


@pytest.fixture
def doctor(env: dict[str, str]) -> Doctor:
    return Doctor(env)


def process_env(env: dict[str, str]) -> dict[str, str]:
    """The environment of a subprocess: this one's, without COUNCIL_* or CI, plus ``env``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("COUNCIL_") and k != "CI"}
    return {**base, **env}


# --- everything healthy, then workers and beat ---------------------------------------------


def test_healthy_installation_is_ok_on_every_line(
    database_url: str, db: sa.Engine, env: dict[str, str], tmp_path: Path
) -> None:
    """Migrated database (SQLite and PostgreSQL), Redis, SMTP, a reply secret, a worker and
    beat: all ok, exit 0."""
    env = {**env, "COUNCIL_DATABASE_URL": database_url,
           "COUNCIL_REPLY_SECRET": "doctor-tests-reply-secret-0123456789abcdef"}  # fmt: skip
    worker = WorkerProcess(process_env(env), tmp_path / "worker.log", concurrency=1)
    worker.start()  # with beat embedded (-B)
    try:
        # The test made the database with its own umask; council makes its files private.
        for made in tmp_path.glob("council.db*"):
            made.chmod(0o600)
        doctor = Doctor(env)
        wait_for(
            lambda: doctor.json("--check", "beat")[1]["beat"]["status"] == "ok",
            timeout=20,
            what="beat's first heartbeat",
        )
        code, checks = doctor.json()
        assert statuses(checks) == {
            "definitions": "ok",
            "database": "ok",
            "outbox": "ok",
            "broker": "ok",
            "broker persistence": "ok",
            "broker eviction": "ok",
            "files": "ok",
            "smtp": "ok",
            "replies": "ok",
            "worker": "ok",
            "beat": "ok",
        }, checks
        assert code == 0
        assert (
            "11 people, 5 bodies, 3 occasions, 7 workflows, 3 assignments, 15 points"
            in checks["definitions"]["detail"]
        )
        assert f"schema at {migrate.head()} (current)" in checks["database"]["detail"]
        assert checks["outbox"]["detail"] == (
            "0 to publish, 0 published and not handled (0 in a dispatch now); "
            "the reconciler has sent 0 copies of 0 events"
        )
        assert "1 answered: celery@" in checks["worker"]["detail"]
        assert "doctor-tests-reply-secret" not in repr(checks)
        assert all(line["fix"] == "" for line in checks.values())
        table = doctor()
        assert table.exit_code == 0
        assert table.stdout.splitlines()[0].split() == ["check", "status", "detail", "fix"]
        assert table.stdout.splitlines()[-1] == "11 ok"
    finally:
        worker.stop()


def test_no_worker_fails_and_no_beat_warns(doctor: Doctor) -> None:
    """Without workers the worker line fails (exit 6); without beat the beat line only warns."""
    code, checks = doctor.json()
    assert checks["worker"]["status"] == "fail"
    assert "no worker answered" in checks["worker"]["detail"]
    assert "council worker" in checks["worker"]["fix"]
    assert checks["beat"]["status"] == "warn"
    assert "no heartbeat" in checks["beat"]["detail"]
    assert "council beat" in checks["beat"]["fix"]
    assert code == 6
    assert checks["worker"]["unreachable"] is False
    # beat alone: a warning passes, unless --strict
    code, checks = doctor.json("--check", "beat")
    assert list(checks) == ["broker", "broker persistence", "broker eviction", "beat"]
    assert code == 0
    assert doctor("--check", "beat", "--strict").exit_code == 6


def test_council_beat_is_fresh_while_it_runs_and_stale_after(
    doctor: Doctor, env: dict[str, str], tmp_path: Path
) -> None:
    """A real `council beat` leaves a heartbeat; once it stops, the heartbeat goes stale."""
    log = tmp_path / "beat.log"
    with log.open("wb") as out:
        beat = subprocess.Popen(
            [sys.executable, "-c", "import cli; cli.main()", "beat"],
            cwd=ROOT,
            env=process_env(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for(
            lambda: (
                doctor.json("--check", "beat")[1]["beat"]["status"] == "ok"
                or beat.poll() is not None
            ),
            timeout=30,
            what="`council beat` to leave a heartbeat",
        )
        assert beat.poll() is None, log.read_text()
        code, checks = doctor.json("--check", "beat", "--strict")
        assert code == 0
        assert f"(pid {beat.pid})" in checks["beat"]["detail"]
        assert "(every 1 s)" in checks["beat"]["detail"]
    finally:
        os.killpg(beat.pid, signal.SIGTERM)
        beat.wait(timeout=20)
    wait_for(
        lambda: doctor.json("--check", "beat")[1]["beat"]["status"] == "warn",
        timeout=10,
        what="the heartbeat to go stale",
    )
    code, checks = doctor.json("--check", "beat")
    assert checks["beat"]["detail"].startswith("stale: last heartbeat ")
    assert "beat is stopped or stuck" in checks["beat"]["fix"]
    assert code == 0
    assert doctor("--check", "beat", "--strict").exit_code == 6


# --- the database ------------------------------------------------------------------------


def test_unmigrated_database_fails_with_the_upgrade_fix(database_url: str, doctor: Doctor) -> None:
    """An empty database (SQLite file or PostgreSQL): fail, `council db upgrade`, exit 5."""
    if database_url.startswith("sqlite"):
        engine = sa.create_engine(database_url)
        with engine.begin() as conn:  # the file exists, with no council schema
            conn.execute(sa.text("CREATE TABLE unrelated (x INTEGER)"))
        engine.dispose()
    code, checks = doctor.json("--check", "database", COUNCIL_DATABASE_URL=database_url)
    line = checks["database"]
    assert line["status"] == "fail"
    assert "not initialised" in line["detail"]
    assert line["fix"] == "run `council db upgrade`"
    assert code == 5


def test_database_behind_this_release_fails_with_the_upgrade_fix(
    database_url: str, doctor: Doctor
) -> None:
    """A schema at an older revision names both revisions; after upgrade it is ok."""
    config = Config()
    config.set_main_option("script_location", str(migrate.MIGRATIONS))
    engine = connect(database_url)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        alembic.upgrade(config, "0001")
    code, checks = doctor.json("--check", "database", COUNCIL_DATABASE_URL=database_url)
    assert checks["database"]["status"] == "fail"
    assert f"schema at 0001, this release needs {migrate.head()}" in checks["database"]["detail"]
    assert checks["database"]["fix"] == "run `council db upgrade`"
    assert code == 5
    migrate.upgrade(engine)
    with engine.begin() as conn:  # a revision from a newer council
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    code, checks = doctor.json("--check", "database", COUNCIL_DATABASE_URL=database_url)
    assert "schema at 9999, which this release does not know" in checks["database"]["detail"]
    assert code == 5
    engine.dispose()


def test_missing_sqlite_file_fails_and_is_not_created(doctor: Doctor, tmp_path: Path) -> None:
    """The doctor never creates the SQLite file it was asked to look at."""
    path = tmp_path / "nothing-here.db"
    code, checks = doctor.json("--check", "database", COUNCIL_DATABASE_URL=f"sqlite:///{path}")
    assert checks["database"]["status"] == "fail"
    assert "no database file yet" in checks["database"]["detail"]
    assert checks["database"]["fix"] == "run `council db upgrade`"
    assert code == 5
    assert not path.exists()


def test_unreachable_postgresql_fails_fast_without_the_password(doctor: Doctor) -> None:
    """A PostgreSQL port nothing listens on: fail, exit 5, the URL's password masked."""
    url = f"postgresql+psycopg://council:{DB_PASSWORD}@127.0.0.1:{closed_port()}/council"
    started = time.monotonic()
    result = doctor("--check", "database", COUNCIL_DATABASE_URL=url)
    assert time.monotonic() - started < 5
    assert result.exit_code == 5
    _, checks = doctor.json("--check", "database", COUNCIL_DATABASE_URL=url)
    assert checks["database"]["status"] == "fail"
    assert checks["database"]["detail"].startswith("cannot reach postgresql+psycopg://council:***@")
    assert "Connection refused" in checks["database"]["detail"]


# --- the broker -------------------------------------------------------------------------


@dataclass
class ConfiguredRedis(RedisServer):
    """A redis-server with the configuration a test asks for (possibly a bad one)."""

    args: tuple[str, ...] = ()

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                str(self.binary), "--port", "0", "--unixsocket", str(self.socket_path),
                "--dir", str(self.directory), *self.args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for(self.answers, timeout=10, what="redis-server to listen")

    def answers(self) -> bool:
        """Anything answers PING (a server that wants a password answers -NOAUTH)."""
        try:
            with socket.socket(socket.AF_UNIX) as conn:
                conn.settimeout(0.5)
                conn.connect(str(self.socket_path))
                conn.sendall(b"PING\r\n")
                return bool(conn.recv(64))
        except OSError:
            return False


@pytest.fixture
def make_redis(tmp_path: Path) -> Iterator[Callable[..., ConfiguredRedis]]:
    """Start redis-servers configured as asked; all are stopped at the end."""
    try:
        binary = find_redis_server()
    except Unreachable:
        missing_server("a redis-server binary")
    started: list[ConfiguredRedis] = []

    def make(name: str, *args: str) -> ConfiguredRedis:
        server = ConfiguredRedis(binary=binary, directory=tmp_path / name, args=args)
        server.start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


def test_stopped_broker_fails_and_worker_and_beat_are_skipped(
    doctor: Doctor, redis_server: RedisServer
) -> None:
    """Redis stopped: the broker fails (exit 5); its settings, worker and beat are skipped."""
    redis_server.stop()
    code, checks = doctor.json("--check", "worker", "--check", "beat")
    assert statuses(checks) == {
        "broker": "fail",
        "broker persistence": "skip",
        "broker eviction": "skip",
        "worker": "skip",
        "beat": "skip",
    }
    assert checks["broker"]["detail"].startswith(f"cannot reach {redis_server.url}")
    assert checks["broker"]["fix"] == "start Redis, or correct COUNCIL_BROKER_URL"
    assert code == 5


@pytest.mark.parametrize(
    ("args", "persistence", "eviction", "expected"),
    [
        (
            ("--appendonly", "no", "--save", "", "--maxmemory-policy", "noeviction"),
            "warn",
            "ok",
            "no persistence",
        ),
        (
            ("--appendonly", "no", "--save", "3600", "1", "--maxmemory-policy", "noeviction"),
            "ok",
            "ok",
            "RDB snapshots only (save 3600 1)",
        ),
        (
            ("--appendonly", "yes", "--save", "", "--maxmemory-policy", "allkeys-lru"),
            "ok",
            "fail",
            "maxmemory-policy allkeys-lru: a full Redis drops queued messages",
        ),
    ],
    ids=["no-persistence", "rdb-only", "evicting"],
)
def test_broker_persistence_and_eviction_policy(
    doctor: Doctor,
    make_redis: Callable[..., ConfiguredRedis],
    args: tuple[str, ...],
    persistence: str,
    eviction: str,
    expected: str,
) -> None:
    """No persistence warns (exit 0, 6 with --strict); RDB snapshots are enough; eviction fails."""
    server = make_redis("redis-configured", *args)
    code, checks = doctor.json("--check", "broker", COUNCIL_BROKER_URL=server.url)
    assert checks["broker"]["status"] == "ok"
    assert checks["broker persistence"]["status"] == persistence
    assert checks["broker eviction"]["status"] == eviction
    details = checks["broker persistence"]["detail"] + checks["broker eviction"]["detail"]
    assert expected in details
    if eviction == "fail":
        assert checks["broker eviction"]["fix"] == "run Redis with `--maxmemory-policy noeviction`"
        assert code == 6
    elif persistence == "warn":
        assert "--appendonly yes" in checks["broker persistence"]["fix"]
        assert code == 0
        assert doctor("--check", "broker", "--strict", COUNCIL_BROKER_URL=server.url).exit_code == 6
    else:
        assert code == 0


def test_broker_refusing_config_is_read_from_info_or_warns(
    doctor: Doctor, make_redis: Callable[..., ConfiguredRedis]
) -> None:
    """CONFIG disabled (as managed Redis services do): INFO still says AOF and the policy."""
    with_aof = make_redis(
        "redis-no-config-aof", "--rename-command", "CONFIG", "", "--appendonly", "yes"
    )
    code, checks = doctor.json("--check", "broker", COUNCIL_BROKER_URL=with_aof.url)
    assert statuses(checks) == {"broker": "ok", "broker persistence": "ok", "broker eviction": "ok"}
    assert "from INFO: the server refuses CONFIG" in checks["broker persistence"]["detail"]
    assert code == 0
    without_aof = make_redis(
        "redis-no-config", "--rename-command", "CONFIG", "", "--appendonly", "no"
    )
    code, checks = doctor.json("--check", "broker", COUNCIL_BROKER_URL=without_aof.url)
    assert checks["broker persistence"]["status"] == "warn"
    assert "RDB save schedule cannot be read" in checks["broker persistence"]["detail"]
    assert code == 0


def test_broker_refusing_the_password_fails_without_showing_it(
    doctor: Doctor, make_redis: Callable[..., ConfiguredRedis]
) -> None:
    """A Redis with a password, reached with a wrong one: fail, exit 5, the password masked."""
    server = make_redis("redis-password", "--requirepass", "the-right-one")
    url = f"redis+socket://:{REDIS_PASSWORD}@{server.socket_path}"
    code, checks = doctor.json("--check", "broker", COUNCIL_BROKER_URL=url)
    assert checks["broker"]["status"] == "fail"
    assert "login refused" in checks["broker"]["detail"]
    assert ":***@" in checks["broker"]["detail"]
    assert code == 5


def test_embedded_broker_not_running_then_running(doctor: Doctor, tmp_path: Path) -> None:
    """Without COUNCIL_BROKER_URL: fail until a worker starts the embedded Redis, then ok."""
    var = tmp_path / "embedded-var"
    code, checks = doctor.json(
        "--check", "broker", COUNCIL_BROKER_URL=None, COUNCIL_VAR_DIR=str(var)
    )
    assert checks["broker"]["status"] == "fail"
    assert "embedded Redis on" in checks["broker"]["detail"]
    assert "not running" in checks["broker"]["detail"]
    assert "council worker" in checks["broker"]["fix"]
    assert code == 5
    assert not (var / "redis" / "redis.sock").exists()  # the doctor started nothing
    try:
        binary = find_redis_server()
    except Unreachable:
        missing_server("a redis-server binary")
    embedded = EmbeddedRedis(var / "redis", binary)
    embedded.ensure_running()
    try:
        code, checks = doctor.json(
            "--check", "broker", COUNCIL_BROKER_URL=None, COUNCIL_VAR_DIR=str(var)
        )
        assert statuses(checks) == {
            "broker": "ok",
            "broker persistence": "ok",
            "broker eviction": "ok",
        }
        assert code == 0
    finally:
        embedded.stop()


def test_unreachable_rabbitmq_or_unknown_scheme_fails(doctor: Doctor) -> None:
    """A broker that is not Redis is reached through kombu; unreachable or unknown is exit 5."""
    url = f"amqp://council:{REDIS_PASSWORD}@127.0.0.1:{closed_port()}//"
    code, checks = doctor.json("--check", "broker", "--timeout", "2", COUNCIL_BROKER_URL=url)
    assert checks["broker"]["status"] == "fail"
    assert checks["broker"]["detail"].startswith("cannot reach amqp://council:***@127.0.0.1:")
    assert checks["broker persistence"]["status"] == "skip"
    assert code == 5
    code, checks = doctor.json("--check", "broker", COUNCIL_BROKER_URL="unix:///tmp/redis.sock")
    assert checks["broker"]["detail"].startswith("unix:///tmp/redis.sock: not a broker URL")
    assert code == 5


# --- SMTP -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path


@pytest.fixture
def certificate(tmp_path: Path) -> Certificate:
    """A self-signed certificate for 127.0.0.1, made with the openssl command."""
    if shutil.which("openssl") is None:
        missing_server("the openssl command (to make a test certificate)")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    return Certificate(cert, key)


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
    good = isinstance(data, LoginPassword) and data == LoginPassword(
        b"council", SMTP_PASSWORD.encode()
    )
    return AuthResult(success=good, handled=False)


class SecureCatcher(SmtpCatcher):
    """An aiosmtpd server with STARTTLS (or TLS from the first byte) and AUTH after TLS."""

    def __init__(self, certificate: Certificate, *, implicit: bool = False) -> None:
        super().__init__()
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(certificate.cert, certificate.key)
        self.implicit = implicit

    def start(self) -> None:
        tls: dict[str, Any] = (
            {"ssl_context": self.context}
            if self.implicit
            else {"tls_context": self.context, "require_starttls": True}
        )
        self._controller = Controller(
            self.handler,
            hostname="127.0.0.1",
            port=self.port,
            authenticator=_authenticate,
            # aiosmtpd does not count TLS from the first byte as TLS for AUTH
            auth_require_tls=not self.implicit,
            **tls,
        )
        self._controller.start()


@pytest.fixture
def secure_smtp(certificate: Certificate) -> Iterator[SecureCatcher]:
    catcher = SecureCatcher(certificate)
    catcher.start()
    yield catcher
    catcher.stop()


def test_plain_smtp_on_loopback_is_ok(doctor: Doctor, smtp: SmtpCatcher) -> None:
    """A relay on loopback without TLS or login: ok, and nothing is sent. The line says
    the server offers PIPELINING (delivery then sends MAIL, RCPT and DATA at once)."""
    code, checks = doctor.json("--check", "smtp")
    assert checks["smtp"] == {
        "check": "smtp",
        "status": "ok",
        "detail": f"127.0.0.1:{smtp.port} answers (no TLS, no login) with PIPELINING",
        "fix": "",
        "unreachable": False,
    }
    assert code == 0
    assert smtp.received == []


def test_a_server_without_pipelining_is_ok_and_said_so(doctor: Doctor, smtp: SmtpCatcher) -> None:
    """A server that does not offer PIPELINING is fine (delivery waits for each reply);
    the line just does not claim it."""
    smtp.handler.pipelining = False
    code, checks = doctor.json("--check", "smtp")
    assert checks["smtp"]["status"] == "ok"
    assert checks["smtp"]["detail"] == f"127.0.0.1:{smtp.port} answers (no TLS, no login)"
    assert code == 0


def test_starttls_and_login_with_a_trusted_certificate_is_ok(
    doctor: Doctor, secure_smtp: SecureCatcher, certificate: Certificate
) -> None:
    """STARTTLS with a certificate the client trusts, then AUTH: ok."""
    code, checks = doctor.json(
        "--check",
        "smtp",
        COUNCIL_SMTP_PORT=str(secure_smtp.port),
        COUNCIL_SMTP_SECURITY="starttls",
        COUNCIL_SMTP_USERNAME="council",
        COUNCIL_SMTP_PASSWORD=SMTP_PASSWORD,
        SSL_CERT_FILE=str(certificate.cert),
    )
    assert checks["smtp"]["status"] == "ok", checks
    assert checks["smtp"]["detail"] == (
        f"127.0.0.1:{secure_smtp.port} answers (STARTTLS, logged in as council) with PIPELINING"
    )
    assert code == 0


def test_wrong_smtp_password_fails_without_showing_it(
    doctor: Doctor, secure_smtp: SecureCatcher, certificate: Certificate
) -> None:
    """A refused login: fail, exit 5, the fix names the settings; the password is never shown."""
    wrong = f"{SMTP_PASSWORD}-wrong"
    result = doctor(
        "--check",
        "smtp",
        COUNCIL_SMTP_PORT=str(secure_smtp.port),
        COUNCIL_SMTP_SECURITY="starttls",
        COUNCIL_SMTP_USERNAME="council",
        COUNCIL_SMTP_PASSWORD=wrong,
        SSL_CERT_FILE=str(certificate.cert),
    )
    assert result.exit_code == 5
    assert "fail" in result.stdout
    assert "login as council refused (535)" in result.stdout
    assert "COUNCIL_SMTP_PASSWORD" in result.stdout
    assert wrong not in result.output
    assert "Traceback" not in result.output


def test_untrusted_certificate_fails(doctor: Doctor, secure_smtp: SecureCatcher) -> None:
    """STARTTLS to a self-signed certificate the client does not trust: fail, exit 5."""
    code, checks = doctor.json(
        "--check",
        "smtp",
        COUNCIL_SMTP_PORT=str(secure_smtp.port),
        COUNCIL_SMTP_SECURITY="starttls",
    )
    assert checks["smtp"]["status"] == "fail"
    assert "TLS certificate not trusted" in checks["smtp"]["detail"]
    assert "CA" in checks["smtp"]["fix"]
    assert code == 5


def test_tls_from_the_first_byte_is_ok(doctor: Doctor, certificate: Certificate) -> None:
    """smtp_security=tls (port 465 style) with a trusted certificate and a login: ok."""
    catcher = SecureCatcher(certificate, implicit=True)
    catcher.start()
    try:
        code, checks = doctor.json(
            "--check",
            "smtp",
            COUNCIL_SMTP_PORT=str(catcher.port),
            COUNCIL_SMTP_SECURITY="tls",
            COUNCIL_SMTP_USERNAME="council",
            COUNCIL_SMTP_PASSWORD=SMTP_PASSWORD,
            SSL_CERT_FILE=str(certificate.cert),
        )
    finally:
        catcher.stop()
    assert (
        checks["smtp"]["detail"]
        == f"127.0.0.1:{catcher.port} answers (TLS, logged in as council) with PIPELINING"
    )
    assert code == 0


def test_starttls_required_but_not_offered_fails(doctor: Doctor, smtp: SmtpCatcher) -> None:
    """smtp_security=starttls against a server without STARTTLS: fail with the fix, exit 5."""
    code, checks = doctor.json("--check", "smtp", COUNCIL_SMTP_SECURITY="starttls")
    assert checks["smtp"]["status"] == "fail"
    assert checks["smtp"]["detail"] == f"127.0.0.1:{smtp.port} does not offer STARTTLS"
    assert "COUNCIL_SMTP_SECURITY=tls" in checks["smtp"]["fix"]
    assert code == 5


def test_smtp_down_fails(doctor: Doctor) -> None:
    """Nothing listening on the SMTP port: fail, exit 5."""
    port = closed_port()
    code, checks = doctor.json("--check", "smtp", COUNCIL_SMTP_PORT=str(port))
    assert checks["smtp"]["status"] == "fail"
    assert checks["smtp"]["detail"] == f"cannot connect to 127.0.0.1:{port}: Connection refused"
    assert code == 5


def test_without_smtp_host_mail_goes_to_the_maildir(doctor: Doctor, tmp_path: Path) -> None:
    """No smtp_host: ok, and the line says the maildir e-mail is written to."""
    code, checks = doctor.json("--check", "smtp", COUNCIL_SMTP_HOST=None)
    assert checks["smtp"]["status"] == "ok"
    assert checks["smtp"]["detail"] == (
        f"no smtp_host: e-mail is written to the maildir {tmp_path / 'var' / 'mail'} (new/)"
    )
    assert code == 0
    assert not (tmp_path / "var" / "mail").exists()  # the doctor created nothing


# --- timeouts, definitions, secrets ---------------------------------------------------------


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections and never says a word."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


def test_servers_that_never_answer_cannot_hang_the_doctor(doctor: Doctor, silent_port: int) -> None:
    """Database, broker and SMTP all on a silent port: each fails within the timeout, exit 5."""
    started = time.monotonic()
    code, checks = doctor.json(
        "--timeout",
        "1",
        "--check",
        "database",
        "--check",
        "broker",
        "--check",
        "smtp",
        COUNCIL_DATABASE_URL=f"postgresql+psycopg://council@127.0.0.1:{silent_port}/council",
        COUNCIL_BROKER_URL=f"redis://127.0.0.1:{silent_port}/0",
        COUNCIL_SMTP_PORT=str(silent_port),
    )
    elapsed = time.monotonic() - started
    assert elapsed < 6, elapsed  # the checks run side by side, each bounded
    assert statuses(checks)["database"] == "fail"
    assert statuses(checks)["broker"] == "fail"
    assert statuses(checks)["smtp"] == "fail"
    assert code == 5


def test_invalid_definitions_fail_with_exit_6(doctor: Doctor, tmp_path: Path) -> None:
    """A broken definitions directory: fail naming the first problem, fix `council validate`."""
    broken = tmp_path / "definitions"
    shutil.copytree(DEFINITIONS, broken)
    assignment = broken / "assignments" / "hedersrelaterat-vald-2022.yaml"
    text = assignment.read_text(encoding="utf-8")
    assignment.write_text(
        text.replace("coordinator: sara.nilsson", "coordinator: nobody.here"), encoding="utf-8"
    )
    code, checks = doctor.json("--check", "definitions", COUNCIL_DEFINITIONS=str(broken))
    assert checks["definitions"]["status"] == "fail"
    assert checks["definitions"]["detail"].startswith(f"1 problem(s) in {broken}; first: ")
    assert "hedersrelaterat-vald-2022.yaml:15:14: " in checks["definitions"]["detail"]
    assert "council validate" in checks["definitions"]["fix"]
    assert code == 6


def test_no_secret_is_printed_even_with_debug(doctor: Doctor) -> None:
    """Passwords in every URL and the SMTP password: masked in the table, JSON and --debug."""
    secrets = {
        "COUNCIL_DATABASE_URL": (
            f"postgresql+psycopg://council:{DB_PASSWORD}@127.0.0.1:{closed_port()}/council"
        ),
        "COUNCIL_BROKER_URL": f"redis://:{REDIS_PASSWORD}@127.0.0.1:{closed_port()}/0",
        "COUNCIL_SMTP_USERNAME": "council",
        "COUNCIL_SMTP_PASSWORD": SMTP_PASSWORD,
        "COUNCIL_SMTP_PORT": str(closed_port()),
    }
    for args in ([], ["--json"]):
        result = doctor(*args, **secrets)  # Doctor asserts no secret in the output
        assert result.exit_code == 5
    debug = CliRunner().invoke(
        main,
        ["--debug", "doctor"],
        env={**{k: None for k in os.environ if k.startswith("COUNCIL_")}, **doctor.env, **secrets},
    )
    assert debug.exit_code == 5
    assert "***" in debug.output
    for secret in SECRETS:
        assert secret not in debug.output
