"""Checking an installation: each check returns result lines, and nothing here changes anything.

``council doctor`` runs :func:`run` and prints one line per :class:`Result`. A
check reads, connects and logs in, never writes: it creates no database file,
starts no embedded broker and sends no e-mail. Each check runs in a thread of
its own with a deadline, so a server that accepts a connection and then says
nothing cannot hang the doctor; every socket also gets the same timeout.

Exit codes (:func:`exit_code`): 0 when nothing failed (warnings are printed but
pass, unless ``strict``), :data:`~workflow.errors.EXIT_UNREACHABLE` (5) when a
server cannot be used (the database, broker or SMTP server unreachable, a login
or TLS refused, the database not at this release's schema), and
:data:`~workflow.errors.EXIT_UNHEALTHY` (6) when any other check failed.
"""

from __future__ import annotations

import math
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workflow.errors import EXIT_OK, EXIT_UNHEALTHY, EXIT_UNREACHABLE
from workflow.settings_view import Redactor, mask_url

if TYPE_CHECKING:
    import redis

    from workflow.settings import Settings

#: Seconds each check may take by default.
DEFAULT_TIMEOUT = 5.0
#: The checks, in the order they run and print.
GROUPS = ("definitions", "database", "broker", "smtp", "worker", "beat")
#: Beat is stale when its heartbeat is older than this many of its shortest intervals.
STALE_INTERVALS = 3

_RUN_BEAT = "run exactly one `council beat` (or `council worker --with-beat` on one machine)"
_UPGRADE = "run `council db upgrade`"


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"


@dataclass(frozen=True)
class Result:
    """One line of the doctor's table."""

    check: str
    status: Status
    detail: str
    fix: str = ""
    #: A failure that makes a server unusable: the doctor exits 5.
    unreachable: bool = False

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status.value
        return data


def ok(check: str, detail: str) -> Result:
    return Result(check, Status.OK, detail)


def warn(check: str, detail: str, fix: str) -> Result:
    return Result(check, Status.WARN, detail, fix)


def fail(check: str, detail: str, fix: str, *, unreachable: bool = False) -> Result:
    return Result(check, Status.FAIL, detail, fix, unreachable)


def skip(check: str, detail: str) -> Result:
    return Result(check, Status.SKIP, detail)


def exit_code(results: Sequence[Result], *, strict: bool = False) -> int:
    """0 unless something failed: 5 for an unusable server, else 6 (warnings too when strict)."""
    if any(r.status is Status.FAIL and r.unreachable for r in results):
        return EXIT_UNREACHABLE
    bad = {Status.FAIL, Status.WARN} if strict else {Status.FAIL}
    return EXIT_UNHEALTHY if any(r.status in bad for r in results) else EXIT_OK


def run(
    settings: Settings, *, only: Collection[str] = (), timeout: float = DEFAULT_TIMEOUT
) -> list[Result]:
    """Run the checks named in ``only`` (default: all); worker and beat imply broker.

    Definitions, database, broker and SMTP run at once; worker and beat, which
    need the broker, run after it. No check takes much longer than ``timeout``.
    """
    groups = set(only or GROUPS)
    if groups & {"worker", "beat"}:
        groups.add("broker")
    _preload(groups)
    first: dict[str, Callable[[], list[Result]]] = {
        "definitions": lambda: check_definitions(settings),
        "database": lambda: check_database(settings, timeout),
        "broker": lambda: check_broker(settings, timeout),
        "smtp": lambda: check_smtp(settings, timeout),
    }
    done = _bounded({name: fn for name, fn in first.items() if name in groups}, timeout)
    broker_url = _usable_broker(settings, done.get("broker", []))
    then: dict[str, Callable[[], list[Result]]] = {}
    for name, fn in (("worker", check_worker), ("beat", check_beat)):
        if name not in groups:
            continue
        if broker_url is None:
            done[name] = [skip(name, "the broker is unreachable")]
        else:
            then[name] = _later(fn, broker_url, settings, timeout)
    done.update(_bounded(then, timeout))
    redact = Redactor.for_settings(settings)
    return [
        replace(r, detail=redact(r.detail), fix=redact(r.fix))
        for name in GROUPS
        for r in done.get(name, [])
    ]


def _later(
    fn: Callable[[str, Settings, float], list[Result]], url: str, settings: Settings, timeout: float
) -> Callable[[], list[Result]]:
    return lambda: fn(url, settings, timeout)


