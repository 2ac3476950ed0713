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
    from collections.abc import Mapping

    from workflow.core.plan import AssignmentPlan
    from workflow.core.specs import Language
    from workflow.report.register import Selection

_EXTENSIONS = {".md": "md", ".markdown": "md", ".html": "html", ".htm": "html",
               ".docx": "docx", ".json": "json", ".csv": "csv"}  # fmt: skip
_FORMATS = ["md", "html", "docx", "json", "csv"]


def _report_format(fmt: str | None, output: Path | None) -> str:
    if fmt is not None:
        return fmt
    if output is None:
        return "md"
    try:
        return _EXTENSIONS[output.suffix.lower()]
    except KeyError:
        raise click.UsageError(
            f"cannot tell the format from {output.name!r}: give --format {'|'.join(_FORMATS)}"
        ) from None


@click.command()
@click.argument("assignments", nargs=-1, metavar="[ASSIGNMENT]...")
@click.option("--all", "everything", is_flag=True, help="Every assignment decided by the date.")
@click.option("--body", metavar="ID", help="Assignments this body leads or co-owns.")
@click.option("--decided-in", "decided_in", type=click.IntRange(1900, 2999), metavar="YEAR",
              help="Assignments the council decided in this year.")  # fmt: skip
@click.option("--occasion", metavar="ID", help="A reporting occasion's report (occasions.yaml).")
@click.option("--year", type=click.IntRange(1900, 2999), help="The occasion's year.")
@click.option("--format", "fmt", type=click.Choice(_FORMATS))
@click.option("--lang", type=click.Choice(["sv", "en"]), help="Default: the assignments'.")
@click.option("--as-of", "as_of", metavar="DATE", callback=parse_date,
              help="Default: today (an occasion: its day, or today before it).")  # fmt: skip
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), help="Write here.")
@click.option("--send", is_flag=True, help="Have a worker mail it to the coordinator.")
@pass_app
def report(
    app: App,
    assignments: tuple[str, ...],
    everything: bool,
    body: str | None,
    decided_in: int | None,
    occasion: str | None,
    year: int | None,
    fmt: str | None,
    lang: str | None,
    as_of: dt.date | None,
    output: Path | None,
    send: bool,
) -> None:
    """The report back to the council: points by category, as of a date.

    One ASSIGNMENT gives its report back; several, or --all, --body, --decided-in or
    --occasion, give the register across them (docs/register.md).
    """
    from commands import addresses
    from workflow.core.specs import Language
    from workflow.report.model import build_report, end_of_day
    from workflow.report.render import Format, render

    selection = _selection(app, assignments, everything, body, decided_in, occasion, year)
    chosen = Format(_report_format(fmt, output))
    if chosen is Format.DOCX and output is None and sys.stdout.isatty() and not send:
        raise click.UsageError("DOCX is a binary file: write it with -o FILE")
    if selection is None:
        plan = addresses.assignment(app.definitions, assignments[0])
        language = Language(lang) if lang else plan.language
        day = as_of or app.now(None).date()
        if send:
            _send_report(app, plan.id, day, language)
            return
        with app.engine.db.connect() as conn:  # the definition in force on the day
            in_force = app.engine.plan_in_force(conn, plan.id, end_of_day(day, app.tz))
        events = [e for _, e in app.engine.events(assignment=plan.id)]
        built = build_report(
            app.definitions, in_force, events, as_of=day, tz=app.tz, lang=language,
            notes=app.settings.report_notes, calendar=app.settings.calendar(),
            at_risk_days=app.settings.at_risk_days,
        )  # fmt: skip
        _write(render(built, chosen), output, f"{chosen.value}, {language.value}, as of {day}")
        return
    today = app.now(None).date()
    day = as_of or _occasion_day(app, selection, today) or today
    language = Language(lang) if lang else _language_of(app, selection)
    if send:
        _send_register(app, selection, day, language)
        return
    from workflow.report.register import build_register

    built_register = build_register(
        app.definitions, _plans_in_force(app, selection, day),
        (e for _, e in app.engine.events()), selection, as_of=day, tz=app.tz, lang=language,
        notes=app.settings.report_notes, calendar=app.settings.calendar(),
        at_risk_days=app.settings.at_risk_days,
    )  # fmt: skip
    count = len(built_register.rows)
    _write(render(built_register, chosen), output,
           f"{chosen.value}, {language.value}, as of {day}, {count} assignment(s)")  # fmt: skip


