"""council: the coordinator's command line.

Imports stay inside the commands: ``council --help`` and ``council validate``
load neither SQLAlchemy nor Celery, so they start fast.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from workflow.errors import EXIT_UNREACHABLE, CouncilError

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from workflow.engine import Engine
    from workflow.loader import Definitions
    from workflow.machine import Command
    from workflow.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])

EPILOG = """\b
Exit codes:
  0  ok
  1  invalid input or definition
  2  usage (a wrong option or argument)
  3  not found
  4  transition not allowed, or a conflict with another command
  5  a server unreachable (database, broker, SMTP)
"""


class App:
    """Per-invocation state, built lazily so cheap commands stay cheap."""

    def __init__(self, debug: bool) -> None:
        self.debug = debug
        self._databases: list[Any] = []

    @cached_property
    def settings(self) -> Settings:
        from workflow.settings import Settings

        return Settings()

    @cached_property
    def tz(self) -> ZoneInfo:
        from zoneinfo import ZoneInfo

        return ZoneInfo(self.settings.timezone)

    @cached_property
    def definitions(self) -> Definitions:
        from workflow.loader import load

        return load([self.settings.definitions])

    def database(self) -> Any:
        from workflow.store import connect

        url = self.settings.effective_database_url
        if url.startswith("sqlite") and self.settings.database_url is None:
            self.settings.var_dir.mkdir(parents=True, exist_ok=True)
        engine = connect(url)
        self._databases.append(engine)
        return engine

    def close(self) -> None:
        """Close the connection pools this invocation opened."""
        for engine in self._databases:
            engine.dispose()
        self._databases.clear()

    @cached_property
    def engine(self) -> Engine:
        from workflow.engine import Engine

        engine = Engine(
            db=self.database(),
            definitions=self.definitions,
            calendar=self.settings.calendar(),
            timezone=self.tz,
            on_commit=self.publish,
        )
        engine.check_ready()
        return engine

    def embedded_broker(self) -> Any:
        from workflow.embedded import EmbeddedRedis

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

        result = publish_committed(self.engine.db, event_ids)
        if result.failed:
            click.echo(
                f"warning: {result.failed} event(s) wait in the outbox for the relay "
                f"({result.error})",
                err=True,
            )

    def now(self, given: dt.datetime | None) -> dt.datetime:
        if given is None:
            return dt.datetime.now(self.tz)
        return given if given.tzinfo else given.replace(tzinfo=self.tz)

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
                first = str(exc).strip().splitlines()[0]
                _fail(ctx, exc, f"cannot reach the database: {first}", EXIT_UNREACHABLE)
            raise


def _is_connection_error(exc: Exception) -> bool:
    import sqlalchemy.exc

    return isinstance(exc, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError)


def _fail(ctx: click.Context, exc: Exception, message: str, code: int) -> NoReturn:
    app = ctx.find_object(App)
    if app is not None and app.debug:
        raise exc
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


def _parse_date_required(ctx: click.Context, param: click.Parameter, value: str) -> Any:
    return _parse_date(ctx, param, value)


def _parse_date(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None


def now_option(help_text: str) -> Callable[[F], F]:
    return click.option("--now", metavar="ISO", callback=_parse_now, help=help_text)


def acting(fn: F) -> F:
    """Add ``--as`` and ``--now`` to a command that records events."""
    fn = now_option("Act as if it were this time (ISO).")(fn)
    fn = click.option("--as", "actor", metavar="PERSON", help="Who acts [env COUNCIL_ACTOR].")(fn)
    return fn


@click.group(
    cls=CouncilGroup, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.version_option(package_name="council-workflow")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """Track a council's assignments point by point."""
    ctx.obj = App(debug)
    ctx.call_on_close(ctx.obj.close)


pass_app = click.make_pass_decorator(App)