def _preload(groups: Collection[str]) -> None:
    """Import what the checks need before their clocks start (imports can take a second)."""
    if "database" in groups:
        import sqlalchemy  # noqa: F401

        from workflow import schema  # noqa: F401
    if "broker" in groups:
        import kombu  # noqa: F401
        import redis  # noqa: F401
    if "worker" in groups:
        import celery  # noqa: F401
    if "definitions" in groups:
        from workflow import loader  # noqa: F401


def _bounded(
    checks: dict[str, Callable[[], list[Result]]], timeout: float
) -> dict[str, list[Result]]:
    """Run each check in a daemon thread; one not done by the deadline fails as timed out."""
    results: dict[str, list[Result]] = {}

    def target(name: str, fn: Callable[[], list[Result]]) -> None:
        try:
            results[name] = fn()
        except Exception as exc:  # a check must never take the doctor down
            line = (str(exc).strip().splitlines() or [""])[0]
            results[name] = [
                fail(name, f"unexpected {type(exc).__name__}: {line}", "report this as a bug")
            ]

    threads = {
        name: threading.Thread(target=target, args=(name, fn), daemon=True, name=f"doctor-{name}")
        for name, fn in checks.items()
    }
    for thread in threads.values():
        thread.start()
    deadline = time.monotonic() + timeout + 1.0
    for name, thread in threads.items():
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive() or name not in results:
            results[name] = [
                fail(
                    name,
                    f"no answer within {timeout:g} s",
                    "check that the server runs and that nothing between blocks it",
                    unreachable=name in ("database", "broker", "smtp"),
                )
            ]
    return {name: results[name] for name in checks}


# --- definitions ---------------------------------------------------------------------


def check_definitions(settings: Settings) -> list[Result]:
    from workflow.loader import check

    definitions, problems = check([settings.definitions])
    if definitions is None:
        first = str(problems[0]) if problems else "no definitions"
        return [
            fail(
                "definitions",
                f"{len(problems)} problem(s) in {settings.definitions}; first: {first}",
                "run `council validate` and correct the files it names",
            )
        ]
    points = sum(len(a.points) for a in definitions.assignments.values())
    return [
        ok(
            "definitions",
            f"{settings.definitions}: {len(definitions.directory.people)} people, "
            f"{len(definitions.workflows)} workflows, {len(definitions.assignments)} "
            f"assignments, {points} points",
        )
    ]


# --- database ------------------------------------------------------------------------


def check_database(settings: Settings, timeout: float) -> list[Result]:
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    from workflow import schema

    url = settings.effective_database_url
    shown = mask_url(url)
    parsed = sa.engine.make_url(url)
    connect_args: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database or ""
        if path not in ("", ":memory:") and not Path(path).exists():
            return [
                fail(
                    "database",
                    f"{shown}: no database file yet (not initialised)",
                    _UPGRADE,
                    unreachable=True,
                )
            ]
        connect_args["timeout"] = timeout
    elif parsed.get_backend_name() == "postgresql":
        connect_args["connect_timeout"] = max(2, math.ceil(timeout))
    engine = sa.create_engine(url, poolclass=NullPool, connect_args=connect_args)
    try:
        current = schema.current(engine)
    except sa.exc.SQLAlchemyError as exc:
        return [
            fail(
                "database",
                f"cannot reach {shown}: {_first_line(exc)}",
                "check COUNCIL_DATABASE_URL, that the server runs and accepts this user",
                unreachable=True,
            )
        ]
    finally:
        engine.dispose()
    head = schema.head()
    if current == head:
        return [ok("database", f"{shown}: schema at {head} (current)")]
    if current is None:
        detail, fix = f"{shown}: not initialised (no council schema)", _UPGRADE
    elif _known_revision(current):
        detail = f"{shown}: schema at {current}, this release needs {head}"
        fix = _UPGRADE
    else:
        detail = (
            f"{shown}: schema at {current}, which this release does not know "
            "(a newer council migrated it)"
        )
        fix = "run the council release that migrated it, or restore a backup"
    return [fail("database", detail, fix, unreachable=True)]


def _known_revision(revision: str) -> bool:
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    from workflow.schema import MIGRATIONS

    try:
        return ScriptDirectory(str(MIGRATIONS)).get_revision(revision) is not None
    except CommandError:
        return False


