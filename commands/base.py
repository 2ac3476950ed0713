"""What every command shares: the per-invocation App, error handling, common options."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypedDict, TypeVar

import click

from workflow.errors import EXIT_UNREACHABLE, CouncilError

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from workflow.core.plan import Definitions
    from workflow.engine import Engine
    from workflow.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])

#: How far a changing command's --now may be ahead of the clock (clocks drift).
FUTURE_SLACK = dt.timedelta(minutes=5)

EPILOG = """\b
Exit codes:
  0  ok
  1  invalid input or definition
  2  usage (a wrong option or argument)
  3  not found
  4  transition not allowed, or a conflict with another command
  5  a server unreachable (database, broker, SMTP)
  6  council doctor: a check failed (see its table)
"""


class Who(TypedDict):
    """Who an action is for, and who entered it on their behalf (``--on-behalf-of``)."""

    actor: str
    recorded_by: str | None


class App:
    """Per-invocation state, built lazily so cheap commands stay cheap."""

    def __init__(self, debug: bool) -> None:
        self.debug = debug
        self._databases: list[Any] = []
        #: ``--on-behalf-of``: the person a command is entered for, when not the typist.
        self.on_behalf_of: str | None = None

    @cached_property
    def settings(self) -> Settings:
        from pydantic import ValidationError

        from workflow.errors import InvalidInput
        from workflow.settings import Settings

        try:
            settings = Settings()
        except ValidationError as exc:  # one line naming the settings, never their values
            from workflow.ops.config_view import validation_message

            raise InvalidInput(validation_message(exc)) from None
        except ValueError as exc:  # council.toml is not TOML
            raise InvalidInput(f"council.toml: {exc}") from None
        from workflow.definitions import cache

        # The Swedish days off earlier commands computed: no need to load `holidays`.
        cache.load_days_off(settings.var_dir)
        return settings

    @cached_property
    def tz(self) -> ZoneInfo:
        from zoneinfo import ZoneInfo

        return ZoneInfo(self.settings.timezone)

    @cached_property
    def definitions(self) -> Definitions:
        from workflow.definitions import cache

        return cache.load([self.settings.definitions], self.settings.var_dir)

    def database(self, *, create: bool = False) -> Any:
        """The database; only ``create`` (``council db upgrade``) may create a SQLite file."""
        from workflow.ops.logs import configure_when_needed
        from workflow.store import connect

        # A command that reaches a server may meet a library's warning (kombu, SQLAlchemy)
        # or log one itself: one line on stderr, never on stdout. structlog is imported
        # only when such a line comes (a command that logs nothing does not pay for it).
        configure_when_needed(level="WARNING")
        url = self.settings.effective_database_url
        if create and url.startswith("sqlite") and self.settings.database_url is None:
            self.settings.var_dir.mkdir(parents=True, exist_ok=True)
        engine = connect(url, create=create)
        self._databases.append(engine)
        from commands.console import say_when_waiting

        say_when_waiting(engine)
        return engine

    def close(self) -> None:
        """Close the connection pools this invocation opened; keep the days off computed."""
        for engine in self._databases:
            engine.dispose()
        self._databases.clear()
        if "settings" in self.__dict__:
            from workflow.definitions import cache

            cache.save_days_off(self.settings.var_dir)

    @cached_property
    def engine(self) -> Engine:
        from workflow.engine import Engine

        engine = Engine(
            db=self.database(),
            definitions=self.definitions,
            calendar=self.settings.calendar(),
            timezone=self.tz,
            on_commit=self.publish,
            admin_role=self.settings.admin_role,
        )
        engine.check_ready()
        return engine

    def embedded_broker(self) -> Any:
        from workflow.ops.embedded import EmbeddedRedis

        return EmbeddedRedis(self.settings.var_dir / "redis", self.settings.redis_server)

    def broker_available(self) -> bool:
        """A configured broker, or the embedded one already running (a worker started it)."""
        return bool(self.settings.broker_url) or self.embedded_broker().ping()

    def publish(self, event_ids: Any) -> None:
        """Hand committed events to the workers now; the relay publishes what this cannot."""
        if not self.broker_available():
            return  # no worker has started the embedded broker: the relay will publish
        import worker  # noqa: F401 - configures the Celery app the tasks use
        from tasks.publish import publish_committed

        result = publish_committed(self.engine.db, event_ids, batch=self.settings.dispatch_batch)
        if result.failed:
            click.echo(
                f"warning: {result.failed} event(s) wait in the outbox for the relay "
                f"({result.error})",
                err=True,
            )

    def prepare_publishing(self) -> None:
        """Configure the Celery app now, in this thread, for a process that will publish
        from another (the SMTP listener): lazy configuration is not safe across threads."""
        if self.broker_available():
            import worker

            worker.app.loader.import_default_modules()
            _ = worker.app.conf.broker_url  # configuring reads the settings once, here

    def deliver_soon(self, effect_ids: list[int]) -> None:
        """Hand recorded e-mails to a worker now if one can be reached; else the reconciler will."""
        if effect_ids and self.broker_available():
            import worker  # council's app by name: the SMTP listener's thread has its own

            worker.app.send_task("council.deliver", args=(effect_ids,))

    def now(self, given: dt.datetime | None, *, acting: bool = False) -> dt.datetime:
        """``--now``, or the clock. A command that changes something (``acting``) may happen
        now or in the past, never in the future: a change dated ahead would stand before
        every later command (and would let a substitute act before their absence)."""
        real = dt.datetime.now(self.tz)
        if given is None:
            return real
        when = given if given.tzinfo else given.replace(tzinfo=self.tz)
        if acting and when > real + FUTURE_SLACK:
            raise click.UsageError(
                f"--now {given.isoformat()} is in the future: a change happens now or in the "
                "past (reading commands, `simulate` and `check-deadlines --dry-run` may look ahead)"
            )
        return when

    def actor(self, given: str | None) -> str:
        name = given or self.settings.actor
        if not name:
            raise click.UsageError("say who acts: --as PERSON or COUNCIL_ACTOR=PERSON")
        try:
            return self.definitions.directory.resolve(name)
        except KeyError:
            from workflow.errors import NotFound

            raise NotFound(
                "person", name, "--as takes a person id or a role from people.yaml"
            ) from None

    def who(self, given: str | None) -> Who:
        """``actor`` (for whom) and ``recorded_by`` (who typed it, with --on-behalf-of)."""
        typist = self.actor(given)
        if self.on_behalf_of is None:
            return Who(actor=typist, recorded_by=None)
        try:
            person = self.definitions.directory.resolve(self.on_behalf_of)
        except KeyError:
            from workflow.errors import NotFound

            raise NotFound(
                "person", self.on_behalf_of, "--on-behalf-of takes a person id or a role"
            ) from None
        return Who(actor=person, recorded_by=typist)


class CouncilGroup(click.Group):
    """Turns council's errors into one line on stderr and a stable exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            where = (
                f"council {exc.ctx.command_path.partition(' ')[2]}".strip()
                if exc.ctx
                else "council"
            )
            _fail(ctx, exc, f"{exc.format_message()} (see `{where} --help`)", exc.exit_code)
        except CouncilError as exc:
            _fail(ctx, exc, str(exc), exc.exit_code)
        except Exception as exc:
            if type(exc).__module__.startswith("sqlalchemy") and _is_connection_error(exc):
                message, code = database_fault(exc)
                _fail(ctx, exc, message, code)
            raise