# --- definitions -----------------------------------------------------------------


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--against-db", is_flag=True, help="Also compare with running assignments.")
@pass_app
def validate(app: App, paths: tuple[Path, ...], against_db: bool) -> None:
    """Check definitions (default: the definitions directory); exit 1 if any is invalid."""
    from workflow.loader import check

    definitions, problems = check(list(paths) or [app.settings.definitions])
    for problem in problems:
        click.echo(str(problem), err=True)
    if definitions is None:
        click.echo(f"{len(problems)} problem(s) found", err=True)
        sys.exit(1)
    app.__dict__["definitions"] = definitions
    drifted = _drift_warnings(app) if against_db else 0
    total = sum(len(a.points) for a in definitions.assignments.values())
    click.echo(
        f"ok: {len(definitions.directory.people)} people, {len(definitions.workflows)} workflows, "
        f"{len(definitions.assignments)} assignments, {total} points"
        + (f"; {drifted} change(s) against running assignments" if drifted else "")
    )


def _drift_warnings(app: App) -> int:
    count = 0
    with app.engine.db.connect() as conn:
        for plan in app.definitions.assignments.values():
            for change in app.engine.drift(conn, plan):
                kind = "breaks a running point" if change.breaking else "compatible"
                click.echo(f"warning: {plan.id}: {change} ({kind})", err=True)
                count += 1
    return count


@main.command()
def schema() -> None:
    """Print the JSON Schema of people, workflow and assignment files."""
    import json

    from workflow.definitions import json_schema

    click.echo(json.dumps(json_schema(), indent=2, ensure_ascii=False))


@main.group()
def db() -> None:
    """The database."""


@db.command("upgrade")
@pass_app
def db_upgrade(app: App) -> None:
    """Create the database schema, or bring it up to date."""
    from workflow import schema as migrations

    before, after = migrations.upgrade(app.database())
    if before == after:
        click.echo(f"database already at {after}")
    else:
        click.echo(f"database upgraded from {before or 'empty'} to {after}")


# --- running assignments ---------------------------------------------------------


@main.command()
@click.argument("assignment")
@click.option("--point", "only", type=click.IntRange(min=1), help="Start only this point.")
@click.option("--accept-changes", is_flag=True, help="Go on with a changed definition.")
@acting
@pass_app
def start(
    app: App,
    assignment: str,
    only: int | None,
    accept_changes: bool,
    actor: str | None,
    now: dt.datetime | None,
) -> None:
    """Start an assignment's points; starting again changes nothing."""
    from workflow import addresses

    plan = addresses.assignment(app.definitions, assignment)
    if only is not None:
        addresses.point(app.definitions, f"{plan.id}/{only}")
    who = app.actor(actor)
    report = app.engine.start(
        plan.id,
        actor=who,
        now=app.now(now),
        only=only,
        accept_changes=accept_changes,
    )
    for change in report.accepted_changes:
        click.echo(f"accepted change: {change}")
    if report.started:
        numbers = ", ".join(map(str, report.started))
        click.echo(f"started {plan.id}: point(s) {numbers} ({len(report.event_ids)} events)")
    if report.changed_nothing and not report.scheduled:
        click.echo(f"{plan.id} is already started: nothing changed")
    elif report.already:
        click.echo(f"already running: point(s) {', '.join(map(str, report.already))}")
    for number, day in report.scheduled.items():
        click.echo(
            f"point {number} is planned to start on {day}: "
            f"`council start {plan.id} --point {number}` starts it now"
        )
    if report.rejected:
        click.echo(f"decided against (no work): point(s) {', '.join(map(str, report.rejected))}")


