"""Replies by e-mail: inbox (read a maildir, an mbox or IMAP; or listen for SMTP)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from commands.base import App, now_option, pass_app


@click.command()
@click.option(
    "--maildir", type=click.Path(path_type=Path, file_okay=False),
    help="Read new messages of this maildir [default: settings' inbox_maildir].",
)  # fmt: skip
@click.option("--mbox", type=click.Path(path_type=Path, dir_okay=False), help="Read an mbox file.")
@click.option("--imap", is_flag=True, help="Read unseen messages of the IMAPS mailbox in settings.")
@click.option("--serve", is_flag=True, help="Listen for SMTP until stopped (Ctrl-C, SIGTERM).")
@click.option("--host", help="With --serve: address to listen on [settings: inbox_listen_host].")
@click.option(
    "--port", type=click.IntRange(1, 65535),
    help="With --serve: port to listen on [settings: inbox_listen_port].",
)  # fmt: skip
@now_option("Judge replies as if it were this time (ISO).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def inbox(
    app: App,
    maildir: Path | None,
    mbox: Path | None,
    imap: bool,
    serve: bool,
    host: str | None,
    port: int | None,
    now: dt.datetime | None,
    as_json: bool,
) -> None:
    """Read owners' replies to prompts and act on the commands in them.

    Each message is handled once (by its Message-ID): its commands run, or nothing
    does; a known sender gets an answer mail (a few an hour at most, see
    docs/replies.md).
    """
    chosen = [name for name, on in (("--maildir", maildir), ("--mbox", mbox), ("--imap", imap),
                                    ("--serve", serve)) if on]  # fmt: skip
    if len(chosen) > 1:
        raise click.UsageError(f"choose one source, not {' and '.join(chosen)}")
    if (host or port) and not serve:
        raise click.UsageError("--host and --port go with --serve")
    from workflow.replies.inbox import Inbox

    receiver = Inbox(app.engine, app.settings)

    def receive(raw: bytes, recipients: Sequence[str]) -> Any:
        receipt = receiver.receive(raw, now=app.now(now, acting=True), recipients=recipients)
        handoff = list(receipt.effect_ids)
        if receipt.outcome == "duplicate":  # a retry: hand over an answer still waiting
            handoff = receiver.waiting_answer(receipt.message_key)
        try:
            app.deliver_soon(handoff)
        except Exception as exc:  # committed: the reply stands; the reconciler delivers it
            from workflow.ops.logs import get_logger

            get_logger(__name__).warning(
                "inbox.handoff_failed", effects=handoff, error=type(exc).__name__
            )
        return receipt

    if serve:
        app.prepare_publishing()  # configured once, here, before any message is judged
        _serve(app, receive, host, port)
        return
    receipts = list(_read(app, receive, maildir, mbox, imap))
    _print(receipts, as_json)


def _read(app: App, receive: Any, maildir: Path | None, mbox: Path | None, imap: bool) -> Any:
    from workflow.replies import sources as inbox_sources

    settings = app.settings
    if mbox is not None:
        return inbox_sources.read_mbox(mbox, receive)
    if imap:
        if not settings.imap_host:
            raise click.UsageError("--imap needs COUNCIL_IMAP_HOST (and a username, password)")
        password = settings.imap_password.get_secret_value() if settings.imap_password else None
        return inbox_sources.read_imap(
            host=settings.imap_host, port=settings.imap_port, username=settings.imap_username,
            password=password, folder=settings.imap_folder, receive=receive,
            ca_file=settings.imap_ca_file,
        )  # fmt: skip
    return inbox_sources.read_maildir(maildir or settings.effective_inbox_maildir, receive)


def _serve(app: App, receive: Any, host: str | None, port: int | None) -> None:
    from workflow.replies import sources as inbox_sources

    settings = app.settings
    where = (host or settings.inbox_listen_host, port or settings.inbox_listen_port)
    inbox_sources.serve(
        host=where[0], port=where[1], mailbox_address=settings.effective_reply_address,
        max_bytes=settings.inbox_max_bytes, receive=receive,
        ready=lambda: click.echo(f"listening for replies on {where[0]}:{where[1]}", err=True),
    )  # fmt: skip


def _print(receipts: list[Any], as_json: bool) -> None:
    from dataclasses import asdict

    from commands import console

    if as_json:
        console.print_json([asdict(r) for r in receipts])
        return
    if not receipts:
        click.echo("no new messages")
        return
    console.print_table(
        ["message", "outcome", "reason", "person", "step", "events"],
        [_row(r) for r in receipts],
        title=f"{len(receipts)} message(s)",
    )


def _row(r: Any) -> list[str]:
    events = " ".join(str(i) for i in r.event_ids)
    return [r.message_key[:40], r.outcome, r.reason or "", r.person or "", r.step or "", events]


COMMANDS: list[click.Command] = [inbox]
