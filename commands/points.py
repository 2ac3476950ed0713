"""Running assignments: start, amend, status, show, the step commands, assign, note,
write-off, events."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import click

from commands.base import (
    App,
    acting,
    now_option,
    parse_date_required,
    pass_app,
)

if TYPE_CHECKING:
    from workflow.core.actions import Action


@click.command()
@click.argument("assignments", metavar="[ASSIGNMENT]...", nargs=-1)
@click.option("--all", "every", is_flag=True, help="Every assignment in the definitions.")
@click.option(
    "--point", "only", type=click.IntRange(min=1), help="Start only this point (one assignment)."
)
@click.option("--accept-changes", is_flag=True, help="Go on with a changed definition.")
@acting
@pass_app
def start(
    app: App,
    assignments: tuple[str, ...],
    every: bool,
    only: int | None,
    accept_changes: bool,
    actor: str | None,
    now: dt.datetime | None,
) -> None:
    """Start the points of an assignment (or several, or --all); starting again changes nothing."""
    from commands import addresses, console

    if every and assignments:
        raise click.UsageError("give assignments or --all, not both")
    if not every and not assignments:
        raise click.UsageError("say which assignment to start (or several, or --all)")
    if every:
        plans = list(app.definitions.assignments.values())
    else:  # each named once, in the order given; an unknown one stops before any starts
        named = [addresses.assignment(app.definitions, a) for a in assignments]
        plans = list({plan.id: plan for plan in named}.values())
    if only is not None:
        if len(plans) != 1:
            raise click.UsageError("--point needs exactly one assignment")
        addresses.point(app.definitions, f"{plans[0].id}/{only}")
    who = app.who(actor)
    when = app.now(now, acting=True)
    lines: list[str] = []
    # A bar over the points, for several assignments: one alone is one transaction.
    work = sum(len(plan.points) for plan in plans) if len(plans) > 1 else 0
    try:
        with console.progress("starting", work) as advance:
            for plan in plans:
                report = app.engine.start(
                    plan.id, **who, now=when, only=only, accept_changes=accept_changes
                )
                lines += _started(plan.id, report, several=len(plans) > 1)
                advance(len(plan.points))
    finally:  # what was started before an error is said too (each assignment commits alone)
        for line in lines:
            click.echo(line)


@click.command()
@click.argument("assignment")
@click.option("--dry-run", is_flag=True, help="Show what would change; change nothing.")
@acting
@pass_app
def amend(
    app: App, assignment: str, dry_run: bool, actor: str | None, now: dt.datetime | None
) -> None:
    """Carry a running assignment over to its amended definition, point by point."""
    from commands import addresses
    from workflow.amend import amend as run_amend

    plan = addresses.assignment(app.definitions, assignment)
    report = run_amend(
        app.engine, plan.id, **app.who(actor), now=app.now(now, acting=True), dry_run=dry_run
    )
    if report.version is None:
        click.echo(f"{plan.id} is as its definition says: nothing to amend")
        return
    for change in report.changes:
        click.echo(f"change: {change}")
    for number, lines in report.points.items():
        for line in lines:
            click.echo(f"{plan.id}/{number}: {line}")
    if report.started:
        click.echo(f"started point(s) {', '.join(map(str, report.started))}")
    for number, day in report.scheduled.items():
        click.echo(
            f"point {number} is planned to start on {day}: the deadline sweep starts it then"
        )
    if dry_run:
        click.echo(f"would amend {plan.id} to version {report.version}: nothing was written")
    else:
        click.echo(
            f"amended {plan.id}: version {report.version} in force ({len(report.event_ids)} events)"
        )


def _started(assignment: str, report: Any, *, several: bool) -> list[str]:
    """What ``council start`` says about one assignment (naming it when it starts several)."""
    named = f"{assignment}: " if several else ""
    lines = [f"{named}accepted change: {change}" for change in report.accepted_changes]
    if report.started:
        numbers = ", ".join(map(str, report.started))
        lines.append(f"started {assignment}: point(s) {numbers} ({len(report.event_ids)} events)")
    if report.changed_nothing and not report.scheduled:
        lines.append(f"{assignment} is already started: nothing changed")
    elif report.already:
        lines.append(f"{named}already running: point(s) {', '.join(map(str, report.already))}")
    for number, day in report.scheduled.items():
        lines.append(
            f"point {number} is planned to start on {day}: the deadline sweep starts it then; "
            f"`council start {assignment} --point {number}` starts it now"
        )
    if report.rejected:
        rejected = ", ".join(map(str, report.rejected))
        lines.append(f"{named}decided against (no work): point(s) {rejected}")
    return lines


@click.command()
@click.argument("assignment", required=False)
@now_option("Judge deadlines as of this time (ISO).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def status(app: App, assignment: str | None, now: dt.datetime | None, as_json: bool) -> None:
    """A table of points: category, current steps, owners, due dates, overdue."""
    from commands import addresses, console, views

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
        app.engine.planned_starts(plans[0].id if assignment else None),
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
    if row["late_to_start"]:
        return f"LATE TO START (planned {row['starts_on']})"
    if row["not_planned"]:
        return "not planned: `council start` plans it"
    if row["starts_on"]:
        return f"planned for {row['starts_on']}"
    late = f"OVERDUE since {row['late_since']}" if row["late_since"] else "OVERDUE"
    marks = [late if row["overdue"] else "at risk" if row["at_risk"] else ""]
    marks += [f"held: {', '.join(row['held'])}"] if row["held"] else []
    return ", ".join(m for m in marks if m)


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


@click.command()
@click.argument("point")
@now_option("Judge deadlines as of this time (ISO).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def show(app: App, point: str, now: dt.datetime | None, as_json: bool) -> None:
    """One point: its steps with states and dates, its notes and its history."""
    from commands import addresses, console, views

    found = addresses.point(app.definitions, point)
    state, history = app.engine.point_state(found.point)
    detail = views.point_detail(
        found.point, state, history, app.now(now).date(), app.tz, app.settings.calendar(),
        app.engine.planned_starts(found.point.assignment),
    )  # fmt: skip
    if as_json:
        console.print_json(detail)
        return
    flag = " (OVERDUE)" if detail["overdue"] else ""
    click.echo(f"{detail['point']}: {detail['title']}")
    click.echo(f"category: {detail['category']}{flag}   due: {detail['due'] or '-'}")
    if detail["late_to_start"]:
        click.echo(
            f"LATE TO START: planned for {detail['starts_on']} and not started; the next "
            "deadline sweep starts it (`council check-deadlines`)"
        )
    elif detail["starts_on"]:
        click.echo(f"planned to start on {detail['starts_on']}: the deadline sweep starts it")
    elif detail["not_planned"]:
        click.echo(
            f"not started and not planned: `council start {found.point.assignment}` plans it "
            f"(or `--point {found.point.number}` starts it now)"
        )
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
    for duty in detail["duties"]:
        ended = " (ended)" if duty["ended"] else ""
        click.echo(
            f"recurring {duty['step']}{ended}: {duty['done']} done, {duty['skipped']} skipped, "
            f"{duty['missed']} missed, {duty['open']} open"
            + (f"; latest: {duty['latest_note']}" if duty["latest_note"] else "")
        )
    if detail["notes"]:
        click.echo("Notes:")
        for n in detail["notes"]:
            where = f" [{n['step']}]" if n["step"] else ""
            click.echo(f"  {n['at'][:16]} {n['actor']}{where}: {n['text']}")
    console.print_table(
        ["id", "at", "event", "step", "actor", "detail"],
        [[e["id"], e["at"], e["type"], e["step"], _who(e), e["detail"]] for e in detail["history"]],
        title="History",
    )


def _who(row: dict[str, Any]) -> str:
    """The actor, and who entered it for them when someone else did."""
    by = row.get("recorded_by")
    return f"{row['actor']} (by {by})" if by else str(row["actor"])


def _run(app: App, point_address: str, action: Action, now: dt.datetime | None) -> None:
    from commands import addresses

    found = addresses.point(app.definitions, point_address)
    outcome = app.engine.act(found.point, action, now=app.now(now, acting=True))
    for event in outcome.events:
        click.echo(f"{event.type.value:<18} {event.address}")


def _step_command(verb: str, help_text: str, build: str, *options: Any) -> click.Command:
    """Define ``council VERB STEP`` for the action class named ``build``.

    The class is looked up when the command runs, so defining the CLI (and
    ``council --help``) never imports the core.
    """

    @acting
    @pass_app
    def run(
        app: App, /, step: str, actor: str | None, now: dt.datetime | None, **kwargs: Any
    ) -> None:
        from commands import addresses
        from workflow.core import actions

        found = addresses.step(app.definitions, step)
        action = getattr(actions, build)(**app.who(actor), step=found.step.id, **kwargs)
        _run(app, found.point.address, action, now)

    run.__doc__ = help_text
    for option in reversed(options):
        run = option(run)
    return click.command(verb)(click.argument("step")(run))


def _step_commands() -> list[click.Command]:
    return [
        _step_command(
            "hold",
            "Pause a step's clock while it waits on someone outside.",
            "HoldStep",
            click.option("--reason", required=True, help="Who or what it waits on."),
        ),
        _step_command(
            "resume", "Restart a held step's clock; its due date moves out.", "ResumeStep"
        ),
        _step_command(
            "extend",
            "Move a step's due date (an extension); reminders follow the new date.",
            "ExtendStep",
            click.option("--to", "to", required=True, metavar="DATE", callback=parse_date_required),
            click.option("--reason", required=True, help="Why, e.g. the decision granting it."),
        ),
        _step_command(
            "delay",
            "Ask the coordinator for more time (as an owner's DELAY reply does).",
            "RequestExtension",
            click.option("--days", type=click.IntRange(1, 366), required=True, help="How many."),
            click.option("--reason", help="Why more time is needed."),
        ),
        _step_command("begin", "Record that the owner has begun a step.", "BeginStep"),
        _step_command(
            "complete",
            "Complete a step; the steps after it become active.",
            "CompleteStep",
            click.option("--note", help="What was done (required by some steps)."),
        ),
        _step_command(
            "skip",
            "Skip a step that is not needed, with a reason.",
            "SkipStep",
            click.option("--reason", required=True, help="Why the step is not needed."),
        ),
        _step_command(
            "reopen",
            "Reopen a finished step; steps after it that have not begun wait again.",
            "ReopenStep",
            click.option("--reason", help="Why it is reopened."),
        ),
    ]


@click.command()
@click.argument("step")
@click.argument("person")
@acting
@pass_app
def assign(app: App, step: str, person: str, actor: str | None, now: dt.datetime | None) -> None:
    """Give a step to another owner (a person id or a role)."""
    from commands import addresses
    from workflow.core.actions import ReassignStep
    from workflow.errors import NotFound

    found = addresses.step(app.definitions, step)
    try:
        to = app.definitions.directory.resolve(person)
    except KeyError:
        raise NotFound("person", person, "give a person id or a role from people.yaml") from None
    action = ReassignStep(**app.who(actor), step=found.step.id, to=to)
    _run(app, found.point.address, action, now)


@click.command()
@click.argument("target", metavar="POINT")
@click.argument("text")
@click.option(
    "--public",
    is_flag=True,
    help="Show the note on the public progress site (when its assignment is public).",
)
@acting
@pass_app
def note(
    app: App, target: str, text: str, public: bool, actor: str | None, now: dt.datetime | None
) -> None:
    """Add a progress note to a point (or to a step: POINT/STEP)."""
    from commands import addresses
    from workflow.core.actions import AddNote

    if target.strip("/").count("/") == 2:
        found = addresses.step(app.definitions, target)
        action = AddNote(**app.who(actor), text=text, step=found.step.id, public=public)
        _run(app, found.point.address, action, now)
    else:
        point = addresses.point(app.definitions, target)
        _run(app, point.point.address, AddNote(**app.who(actor), text=text, public=public), now)


@click.command("write-off")
@click.argument("point")
@click.option("--reason", required=True, help="The council's decision, e.g. its paragraph.")
@acting
@pass_app
def write_off(
    app: App, point: str, reason: str, actor: str | None, now: dt.datetime | None
) -> None:
    """Write off a point when the council decides so; its open work ends."""
    from commands import addresses
    from workflow.core.actions import WriteOff

    found = addresses.point(app.definitions, point)
    _run(app, found.point.address, WriteOff(**app.who(actor), reason=reason), now)


@click.command()
@click.option("--point", "point", help="Only this point (ASSIGNMENT/N) or assignment.")
@click.option("--since", type=click.IntRange(min=0), default=0, help="Only events after this id.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many events.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def events(app: App, point: str | None, since: int, limit: int | None, as_json: bool) -> None:
    """The event log, oldest first: the audit trail of who did what, when."""
    from commands import addresses, console, views

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
        [[r["id"], r["at"], r["type"], r["point"], r["step"], _who(r), r["detail"]] for r in rows],
    )


COMMANDS: list[click.Command] = [
    start,
    amend,
    status,
    show,
    *_step_commands(),
    assign,
    note,
    write_off,
    events,
]
