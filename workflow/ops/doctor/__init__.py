"""`council doctor`: checks of an installation, each bounded by a timeout, none changing anything.

- :mod:`~workflow.ops.doctor.runner` runs the checks in threads with a deadline;
- :mod:`~workflow.ops.doctor.definitions`, :mod:`~workflow.ops.doctor.database`,
  :mod:`~workflow.ops.doctor.broker`, :mod:`~workflow.ops.doctor.smtp` and
  :mod:`~workflow.ops.doctor.workers` hold one family of checks each;
- :mod:`~workflow.ops.doctor.results` is what a check says, and the exit code.
"""

from workflow.ops.doctor.broker import BrokerAnswer
from workflow.ops.doctor.results import Result, Status, exit_code
from workflow.ops.doctor.runner import DEFAULT_TIMEOUT, GROUPS, Probes, run

__all__ = [
    # running the checks
    "DEFAULT_TIMEOUT",
    "GROUPS",
    "Probes",
    "run",
    # what they say
    "Result",
    "Status",
    "exit_code",
    # what a probe of a broker answers
    "BrokerAnswer",
]
