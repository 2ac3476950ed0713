"""The click commands, one module per concern, and what the terminal shows.

- :mod:`~commands.base`: the per-invocation App, one-line errors and exit codes, options;
- :mod:`~commands.definitions`, :mod:`~commands.points`, :mod:`~commands.deadlines`,
  :mod:`~commands.reports`, :mod:`~commands.inbox`, :mod:`~commands.workers`,
  :mod:`~commands.ops`: the commands, each module exporting ``COMMANDS``;
- :mod:`~commands.views` (what is shown, as data), :mod:`~commands.console` (tables, JSON,
  progress bars) and :mod:`~commands.addresses` (``assignment/point/step`` prefixes).

May import anything in ``workflow/``; ``tasks/`` and ``worker`` only inside a command, to
hand work to the workers (``council --help`` never imports Celery).
"""

__all__ = [
    "base",
    # the commands
    "definitions",
    "points",
    "deadlines",
    "reports",
    "inbox",
    "workers",
    "ops",
    # what the terminal shows
    "views",
    "console",
    "addresses",
]
