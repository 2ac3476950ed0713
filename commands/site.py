"""The public progress site: publish."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import click

from commands.base import App, parse_date, pass_app


@click.command()
@click.option(
    "-o", "--output", type=click.Path(path_type=Path, file_okay=False),
    help="Build into this new or empty directory instead of site_dir.",
)  # fmt: skip
@click.option(
    "--as-of", "as_of", metavar="DATE", callback=parse_date,
    help="The site as it stood at the end of this day (with -o; default: today).",
)  # fmt: skip
@pass_app
def publish(app: App, output: Path | None, as_of: dt.date | None) -> None:
    """Build the public progress site: the public assignments, their points, feeds, open
    data and delivered reports, in Swedish and English (docs/site.md).

    Into site_dir by default, switched atomically; the workers keep it current after that.
    """
    from workflow.site.publish import build, refresh

    settings = app.settings
    today = app.now(None).date()
    if as_of is not None and output is None:
        raise click.UsageError(
            "--as-of builds the site as it stood on a day: give -o DIR "
            "(the site in site_dir always shows today)"
        )
    if as_of is not None and as_of > today:
        raise click.UsageError(f"--as-of {as_of} is in the future")
    common: dict[str, Any] = {
        "tz": app.tz, "site_url": settings.site_url, "contact": settings.site_contact,
        "calendar": settings.calendar(),
    }  # fmt: skip
    db = app.engine.db
    if output is not None:
        done = build(db, app.definitions, output, as_of=as_of or today, **common)
        where = output
    elif settings.site_dir is not None:
        # Waits for a worker's rebuild to finish; builds everything, and takes in what
        # the workers had marked, so their next run has nothing to do.
        refreshed = refresh(
            db, app.definitions, settings.site_dir, now=app.now(None), full=True, wait=True,
            **common,
        )  # fmt: skip
        assert refreshed.published is not None  # full, and waited for the lock
        done, where = refreshed.published, settings.site_dir
    else:
        raise click.UsageError("no site_dir is configured: set COUNCIL_SITE_DIR, or give -o DIR")
    click.echo(
        f"published {done.assignments} public assignment(s), {done.pages} files, "
        f"as of {as_of or today}, into {where}",
        err=True,
    )


COMMANDS: list[click.Command] = [publish]