@main.command()
@click.argument("assignment", required=False)
@now_option("Judge deadlines as of this time (ISO).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def status(app: App, assignment: str | None, now: dt.datetime | None, as_json: bool) -> None:
    """A table of points: category, current steps, owners, due dates, overdue."""
    from workflow import addresses, console, views

    if assignment is not None:
        plans = [addresses.assignment(app.definitions, assignment)]
    else:
        started = set(app.engine.started_assignments())
        plans = [p for p in app.definitions.assignments.values() if p.id in started]
    snapshot = app.engine.snapshot(plans[0].id if assignment else None)
    rows = views.status(
        app.definitions,
        plans,
        snapshot,
        app.now(now).date(),
        app.settings.calendar(),
        app.settings.at_risk_days,
    )
    if as_json:
        console.print_json(rows)
        return
    if not rows:
        click.echo("nothing started yet: run `council start ASSIGNMENT`")
        return
    console.print_table(
        ["point", "title", "category", "current steps", "owner", "due", "marks"],
        [
            [
                r["point"],
                _short(r["title"], 48),
                r["category"],
                ", ".join(r["current_steps"]),
                ", ".join(r["owners"]),
                r["due"],
                _marks(r),
            ]
            for r in rows
        ],
    )


def _marks(row: dict[str, Any]) -> str:
    marks = ["OVERDUE" if row["overdue"] else "at risk" if row["at_risk"] else ""]
    marks += [f"held: {', '.join(row['held'])}"] if row["held"] else []
    return ", ".join(m for m in marks if m)


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


@main.command()
@click.argument("point")
@now_option("Judge deadlines as of this time (ISO).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def show(app: App, point: str, now: dt.datetime | None, as_json: bool) -> None:
    """One point: its steps with states and dates, its notes and its history."""
    from workflow import addresses, console, views

    found = addresses.point(app.definitions, point)
    state, history = app.engine.point_state(found.point)
    detail = views.point_detail(found.point, state, history, app.now(now).date(), app.tz)
    if as_json:
        console.print_json(detail)
        return
    flag = " (OVERDUE)" if detail["overdue"] else ""
    click.echo(f"{detail['point']}: {detail['title']}")
    click.echo(f"category: {detail['category']}{flag}   due: {detail['due'] or '-'}")
    console.print_table(
        ["step", "status", "owner", "after", "due", "finished"],
        [
            [
                s["step"],
                s["status"],
                s["owner"],
                ", ".join(s["after"]),
                (s["due"] or "")
                + (f" (moved from {s['due_moved_from']})" if s["due_moved_from"] else "")
                + (" OVERDUE" if s["overdue"] else ""),
                (s["finished_at"] or "")[:16],
            ]
            for s in detail["steps"]
        ],
        title="Steps",
    )
    if detail["notes"]:
        click.echo("Notes:")
        for n in detail["notes"]:
            where = f" [{n['step']}]" if n["step"] else ""
            click.echo(f"  {n['at'][:16]} {n['actor']}{where}: {n['text']}")
    console.print_table(
        ["id", "at", "event", "step", "actor", "detail"],
        [
            [e["id"], e["at"], e["type"], e["step"], e["actor"], e["detail"]]
            for e in detail["history"]
        ],
        title="History",
    )


def _run(app: App, point_address: str, command: Command, now: dt.datetime | None) -> None:
    from workflow import addresses

    found = addresses.point(app.definitions, point_address)
    outcome = app.engine.command(found.point, command, now=app.now(now))
    for event in outcome.events:
        target = f"{event.assignment}/{event.point}" + (f"/{event.step}" if event.step else "")
        click.echo(f"{event.type.value:<18} {target}")


def _step_command(verb: str, help_text: str, build: str, *options: Any) -> None:
    """Define ``council VERB STEP`` for the machine command class named ``build``.

    The class is looked up when the command runs, so defining the CLI (and
    ``council --help``) never imports the machine.
    """

    @acting
    @pass_app
    def run(
        app: App, /, step: str, actor: str | None, now: dt.datetime | None, **kwargs: Any
    ) -> None:
        from workflow import addresses, machine

        found = addresses.step(app.definitions, step)
        command = getattr(machine, build)(actor=app.actor(actor), step=found.step.id, **kwargs)
        _run(app, found.point.address, command, now)

    run.__doc__ = help_text
    for option in reversed(options):
        run = option(run)
    main.command(verb)(click.argument("step")(run))


def _register_step_commands() -> None:
    _step_command(
        "hold",
        "Pause a step's clock while it waits on someone outside.",
        "HoldStep",
        click.option("--reason", required=True, help="Who or what it waits on."),
    )
    _step_command("resume", "Restart a held step's clock; its due date moves out.", "ResumeStep")
    _step_command(
        "extend",
        "Move a step's due date (an extension); reminders follow the new date.",
        "ExtendStep",
        click.option("--to", "to", required=True, metavar="DATE", callback=_parse_date_required),
        click.option("--reason", required=True, help="Why, e.g. the decision granting it."),
    )

    _step_command("begin", "Record that the owner has begun a step.", "BeginStep")
    _step_command(
        "complete",
        "Complete a step; the steps after it become active.",
        "CompleteStep",
        click.option("--note", help="What was done (required by some steps)."),
    )
    _step_command(
        "skip",
        "Skip a step that is not needed, with a reason.",
        "SkipStep",
        click.option("--reason", required=True, help="Why the step is not needed."),
    )
    _step_command(
        "reopen",
        "Reopen a finished step; steps after it that have not begun wait again.",
        "ReopenStep",
        click.option("--reason", help="Why it is reopened."),
    )


@main.command()
@click.argument("step")
@click.argument("person")
@acting
@pass_app
def assign(app: App, step: str, person: str, actor: str | None, now: dt.datetime | None) -> None:
    """Give a step to another owner (a person id or a role)."""
    from workflow import addresses
    from workflow.errors import NotFound
    from workflow.machine import ReassignStep

    found = addresses.step(app.definitions, step)
    try:
        to = app.definitions.directory.resolve(person)
    except KeyError:
        raise NotFound("person", person, "give a person id or a role from people.yaml") from None
    command = ReassignStep(actor=app.actor(actor), step=found.step.id, to=to)
    _run(app, found.point.address, command, now)


@main.command()
@click.argument("target", metavar="POINT")
@click.argument("text")
@acting
@pass_app
def note(app: App, target: str, text: str, actor: str | None, now: dt.datetime | None) -> None:
    """Add a progress note to a point (or to a step: POINT/STEP)."""
    from workflow import addresses
    from workflow.machine import AddNote

    if target.strip("/").count("/") == 2:
        found = addresses.step(app.definitions, target)
        command = AddNote(actor=app.actor(actor), text=text, step=found.step.id)
        _run(app, found.point.address, command, now)
    else:
        point = addresses.point(app.definitions, target)
        _run(app, point.point.address, AddNote(actor=app.actor(actor), text=text), now)


@main.command("write-off")
@click.argument("point")
@click.option("--reason", required=True, help="The council's decision, e.g. its paragraph.")
@acting
@pass_app
def write_off(
    app: App, point: str, reason: str, actor: str | None, now: dt.datetime | None
) -> None:
    """Write off a point when the council decides so; its open work ends."""
    from workflow import addresses
    from workflow.machine import WriteOff

    found = addresses.point(app.definitions, point)
    _run(app, found.point.address, WriteOff(actor=app.actor(actor), reason=reason), now)


@main.command()
@click.option("--point", "point", help="Only this point (ASSIGNMENT/N) or assignment.")
@click.option("--since", type=click.IntRange(min=0), default=0, help="Only events after this id.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many events.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def events(app: App, point: str | None, since: int, limit: int | None, as_json: bool) -> None:
    """The event log, oldest first: the audit trail of who did what, when."""
    from workflow import addresses, console, views

    assignment = number = None
    if point is not None and "/" in point.strip("/"):
        found = addresses.point(app.definitions, point)
        assignment, number = found.assignment.id, found.point.number
    elif point is not None:
        assignment = addresses.assignment(app.definitions, point).id
    listed = app.engine.events(assignment=assignment, point=number, since=since, limit=limit)
    rows = [views.event_row(i, e, app.tz) for i, e in listed]
    if as_json:
        console.print_json(rows)
        return
    console.print_table(
        ["id", "at", "event", "point", "step", "actor", "detail"],
        [
            [r["id"], r["at"], r["type"], r["point"], r["step"], r["actor"], r["detail"]]
            for r in rows
        ],
    )


# --- deadlines -------------------------------------------------------------------


@main.command("check-deadlines")
@now_option("Sweep as if it were this time (ISO).")
@click.option("--dry-run", is_flag=True, help="Show what would fire; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def check_deadlines(app: App, now: dt.datetime | None, dry_run: bool, as_json: bool) -> None:
    """Run the deadline sweep now: reminders, overdue notices, escalations."""
    from workflow import console
    from workflow.sweep import BATCH, sweep

    when = app.now(now)
    fired = []
    while True:
        result = sweep(
            app.engine.db, app.definitions, app.settings.calendar(), now=when, tz=app.tz,
            dry_run=dry_run,
        )  # fmt: skip
        fired += [item.as_dict() for item in result.fired]
        if not dry_run:
            app.publish(result.event_ids)
            _deliver_later(app, result.digests)
        if dry_run or result.steps_checked < BATCH:
            break
    if as_json:
        console.print_json(fired)
        return
    verb = "would fire" if dry_run else "fired"
    if not fired:
        click.echo(f"nothing {verb} as of {when:%Y-%m-%d %H:%M}")
        return
    console.print_table(
        ["point/step", "kind", "level", "due", "to", "days overdue", "note"],
        [
            [
                f"{f['point']}/{f['step']}",
                f["kind"],
                f["level"],
                f["due"],
                f["to"],
                f["days_overdue"],
                f["via"] or "",
            ]
            for f in fired
        ],
        title=f"{len(fired)} {verb} as of {when:%Y-%m-%d %H:%M}",
    )


def _deliver_later(app: App, effect_ids: list[int]) -> None:
    """Hand recorded e-mails to a worker now if one can be reached; else the reconciler will."""
    if effect_ids and app.broker_available():
        import worker  # noqa: F401 - configures the Celery app
        from tasks.dispatch import deliver

        deliver.delay(effect_ids)


@main.command()
@click.argument("assignment")
@click.option("--until", "until", required=True, metavar="DATE", callback=_parse_date_required)
@now_option("Start from this time (ISO); default now.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def simulate(
    app: App, assignment: str, until: dt.date, now: dt.datetime | None, as_json: bool
) -> None:
    """Every reminder and escalation that would fire, day by day, if nobody acted."""
    from workflow import addresses, console
    from workflow.simulate import timeline

    plan = addresses.assignment(app.definitions, assignment)
    start = app.now(now).date()
    with app.engine.db.connect() as conn:
        from workflow.sweep import fired_keys_for

        fired = fired_keys_for(conn, plan.id)
    snapshot = app.engine.snapshot(plan.id)
    rows = timeline(app.definitions, plan, snapshot, start=start, until=until,
                    calendar=app.settings.calendar(), fired=fired)  # fmt: skip
    if as_json:
        console.print_json(rows)
        return
    console.print_table(
        ["day", "point/step", "kind", "level", "to", "note"],
        [
            [
                r["fires_on"],
                f"{r['point']}/{r['step']}",
                r["kind"],
                r["level"],
                r["to"],
                r["via"] or "",
            ]
            for r in rows
        ],
        title=f"{plan.id}: {len(rows)} firing(s) from {start} to {until} if nobody acts",
    )


@main.command("calendar")
@click.argument("year", type=click.IntRange(1900, 2200))
@click.option("--lang", type=click.Choice(["sv", "en"]), default="sv", show_default=True)
@pass_app
def calendar_command(app: App, year: int, lang: str) -> None:
    """The year's days off: public holidays, the de facto eves, configured closures."""
    from workflow import console
    from workflow.definitions import Language

    days = app.settings.calendar().days_off(year, Language(lang))
    console.print_table(
        ["date", "weekday", "day off"],
        [[day.isoformat(), day.strftime("%a"), name] for day, name in days],
        title=f"Days off {year}",
    )


# --- reports ---------------------------------------------------------------------


_EXTENSIONS = {".md": "md", ".markdown": "md", ".html": "html", ".htm": "html",
               ".docx": "docx", ".json": "json"}  # fmt: skip


def _report_format(fmt: str | None, output: Path | None) -> str:
    if fmt is not None:
        return fmt
    if output is None:
        return "md"
    try:
        return _EXTENSIONS[output.suffix.lower()]
    except KeyError:
        raise click.UsageError(
            f"cannot tell the format from {output.name!r}: give --format md|html|docx|json"
        ) from None


@main.command()
@click.argument("assignment")
@click.option("--format", "fmt", type=click.Choice(["md", "html", "docx", "json"]))
@click.option("--lang", type=click.Choice(["sv", "en"]), help="Default: the assignment's.")
@click.option("--as-of", "as_of", metavar="DATE", callback=_parse_date, help="Default: today.")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), help="Write here.")
@click.option("--send", is_flag=True, help="Have a worker mail it to the coordinator.")
@pass_app
def report(
    app: App,
    assignment: str,
    fmt: str | None,
    lang: str | None,
    as_of: dt.date | None,
    output: Path | None,
    send: bool,
) -> None:
    """The report back to the council: points by category, as of a date."""
    from workflow import addresses
    from workflow.definitions import Language
    from workflow.report import build_report
    from workflow.report_render import Format, render

    plan = addresses.assignment(app.definitions, assignment)
    language = Language(lang) if lang else plan.language
    day = as_of or app.now(None).date()
    if send:
        _send_report(app, plan.id, day, language.value)
        return
    chosen = Format(_report_format(fmt, output))
    if chosen is Format.DOCX and output is None and sys.stdout.isatty():
        raise click.UsageError("DOCX is a binary file: write it with -o FILE")
    events = [e for _, e in app.engine.events(assignment=plan.id)]
    built = build_report(
        app.definitions, plan, events, as_of=day, tz=app.tz, lang=language,
        notes=app.settings.report_notes, calendar=app.settings.calendar(),
        at_risk_days=app.settings.at_risk_days,
    )  # fmt: skip
    data = render(built, chosen)
    if output is None:
        sys.stdout.buffer.write(data)
        return
    output.write_bytes(data)
    click.echo(f"wrote {output} ({chosen.value}, {language.value}, as of {day})", err=True)


def _send_report(app: App, assignment: str, day: dt.date, lang: str) -> None:
    from workflow.errors import Unreachable

    app.engine.check_ready()
    if not app.broker_available():
        raise Unreachable("no broker to hand the report to: start a worker (`council worker`)")
    import worker  # noqa: F401 - configures the Celery app
    from tasks.reports import assemble_report

    assemble_report.delay(assignment, day.isoformat(), lang)
    click.echo(f"the report of {assignment} as of {day} ({lang}) goes to the coordinator")


@main.command()
@click.option("--as-of", "as_of", metavar="DATE", callback=_parse_date, help="Default: today.")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "md", "json", "csv"]), default="table",
    show_default=True,
)  # fmt: skip
@pass_app
def backlog(app: App, as_of: dt.date | None, fmt: str) -> None:
    """Every open point across all assignments, oldest decision first, with its age."""
    from workflow import backlog as backlogs
    from workflow import console

    day = as_of or app.now(None).date()
    items = backlogs.build_backlog(
        app.definitions, [e for _, e in app.engine.events()], as_of=day, tz=app.tz,
        calendar=app.settings.calendar(), at_risk_days=app.settings.at_risk_days,
        age_limit_months=app.settings.backlog_age_limit_months,
    )  # fmt: skip
    if fmt == "json":
        console.print_json([item.model_dump(mode="json") for item in items])
    elif fmt == "csv":
        sys.stdout.write(backlogs.to_csv(items))
    elif fmt == "md":
        sys.stdout.write(backlogs.to_markdown(items))
    else:
        console.print_table(backlogs.COLUMNS, backlogs.rows(items), title=f"Backlog as of {day}")


