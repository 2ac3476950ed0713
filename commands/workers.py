"""Workers and the broker: worker, beat, broker, effects."""

from __future__ import annotations

import click

from commands.base import (
    App,
    pass_app,
)


@click.command()
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
@pass_app
def worker(app: App, concurrency: int | None, pool: str, loglevel: str, with_beat: bool) -> None:
    """Run a Celery worker (same as `celery -A worker worker`)."""
    _prepare(app)
    from worker import app as celery_app

    # No mingle (a start-up sync of revoked tasks council does not use) and no gossip
    # (worker-to-worker events council does not use; restarting it after a lost broker
    # logs "Error on restarting Gossip: AttributeError"). Remote control stays: the
    # doctor's ping.
    argv = [
        "worker", f"--pool={pool}", f"--loglevel={loglevel}", "--without-mingle",
        "--without-gossip",
    ]  # fmt: skip
    if concurrency:
        argv.append(f"--concurrency={concurrency}")
    if with_beat:
        argv.append("--beat")
    celery_app.worker_main(argv)


@click.command()
@click.option("--loglevel", "-l", default="INFO", show_default=True)
@pass_app
def beat(app: App, loglevel: str) -> None:
    """Run the scheduler (same as `celery -A worker beat`): run one or more, on different
    hosts; the one holding the lease fires, the others stand by (docs/operations.md)."""
    _prepare(app)
    from worker import app as celery_app

    celery_app.start(["beat", f"--loglevel={loglevel}"])


def _prepare(app: App) -> None:
    """Settings checked (one line if wrong, never a secret) and var_dir there for beat's file."""
    try:
        app.settings.var_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        from workflow.errors import InvalidInput

        where = app.settings.var_dir
        raise InvalidInput(f"cannot create var_dir {where}: {exc.strerror}") from None


@click.group()
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


@click.group(invoke_without_command=True)
@click.option("--failed", is_flag=True, help="Only effects that gave up.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def effects(ctx: click.Context, failed: bool, as_json: bool) -> None:
    """Side effects (e-mails) and their state; `effects retry ID` tries a failed one again."""
    if ctx.invoked_subcommand is not None:
        return
    from commands import console
    from workflow.store import effects as records

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
    from workflow.errors import NotFound
    from workflow.store import effects as records

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


COMMANDS: list[click.Command] = [worker, beat, broker, effects]
