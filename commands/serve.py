"""The coordinators' read-only web view: serve."""

from __future__ import annotations

import logging
import sys

import click

from commands.base import App, pass_app


@click.command()
@click.option(
    "--host", metavar="ADDRESS",
    help="Listen on this address [default: web_host, 127.0.0.1]. Any address that is not "
    "loopback requires a login (a password file or OpenID Connect).",
)  # fmt: skip
@click.option("--port", type=click.IntRange(0, 65535), help="[default: web_port, 8080]")
@click.option(
    "--hash-password", "hash_for", metavar="USER",
    help="Print a line for the password file (USER:argon2-hash) and exit; the password is "
    "read from the terminal without echo, or as one line of standard input.",
)  # fmt: skip
@pass_app
def serve(app: App, host: str | None, port: int | None, hash_for: str | None) -> None:
    """Serve the read-only web view: status, points with every note, backlog, events,
    in Swedish and English (docs/web.md)."""
    if hash_for is not None:
        _hash_password(hash_for)
        return
    from web.app import create_app
    from web.server import serve as run
    from workflow.engine import Engine
    from workflow.ops.logs import configure
    from workflow.store import connect

    configure(level="INFO")  # logins and refusals are logged (never a password)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # the health check's schema check
    settings = app.settings
    where = host or settings.web_host
    db = connect(settings.effective_database_url, create=False, read_only=True)
    try:
        engine = Engine(
            db=db, definitions=app.definitions, calendar=settings.calendar(), timezone=app.tz,
            admin_role=settings.admin_role,
        )  # fmt: skip
        engine.check_ready()
        web = create_app(settings, engine, host=where)
        run(web, where, settings.web_port if port is None else port,
            ready=lambda url: click.echo(f"serving the web view on {url}", err=True))  # fmt: skip
    finally:
        db.dispose()


def _hash_password(user: str) -> None:
    from web.auth import hash_password

    if not user or ":" in user or any(c.isspace() for c in user):
        raise click.BadParameter(
            f"{user!r} cannot be a user name (no ':' or spaces)", param_hint="'--hash-password'"
        )
    if sys.stdin.isatty():
        password = click.prompt("password", hide_input=True, confirmation_prompt=True, err=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < 8:
        raise click.UsageError("the password must have at least 8 characters")
    click.echo(f"{user}:{hash_password(password)}")


COMMANDS: list[click.Command] = [serve]