# --- workers and the broker ------------------------------------------------------


@main.command()
@click.option("--concurrency", "-c", type=click.IntRange(min=1), help="Worker processes.")
@click.option(
    "--pool",
    type=click.Choice(["prefork", "solo", "threads"]),
    default="prefork",
    show_default=True,
)
@click.option("--loglevel", "-l", default="INFO", show_default=True)
@click.option(
    "--with-beat", is_flag=True, help="Also run the scheduler in this process (one machine only)."
)
def worker(concurrency: int | None, pool: str, loglevel: str, with_beat: bool) -> None:
    """Run a Celery worker (same as `celery -A worker worker`)."""
    from worker import app

    argv = ["worker", f"--pool={pool}", f"--loglevel={loglevel}", "--without-mingle"]
    if concurrency:
        argv.append(f"--concurrency={concurrency}")
    if with_beat:
        argv.append("--beat")
    app.worker_main(argv)


@main.command()
@click.option("--loglevel", "-l", default="INFO", show_default=True)
def beat(loglevel: str) -> None:
    """Run the scheduler, exactly one per installation (same as `celery -A worker beat`)."""
    from worker import app

    app.start(["beat", f"--loglevel={loglevel}"])


@main.group()
def broker() -> None:
    """The embedded broker (a Redis council runs itself when COUNCIL_BROKER_URL is unset)."""


