"""The report back: report, backlog."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from commands.base import (
    App,
    now_option,
    parse_date,
    pass_app,
    write_output,
)

if TYPE_CHECKING:
    from workflow.core.specs import Language

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


@click.command()
@click.argument("assignment")
@click.option("--format", "fmt", type=click.Choice(["md", "html", "docx", "json"]))
@click.option("--lang", type=click.Choice(["sv", "en"]), help="Default: the assignment's.")
@click.option("--as-of", "as_of", metavar="DATE", callback=parse_date, help="Default: today.")
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
    from commands import addresses
    from workflow.core.specs import Language
    from workflow.report.model import build_report, end_of_day
    from workflow.report.render import Format, render

    plan = addresses.assignment(app.definitions, assignment)
    language = Language(lang) if lang else plan.language
    day = as_of or app.now(None).date()
    if send:
        _send_report(app, plan.id, day, language)
        return
    chosen = Format(_report_format(fmt, output))
    if chosen is Format.DOCX and output is None and sys.stdout.isatty():
        raise click.UsageError("DOCX is a binary file: write it with -o FILE")
    with app.engine.db.connect() as conn:  # the definition in force on the day
        in_force = app.engine.plan_in_force(conn, plan.id, end_of_day(day, app.tz))
    events = [e for _, e in app.engine.events(assignment=plan.id)]
    built = build_report(
        app.definitions, in_force, events, as_of=day, tz=app.tz, lang=language,
        notes=app.settings.report_notes, calendar=app.settings.calendar(),
        at_risk_days=app.settings.at_risk_days,
    )  # fmt: skip
    data = render(built, chosen)
    if output is None:
        sys.stdout.buffer.write(data)
        return
    write_output(output, data)
    click.echo(f"wrote {output} ({chosen.value}, {language.value}, as of {day})", err=True)


def _send_report(app: App, assignment: str, day: dt.date, language: Language) -> None:
    """Record the request as an event: a worker mails the report, once per date and language."""
    actor = app.actor(None) if app.settings.actor else "council"
    app.engine.request_report(
        assignment, as_of=day, language=language, actor=actor, now=app.now(None)
    )
    where = "" if app.broker_available() else " when a worker runs (`council worker`)"
    click.echo(f"the report of {assignment} as of {day} ({language.value}) goes to the "
               f"coordinator{where}")  # fmt: skip


@click.command()
@click.option("--as-of", "as_of", metavar="DATE", callback=parse_date, help="Default: today.")
@now_option("Today is this time's day (ISO), when --as-of is not given.")
@click.option("--body", metavar="ID", help="Only assignments this body leads or co-owns.")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "md", "json", "csv", "xlsx"]),
    help="Default: from -o FILE's extension, else table.",
)  # fmt: skip
@click.option("--full", is_flag=True, help="Whole titles in the table, wrapped (default: cut).")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), help="Write here.")
@pass_app
def backlog(
    app: App,
    as_of: dt.date | None,
    now: dt.datetime | None,
    body: str | None,
    fmt: str | None,
    full: bool,
    output: Path | None,
) -> None:
    """Every open point across all assignments, oldest decision first, with its age."""
    import shutil

    from commands import console
    from workflow.core.specs import Language
    from workflow.report import backlog as backlogs

    chosen = fmt or (backlogs.format_of(output) if output is not None else "table")
    if chosen is None:
        raise click.UsageError(
            f"cannot tell the format from {output}: give --format table|md|json|csv|xlsx"
        )
    if chosen == "xlsx" and output is None and sys.stdout.isatty():
        raise click.UsageError("xlsx is a binary file: write it with -o FILE")
    bodies = app.definitions.bodies
    if body is not None and not bodies:
        raise click.UsageError(
            "--body needs declared bodies, and the definitions have no bodies.yaml"
        )
    if body is not None and body not in bodies:
        raise click.BadParameter(
            f"{body!r} is no body; the bodies are {', '.join(bodies)}", param_hint="'--body'"
        )
    day = as_of or app.now(now).astimezone(app.tz).date()
    events = [e for _, e in app.engine.events()]
    total = backlogs.points_as_of(app.definitions, day, body)
    with console.progress("backlog", total) as advance:
        items = backlogs.build_backlog(
            app.definitions, events, as_of=day, tz=app.tz, calendar=app.settings.calendar(),
            at_risk_days=app.settings.at_risk_days,
            age_limit_months=app.settings.backlog_age_limit_months, body=body, on_point=advance,
        )  # fmt: skip
    named = app.definitions.body_name(body, Language.SV) if body else None
    title = backlogs.caption(day, len(items), named)
    width = shutil.get_terminal_size().columns
    if chosen == "table" and output is None and console.is_terminal():
        from rich.console import Console

        terminal = Console(width=width)
        for shown in backlogs.rich_tables(items, title=title, width=width, full=full):
            terminal.print(shown)
        return
    data = backlogs.render(items, chosen, as_of=day, title=title, width=width, full=full)
    if output is None:
        sys.stdout.buffer.write(data)
        return
    write_output(output, data)
    click.echo(f"wrote {output} ({chosen}, as of {day})", err=True)


COMMANDS: list[click.Command] = [report, backlog]
