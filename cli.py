"""council: the coordinator's command line.

The commands live in ``commands/``, one module per concern. Imports stay inside
the commands: ``council --help`` and ``council validate`` load neither
SQLAlchemy nor Celery, so they start fast.
"""

from __future__ import annotations

import os

import click

from commands import deadlines, definitions, inbox, ops, points, reports, serve, site, workers
from commands.base import EPILOG, App, CouncilGroup


@click.group(
    cls=CouncilGroup, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.version_option(package_name="council-workflow")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """Track a council's assignments point by point."""
    from workflow.ops.private import keep_files_private

    # Databases, mail, schedules and secrets: readable by their owner only. (Put back when
    # the command ends, for a process that runs it in-process, as the tests do.)
    previous = keep_files_private()
    ctx.obj = App(debug)
    ctx.call_on_close(ctx.obj.close)
    ctx.call_on_close(lambda: os.umask(previous))


for _module in (definitions, points, deadlines, reports, site, serve, workers, inbox, ops):
    for _command in _module.COMMANDS:
        main.add_command(_command)
