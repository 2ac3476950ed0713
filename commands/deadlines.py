"""Deadlines: check-deadlines, simulate, calendar."""

from __future__ import annotations

import datetime as dt

import click

from commands.base import (
    App,
    now_option,
    parse_date_required,
    pass_app,
)


@click.command("check-deadlines")
@now_option("Sweep as if it were this time (ISO).")
@click.option("--dry-run", is_flag=True, help="Show what would fire; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def check_deadlines(app: App, now: dt.datetime | None, dry_run: bool, as_json: bool) -> None:
    """Run the deadline sweep now: planned starts, reminders, overdue notices, escalations."""
    from commands import console
    from workflow.sweep import BATCH, due_count, sweep

    when = app.now(now, acting=not dry_run)
    fired: list[dict[str, object]] = []
    held_back: list[str] = []
    held_elsewhere = 0
    due = due_count(app.engine, now=when) if console.progress_wanted() else 0
    with console.progress("checking deadlines", due) as advance:
        while True:
            # A dry run changes nothing, so a second batch would read the first again: it
            # reads every due step at once instead. The engine publishes what a batch fires.
            result = sweep(
                app.engine, now=when, dry_run=dry_run, on_step=advance,
                limit=None if dry_run else BATCH,
            )  # fmt: skip
            fired += result.items()
            held_back += [due.address for due in result.held_back]
            held_elsewhere = result.held_elsewhere
            if dry_run or not result.full(BATCH):
                break
    if as_json:
        console.print_json(fired)
        return
    verb = "would fire" if dry_run else "fired"
    for address in held_back:
        click.echo(
            f"{address} is planned to start, but its assignment's definition changed: "
            "accept the change (`council start --accept-changes`) to start it"
        )
    if held_elsewhere:
        click.echo(
            f"another sweep is handling {held_elsewhere} due step(s) or start(s) right now: "
            "it fires them (this one skipped them, so nothing fires twice)"
        )
    if not fired:
        where = " here" if held_elsewhere else ""
        click.echo(f"nothing {verb}{where} as of {when:%Y-%m-%d %H:%M}")
        return
    console.print_table(
        ["point/step", "kind", "level", "due", "to", "days overdue", "note"],
        [
            [
                f"{f['point']}/{f['step']}" if f["step"] else f"{f['point']}",
                f["kind"],
                f["level"] if f["kind"] != "start" else "",
                f["due"] if f["kind"] != "start" else f"starts {f['fires_on']}",
                f["to"],
                f["days_overdue"] if f["kind"] != "start" else "",
                f["via"] or "",
            ]
            for f in fired
        ],
        title=f"{len(fired)} {verb} as of {when:%Y-%m-%d %H:%M}",
    )


@click.command()
@click.argument("assignment")
@click.option("--until", "until", required=True, metavar="DATE", callback=parse_date_required)
@now_option("Start from this time (ISO); default now.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def simulate(
    app: App, assignment: str, until: dt.date, now: dt.datetime | None, as_json: bool
) -> None:
    """Every planned start, reminder and escalation that would come, day by day, if nobody
    acted."""
    from commands import addresses, console
    from workflow.core.simulate import timeline

    plan = addresses.assignment(app.definitions, assignment)
    start = app.now(now).date()
    from workflow.sweep import fired_keys_for

    fired = fired_keys_for(app.engine, plan.id)
    snapshot = app.engine.snapshot(plan.id)
    rows = timeline(app.definitions.directory, plan, snapshot, start=start, until=until,
                    calendar=app.settings.calendar(), fired=fired)  # fmt: skip
    if as_json:
        console.print_json(rows)
        return
    console.print_table(
        ["day", "point/step", "kind", "level", "to", "note"],
        [
            [
                r["fires_on"],
                f"{r['point']}/{r['step']}" if r["step"] else r["point"],
                r["kind"],
                r["level"],
                r["to"],
                r["via"] or "",
            ]
            for r in rows
        ],
        title=f"{plan.id}: {len(rows)} start(s) and firing(s) from {start} to {until} if "
        "nobody acts",
    )


@click.command("calendar")
@click.argument("year", type=click.IntRange(1900, 2200))
@click.option("--lang", type=click.Choice(["sv", "en"]), default="sv", show_default=True)
@pass_app
def calendar_command(app: App, year: int, lang: str) -> None:
    """The year's days off: public holidays, the de facto eves, configured closures."""
    from commands import console
    from workflow.core.specs import Language

    days = app.settings.calendar().days_off(year, Language(lang))
    console.print_table(
        ["date", "weekday", "day off"],
        [[day.isoformat(), day.strftime("%a"), name] for day, name in days],
        title=f"Days off {year}",
    )


COMMANDS: list[click.Command] = [check_deadlines, simulate, calendar_command]