def _write(data: bytes, output: Path | None, what: str) -> None:
    if output is None:
        sys.stdout.buffer.write(data)
        return
    write_output(output, data)
    click.echo(f"wrote {output} ({what})", err=True)


def _selection(
    app: App,
    assignments: tuple[str, ...],
    everything: bool,
    body: str | None,
    decided_in: int | None,
    occasion: str | None,
    year: int | None,
) -> Selection | None:
    """What the options select; None for one assignment's own report."""
    from commands import addresses
    from workflow.report.register import Selection

    definitions = app.definitions
    if year is not None and occasion is None:
        raise click.UsageError("--year is the year of an --occasion")
    if not (assignments or everything or body or decided_in or occasion):
        raise click.UsageError(
            "name an assignment, or select several: --all, --body ID, --decided-in YEAR, "
            "--occasion ID"
        )
    if len(assignments) == 1 and not (everything or body or decided_in or occasion):
        return None
    if everything and assignments:
        raise click.UsageError("--all selects every assignment: name none with it")
    if body is not None:
        _known("body", body, definitions.bodies, "no bodies are declared (definitions/bodies.yaml)")
    found = None
    if occasion is not None:
        _known("occasion", occasion, definitions.occasions,
               "no occasions are declared (definitions/occasions.yaml)")  # fmt: skip
        found = definitions.occasions[occasion]
    ids = tuple(dict.fromkeys(addresses.assignment(definitions, a).id for a in assignments))
    if found is not None and year is None:
        year = app.now(None).year
    return Selection(assignments=ids, everything=everything, body=body, decided_in=decided_in,
                     occasion=found, year=year)  # fmt: skip


def _known(what: str, given: str, known: Mapping[str, object], none: str) -> None:
    if not known:
        raise click.UsageError(none)
    if given not in known:
        raise click.UsageError(f"no {what} {given!r}; known: {', '.join(sorted(known))}")


def _occasion_day(app: App, selection: Selection, today: dt.date) -> dt.date | None:
    """An occasion's report is as of its day; before the day, as of today (a preview)."""
    if selection.occasion is None or selection.year is None:
        return None
    return min(selection.occasion.day(selection.year, app.settings.calendar()), today)


def _language_of(app: App, selection: Selection) -> Language:
    """The occasion's language; else the assignments' when they share one; else Swedish."""
    from workflow.core.specs import Language

    if selection.occasion is not None:
        return selection.occasion.language
    languages = {
        plan.language
        for plan in app.definitions.assignments.values()
        if not selection.assignments or plan.id in selection.assignments
    }
    return languages.pop() if len(languages) == 1 else Language.SV


def _plans_in_force(app: App, selection: Selection, day: dt.date) -> dict[str, AssignmentPlan]:
    """Each selected assignment's definition as it was in force at the end of ``day``."""
    from workflow.report.model import end_of_day

    cutoff = end_of_day(day, app.tz)
    with app.engine.db.connect() as conn:
        return {
            plan.id: app.engine.plan_in_force(conn, plan.id, cutoff)
            for plan in app.definitions.assignments.values()
            if selection.admits(plan, day)
        }


def _send_register(app: App, selection: Selection, day: dt.date, language: Language) -> None:
    """Only an occasion's report is mailed by a worker (the coordinator asks for it early,
    or again); other registers are written to a file and sent by hand."""
    if selection.occasion is None or selection.year is None:
        raise click.UsageError("--send mails one assignment's report or an --occasion's")
    actor = app.actor(None) if app.settings.actor else "council"
    occasion = selection.occasion
    app.engine.request_occasion_report(
        occasion.id, year=selection.year, as_of=day, language=language, actor=actor,
        now=app.now(None),
    )  # fmt: skip
    where = "" if app.broker_available() else " when a worker runs (`council worker`)"
    click.echo(f"the {occasion.id} {selection.year} report as of {day} ({language.value}) goes "
               f"to its coordinator{where}")  # fmt: skip


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
