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

    _collect_garbage_for_a_command(ctx)
    # Databases, mail, schedules and secrets: readable by their owner only. (Put back when
    # the command ends, for a process that runs it in-process, as the tests do.)
    previous = keep_files_private()
    ctx.obj = App(debug)
    ctx.call_on_close(ctx.obj.close)
    ctx.call_on_close(lambda: os.umask(previous))


#: Allocations between two collections of the youngest objects while a command runs
#: (Python's default is 700).
YOUNG_COLLECTIONS_EVERY = 10_000


def _collect_garbage_for_a_command(ctx: click.Context) -> None:
    """Collect garbage as suits a command: what it loads lives until its process ends.

    A command on the database imports a burst of modules (SQLAlchemy, pydantic, council's
    own) whose objects all live to the end. At Python's default thresholds their allocation
    alone sets off a dozen middle and one full collection of everything loaded (30-40 ms);
    collecting the youngest objects every YOUNG_COLLECTIONS_EVERY allocations instead spares
    those, and still collects a long-running command's (a worker's) garbage. The
    thresholds are put back when the command ends, for a process that runs commands
    in-process (the tests).

    At the process's exit, the interpreter's last collections would visit every object
    still alive (0.05-0.1 s of a command on the database): frozen first (``gc.freeze``,
    atexit), they are not, and the memory goes back with the process. Nothing waits on
    them: the App closes its connection pools when the command ends, output is flushed,
    and atexit handlers registered before this one still run (after it). Registered once
    per process, however many commands it runs.
    """
    previous = gc.get_threshold()
    gc.set_threshold(max(previous[0], YOUNG_COLLECTIONS_EVERY), *previous[1:])
    ctx.call_on_close(lambda: gc.set_threshold(*previous))
    atexit.unregister(gc.freeze)
    atexit.register(gc.freeze)


for _module in (definitions, points, deadlines, reports, site, serve, workers, inbox, ops):
    for _command in _module.COMMANDS:
        main.add_command(_command)
