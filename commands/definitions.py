"""Definitions and the database schema: validate, schema, db."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from commands.base import (
    App,
    pass_app,
)


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--against-db", is_flag=True, help="Also compare with running assignments.")
@pass_app
def validate(app: App, paths: tuple[Path, ...], against_db: bool) -> None:
    """Check definitions (default: the definitions directory); exit 1 if any is invalid."""
    from workflow.definitions import cache

    # The cache of checked definitions answers when nothing changed; validate makes no
    # var dir for it (it needs no database).
    definitions, problems = cache.check(
        list(paths) or [app.settings.definitions], app.settings.var_dir, create=False
    )
    for problem in problems:
        click.echo(str(problem), err=True)
    if definitions is None:
        click.echo(f"{len(problems)} problem(s) found", err=True)
        sys.exit(1)
    app.__dict__["definitions"] = definitions
    drifted = _drift_warnings(app) if against_db else 0
    click.echo(
        f"ok: {definitions.summary()}"
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


@click.command()
def schema() -> None:
    """Print the JSON Schema of people, workflow and assignment files."""
    import json

    from workflow.core.specs import json_schema

    click.echo(json.dumps(json_schema(), indent=2, ensure_ascii=False))


@click.group()
def db() -> None:
    """The database."""


@db.command("upgrade")
@pass_app
def db_upgrade(app: App) -> None:
    """Create the database schema, or bring it up to date."""
    from workflow.store import migrate

    before, after = migrate.upgrade(app.database(create=True))
    if before == after:
        click.echo(f"database already at {after}")
    else:
        click.echo(f"database upgraded from {before or 'empty'} to {after}")


COMMANDS: list[click.Command] = [validate, schema, db]
