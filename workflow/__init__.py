"""council's engine: everything but the Celery tasks and the command line.

The packages, from the inside out (docs/architecture.md says exactly who may import
whom, with the two crossings: ``ops.logs`` everywhere, ``replies.tokens`` in mail):

- :mod:`workflow.errors`, :mod:`workflow.settings`: the error tree and the one settings object;
- :mod:`workflow.core`: the pure domain, no I/O and no clock (definitions as written,
  plans, calendar, events, state, the machine, deadlines);
- :mod:`workflow.definitions`: reading and checking the YAML files into plans;
- :mod:`workflow.store`: the database, the only place SQL is written;
- :mod:`workflow.eventlog`: the one path by which events are written and published;
- :mod:`workflow.engine`, :mod:`workflow.sweep`: the application services that change
  state, one transaction each;
- :mod:`workflow.mail`, :mod:`workflow.report`: what is sent, and how;
- :mod:`workflow.handlers`: what the workers do with each event;
- :mod:`workflow.replies`: owners' answers by e-mail, through the engine;
- :mod:`workflow.ops`: running it (logs, the embedded broker, `council doctor`).

``tasks/`` and ``worker.py`` (Celery), ``commands/`` and ``cli.py`` (click) use these;
nothing here imports them. ``tests/unit/test_boundaries.py`` checks it.
"""

__all__ = [
    # shared
    "errors",
    "settings",
    # the pure domain
    "core",
    # reading definitions, keeping state
    "definitions",
    "store",
    # application services
    "eventlog",
    "engine",
    "sweep",
    "handlers",
    # what goes out and comes in
    "mail",
    "report",
    "replies",
    # running it
    "ops",
]