def _first_line(exc: BaseException) -> str:
    """The first meaningful line of a driver's error, without SQLAlchemy's background link."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    return (text.splitlines() or [type(exc).__name__])[0]


# --- broker --------------------------------------------------------------------------


def broker_address(settings: Settings) -> tuple[str, str, bool]:
    """(URL, how to show it, embedded?) of the broker workers use."""
    if settings.broker_url:
        return settings.broker_url, mask_url(settings.broker_url), False
    from workflow.embedded import EmbeddedRedis

    embedded = EmbeddedRedis(settings.var_dir / "redis", settings.redis_server)
    return embedded.url, f"embedded Redis on {embedded.socket_path}", True


def _usable_broker(settings: Settings, results: list[Result]) -> str | None:
    if results and results[0].check == "broker" and results[0].status is Status.OK:
        return broker_address(settings)[0]
    return None


def check_broker(settings: Settings, timeout: float) -> list[Result]:
    from workflow import heartbeat

    url, shown, embedded = broker_address(settings)
    if embedded:
        from workflow.embedded import ping

        if not ping(Path(url.removeprefix("redis+socket://")), timeout=min(timeout, 2.0)):
            return [
                fail(
                    "broker",
                    f"{shown}: not running",
                    "start a worker (`council worker`): the first one starts the embedded "
                    "broker; or set COUNCIL_BROKER_URL",
                    unreachable=True,
                ),
                *_broker_skipped("the broker is not running"),
            ]
    client = heartbeat.connect(url, timeout)
    if client is None:
        return _other_broker(url, shown, timeout)
    with client:
        return _redis_broker(client, shown)


def _broker_skipped(why: str) -> list[Result]:
    return [skip("broker persistence", why), skip("broker eviction", why)]


def _redis_broker(client: redis.Redis, shown: str) -> list[Result]:
    import redis

    try:
        version = client.info("server").get("redis_version", "?")
    except redis.AuthenticationError as exc:
        return [
            fail(
                "broker",
                f"{shown}: login refused ({exc})",
                "check the user and password in COUNCIL_BROKER_URL",
                unreachable=True,
            ),
            *_broker_skipped("cannot log in to the broker"),
        ]
    except redis.RedisError as exc:
        return [
            fail(
                "broker",
                f"cannot reach {shown}: {exc}",
                "start Redis, or correct COUNCIL_BROKER_URL",
                unreachable=True,
            ),
            *_broker_skipped("the broker is unreachable"),
        ]
    config = _redis_config(client)
    return [
        ok("broker", f"{shown}: Redis {version} answers"),
        _persistence(config),
        _eviction(config),
    ]


def _redis_config(client: redis.Redis) -> dict[str, str]:
    """appendonly, save and maxmemory-policy from CONFIG GET, else from INFO; '' when unknown.

    Managed Redis services often refuse CONFIG (renamed or ACL); INFO still
    tells whether the append-only file is on and the eviction policy, but not
    the RDB save schedule. The key ``via`` says where the values came from.
    """
    import redis

    try:
        config: dict[str, str] = {}
        for name in ("appendonly", "appendfsync", "save", "maxmemory-policy"):
            config.update({str(k): str(v) for k, v in client.config_get(name).items()})
        config["via"] = "CONFIG"
        return config
    except redis.ResponseError:
        pass
    try:
        persistence = client.info("persistence")
        memory = client.info("memory")
    except redis.ResponseError:
        return {"via": "none"}
    return {
        "via": "INFO",
        "appendonly": "yes" if str(persistence.get("aof_enabled")) == "1" else "no",
        "maxmemory-policy": str(memory.get("maxmemory_policy", "")),
    }


def _persistence(config: dict[str, str]) -> Result:
    name = "broker persistence"
    fix = "run Redis with `--appendonly yes` (or CONFIG SET appendonly yes, then CONFIG REWRITE)"
    if config["via"] == "none":
        return warn(name, "cannot tell: the server refuses CONFIG and INFO", fix)
    via = "" if config["via"] == "CONFIG" else " (from INFO: the server refuses CONFIG)"
    if config.get("appendonly") == "yes":
        fsync = config.get("appendfsync")
        return ok(name, f"append-only file on{f', appendfsync {fsync}' if fsync else ''}{via}")
    if "save" not in config:
        return warn(
            name,
            f"append-only file off, and the RDB save schedule cannot be read{via}",
            fix,
        )
    if config["save"].strip():
        return ok(
            name,
            f"RDB snapshots only (save {config['save']}): a crash loses the messages queued "
            "since the last snapshot; `appendonly yes` loses at most a second",
        )
    return warn(
        name,
        "no persistence (appendonly no, no RDB snapshots): a restart loses every queued "
        "message until the reconciler redoes it from the database",
        fix,
    )


def _eviction(config: dict[str, str]) -> Result:
    name = "broker eviction"
    policy = config.get("maxmemory-policy", "")
    via = "" if config["via"] == "CONFIG" else " (from INFO: the server refuses CONFIG)"
    fix = "run Redis with `--maxmemory-policy noeviction`"
    if not policy:
        return warn(name, "cannot tell: the server refuses CONFIG and INFO", fix)
    if policy == "noeviction":
        return ok(name, f"maxmemory-policy noeviction{via}")
    return fail(name, f"maxmemory-policy {policy}: a full Redis drops queued messages{via}", fix)


def _other_broker(url: str, shown: str, timeout: float) -> list[Result]:
    """A broker that is not Redis (RabbitMQ): connect through kombu; Redis checks do not apply."""
    from kombu import Connection

    try:
        connection = Connection(url, connect_timeout=timeout)
    except Exception as exc:  # an unknown transport (a scheme kombu does not know)
        return [
            fail(
                "broker",
                f"{shown}: not a broker URL Celery can use ({_first_line(exc)})",
                "correct COUNCIL_BROKER_URL (redis://host:6379/0, amqp://user@host//)",
                unreachable=True,
            ),
            *_broker_skipped("no usable broker URL"),
        ]
    try:
        connection.ensure_connection(max_retries=0, timeout=math.ceil(timeout))  # one attempt
    except Exception as exc:  # kombu raises the transport's own errors
        return [
            fail(
                "broker",
                f"cannot reach {shown}: {_first_line(exc)}",
                "start the broker, or correct COUNCIL_BROKER_URL",
                unreachable=True,
            ),
            *_broker_skipped("the broker is unreachable"),
        ]
    finally:
        connection.release()
    return [
        ok("broker", f"{shown} answers"),
        *_broker_skipped("not a Redis broker: check its persistence yourself"),
    ]


# --- SMTP ----------------------------------------------------------------------------


def check_smtp(settings: Settings, timeout: float) -> list[Result]:
    from workflow.settings import SmtpSecurity

    if not settings.smtp_host:
        return [_maildir(settings.effective_maildir)]
    host, port = settings.smtp_host, settings.smtp_port
    where = f"{host}:{port}"
    wait = min(timeout, settings.smtp_timeout)
    context = ssl.create_default_context()  # the same verification as delivery
    try:
        if settings.smtp_security is SmtpSecurity.TLS:
            client: smtplib.SMTP = smtplib.SMTP_SSL(host, port, timeout=wait, context=context)
        else:
            client = smtplib.SMTP(host, port, timeout=wait)
    except ssl.SSLError as exc:
        return [_tls_failed(where, exc)]
    except (OSError, smtplib.SMTPException) as exc:
        return [
            fail(
                "smtp",
                f"cannot connect to {where}: {_smtp_reason(exc)}",
                "check COUNCIL_SMTP_HOST and COUNCIL_SMTP_PORT, and that the server runs",
                unreachable=True,
            )
        ]
    try:
        return [_smtp_session(client, settings, where, context)]
    except ssl.SSLError as exc:
        return [_tls_failed(where, exc)]
    except (OSError, smtplib.SMTPException) as exc:
        return [
            fail(
                "smtp",
                f"{where}: {_smtp_reason(exc)}",
                "check the SMTP server and COUNCIL_SMTP_* settings",
                unreachable=True,
            )
        ]
    finally:
        try:
            client.quit()
        except (OSError, smtplib.SMTPException):
            client.close()


def _smtp_session(
    client: smtplib.SMTP, settings: Settings, where: str, context: ssl.SSLContext
) -> Result:
    from workflow.settings import SmtpSecurity

    security = settings.smtp_security
    done = ["TLS"] if security is SmtpSecurity.TLS else []
    client.ehlo()
    if security is SmtpSecurity.STARTTLS:
        if not client.has_extn("starttls"):
            return fail(
                "smtp",
                f"{where} does not offer STARTTLS",
                "set COUNCIL_SMTP_SECURITY=tls if it speaks TLS from the start (port 465), "
                "or point COUNCIL_SMTP_HOST/PORT at the submission port (587)",
                unreachable=True,
            )
        client.starttls(context=context)
        client.ehlo()
        done.append("STARTTLS")
    if settings.smtp_username:
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
        try:
            client.login(settings.smtp_username, password)
        except smtplib.SMTPAuthenticationError as exc:
            return fail(
                "smtp",
                f"{where}: login as {settings.smtp_username} refused ({exc.smtp_code})",
                "check COUNCIL_SMTP_USERNAME and COUNCIL_SMTP_PASSWORD",
                unreachable=True,
            )
        except smtplib.SMTPNotSupportedError:
            return fail(
                "smtp",
                f"{where} offers no login (AUTH)" + ("" if done else " without TLS"),
                "use COUNCIL_SMTP_SECURITY=starttls or tls, or unset COUNCIL_SMTP_USERNAME",
                unreachable=True,
            )
        done.append(f"logged in as {settings.smtp_username}")
    client.noop()
    detail = f"{where} answers ({', '.join(done) or 'no TLS, no login'})"
    if security is SmtpSecurity.NONE and not _is_loopback(settings.smtp_host or ""):
        return warn(
            "smtp",
            f"{detail}, but without TLS to a remote server mail crosses the network in clear",
            "set COUNCIL_SMTP_SECURITY=starttls (port 587) or tls (port 465)",
        )
    return ok("smtp", detail)


def _tls_failed(where: str, exc: ssl.SSLError) -> Result:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return fail(
            "smtp",
            f"{where}: TLS certificate not trusted ({exc.verify_message})",
            "install the CA that signed the server's certificate, and use the host name "
            "the certificate names as COUNCIL_SMTP_HOST",
            unreachable=True,
        )
    return fail(
        "smtp",
        f"{where}: TLS failed ({exc.reason or type(exc).__name__})",
        "check COUNCIL_SMTP_SECURITY and COUNCIL_SMTP_PORT (tls: 465, starttls: 587)",
        unreachable=True,
    )


def _smtp_reason(exc: BaseException) -> str:
    code = getattr(exc, "smtp_code", None)
    if isinstance(code, int):
        return f"reply {code}"
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timed out"
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return "the server closed the connection"
    return getattr(exc, "strerror", None) or type(exc).__name__


def _is_loopback(host: str) -> bool:
    return host == "localhost" or host.startswith("127.") or host == "::1"


def _maildir(path: Path) -> Result:
    """No SMTP server: delivery writes into a maildir, which must be writable."""
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing.is_dir() and _writable(existing):
        return ok("smtp", f"no smtp_host: e-mail is written to the maildir {path} (new/)")
    return fail(
        "smtp",
        f"no smtp_host, and the maildir {path} cannot be written",
        "make it writable, set COUNCIL_MAILDIR, or set COUNCIL_SMTP_HOST",
    )


def _writable(directory: Path) -> bool:
    import os

    return os.access(directory, os.W_OK | os.X_OK)


# --- worker and beat -----------------------------------------------------------------


def check_worker(broker_url: str, settings: Settings, timeout: float) -> list[Result]:
    """Ask every worker on the broker to answer a ping (Celery remote control)."""
    from celery import Celery

    app = Celery("council-doctor", broker=broker_url, set_as_current=False)
    app.conf.update(
        broker_connection_timeout=timeout,
        broker_connection_retry=False,
        broker_connection_max_retries=1,
        accept_content=["json"],
        task_serializer="json",
    )
    wait = min(timeout, 2.0)
    try:
        replies = app.control.ping(timeout=wait) or []
    finally:
        app.close()
    # Celery's beat may answer pings too (beat_enable_remote_control): it is no worker.
    names = sorted(
        name for reply in replies for name in reply if not name.startswith("celerybeat@")
    )
    if not names:
        return [
            fail(
                "worker",
                f"no worker answered within {wait:g} s: nothing delivers e-mail",
                "start one: `council worker` (`council worker --with-beat` on one machine)",
            )
        ]
    return [ok("worker", f"{len(names)} answered: {', '.join(names)}")]


def check_beat(broker_url: str, settings: Settings, timeout: float) -> list[Result]:
    """Read beat's heartbeat from the broker: fresh when younger than 3 of its intervals."""
    from workflow import heartbeat

    client = heartbeat.connect(broker_url, timeout)
    if client is None:
        return [skip("beat", "beat's heartbeat needs a Redis broker")]
    with client:
        beat = heartbeat.read(client)
    if beat is None:
        return [
            warn(
                "beat",
                "no heartbeat: no beat has run on this broker in the last 7 days",
                _RUN_BEAT,
            )
        ]
    interval = beat.interval or min(
        settings.relay_interval, settings.reconcile_interval, settings.sweep_interval
    )
    limit = STALE_INTERVALS * interval
    who = f"{beat.host}" + (f" (pid {beat.pid})" if beat.pid is not None else "")
    if beat.age > limit:
        return [
            warn(
                "beat",
                f"stale: last heartbeat {_age(beat.age)} ago from {who}; beat fires every "
                f"{interval:g} s",
                f"beat is stopped or stuck: read its log; {_RUN_BEAT}",
            )
        ]
    return [ok("beat", f"{who} fired {_age(beat.age)} ago (every {interval:g} s)")]


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"