#: What SQLite and PostgreSQL say when a lock was not granted in time.
_BUSY = ("database is locked", "database table is locked", "lock timeout",
         "could not obtain lock", "canceling statement due to lock timeout")  # fmt: skip
#: What SQLite says when the file's storage failed under it.
_STORAGE = ("disk i/o error", "database or disk is full", "database disk image is malformed")


def database_fault(exc: Exception) -> tuple[str, int]:
    """The one line and exit code for a database that could not be used."""
    from workflow.errors import EXIT_BUSY

    first = (str(getattr(exc, "orig", None) or exc).strip().splitlines() or [""])[0]
    said = first.lower()
    if any(words in said for words in _BUSY):
        return (
            "the database is busy: another council process kept it locked; nothing was "
            "written, try again",
            EXIT_BUSY,
        )
    if any(words in said for words in _STORAGE):
        return (
            f"the database's storage failed ({first}); nothing was written: check the disk "
            "and its free space, then `council doctor`",
            EXIT_UNREACHABLE,
        )
    return f"cannot reach the database: {first}", EXIT_UNREACHABLE


def _is_connection_error(exc: Exception) -> bool:
    """The database cannot be used: unreachable, or a file that is no database."""
    import sqlalchemy.exc

    unusable = sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError
    return isinstance(exc, unusable) or type(exc) is sqlalchemy.exc.DatabaseError


