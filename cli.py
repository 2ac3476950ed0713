"""council: the coordinator's command line.

The commands live in ``commands/``, one module per concern. Imports stay inside
the commands: ``council --help`` and ``council validate`` load neither
SQLAlchemy nor Celery, so they start fast.
"""

from __future__ import annotations

import atexit
import gc
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

    _exit_without_collecting()
    # Databases, mail, schedules and secrets: readable by their owner only. (Put back when
    # the command ends, for a process that runs it in-process, as the tests do.)
    previous = keep_files_private()
    ctx.obj = App(debug)
    ctx.call_on_close(ctx.obj.close)
    ctx.call_on_close(lambda: os.umask(previous))


def _exit_without_collecting() -> None:
    """At the process's exit, leave what the command loaded to the operating system.

    The interpreter's last garbage collections visit every object still alive (the modules,
    their classes, the definitions): 0.05-0.1 s of a command on the database, a fifth of
    its time. Frozen, they are not visited; the memory goes back with the process. Nothing
    waits on them: the App closes its connection pools when the command ends, output is
    flushed, and atexit handlers registered before this one still run (after it).
    Registered once per process, however many commands it runs (the tests run many).
    """
    atexit.unregister(gc.freeze)
    atexit.register(gc.freeze)


for _module in (definitions, points, deadlines, reports, site, serve, workers, inbox, ops):
    for _command in _module.COMMANDS:
        main.add_command(_command)