@broker.command("status")
@pass_app
def broker_status(app: App) -> None:
    """Say which broker is in use and whether it answers."""
    if app.settings.broker_url:
        click.echo("broker: configured by COUNCIL_BROKER_URL")
        return
    embedded = app.embedded_broker()
    state = "running" if embedded.ping() else "not running"
    click.echo(f"embedded broker: {state} ({embedded.socket_path})")


@broker.command("stop")
@pass_app
def broker_stop(app: App) -> None:
    """Stop the embedded broker (queued messages are kept in its append-only file)."""
    if app.embedded_broker().stop():
        click.echo("embedded broker stopped")
    else:
        click.echo("embedded broker was not running")


@main.group(invoke_without_command=True)
@click.option("--failed", is_flag=True, help="Only effects that gave up.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def effects(ctx: click.Context, failed: bool, as_json: bool) -> None:
    """Side effects (e-mails) and their state; `effects retry ID` tries a failed one again."""
    if ctx.invoked_subcommand is not None:
        return
    from workflow import console
    from workflow import effects as records

    app = ctx.ensure_object(App)
    with app.engine.db.connect() as conn:
        rows = records.listing(conn, state=records.EffectState.FAILED if failed else None)
    if as_json:
        console.print_json(rows)
        return
    console.print_table(
        ["id", "kind", "state", "attempts", "event", "created", "detail"],
        [
            [
                r["id"],
                r["kind"],
                r["state"],
                r["attempts"],
                r["event_id"],
                r["created_at"].astimezone(app.tz).isoformat(timespec="minutes"),
                r["detail"],
            ]
            for r in rows
        ],
    )


@effects.command("retry")
@click.argument("ids", nargs=-1, type=click.IntRange(min=1), required=True)
@pass_app
def effects_retry(app: App, ids: tuple[int, ...]) -> None:
    """Try failed effects again (the next reconciler run delivers them)."""
    from workflow import effects as records
    from workflow.errors import NotFound

    with app.engine.db.begin() as conn:
        failed = {r["id"] for r in records.listing(conn, state=records.EffectState.FAILED)}
        missing = [i for i in ids if i not in failed]
        if missing:
            raise NotFound("failed effect", ", ".join(map(str, missing)))
        count = records.reset(conn, ids)
    if app.broker_available():
        import worker  # noqa: F401 - configures the Celery app
        from tasks.dispatch import deliver

        deliver.delay(list(ids))
        click.echo(f"{count} effect(s) queued for delivery")
    else:
        click.echo(f"{count} effect(s) pending again; a worker will deliver them")


_register_step_commands()