def _fail(ctx: click.Context, exc: Exception, message: str, code: int) -> NoReturn:
    app = ctx.find_object(App)
    if app is not None and app.debug:  # the traceback, and still the documented exit code
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    lines = message.splitlines() or [type(exc).__name__]
    click.echo(f"error: {lines[0]}", err=True)
    for line in lines[1:]:  # definition errors: one line per problem
        click.echo(line, err=True)
    ctx.exit(code)


def _parse_now(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    """An ISO date or date-time; without a zone it is read in the configured zone."""
    if value is None:
        return None
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO date or time (2023-06-01 or 2023-06-01T09:00)"
        ) from None


def parse_date_required(ctx: click.Context, param: click.Parameter, value: str) -> Any:
    return parse_date(ctx, param, value)


def parse_date(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None


def now_option(help_text: str) -> Callable[[F], F]:
    return click.option("--now", metavar="ISO", callback=_parse_now, help=help_text)


def write_output(path: Path, data: bytes) -> None:
    """Write a file whole or not at all: into a temporary file beside it, then renamed.

    A link is followed (the file it names is replaced, the link kept), and a replaced file
    keeps its permissions. What is no regular file (``/dev/stdout``, ``/dev/fd/N``, a
    pipe) is written directly. Any failure (a missing folder, a full disk) is one line,
    exit 1, and leaves an existing file as it was.
    """
    import os
    import stat
    import tempfile

    from workflow.errors import InvalidInput

    try:
        real = path.resolve()
        if _is_stream(path, real):
            with path.open("wb") as stream:
                stream.write(data)
            return
        mode = stat.S_IMODE(real.stat().st_mode) if real.exists() else None
        fd, temporary = tempfile.mkstemp(dir=real.parent, prefix=f".{real.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as stream:
                stream.write(data)
                stream.flush()
                os.fsync(stream.fileno())
            if mode is not None:
                os.chmod(temporary, mode)
            os.replace(temporary, real)
        except BaseException:
            os.unlink(temporary)
            raise
    except OSError as exc:
        raise InvalidInput(f"cannot write {path}: {exc.strerror or exc}") from None


def _is_stream(path: Path, real: Path) -> bool:
    """A device, a pipe or a descriptor: written in place (a rename would lose it)."""
    if str(path).startswith(("/dev/", "/proc/")) or str(real).startswith(("/dev/", "/proc/")):
        return True
    return real.exists() and not real.is_file()


def _on_behalf_of(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.ensure_object(App).on_behalf_of = value


def acting(fn: F) -> F:
    """Add ``--as``, ``--on-behalf-of`` and ``--now`` to a command that records events."""
    fn = now_option("Act as if it were this time (ISO).")(fn)
    fn = click.option(
        "--on-behalf-of", metavar="PERSON", expose_value=False, callback=_on_behalf_of,
        help="Record it for this person (the coordinator or an administrator entering it).",
    )(fn)  # fmt: skip
    fn = click.option("--as", "actor", metavar="PERSON", help="Who acts [env COUNCIL_ACTOR].")(fn)
    return fn


pass_app = click.make_pass_decorator(App)
